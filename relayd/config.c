/*
 * config.c - relayd.conf: the parameter table, the parser, the effective
 * dump and the commented sample.
 *
 * One static table, params[], describes every key: its type, default text,
 * one-line documentation, where it lands in struct config and whether the
 * feature behind it has landed.  Parsing, config_dump and config_sample all
 * walk that table, so a key cannot be parsed but undocumented, nor
 * documented but unknown to the parser.  Defaults go through the same
 * parsers as the file, so the default text is the default value.
 *
 * The parser takes an arbitrary byte buffer (it is a fuzz target): lines
 * are cut with memchr, NUL and other control bytes are refused line by
 * line before any string function sees them, and every allocation either
 * lands in struct config (freed by config_free) or is freed before return.
 * Nothing here is fatal: each problem is written to errs as
 * "FILE:LINE: problem" and counted, and parsing goes on.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

#include "config.h"

#define LOGICAL_MAX	65536	/* one "key = value" with its continuations */
#define CONFIG_LINE_MAX	LOGICAL_MAX	/* one physical line, without its EOL:
					 * a dumped "key = value" fits one */
#define FILE_MAX	(16 << 20)	/* config_load refuses larger files */
#define DURATION_MAX	(3650ULL * 86400)	/* ten years */
#define COUNT_MAX	1000000
#define SHOW_MAX	64	/* bytes of a bad value quoted in a message */
#define WRAP_COL	76	/* width of the sample's comment lines */

enum ptype {
	T_STR,		/* free text; empty: NULL */
	T_PATH,		/* file name, made absolute against the config's dir */
	T_IP,		/* one numeric IPv4 or IPv6 address; empty: NULL */
	T_COUNT,	/* plain decimal */
	T_SIZE,		/* bytes, K M G suffixes */
	T_DURATION,	/* seconds, s m h d suffixes */
	T_ENUM,		/* one of names[], stored as the enum value */
	T_ADDR,		/* one host:port; empty: host NULL */
	T_ADDRS,	/* list of host:port */
	T_CIDRS,	/* list of CIDR blocks */
};

#define F_NONEMPTY	0x1	/* an empty value is an error */
#define F_NOSPACE	0x2	/* a single word */
#define F_HOSTNAME	0x40	/* a host name of at most 253 octets */
#define F_NUMERIC	0x4	/* addresses must be IP literals: they are bound
				 * or queried before any resolver exists */
#define F_SECRET	0x8	/* "user:password": -n masks the password */

/* What "relayd -n" prints for a password.  A dump loads back as it is
 * (the mask is a valid password), and loading it warns, so a copied
 * dump does not go on to fail logins in silence. */
#define SECRET_MASK	"********"

struct param {
	const char *name;
	enum ptype type;
	const char *def;	/* default text; NULL: computed after loading */
	const char *doc;	/* one sentence, for the sample */
	size_t off;		/* offsetof(struct config, field) */
	bool implemented;	/* false: parsed, but warned about when set */
	unsigned flags;
	uint64_t min, max;	/* numeric types */
	uint16_t port;		/* address types: default port, 0: required */
	const char *const *names;	/* T_ENUM: names, indexed by value */
};

static const char *const tls_levels[] = { "none", "may", "encrypt", "verify", NULL };
static const char *const inet_names[] = { "all", "ipv4", "ipv6", NULL };
static const char *const policy_names[] = { "map", "any", NULL };
static const char *const log_formats[] = { "postfix", "json", NULL };
static const char *const yes_no[] = { "no", "yes", NULL };

/* Enums are stored through an int; make sure that is their size. */
_Static_assert(sizeof(enum config_tls_level) == sizeof(int), "enum size");
_Static_assert(sizeof(enum config_inet) == sizeof(int), "enum size");
_Static_assert(sizeof(enum config_sender_policy) == sizeof(int), "enum size");
_Static_assert(sizeof(enum config_log_format) == sizeof(int), "enum size");

#define OFF(f) offsetof(struct config, f)

/* The table, in DESIGN.md order.  Flip .implemented when a feature lands
 * and regenerate etc/relayd.conf (t/unit/test_config compares them). */
static bool is_hostname(const char *h);

