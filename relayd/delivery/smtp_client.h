/*
 * smtp_client.h - one outbound SMTP session to one next-hop address:
 * connect, greeting, EHLO (HELO on 5xx), STARTTLS per tls_outbound, AUTH
 * to a relayhost, then any number of messages (RSET between when a
 * transaction failed), then QUIT.
 *
 * The client reports FACTS: per recipient the reply that decided it (the
 * RCPT reply when it refused, else the reply to DATA or to the final dot)
 * or the failure that ended the session (connect failed, timeout, lost
 * connection, TLS failure, a malformed reply, a local refusal such as a
 * message over the hop's SIZE), each with the stage where it happened.
 * What a fact means (sent / deferred / bounced, try the next address) is
 * decided in failure_policy.h, never here.
 *
 * Use (all on the loop thread):
 *
 *	s = smtp_client_start(loop, &opts, &cb, arg);
 *	cb.on_ready(arg, s)          -> smtp_client_send(s, &msg1)
 *	cb.on_message_done(arg, s, &msg1)  -> smtp_client_send(s, &msg2)
 *	cb.on_message_done(arg, s, &msg2)  -> smtp_client_quit(s)
 *	cb.on_closed(arg, &result)   s is gone once this returns
 *
 * on_ready comes once, when the session can take its first message;
 * after each on_message_done it can take the next one (send or quit from
 * inside the callback or later; an idle session costs a connection and
 * the next hop may close it).  A session that fails calls on_message_done
 * for the message in progress (every recipient not yet decided gets the
 * failure) and then on_closed; one that fails before it was ready calls
 * on_closed only.  on_closed is always called exactly once, never from
 * inside smtp_client_start / send / quit / abandon.  on_message_done
 * may come from inside smtp_client_send: a message the hop's EHLO
 * already rules out (SIZE, 8BITMIME, SMTPUTF8) is done without a
 * command.
 *
 * Ownership: opts is copied.  A message and its recipients (and the
 * strings they point to) belong to the caller and must stay valid until
 * its on_message_done; the client writes the results into it.  The tls
 * ctx gains a reference per TLS session.
 *
 * Memory: bounded whatever the next hop does: the reply reader's fixed
 * buffers, the connection's input and output bounds (the body is read
 * from the source in SMTP_CLIENT_CHUNK pieces only while the output is
 * below its bound, so a 35 MB message never sits in memory).
 */
#ifndef RELAYD_DELIVERY_SMTP_CLIENT_H
#define RELAYD_DELIVERY_SMTP_CLIENT_H

#include <netinet/in.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <uv.h>
#include "config.h"

struct tls_ctx;
struct smtp_client;

#define SMTP_CLIENT_CHUNK (16 * 1024)

/* ---- facts ---- */

/* Where in the dialogue something happened. */
enum smtp_client_stage {
	SMTPC_STAGE_CONNECT,
	SMTPC_STAGE_GREETING,
	SMTPC_STAGE_HELO,        /* EHLO or HELO, before or after TLS */
	SMTPC_STAGE_STARTTLS,    /* the STARTTLS command */
	SMTPC_STAGE_TLS,         /* the handshake */
	SMTPC_STAGE_AUTH,
	SMTPC_STAGE_IDLE,        /* between transactions */
	SMTPC_STAGE_RSET,
	SMTPC_STAGE_MAIL,
	SMTPC_STAGE_RCPT,
	SMTPC_STAGE_DATA,        /* the DATA command */
	SMTPC_STAGE_BODY,        /* the content */
	SMTPC_STAGE_DOT,         /* after the final dot */
	SMTPC_STAGE_QUIT,
};

enum smtp_client_fact_kind {
	SMTPC_NONE,              /* nothing went wrong / not decided yet */
	SMTPC_REPLY,             /* the next hop replied: code, enh, text */
	SMTPC_CONNECT_FAILED,    /* err: the libuv error */
	SMTPC_TIMEOUT,           /* no reply / no progress within the stage's timeout */
	SMTPC_LOST,              /* the connection closed or broke (err when known) */
	SMTPC_BAD_REPLY,         /* malformed or out-of-place reply (text says how) */
	SMTPC_TLS_FAILED,        /* handshake failed or the certificate was refused */
	SMTPC_NO_STARTTLS,       /* encrypt/verify, and STARTTLS was not offered */
	SMTPC_NO_AUTH,           /* credentials set, but no TLS, no AUTH or no
				  * PLAIN/LOGIN offered: nothing was sent */
	SMTPC_TOO_BIG,           /* size over the hop's SIZE (limit) */
	SMTPC_NO_8BITMIME,       /* 8-bit content, hop without 8BITMIME */
	SMTPC_NO_SMTPUTF8,       /* SMTPUTF8 needed, hop without it */
	SMTPC_ABANDONED,         /* smtp_client_abandon before the final dot */
	SMTPC_LOCAL_ERROR,       /* out of memory, body source failure, bad data */
};

struct smtp_client_fact {
	enum smtp_client_fact_kind kind;
	enum smtp_client_stage stage;
	int code;                /* SMTPC_REPLY: 200..599 */
	char enh[16];            /* SMTPC_REPLY: "5.1.1" as sent, or "" */
	char text[512];          /* reply text (lines joined by ' ', sanitised),
				  * or a description of the failure */
	int err;                 /* libuv error code, 0 when none */
	uint64_t limit;          /* SMTPC_TOO_BIG: the advertised SIZE */
};

/* Who we talked to: "host[ip]:port" in the logs. */
struct smtp_client_relay {
	char host[256];
	char ip[46];
	unsigned port;
};

