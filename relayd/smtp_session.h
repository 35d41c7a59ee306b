/*
 * smtp_session.h - one SMTP server session: the RFC 5321 state machine,
 * ESMTP extensions, relay policy, and the hand-off of a received message
 * to the queue's group commit.
 *
 * What a session needs from its server is the smtpd_env below; the server
 * owns it and outlives every session.
 */
#ifndef RELAYD_SMTP_SESSION_H
#define RELAYD_SMTP_SESSION_H

#include <stdint.h>
#include <uv.h>
#include "config.h"
#include "queue.h"
#include "smtp_server.h"

struct conn;
struct smtp_session;

struct smtpd_env {
	uv_loop_t *loop;
	struct config *cfg;          /* current configuration: sessions take
				      * a reference at start (config_ref) */
	struct queue *queue;
	struct tls_ctx *tls;         /* NULL: no STARTTLS, no AUTH */
	struct auth_db *auth;        /* NULL: no AUTH */
	struct auth_throttle *throttle;       /* AUTH failures per client */
	struct auth_throttle *user_throttle;  /* ... and per user name */
	struct auth_queue *checks;            /* password checks */
	struct dns_resolver *dns;            /* client names; NULL: none looked up */
	int stopping;
	unsigned long long messages;
	/* The server's hooks. */
	void (*session_ended)(void *srv, struct smtp_session *s);
	void *srv;
	/* A message was committed (the delivery scheduler's wake-up). */
	void (*queued)(void *arg);
	void *queued_arg;
};

/* Take over an accepted connection; the session frees itself and calls
 * env->session_ended when done.  busy_msg: when non-NULL, send it and
 * close at once (connection limit). */
struct smtp_session *smtp_session_new(struct smtpd_env *env, struct conn *c,
				      enum smtp_listener_kind kind,
				      const char *busy_msg);

/* Graceful stop: idle sessions get 421 and close; one receiving a
 * message finishes it first. */
void smtp_session_shutdown(struct smtp_session *s);
/* The stop deadline passed: close, cutting off a session stuck closing.
 * Returns 1 while the session is not gone yet (try again shortly). */
int smtp_session_abort(struct smtp_session *s);

/* The 16-byte key of a client for per-client tables (connection counts,
 * AUTH throttle): an IPv4 address v4-mapped, an IPv6 address cut to its
 * first SMTP_CLIENT_V6_PREFIX bits (a multiple of 8). */
#define SMTP_CLIENT_V6_PREFIX 64
void smtp_server_addr_key(const struct sockaddr_storage *ss,
			  unsigned char key[16]);

/* The server's list of sessions (O(1) unlink). */
struct smtp_session *smtp_session_next(struct smtp_session *s);
void smtp_session_link(struct smtp_session *s, struct smtp_session **head);
void smtp_session_unlink(struct smtp_session *s);
const struct sockaddr_storage *smtp_session_peer(const struct smtp_session *s);

#endif