static const struct param params[] = {
	{ .name = "hostname", .type = T_STR, .off = OFF(hostname),
	  .def = NULL, .flags = F_NONEMPTY | F_NOSPACE | F_HOSTNAME, .implemented = true,
	  .doc = "Name used in the greeting, EHLO, Received and Reporting-MTA "
		 "(default: this host's name, from gethostname())." },
	{ .name = "smtp_listen", .type = T_ADDRS, .off = OFF(smtp_listen),
	  .def = "0.0.0.0:25, [::]:25", .port = 25, .flags = F_NUMERIC,
	  .implemented = true,
	  .doc = "Port-25 listeners, IP:port or [IPv6]:port, the port "
		 "defaulting to 25 (empty: none)." },
	{ .name = "submission_listen", .type = T_ADDRS,
	  .off = OFF(submission_listen), .def = "0.0.0.0:587, [::]:587",
	  .port = 587, .flags = F_NUMERIC, .implemented = true,
	  .doc = "Submission listeners: STARTTLS and AUTH, the port "
		 "defaulting to 587 (empty: none)." },
	{ .name = "submissions_listen", .type = T_ADDRS,
	  .off = OFF(submissions_listen), .def = "", .port = 465,
	  .flags = F_NUMERIC, .implemented = true,
	  .doc = "Implicit-TLS submission listeners, the port defaulting "
		 "to 465 (empty: none)." },
	{ .name = "queue_dir", .type = T_PATH, .off = OFF(queue_dir),
	  .def = "/var/spool/relayd", .flags = F_NONEMPTY, .implemented = true,
	  .doc = "Directory of the LMDB queue and its spill files." },
	{ .name = "queue_map_size", .type = T_SIZE, .off = OFF(queue_map_size),
	  .def = "8G", .min = 1 << 20, .max = UINT64_MAX, .implemented = true,
	  .doc = "LMDB map size: the most the queue may ever hold." },
	{ .name = "trusted_networks", .type = T_CIDRS,
	  .off = OFF(trusted_networks), .def = "127.0.0.0/8, ::1/128",
	  .implemented = true,
	  .doc = "Networks (IPv4 and IPv6 CIDR blocks) that may relay on "
		 "port 25 without AUTH (empty: none)." },
	{ .name = "tls_cert_file", .type = T_PATH, .off = OFF(tls_cert_file),
	  .def = "", .implemented = true,
	  .doc = "PEM certificate chain; without it and tls_key_file there "
		 "is no STARTTLS and no AUTH." },
	{ .name = "tls_key_file", .type = T_PATH, .off = OFF(tls_key_file),
	  .def = "", .implemented = true,
	  .doc = "PEM private key of tls_cert_file." },
	{ .name = "auth_users_file", .type = T_PATH,
	  .off = OFF(auth_users_file), .def = "/etc/relayd/passwd",
	  .implemented = true,
	  .doc = "File of user:crypt-hash lines for SMTP AUTH." },
	{ .name = "sender_login_map", .type = T_PATH,
	  .off = OFF(sender_login_map), .def = "", .implemented = true,
	  .doc = "File of 'user: addr, @domain' lines: which MAIL FROM "
		 "each user may use (see sender_login_policy)." },
	{ .name = "message_size_limit", .type = T_SIZE,
	  .off = OFF(message_size_limit), .def = "36700160", .min = 1,
	  .max = UINT64_MAX, .implemented = true,
	  .doc = "Largest message accepted, advertised in SIZE; larger "
		 "ones get 552.  At most half of queue_map_size: one "
		 "message must fit in the queue beside the others." },
	{ .name = "recipient_limit", .type = T_COUNT,
	  .off = OFF(recipient_limit), .def = "1000", .min = 1,
	  .max = COUNT_MAX, .implemented = true,
	  .doc = "Recipients per message; more get 452." },
	{ .name = "smtpd_timeout", .type = T_DURATION,
	  .off = OFF(smtpd_timeout), .def = "300s", .min = 1,
	  .max = DURATION_MAX, .implemented = true,
	  .doc = "Idle time allowed to a client between commands or data "
		 "blocks." },
	{ .name = "client_connection_limit", .type = T_COUNT,
	  .off = OFF(client_connection_limit), .def = "50", .min = 0,
	  .max = COUNT_MAX, .implemented = true,
	  .doc = "Concurrent sessions per client address (IPv6: per /64), "
		 "trusted_networks exempt (0: no limit)." },
	{ .name = "smtpd_session_limit", .type = T_COUNT,
	  .off = OFF(smtpd_session_limit), .def = "10000", .min = 1,
	  .max = COUNT_MAX, .implemented = true,
	  .doc = "Concurrent SMTP sessions in all; beyond it new "
		 "connections get 421 4.7.0 and are closed." },
	{ .name = "smtpd_peername_lookup", .type = T_ENUM,
	  .off = OFF(smtpd_peername_lookup), .def = "yes", .names = yes_no,
	  .implemented = true,
	  .doc = "yes: log clients by their forward-confirmed reverse name, "
		 "looked up before the greeting (which waits 1.5 s at most); "
		 "no: every client is 'unknown'." },
	{ .name = "dns_servers", .type = T_ADDRS, .off = OFF(dns_servers),
	  .def = "", .port = 53, .flags = F_NUMERIC, .implemented = true,
	  .doc = "DNS servers, IP:port, the port defaulting to 53 (empty: "
		 "those of /etc/resolv.conf)." },
	{ .name = "dns_timeout", .type = T_DURATION, .off = OFF(dns_timeout),
	  .def = "10s", .min = 1, .max = 300, .implemented = true,
	  .doc = "The longest one DNS query may take, retries included; "
		 "then the lookup fails temporarily." },
	{ .name = "delivery_port", .type = T_COUNT, .off = OFF(delivery_port),
	  .def = "25", .min = 1, .max = 65535,
	  .doc = "TCP port used for MX delivery (labs and tests).",
	  .implemented = true },
	{ .name = "smtp_mx_address_limit", .type = T_COUNT,
	  .off = OFF(smtp_mx_address_limit), .def = "5", .min = 0,
	  .max = COUNT_MAX,
	  .doc = "Next-hop addresses tried per delivery attempt, over all "
		 "MX hosts in preference order (0: no limit).",
	  .implemented = true },
	{ .name = "relayhost", .type = T_ADDR, .off = OFF(relayhost),
	  .def = "", .port = 25,
	  .doc = "Upstream smarthost, [host]:port, used instead of MX "
		 "delivery (empty: deliver to MX hosts).",
	  .implemented = true },
	{ .name = "relayhost_auth", .type = T_STR, .off = OFF(relayhost_auth),
	  .def = "", .flags = F_SECRET,
	  .doc = "user:password for the relayhost.  relayd -n shows the "
		 "password as " SECRET_MASK ".",
	  .implemented = true },
	{ .name = "tls_outbound", .type = T_ENUM, .off = OFF(tls_outbound),
	  .def = "may", .names = tls_levels,
	  .doc = "Outbound TLS: none, may (opportunistic), encrypt or "
		 "verify.",
	  .implemented = true },
	{ .name = "tls_ca_file", .type = T_PATH, .off = OFF(tls_ca_file),
	  .def = "",
	  .doc = "CA bundle for verifying next hops and MTA-STS policy "
		 "servers (empty: the system store).",
	  .implemented = true },
	{ .name = "retry_min", .type = T_DURATION, .off = OFF(retry_min),
	  .def = "5m", .min = 1, .max = DURATION_MAX,
	  .doc = "First retry delay, doubling at each attempt up to "
		 "retry_max.",
	  .implemented = true },
	{ .name = "retry_max", .type = T_DURATION, .off = OFF(retry_max),
	  .def = "1h", .min = 1, .max = DURATION_MAX,
	  .doc = "Longest delay between two delivery attempts.",
	  .implemented = true },
	{ .name = "queue_lifetime", .type = T_DURATION,
	  .off = OFF(queue_lifetime), .def = "2d", .min = 0,
	  .max = DURATION_MAX,
	  .doc = "How long a message is retried before it bounces.",
	  .implemented = true },
	{ .name = "bounce_lifetime", .type = T_DURATION,
	  .off = OFF(bounce_lifetime), .def = "1d", .min = 0,
	  .max = DURATION_MAX,
	  .doc = "How long a bounce itself is retried.",
	  .implemented = true },
	{ .name = "delay_warning", .type = T_DURATION,
	  .off = OFF(delay_warning), .def = "4h", .min = 0,
	  .max = DURATION_MAX,
	  .doc = "Age at which one delay notification is sent for a "
		 "deferred message (0: never).",
	  .implemented = true },
	{ .name = "destination_concurrency", .type = T_COUNT,
	  .off = OFF(destination_concurrency), .def = "20", .min = 1,
	  .max = COUNT_MAX,
	  .doc = "Connections per destination.",
	  .implemented = true },
	{ .name = "destination_recipient_limit", .type = T_COUNT,
	  .off = OFF(destination_recipient_limit), .def = "50", .min = 1,
	  .max = COUNT_MAX,
	  .doc = "Recipients per outbound transaction.",
	  .implemented = true },
	{ .name = "delivery_concurrency", .type = T_COUNT,
	  .off = OFF(delivery_concurrency), .def = "200", .min = 1,
	  .max = COUNT_MAX,
	  .doc = "Outbound connections in all.",
	  .implemented = true },
	{ .name = "control_socket", .type = T_PATH, .off = OFF(control_socket),
	  .def = NULL, .flags = F_NONEMPTY, .implemented = true,
	  .doc = "Unix socket of the admin tools (relayctl), made 0660 for "
		 "relayd's user and group; its directory must be writable by "
		 "`user` (default: <queue_dir>/control)." },
	{ .name = "syslog_name", .type = T_STR, .off = OFF(syslog_name),
	  .def = "relayd", .flags = F_NONEMPTY | F_NOSPACE,
	  .implemented = true,
	  .doc = "Syslog tag prefix, as in relayd/smtpd." },
	{ .name = "user", .type = T_STR, .off = OFF(user), .def = "relayd",
	  .flags = F_NONEMPTY | F_NOSPACE, .implemented = true,
	  .doc = "User to run as after binding the ports." },
	{ .name = "sender_login_policy", .type = T_ENUM,
	  .off = OFF(sender_login_policy), .def = "map",
	  .names = policy_names, .implemented = true,
	  .doc = "map: enforce sender_login_map when set (users absent "
		 "from it may not send); with no map, warn at start that any "
		 "user may use any sender.  any: no check, no warning." },
	{ .name = "inet_protocols", .type = T_ENUM, .off = OFF(inet_protocols),
	  .def = "all", .names = inet_names,
	  .doc = "Address families of outbound connections: all, ipv4 or "
		 "ipv6.",
	  .implemented = true },
	{ .name = "smtp_bind_address", .type = T_IP,
	  .off = OFF(smtp_bind_address), .def = "",
	  .doc = "Source IP address of outbound connections (empty: "
		 "chosen by the system).",
	  .implemented = true },
	{ .name = "smtp_connect_timeout", .type = T_DURATION,
	  .off = OFF(smtp_connect_timeout), .def = "30s", .min = 1,
	  .max = DURATION_MAX,
	  .doc = "Outbound TCP connect, per address.",
	  .implemented = true },
	{ .name = "smtp_helo_timeout", .type = T_DURATION,
	  .off = OFF(smtp_helo_timeout), .def = "300s", .min = 1,
	  .max = DURATION_MAX,
	  .doc = "Wait for the next hop's greeting and its reply to "
		 "EHLO/HELO.",
	  .implemented = true },
	{ .name = "smtp_command_timeout", .type = T_DURATION,
	  .off = OFF(smtp_command_timeout), .def = "300s", .min = 1,
	  .max = DURATION_MAX,
	  .doc = "Wait for the reply to MAIL, RCPT, RSET, STARTTLS, AUTH, "
		 "DATA (354) and QUIT, and for the TLS handshake.",
	  .implemented = true },
	{ .name = "smtp_data_xfer_timeout", .type = T_DURATION,
	  .off = OFF(smtp_data_xfer_timeout), .def = "180s", .min = 1,
	  .max = DURATION_MAX,
	  .doc = "Longest stall while sending message content (RFC 5321 "
		 "4.5.3.2.5).",
	  .implemented = true },
	{ .name = "smtp_data_done_timeout", .type = T_DURATION,
	  .off = OFF(smtp_data_done_timeout), .def = "600s", .min = 1,
	  .max = DURATION_MAX,
	  .doc = "Wait for the reply to the final dot.",
	  .implemented = true },
	{ .name = "tls_policy", .type = T_PATH, .off = OFF(tls_policy),
	  .def = "",
	  .doc = "File of 'domain level' lines overriding tls_outbound.",
	  .implemented = true },
	{ .name = "destination_rate", .type = T_COUNT,
	  .off = OFF(destination_rate), .def = "0", .min = 0,
	  .max = COUNT_MAX,
	  .doc = "Messages per minute per destination (0: no limit).",
	  .implemented = true },
	{ .name = "bounce_notice_recipient", .type = T_STR,
	  .off = OFF(bounce_notice_recipient), .def = "", .flags = F_NOSPACE,
	  .doc = "Where failures of null-sender mail are copied (empty: "
		 "nowhere).",
	  .implemented = true },
	{ .name = "metrics_listen", .type = T_ADDR, .off = OFF(metrics_listen),
	  .def = "", .flags = F_NUMERIC, .implemented = true,
	  .doc = "IP:port of the Prometheus metrics endpoint (empty: "
		 "none)." },
	{ .name = "log_format", .type = T_ENUM, .off = OFF(log_format),
	  .def = "postfix", .names = log_formats, .implemented = true,
	  .doc = "Log lines: postfix or json." },
	{ .name = "dkim_keys", .type = T_PATH, .off = OFF(dkim_keys),
	  .def = "",
	  .doc = "File of 'domain selector algorithm keyfile' lines for "
		 "DKIM signing (empty: no signing)." },
	{ .name = "dkim_expire", .type = T_DURATION, .off = OFF(dkim_expire),
	  .def = "0", .min = 0, .max = DURATION_MAX,
	  .doc = "DKIM signature lifetime, the x= tag (0: none)." },
};

