/*
 * config.h - relayd.conf: one parameter table drives parsing (relayd -t),
 * the effective dump (relayd -n) and the documented sample etc/relayd.conf.
 *
 * Syntax: "key = value" lines; '#' starts a comment line; a line that
 * starts with whitespace continues the previous value (as in Postfix).
 * Durations take s/m/h/d (bare numbers are seconds), sizes K/M/G (bare
 * numbers are bytes).  Relative paths are taken relative to the directory
 * of the configuration file, so a config can live in a work tree.
 *
 * Ownership: struct config owns every string and array in it; config_free
 * releases them.  Nothing here is global.
 *
 * The daemon's configurations are reference-counted snapshots
 * (config_new / config_ref / config_unref): SIGHUP loads a new snapshot
 * and swaps it in, and whoever must keep reading one across the event
 * loop (a session, later a delivery) holds a reference, so a reload never
 * frees a string still in use.  Snapshots are used on the loop thread
 * only.
 */
#ifndef RELAYD_CONFIG_H
#define RELAYD_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>
#include <netinet/in.h>

/* A listening or connecting endpoint "host:port" / "[v6]:port". */
struct config_addr {
	char *host;              /* as written, without brackets */
	uint16_t port;
	struct sockaddr_storage ss;  /* resolved numerically (no DNS); ss_family
				      * is AF_UNSPEC when host is a name */
	socklen_t sslen;
};

struct config_addr_list {
	struct config_addr *v;
	size_t n;
};

/* One CIDR block. */
struct config_cidr {
	int family;              /* AF_INET or AF_INET6 */
	uint8_t addr[16];
	unsigned prefix;
};

struct config_cidr_list {
	struct config_cidr *v;
	size_t n;
};

struct config_str_list {
	char **v;
	size_t n;
};

enum config_tls_level { TLS_LEVEL_NONE, TLS_LEVEL_MAY, TLS_LEVEL_ENCRYPT, TLS_LEVEL_VERIFY };
enum config_inet { INET_ALL, INET_IPV4, INET_IPV6 };
enum config_sender_policy { SENDER_POLICY_MAP, SENDER_POLICY_ANY };
enum config_log_format { LOG_FORMAT_POSTFIX, LOG_FORMAT_JSON };

struct config {
	char *path;                          /* the file loaded (absolute) */

	char *hostname;
	struct config_addr_list smtp_listen;
	struct config_addr_list submission_listen;
	struct config_addr_list submissions_listen;
	char *queue_dir;
	uint64_t queue_map_size;
	struct config_cidr_list trusted_networks;
	char *tls_cert_file;                 /* NULL when empty */
	char *tls_key_file;
	char *auth_users_file;
	char *sender_login_map;
	uint64_t message_size_limit;
	uint64_t recipient_limit;
	uint64_t smtpd_timeout;              /* seconds */
	uint64_t client_connection_limit;
	uint64_t smtpd_session_limit;
	int smtpd_peername_lookup;           /* 0 no, 1 yes */
	struct config_addr_list dns_servers;
	uint64_t dns_timeout;                /* seconds */
	uint64_t delivery_port;
	uint64_t smtp_mx_address_limit;
	struct config_addr relayhost;        /* host NULL when empty */
	char *relayhost_auth;
	enum config_tls_level tls_outbound;
	char *tls_ca_file;
	uint64_t retry_min, retry_max;       /* seconds */
	uint64_t queue_lifetime;
	uint64_t bounce_lifetime;
	uint64_t delay_warning;
	uint64_t destination_concurrency;
	uint64_t destination_recipient_limit;
	uint64_t delivery_concurrency;
	char *control_socket;
	char *syslog_name;
	char *user;
	enum config_sender_policy sender_login_policy;
	enum config_inet inet_protocols;
	char *smtp_bind_address;
	uint64_t smtp_connect_timeout;       /* seconds */
	uint64_t smtp_helo_timeout;
	uint64_t smtp_command_timeout;
	uint64_t smtp_data_xfer_timeout;
	uint64_t smtp_data_done_timeout;
	char *tls_policy;
	uint64_t destination_rate;
	char *bounce_notice_recipient;
	struct config_addr metrics_listen;   /* host NULL when empty */
	enum config_log_format log_format;
	char *dkim_keys;
	uint64_t dkim_expire;

	/* Internal to config.c: each key's value as written in the file
	 * (trimmed, lists normalised to ", "), in table order, NULL when the
	 * default applies.  config_dump prints it so that "relayd -n" shows
	 * "smtpd_timeout = 5m" rather than a recomputed "300". */
	char **text;

	int refs;                            /* config_new snapshots only */
};

/* Load path into cfg (defaults first, then the file).  Every problem is
 * written to errs as "FILE:LINE: problem" (all of them, not just the
 * first); warnings ("FILE:LINE: KEY: not implemented yet") too, prefixed
 * "warning: ".  Returns the number of errors (0: cfg is usable), or -1
 * when the file cannot be read (also reported on errs).  cfg must be
 * freed with config_free in every case. */
int config_load(struct config *cfg, const char *path, FILE *errs);
/* config_load for the tools: the warnings (e.g. "not implemented yet")
 * are written to errs only when there are errors too, so that a tool's
 * output is not drowned in them.  Same return value. */
int config_load_quiet(struct config *cfg, const char *path, FILE *errs);

/* Parse from a memory buffer (for tests and the fuzz target); `name` is
 * used in messages and as the base for relative paths. */
int config_load_buffer(struct config *cfg, const char *name,
		       const char *buf, size_t len, FILE *errs);

/* Print every key as "key = value", defaults included, in table order:
 * the value as written (or the default's text), except that paths (then
 * resolved to absolute), hostname and control_socket print the value in
 * effect.  The output is itself a valid configuration, with one change:
 * the password of relayhost_auth is printed as "********" (loading that
 * back warns), so a dump never shows a secret. */
void config_dump(const struct config *cfg, FILE *out);

/* Print the commented sample (what etc/relayd.conf holds). */
void config_sample(FILE *out);

void config_free(struct config *cfg);

/* Load path into a new snapshot holding one reference.  Returns what
 * config_load returns; *out is NULL unless that is 0. */
int config_new(struct config **out, const char *path, FILE *errs);
/* Take a reference; returns cfg. */
struct config *config_ref(struct config *cfg);
/* Drop a reference; the last one frees the snapshot.  NULL is ignored. */
void config_unref(struct config *cfg);

/* 1 when the address (AF_INET/AF_INET6 sockaddr) is inside the list. */
int config_cidr_match(const struct config_cidr_list *l,
		      const struct sockaddr *sa);

/* Parse helpers, exposed for the other modules and for tests.
 * Return 0 or -1. */
int config_parse_duration(const char *s, uint64_t *out);
int config_parse_size(const char *s, uint64_t *out);
int config_parse_addr(const char *s, uint16_t default_port,
		      struct config_addr *out);
int config_parse_cidr(const char *s, struct config_cidr *out);

#endif