/* ---- a message ---- */

/* The content, as stored (CRLF line ends, no dot-stuffing): copy up to
 * len octets from offset off into buf; return the count, 0 at the end,
 * -1 on failure.  Called on the loop thread, one SMTP_CLIENT_CHUNK at a
 * time, only while the connection can take more: it must not block (the
 * queue answers from a short read transaction). */
struct smtp_client_body {
	ssize_t (*read)(void *arg, uint64_t off, char *buf, size_t len);
	void *arg;
};

struct smtp_client_rcpt {
	const char *addr;        /* without <> */
	const char *orcpt;       /* RFC 3461 "addr-type;xtext", or NULL */
	unsigned notify;         /* QUEUE_NOTIFY_* bits, 0: not given */
	/* Result. */
	struct smtp_client_fact result;
	int accepted;            /* RCPT got a 2xx (result is then the
				  * reply after DATA, or the failure) */
};

/* The content has octets over 127: sent with BODY=8BITMIME, refused
 * before MAIL by a hop without 8BITMIME (no conversion).  This is a fact
 * about the content, not the submitter's BODY= declaration: clients
 * often declare 8BITMIME for 7-bit mail, which any hop takes as is. */
#define SMTPC_MSG_8BIT     0x01u
/* The submitter declared BODY=8BITMIME: passed on when the hop offers
 * 8BITMIME, even for 7-bit content; never a reason to refuse. */
#define SMTPC_MSG_BODY8BIT 0x04u
/* The envelope needs SMTPUTF8 (RFC 6531): refused before MAIL by a hop
 * without it. */
#define SMTPC_MSG_SMTPUTF8 0x02u

struct smtp_client_msg {
	const char *sender;      /* "" for the null sender */
	uint64_t size;           /* content size as stored (for SIZE=) */
	unsigned flags;          /* SMTPC_MSG_* */
	int ret;                 /* enum queue_ret */
	const char *envid;       /* RFC 3461 ENVID (xtext), or NULL */
	struct smtp_client_rcpt *rcpt;
	size_t nrcpt;
	struct smtp_client_body body;
	/* Results. */
	int dot_sent;            /* the final dot went out: a failure from
				  * here on may leave a delivered copy */
	int dsn_passed;          /* the hop offered DSN: NOTIFY/ORCPT/RET/
				  * ENVID went with it */
	double setup_time;       /* seconds of connect, greeting, TLS, EHLO,
				  * AUTH; 0 on a reused connection */
	double xfer_time;        /* seconds from MAIL to the last reply */
};

/* ---- the session ---- */

struct smtp_client_opts {
	const char *helo_name;              /* our name in EHLO */
	const char *host;                   /* the next hop's name (logs, SNI,
					     * certificate name check) */
	struct sockaddr_storage addr;       /* its IP and port */
	struct sockaddr_storage source;     /* ss_family AF_UNSPEC: any */
	enum config_tls_level tls;
	struct tls_ctx *tls_ctx;            /* a client ctx; may be NULL for none */
	const char *auth;                   /* "user:password" or NULL */
	uint64_t connect_ms, helo_ms, command_ms, data_xfer_ms, data_done_ms;
};

struct smtp_client_result {
	struct smtp_client_relay relay;
	struct smtp_client_fact fact;       /* why it ended; SMTPC_NONE: QUIT */
	int tls_fallback;                   /* tls = may and the handshake
					     * failed: a session in clear may
					     * be tried (as Postfix does) */
	int tls;                            /* TLS was established */
	unsigned messages;                  /* transactions completed */
	double setup_time;                  /* seconds until ready (or the end) */
};

struct smtp_client_cb {
	void (*on_ready)(void *arg, struct smtp_client *s);
	void (*on_message_done)(void *arg, struct smtp_client *s,
				struct smtp_client_msg *m);
	void (*on_closed)(void *arg, const struct smtp_client_result *r);
};

/* Fill helo_name, tls, auth (relayhost_auth when for_relayhost), the
 * source address and the timeouts from cfg; the caller sets host, addr
 * and tls_ctx.  The strings stay cfg's.  0 or -1 (bad bind address). */
int smtp_client_opts_config(struct smtp_client_opts *o, const struct config *cfg,
			    int for_relayhost);

/* Start a session (connecting now).  NULL only when out of memory. */
struct smtp_client *smtp_client_start(uv_loop_t *loop,
				      const struct smtp_client_opts *o,
				      const struct smtp_client_cb *cb, void *arg);

/* Send a message; only when ready (after on_ready, or after
 * on_message_done of the previous one).  0, or -1 when not ready (the
 * message is not touched). */
int smtp_client_send(struct smtp_client *s, struct smtp_client_msg *m);

/* End a ready session politely (QUIT).  Ignored when not ready. */
void smtp_client_quit(struct smtp_client *s);

/*
 * smtp_client_abandon - stop now (graceful shutdown).  Before the final
 * dot the connection is dropped at once: the message in progress gets
 * SMTPC_ABANDONED and cannot have been delivered.  After the final dot
 * the reply is awaited (bounded by data_done_ms), reported, then QUIT.
 * Idle sessions QUIT.  Idempotent.
 */
void smtp_client_abandon(struct smtp_client *s);

const struct smtp_client_relay *smtp_client_relay(const struct smtp_client *s);

/* Short names for stages and kinds ("rcpt", "timeout"), for tests and logs. */
const char *smtp_client_stage_name(enum smtp_client_stage st);
const char *smtp_client_kind_name(enum smtp_client_fact_kind k);

#endif
