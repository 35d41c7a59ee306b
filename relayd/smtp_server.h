/*
 * smtp_server.h - the SMTP listeners: ports 25 (smtp_listen), 587
 * (submission_listen) and 465 (submissions_listen, implicit TLS); accepts
 * connections, enforces client_connection_limit (per address, IPv6 per
 * /64) and smtpd_session_limit, owns the sessions and stops them
 * gracefully.
 */
#ifndef RELAYD_SMTP_SERVER_H
#define RELAYD_SMTP_SERVER_H

#include <uv.h>
#include "config.h"
#include "queue.h"

enum smtp_listener_kind {
	SMTP_PORT_SMTP,          /* relay for trusted networks (and AUTH) */
	SMTP_PORT_SUBMISSION,    /* STARTTLS + AUTH required */
	SMTP_PORT_SUBMISSIONS,   /* implicit TLS + AUTH required */
};

struct smtp_server;
struct tls_ctx;
struct auth_db;

/* Bind every configured listener (as root, before privileges drop).
 * The server takes a reference to cfg (config_ref).  0, or -1 with the
 * reason logged. */
int smtp_server_new(struct smtp_server **out, uv_loop_t *loop,
		    struct config *cfg, struct queue *q);
/* The queue is opened after privileges drop, so it arrives late. */
void smtp_server_set_queue(struct smtp_server *s, struct queue *q);
/* The resolver for client names (NULL: none); owned by the caller, who
 * frees it only after the server has stopped. */
struct dns_resolver;
void smtp_server_set_dns(struct smtp_server *s, struct dns_resolver *dns);
/* fn(arg) after each message is committed (NULL: none). */
void smtp_server_set_on_queued(struct smtp_server *s, void (*fn)(void *arg),
			       void *arg);
/* Start accepting. */
int smtp_server_start(struct smtp_server *s);
/* Swap in a reloaded configuration (the server takes a reference):
 * new sessions use it, a session in progress keeps the snapshot it
 * started with.  Listeners are not rebound. */
void smtp_server_set_config(struct smtp_server *s, struct config *cfg);
/* Swap in reloaded credentials, taking over the caller's reference (NULL
 * turns the feature off: the daemon passes NULL only when the
 * configuration no longer names the files); sessions in progress keep
 * what they started with. */
void smtp_server_set_tls(struct smtp_server *s, struct tls_ctx *ctx);
void smtp_server_set_auth(struct smtp_server *s, struct auth_db *db);
/* 1 while TLS (STARTTLS, port 465) or AUTH is offered: a reload must not
 * drop either unless the configuration says so. */
int smtp_server_has_tls(const struct smtp_server *s);
int smtp_server_has_auth(const struct smtp_server *s);
/* Graceful stop: close listeners, end idle sessions with 421, let those in
 * DATA finish; done() runs once every session is gone. */
void smtp_server_stop(struct smtp_server *s, void (*done)(void *), void *arg);
void smtp_server_free(struct smtp_server *s);

/* Counters for status. */
struct smtp_server_stats {
	unsigned long sessions;          /* open now */
	unsigned long long accepted;     /* connections accepted */
	unsigned long long messages;     /* messages queued */
};
void smtp_server_stats(const struct smtp_server *s, struct smtp_server_stats *st);

#endif