#define NPARAMS (sizeof(params) / sizeof(params[0]))

/* State of one load; lives on config_load_buffer's stack. */
struct loadctx {
	struct config *cfg;
	const char *name;		/* file name for messages */
	char *dir;			/* absolute base of relative paths */
	FILE *errs;
	int nerr;
	size_t set_line[NPARAMS];	/* where each key was set, 0: not */
	char why[256];			/* the last value error */
};

/* A logical line: one physical line plus its continuation lines. */
struct logical {
	char *buf;		/* LOGICAL_MAX + 1 bytes, NUL-terminated */
	size_t len;
	size_t line;		/* where it started; 0: none pending */
	bool bad;		/* already reported: swallow the rest of it */
};

union pvalue {
	char *s;
	uint64_t u;
	int e;
	struct config_addr a;
	struct config_addr_list al;
	struct config_cidr_list cl;
};

/* ---- messages ---- */

static void report(struct loadctx *c, const char *kind, size_t line,
		   const char *fmt, va_list ap)
	__attribute__((format(printf, 4, 0)));

static void report(struct loadctx *c, const char *kind, size_t line,
		   const char *fmt, va_list ap)
{
	if (!c->errs)
		return;
	if (line)
		fprintf(c->errs, "%s%s:%zu: ", kind, c->name, line);
	else
		fprintf(c->errs, "%s%s: ", kind, c->name);
	vfprintf(c->errs, fmt, ap);
	fputc('\n', c->errs);
}

static void cfg_err(struct loadctx *c, size_t line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void cfg_err(struct loadctx *c, size_t line, const char *fmt, ...)
{
	va_list ap;

	c->nerr++;
	va_start(ap, fmt);
	report(c, "", line, fmt, ap);
	va_end(ap);
}

static void cfg_warn(struct loadctx *c, size_t line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void cfg_warn(struct loadctx *c, size_t line, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	report(c, "warning: ", line, fmt, ap);
	va_end(ap);
}

/* Record why a value was refused; returns -1 for the caller to return. */
static int fail(struct loadctx *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static int fail(struct loadctx *c, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(c->why, sizeof(c->why), fmt, ap);
	va_end(ap);
	return -1;
}

/* Quote at most SHOW_MAX bytes of user text: "'%.*s%s'", SHOWN(p, n). */
#define SHOWN(p, n) (int)((n) > SHOW_MAX ? SHOW_MAX : (n)), (p), \
	((n) > SHOW_MAX ? "..." : "")
#define SHOW(s) SHOWN((s), strlen(s))

/* ---- numbers ---- */

/* Parse decimal digits at *sp (no sign, no blanks); -1 when there are
 * none or they overflow 64 bits. */
static int parse_digits(const char **sp, uint64_t *out)
{
	const char *s = *sp;
	uint64_t v = 0;

	if (*s < '0' || *s > '9')
		return -1;
	for (; *s >= '0' && *s <= '9'; s++) {
		unsigned d = (unsigned)(*s - '0');

		if (v > (UINT64_MAX - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	*sp = s;
	*out = v;
	return 0;
}

/* Digits and an optional one-letter unit out of units[] (either case),
 * scaled by the matching mults[]; -1 on anything else or on overflow. */
static int parse_scaled(const char *s, const char *units,
			const uint64_t *mults, uint64_t *out)
{
	uint64_t v, mult = 1;
	const char *u;

	if (!s || parse_digits(&s, &v) < 0)
		return -1;
	if (*s) {
		u = strchr(units, *s >= 'A' && *s <= 'Z' ? *s - 'A' + 'a' : *s);
		if (!u || !*u || s[1])
			return -1;
		mult = mults[u - units];
	}
	if (v > UINT64_MAX / mult)
		return -1;
	*out = v * mult;
	return 0;
}

int config_parse_duration(const char *s, uint64_t *out)
{
	static const uint64_t mults[] = { 1, 60, 3600, 86400 };

	return parse_scaled(s, "smhd", mults, out);
}

int config_parse_size(const char *s, uint64_t *out)
{
	static const uint64_t mults[] = { 1 << 10, 1 << 20, 1 << 30 };

	return parse_scaled(s, "kmg", mults, out);
}

/* ---- addresses ---- */

static bool is_hostname(const char *h)
{
	for (; *h; h++)
		if (!((*h >= 'a' && *h <= 'z') || (*h >= 'A' && *h <= 'Z') ||
		      (*h >= '0' && *h <= '9') || *h == '-' || *h == '.' ||
		      *h == '_'))
			return false;
	return true;
}

/* Fill a->ss from a numeric host; leaves AF_UNSPEC for a name. */
static void addr_numeric(struct config_addr *a, const char *host)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)&a->ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&a->ss;

	memset(&a->ss, 0, sizeof(a->ss));
	a->sslen = 0;
	if (inet_pton(AF_INET, host, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons(a->port);
		a->sslen = sizeof(*sin);
	} else if (inet_pton(AF_INET6, host, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(a->port);
		a->sslen = sizeof(*sin6);
	} else {
		memset(&a->ss, 0, sizeof(a->ss));
		a->ss.ss_family = AF_UNSPEC;
	}
}

/* Split "host:port", "[host]:port", "host" or "[host]" into host and
 * port text; returns NULL or why not. */
static const char *addr_split(const char *s, const char **host,
			      size_t *hlen, const char **port)
{
	const char *p;

	*port = NULL;
	if (*s == '[') {
		*host = s + 1;
		p = strchr(*host, ']');
		if (!p)
			return "missing ']'";
		*hlen = (size_t)(p - *host);
		if (p[1] == ':')
			*port = p + 2;
		else if (p[1])
			return "junk after ']'";
		return NULL;
	}
	*host = s;
	p = strchr(s, ':');
	if (p && strchr(p + 1, ':'))
		return "an IPv6 address needs brackets, as in [::1]:25";
	*hlen = p ? (size_t)(p - s) : strlen(s);
	if (p)
		*port = p + 1;
	return NULL;
}

/* config_parse_addr with a reason; out is zeroed on failure. */
static const char *addr_parse(const char *s, uint16_t default_port,
			      struct config_addr *out)
{
	const char *host, *port, *why;
	char buf[256];
	size_t hlen;
	uint64_t v = default_port;

	memset(out, 0, sizeof(*out));
	why = addr_split(s, &host, &hlen, &port);
	if (why)
		return why;
	if (port && (parse_digits(&port, &v) < 0 || *port || !v || v > 65535))
		return "bad port (1..65535)";
	if (!v)
		return "missing port";
	if (!hlen)
		return "missing host";
	if (hlen >= sizeof(buf))
		return "host name too long";
	memcpy(buf, host, hlen);
	buf[hlen] = '\0';
	out->port = (uint16_t)v;
	addr_numeric(out, buf);
	if (out->ss.ss_family == AF_UNSPEC && !is_hostname(buf))
		return "bad host";
	out->host = strdup(buf);
	if (!out->host) {
		memset(out, 0, sizeof(*out));
		return "out of memory";
	}
	return NULL;
}

int config_parse_addr(const char *s, uint16_t default_port,
		      struct config_addr *out)
{
	if (!s || !out)
		return -1;
	return addr_parse(s, default_port, out) ? -1 : 0;
}

/* ---- CIDR blocks ---- */

static const char *cidr_parse(const char *s, struct config_cidr *out)
{
	char buf[INET6_ADDRSTRLEN + 1];
	const char *slash = strchr(s, '/'), *p;
	size_t alen = slash ? (size_t)(slash - s) : strlen(s);
	uint64_t bits;
	unsigned max, i;

	memset(out, 0, sizeof(*out));
	if (alen >= 2 && s[0] == '[' && s[alen - 1] == ']') {
		s++;
		alen -= 2;
	}
	if (!alen || alen >= sizeof(buf))
		return "bad address";
	memcpy(buf, s, alen);
	buf[alen] = '\0';
	if (inet_pton(AF_INET, buf, out->addr) == 1) {
		out->family = AF_INET;
		max = 32;
	} else if (inet_pton(AF_INET6, buf, out->addr) == 1) {
		out->family = AF_INET6;
		max = 128;
	} else {
		memset(out, 0, sizeof(*out));
		return "bad address";
	}
	bits = max;		/* a bare address is a host route */
	p = slash ? slash + 1 : NULL;
	if (p && (parse_digits(&p, &bits) < 0 || *p || bits > max)) {
		memset(out, 0, sizeof(*out));
		return max == 32 ? "bad prefix length (0..32)"
				 : "bad prefix length (0..128)";
	}
	out->prefix = (unsigned)bits;
	/* Host bits are accepted (10.1.2.3/8 is a common way of writing
	 * 10.0.0.0/8) but cleared, so matching never depends on them. */
	for (i = 0; i < 16; i++) {
		unsigned keep = bits >= 8 * (i + 1) ? 8 :
				bits > 8 * i ? (unsigned)bits - 8 * i : 0;

		out->addr[i] &= (uint8_t)(0xff00 >> keep);
	}
	return NULL;
}

int config_parse_cidr(const char *s, struct config_cidr *out)
{
	if (!s || !out)
		return -1;
	return cidr_parse(s, out) ? -1 : 0;
}

/* 1 when the first `bits` bits of a and b agree. */
static int prefix_eq(const uint8_t *a, const uint8_t *b, unsigned bits)
{
	unsigned n = bits / 8, r = bits % 8;

	if (memcmp(a, b, n))
		return 0;
	return !r || !((a[n] ^ b[n]) & (0xff00 >> r) & 0xff);
}

/* Each address is compared in both forms: an IPv4 client arriving on an
 * IPv6 socket shows up as ::ffff:a.b.c.d and must still match
 * 127.0.0.0/8, and an IPv4 address matches a ::ffff:0:0/96 block. */
int config_cidr_match(const struct config_cidr_list *l,
		      const struct sockaddr *sa)
{
	static const uint8_t mapped[12] = { [10] = 0xff, [11] = 0xff };
	uint8_t v4[4], v6[16];
	bool has4 = false;
	size_t i;

	if (!l || !sa)
		return 0;
	if (sa->sa_family == AF_INET) {
		memcpy(v4, &((const struct sockaddr_in *)sa)->sin_addr, 4);
		memcpy(v6, mapped, 12);
		memcpy(v6 + 12, v4, 4);
		has4 = true;
	} else if (sa->sa_family == AF_INET6) {
		memcpy(v6, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
		has4 = !memcmp(v6, mapped, 12);
		memcpy(v4, v6 + 12, 4);
	} else {
		return 0;
	}
	for (i = 0; i < l->n; i++) {
		const struct config_cidr *c = &l->v[i];

		if (c->family == AF_INET && has4 && c->prefix <= 32 &&
		    prefix_eq(v4, c->addr, c->prefix))
			return 1;
		if (c->family == AF_INET6 && c->prefix <= 128 &&
		    prefix_eq(v6, c->addr, c->prefix))
			return 1;
	}
	return 0;
}

/* ---- paths ---- */

/* dir + "/" + rel, without "./" noise; NULL when out of memory. */
static char *path_join(const char *dir, const char *rel)
{
	size_t dl = strlen(dir), rl;
	char *p;

	while (rel[0] == '.' && rel[1] == '/')
		for (rel += 2; *rel == '/'; rel++)
			;
	if (!strcmp(rel, "."))
		rel = "";
	while (dl > 1 && dir[dl - 1] == '/')
		dl--;
	rl = strlen(rel);
	p = malloc(dl + rl + 2);
	if (!p)
		return NULL;
	memcpy(p, dir, dl);
	if (rl && !(dl == 1 && dir[0] == '/'))
		p[dl++] = '/';
	memcpy(p + dl, rel, rl + 1);
	return p;
}

/* The absolute form of name (relative to the working directory). */
static char *path_absolute(const char *name)
{
	char cwd[4096];

	if (name[0] == '/' || !getcwd(cwd, sizeof(cwd)))
		return strdup(name);
	return path_join(cwd, name);
}

/* The directory part of an absolute path ("/" for "/x"). */
static char *path_dir(const char *path)
{
	const char *slash = strrchr(path, '/');
	size_t n = slash ? (size_t)(slash - path) : 0;
	char *d;

	if (!slash)
		return strdup(".");
	d = malloc(n + 2);
	if (!d)
		return NULL;
	memcpy(d, path, n ? n : 1);
	d[n ? n : 1] = '\0';
	return d;
}

/* ---- value parsers, one per type; -1 with c->why set ---- */

static int parse_str(struct loadctx *c, const struct param *p,
		     const char *val, union pvalue *v)
{
	if (!*val)
		return 0;
	if ((p->flags & F_NOSPACE) && strpbrk(val, " \t"))
		return fail(c, "'%.*s%s' must be a single word", SHOW(val));
	if ((p->flags & F_HOSTNAME) && (strlen(val) > 253 || !is_hostname(val)))
		return fail(c, "'%.*s%s' is not a host name", SHOW(val));
	v->s = strdup(val);
	return v->s ? 0 : fail(c, "out of memory");
}

static int parse_path(struct loadctx *c, const struct param *p,
		      const char *val, union pvalue *v)
{
	if (!*val)
		return 0;
	v->s = val[0] == '/' ? strdup(val) : path_join(c->dir, val);
	return v->s ? 0 : fail(c, "out of memory");
}

static int parse_ip(struct loadctx *c, const struct param *p,
		    const char *val, union pvalue *v)
{
	unsigned char sa[sizeof(struct in6_addr)];

	if (!*val)
		return 0;
	if (inet_pton(AF_INET, val, sa) != 1 &&
	    inet_pton(AF_INET6, val, sa) != 1)
		return fail(c, "'%.*s%s' is not an IP address", SHOW(val));
	v->s = strdup(val);
	return v->s ? 0 : fail(c, "out of memory");
}

static int parse_num(struct loadctx *c, const struct param *p,
		     const char *val, union pvalue *v)
{
	const char *what = "number", *hint = "", *unit = "";
	int rc;

	if (p->type == T_SIZE) {
		rc = config_parse_size(val, &v->u);
		what = "size";
		hint = " (bytes, or a number with K, M or G)";
	} else if (p->type == T_DURATION) {
		rc = config_parse_duration(val, &v->u);
		what = "duration";
		hint = " (seconds, or a number with s, m, h or d)";
		unit = "s";
	} else {
		rc = parse_scaled(val, "", NULL, &v->u);
	}
	if (rc < 0)
		return fail(c, "bad %s '%.*s%s'%s", what, SHOW(val), hint);
	if (v->u < p->min || v->u > p->max)
		return fail(c, "'%.*s%s' is out of range (%" PRIu64 "%s..%"
			    PRIu64 "%s)", SHOW(val), p->min, unit, p->max,
			    unit);
	return 0;
}

static int parse_enum(struct loadctx *c, const struct param *p,
		      const char *val, union pvalue *v)
{
	char list[128] = "";
	size_t used = 0;
	int i;

	for (i = 0; p->names[i]; i++) {
		if (!strcmp(val, p->names[i])) {
			v->e = i;
			return 0;
		}
		if (used < sizeof(list))
			used += (size_t)snprintf(list + used,
						 sizeof(list) - used, "%s%s",
						 i ? ", " : "", p->names[i]);
	}
	return fail(c, "'%.*s%s' is not one of: %s", SHOW(val), list);
}

/* One address, checked against the parameter's flags. */
static int parse_one_addr(struct loadctx *c, const struct param *p,
			  const char *s, struct config_addr *a)
{
	const char *why = addr_parse(s, p->port, a);

	if (why)
		return fail(c, "bad address '%.*s%s': %s", SHOW(s), why);
	if ((p->flags & F_NUMERIC) && a->ss.ss_family == AF_UNSPEC) {
		free(a->host);
		memset(a, 0, sizeof(*a));
		return fail(c, "'%.*s%s' is not an IP address (no DNS here)",
			    SHOW(s));
	}
	return 0;
}

static int parse_addr(struct loadctx *c, const struct param *p,
		      const char *val, union pvalue *v)
{
	return *val ? parse_one_addr(c, p, val, &v->a) : 0;
}

/* Items of a list are separated by commas and/or blanks. */
#define LIST_SEP ", \t"

/* The next item at or after s, its length in *len; NULL at the end. */
static const char *list_next(const char *s, size_t *len)
{
	s += strspn(s, LIST_SEP);
	*len = strcspn(s, LIST_SEP);
	return *s ? s : NULL;
}

static size_t list_count(const char *s)
{
	size_t n = 0, len;

	for (; (s = list_next(s, &len)); s += len)
		n++;
	return n;
}

static void release_addrs(void *field)
{
	struct config_addr_list *l = field;
	size_t i;

	for (i = 0; i < l->n; i++)
		free(l->v[i].host);
	free(l->v);
	memset(l, 0, sizeof(*l));
}

static void release_cidrs(void *field)
{
	struct config_cidr_list *l = field;

	free(l->v);
	memset(l, 0, sizeof(*l));
}

static int parse_addrs(struct loadctx *c, const struct param *p,
		       const char *val, union pvalue *v)
{
	size_t n = list_count(val), len;
	const char *s;
	char *item;
	int rc;

	if (!n)
		return 0;
	v->al.v = calloc(n, sizeof(*v->al.v));
	if (!v->al.v)
		return fail(c, "out of memory");
	for (s = val; (s = list_next(s, &len)); s += len) {
		item = strndup(s, len);
		rc = item ? parse_one_addr(c, p, item, &v->al.v[v->al.n])
			  : fail(c, "out of memory");
		free(item);
		if (rc < 0)
			goto fail;
		v->al.n++;
	}
	return 0;
fail:
	release_addrs(&v->al);
	return -1;
}

static int parse_cidrs(struct loadctx *c, const struct param *p,
		       const char *val, union pvalue *v)
{
	size_t n = list_count(val), len;
	const char *s, *why;
	char *item;

	if (!n)
		return 0;
	v->cl.v = calloc(n, sizeof(*v->cl.v));
	if (!v->cl.v)
		return fail(c, "out of memory");
	for (s = val; (s = list_next(s, &len)); s += len) {
		item = strndup(s, len);
		why = item ? cidr_parse(item, &v->cl.v[v->cl.n])
			   : "out of memory";
		if (why) {
			fail(c, "bad network '%.*s%s': %s", SHOWN(s, len), why);
			free(item);
			goto fail;
		}
		free(item);
		v->cl.n++;
	}
	return 0;
fail:
	release_cidrs(&v->cl);
	return -1;
}

static void release_str(void *field)
{
	char **s = field;

	free(*s);
	*s = NULL;
}

static void release_addr(void *field)
{
	struct config_addr *a = field;

	free(a->host);
	memset(a, 0, sizeof(*a));
}

static const struct type_ops {
	int (*parse)(struct loadctx *, const struct param *, const char *,
		     union pvalue *);
	void (*release)(void *field);	/* NULL: nothing owned */
	size_t size;
	bool list;			/* text normalised to ", " */
	bool required;			/* an empty value is an error */
} types[] = {
	[T_STR] = { parse_str, release_str, sizeof(char *), false, false },
	[T_PATH] = { parse_path, release_str, sizeof(char *), false, false },
	[T_IP] = { parse_ip, release_str, sizeof(char *), false, false },
	[T_COUNT] = { parse_num, NULL, sizeof(uint64_t), false, true },
	[T_SIZE] = { parse_num, NULL, sizeof(uint64_t), false, true },
	[T_DURATION] = { parse_num, NULL, sizeof(uint64_t), false, true },
	[T_ENUM] = { parse_enum, NULL, sizeof(int), false, true },
	[T_ADDR] = { parse_addr, release_addr, sizeof(struct config_addr),
		     false, false },
	[T_ADDRS] = { parse_addrs, release_addrs,
		      sizeof(struct config_addr_list), true, false },
	[T_CIDRS] = { parse_cidrs, release_cidrs,
		      sizeof(struct config_cidr_list), true, false },
};

/* Parse val for params[i] and, only when it is good, replace the field. */
static int set_value(struct loadctx *c, size_t i, const char *val)
{
	const struct param *p = &params[i];
	const struct type_ops *t = &types[p->type];
	void *field = (char *)c->cfg + p->off;
	union pvalue tmp;

	memset(&tmp, 0, sizeof(tmp));
	if (!*val && (t->required || (p->flags & F_NONEMPTY)))
		return fail(c, "a value is required");
	if (t->parse(c, p, val, &tmp) < 0)
		return -1;
	if (t->release)
		t->release(field);
	memcpy(field, &tmp, t->size);
	return 0;
}

/* The text config_dump shows for a value: lists joined with ", ". */
static char *value_text(const struct param *p, const char *val)
{
	size_t len, n = 0;
	const char *s;
	char *t;

	if (!types[p->type].list)
		return strdup(val);
	/* Each separator may grow to two bytes: "a,b" -> "a, b". */
	t = malloc(strlen(val) + list_count(val) + 1);
	if (!t)
		return NULL;
	for (s = val; (s = list_next(s, &len)); s += len) {
		if (n) {
			memcpy(t + n, ", ", 2);
			n += 2;
		}
		memcpy(t + n, s, len);
		n += len;
	}
	t[n] = '\0';
	return t;
}

/* What config_dump shows for key i: paths and computed defaults as in
 * effect, everything else as written (or the default's text). */
static const char *shown_value(const struct config *cfg, size_t i)
{
	const struct param *p = &params[i];

	if (p->type == T_PATH || !p->def)
		return *(char *const *)((const char *)cfg + p->off);
	if (cfg->text && cfg->text[i])
		return cfg->text[i];
	return p->def;
}

/* ---- lines ---- */

static int find_param(const char *key, size_t klen)
{
	size_t i;

	for (i = 0; i < NPARAMS; i++)
		if (strlen(params[i].name) == klen &&
		    !memcmp(params[i].name, key, klen))
			return (int)i;
	return -1;
}

/* Apply one "key = value" logical line (NUL-terminated, trimmed). */
static void assign(struct loadctx *c, const char *text, size_t len,
		   size_t line)
{
	const char *eq = memchr(text, '=', len), *val;
	size_t klen;
	char *t;
	int i;

	if (!eq) {
		cfg_err(c, line, "missing '=' (expected 'key = value')");
		return;
	}
	klen = (size_t)(eq - text);
	while (klen && (text[klen - 1] == ' ' || text[klen - 1] == '\t'))
		klen--;
	if (!klen) {
		cfg_err(c, line, "missing parameter name before '='");
		return;
	}
	i = find_param(text, klen);
	if (i < 0) {
		cfg_err(c, line, "unknown parameter '%.*s%s'", SHOWN(text, klen));
		return;
	}
	if (c->set_line[i]) {
		cfg_err(c, line, "duplicate parameter '%s' (first set on line %zu)",
			params[i].name, c->set_line[i]);
		return;
	}
	c->set_line[i] = line;
	val = eq + 1 + strspn(eq + 1, " \t");
	if (set_value(c, (size_t)i, val) < 0) {
		cfg_err(c, line, "%s: %s", params[i].name, c->why);
	} else if (c->cfg->text) {
		t = value_text(&params[i], val);
		if (!t)
			cfg_err(c, line, "%s: out of memory", params[i].name);
		free(c->cfg->text[i]);
		c->cfg->text[i] = t;
		/* Every dump must load back: what it will show (lists with
		 * ", ", paths made absolute) must fit one line. */
		const char *shown = t ? shown_value(c->cfg, (size_t)i) : NULL;
		if (shown && strlen(params[i].name) + 3 + strlen(shown) > LOGICAL_MAX)
			cfg_err(c, line, "%s: value too long once written out (over %d bytes)",
				params[i].name, LOGICAL_MAX);
	}
	if (!params[i].implemented)
		cfg_warn(c, line, "%s: not implemented yet", params[i].name);
}

/* Apply the pending logical line, if any and not already refused. */
static void flush(struct loadctx *c, struct logical *lg)
{
	if (lg->line && !lg->bad)
		assign(c, lg->buf, lg->len, lg->line);
	lg->line = 0;
	lg->len = 0;
	lg->bad = false;
	lg->buf[0] = '\0';
}

/* Refuse control characters: they are never meant, and NUL would cut
 * the value short for the string functions further on. */
static bool bad_bytes(struct loadctx *c, const char *s, size_t n,
		      size_t line)
{
	size_t i;

	for (i = 0; i < n; i++) {
		unsigned char b = (unsigned char)s[i];

		if (b == '\t' || (b >= 0x20 && b != 0x7f))
			continue;
		if (b)
			cfg_err(c, line, "control character 0x%02x", b);
		else
			cfg_err(c, line, "NUL byte");
		return true;
	}
	return false;
}

/* Feed one physical line (without its '\n') into the logical line. */
static void feed(struct loadctx *c, struct logical *lg, const char *s,
		 size_t n, size_t line)
{
	size_t i = 0, need;
	bool cont;

	if (n && s[n - 1] == '\r')
		n--;
	while (i < n && (s[i] == ' ' || s[i] == '\t'))
		i++;
	if (i == n || s[i] == '#')
		return;		/* blank lines and comments never end a value */
	cont = i > 0;
	if (!cont) {
		flush(c, lg);
		lg->line = line;
	} else if (!lg->line) {
		cfg_err(c, line, "continuation line without a parameter before it");
		return;
	}
	if (lg->bad)
		return;
	if (n > CONFIG_LINE_MAX) {
		cfg_err(c, line, "line too long (over %d bytes)", CONFIG_LINE_MAX);
		lg->bad = true;
		return;
	}
	if (bad_bytes(c, s + i, n - i, line)) {
		lg->bad = true;
		return;
	}
	while (n > i && (s[n - 1] == ' ' || s[n - 1] == '\t'))
		n--;
	need = n - i + (cont ? 1 : 0);
	if (lg->len + need > LOGICAL_MAX) {
		cfg_err(c, line, "value too long (over %d bytes)", LOGICAL_MAX);
		lg->bad = true;
		return;
	}
	if (cont)
		lg->buf[lg->len++] = ' ';
	memcpy(lg->buf + lg->len, s + i, n - i);
	lg->len += n - i;
	lg->buf[lg->len] = '\0';
}

static void parse_buffer(struct loadctx *c, const char *buf, size_t len)
{
	struct logical lg = { .buf = malloc(LOGICAL_MAX + 1) };
	const char *p = buf, *end = buf + len, *nl;
	size_t line;

	if (!lg.buf) {
		cfg_err(c, 0, "out of memory");
		return;
	}
	lg.buf[0] = '\0';
	for (line = 1; p < end; line++) {
		nl = memchr(p, '\n', (size_t)(end - p));
		feed(c, &lg, p, (size_t)((nl ? nl : end) - p), line);
		p = nl ? nl + 1 : end;
	}
	flush(c, &lg);
	free(lg.buf);
}

/* ---- loading ---- */

static void apply_defaults(struct loadctx *c)
{
	size_t i;

	for (i = 0; i < NPARAMS; i++)
		if (params[i].def && set_value(c, i, params[i].def) < 0)
			cfg_err(c, 0, "internal error: default of %s: %s",
				params[i].name, c->why);
}

static size_t line_of(struct loadctx *c, const char *key)
{
	int i = find_param(key, strlen(key));

	return i < 0 ? 0 : c->set_line[i];
}

/* The later of the lines where keys a and b were set (0: neither). */
static size_t later_line(struct loadctx *c, const char *a, const char *b)
{
	size_t la = line_of(c, a), lb = line_of(c, b);

	return la > lb ? la : lb;
}

/* Defaults that depend on other keys, and checks across keys. */
static void finish(struct loadctx *c)
{
	struct config *cfg = c->cfg;
	size_t sun_max = sizeof(((struct sockaddr_un *)0)->sun_path);
	char host[256];

	if (!cfg->hostname) {
		if (gethostname(host, sizeof(host) - 1) < 0 || !host[0])
			strcpy(host, "localhost");
		host[sizeof(host) - 1] = '\0';
		cfg->hostname = strdup(host);
	}
	if (!cfg->control_socket && cfg->queue_dir)
		cfg->control_socket = path_join(cfg->queue_dir, "control");
	if (!cfg->hostname || !cfg->control_socket)
		cfg_err(c, 0, "out of memory");
	else if (strlen(cfg->control_socket) >= sun_max)
		cfg_err(c, later_line(c, "control_socket", "queue_dir"),
			"control_socket: '%s' is too long for a socket (%zu bytes at most)",
			cfg->control_socket, sun_max - 1);
	if (cfg->retry_min > cfg->retry_max)
		cfg_err(c, later_line(c, "retry_min", "retry_max"),
			"retry_min must not exceed retry_max");
	/* A message is written in one LMDB transaction beside the rest of
	 * the queue: a limit beyond half the map could never be met, and
	 * the bound keeps SIZE and BDAT arithmetic far from 2^64. */
	if (cfg->message_size_limit > cfg->queue_map_size / 2)
		cfg_err(c, later_line(c, "message_size_limit", "queue_map_size"),
			"message_size_limit (%" PRIu64 ") exceeds what the queue can hold: "
			"at most half of queue_map_size (%" PRIu64 ")",
			cfg->message_size_limit, cfg->queue_map_size);
	if (cfg->relayhost_auth) {
		const char *colon = strchr(cfg->relayhost_auth, ':');
		const char *pw = colon ? colon + 1 : cfg->relayhost_auth;
		if (!strcmp(pw, SECRET_MASK))
			cfg_warn(c, line_of(c, "relayhost_auth"),
				 "relayhost_auth: the password is the mask relayd -n prints; "
				 "put the real one back");
	}
	if (!cfg->tls_cert_file != !cfg->tls_key_file)
		cfg_err(c, later_line(c, "tls_cert_file", "tls_key_file"),
			"tls_cert_file and tls_key_file go together: set both or neither");
}

int config_load_buffer(struct config *cfg, const char *name,
		       const char *buf, size_t len, FILE *errs)
{
	struct loadctx c = { .cfg = cfg, .errs = errs };

	memset(cfg, 0, sizeof(*cfg));
	c.name = name ? name : "-";
	cfg->text = calloc(NPARAMS, sizeof(*cfg->text));
	cfg->path = path_absolute(c.name);
	c.dir = cfg->path ? path_dir(cfg->path) : NULL;
	if (!cfg->text || !c.dir) {
		cfg_err(&c, 0, "out of memory");
		goto out;
	}
	apply_defaults(&c);
	if (buf)
		parse_buffer(&c, buf, len);
	finish(&c);
out:
	free(c.dir);
	return c.nerr;
}

/* Read a whole file; -1 (reported) when it cannot be read. */
static int read_file(const char *path, char **bufp, size_t *lenp, FILE *errs)
{
	FILE *f = fopen(path, "r");
	char *buf = NULL, *nbuf;
	size_t len = 0, cap = 0, got;

	if (!f)
		goto fail;
	do {
		if (len == cap) {
			cap = cap ? cap * 2 : 8192;
			if (cap > FILE_MAX + 1)
				cap = FILE_MAX + 1;
			nbuf = realloc(buf, cap);
			if (!nbuf)
				goto fail;
			buf = nbuf;
		}
		got = fread(buf + len, 1, cap - len, f);
		len += got;
	} while (got && len <= FILE_MAX);
	if (ferror(f))
		goto fail;
	if (len > FILE_MAX) {
		if (errs)
			fprintf(errs, "%s: file too large (over %d bytes)\n",
				path, FILE_MAX);
		goto out;
	}
	fclose(f);
	*bufp = buf;
	*lenp = len;
	return 0;
fail:
	if (errs)
		fprintf(errs, "%s: cannot read: %s\n", path, strerror(errno));
out:
	if (f)
		fclose(f);
	free(buf);
	return -1;
}

int config_load(struct config *cfg, const char *path, FILE *errs)
{
	char *buf = NULL;
	size_t len = 0;
	int n;

	memset(cfg, 0, sizeof(*cfg));
	if (!path || read_file(path, &buf, &len, errs) < 0)
		return -1;
	n = config_load_buffer(cfg, path, buf, len, errs);
	free(buf);
	return n;
}

int config_load_quiet(struct config *cfg, const char *path, FILE *errs)
{
	char *msg = NULL;
	size_t len = 0;
	FILE *mem = open_memstream(&msg, &len);
	int rc = config_load(cfg, path, mem ? mem : errs);
	if (mem)
		fclose(mem);
	if (rc != 0 && msg)
		fputs(msg, errs);
	free(msg);
	return rc;
}

void config_free(struct config *cfg)
{
	size_t i;

	if (!cfg)
		return;
	for (i = 0; i < NPARAMS; i++)
		if (types[params[i].type].release)
			types[params[i].type].release((char *)cfg + params[i].off);
	if (cfg->text)
		for (i = 0; i < NPARAMS; i++)
			free(cfg->text[i]);
	free(cfg->text);
	free(cfg->path);
	memset(cfg, 0, sizeof(*cfg));
}

int config_new(struct config **out, const char *path, FILE *errs)
{
	struct config *cfg = calloc(1, sizeof(*cfg));
	*out = NULL;
	if (!cfg) {
		fprintf(errs, "%s: out of memory\n", path);
		return -1;
	}
	int rc = config_load(cfg, path, errs);
	if (rc != 0) {
		config_free(cfg);
		free(cfg);
		return rc;
	}
	cfg->refs = 1;
	*out = cfg;
	return 0;
}

struct config *config_ref(struct config *cfg)
{
	cfg->refs++;
	return cfg;
}

void config_unref(struct config *cfg)
{
	if (!cfg || --cfg->refs > 0)
		return;
	config_free(cfg);
	free(cfg);
}

/* ---- dump and sample ---- */

/* "key = user:********": the user helps, the password never shows
 * (a value without ':' is all password). */
static void print_secret(FILE *out, const char *name, const char *v)
{
	const char *colon = strchr(v, ':');
	int user = colon ? (int)(colon - v) + 1 : 0;

	fprintf(out, "%s = %.*s%s\n", name, user, v, SECRET_MASK);
}

void config_dump(const struct config *cfg, FILE *out)
{
	const struct param *p;
	const char *v;
	size_t i;

	for (i = 0; i < NPARAMS; i++) {
		p = &params[i];
		v = shown_value(cfg, i);
		if (v && *v && (p->flags & F_SECRET))
			print_secret(out, p->name, v);
		else if (v && *v)
			fprintf(out, "%s = %s\n", p->name, v);
		else
			fprintf(out, "%s =\n", p->name);
	}
}

/* Write text's words as "# ..." comment lines; returns the column. */
static size_t put_words(FILE *out, const char *text, size_t col)
{
	size_t n;

	for (text += strspn(text, " "); *text; text += strspn(text, " ")) {
		n = strcspn(text, " ");
		if (col && col + 1 + n > WRAP_COL) {
			fputc('\n', out);
			col = 0;
		}
		if (!col) {
			fputc('#', out);
			col = 1;
		}
		fputc(' ', out);
		fwrite(text, 1, n, out);
		col += 1 + n;
		text += n;
	}
	return col;
}

static const char sample_header[] =
	"# relayd.conf - configuration of relayd(8), the SMTP relay.\n"
	"#\n"
	"# Every parameter is listed below with its default, commented out, so\n"
	"# this file as shipped changes nothing; \"relayd -n\" prints the values in\n"
	"# effect and \"relayd -t\" checks a file.  It is generated by\n"
	"# config_sample() in relayd/config.c, and the unit tests check that the\n"
	"# two agree.\n"
	"#\n"
	"# Syntax: \"key = value\".  A line whose first non-blank character is '#'\n"
	"# is a comment; a line that starts with a blank continues the value of\n"
	"# the line before it.  Durations take s, m, h or d (a bare number is\n"
	"# seconds); sizes take K, M or G (a bare number is bytes; 1K = 1024).\n"
	"# List items are separated by commas and/or blanks.  Relative paths are\n"
	"# relative to the directory of this file.  Parameters marked \"Not\n"
	"# implemented yet\" are checked but have no effect yet.\n";

void config_sample(FILE *out)
{
	const struct param *p;
	size_t i, col;

	fputs(sample_header, out);
	for (i = 0; i < NPARAMS; i++) {
		p = &params[i];
		fputc('\n', out);
		col = put_words(out, p->doc, 0);
		if (!p->implemented)
			col = put_words(out, "(Not implemented yet.)", col);
		if (col)
			fputc('\n', out);
		if (p->def && *p->def)
			fprintf(out, "#%s = %s\n", p->name, p->def);
		else
			fprintf(out, "#%s =\n", p->name);
	}
}
