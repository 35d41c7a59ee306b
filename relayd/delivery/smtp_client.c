/*
 * smtp_client.c - the outbound SMTP session (smtp_client.h).
 *
 * An explicit state machine: every state that waits for the next hop has
 * a stage (for facts) and a timeout (RFC 5321 §4.5.3.2); enter() sends
 * what the state needs and arms the one timer; on_reply() handles each
 * complete reply for the current state; on_io() is the connection's one
 * callback for input, EOF and drained output.  A session is freed only in
 * its timer's close callback, so every callback made to the owner can
 * call back into the session safely.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/evp.h>
#include "conn.h"
#include "log.h"
#include "queue.h"
#include "tls.h"
#include "smtp_client.h"
#include "smtp_dot.h"
#include "smtp_reply.h"

enum sc_state {
	SC_CONNECT, SC_GREETING, SC_EHLO, SC_HELO, SC_STARTTLS, SC_TLS,
	SC_AUTH_LOGIN, SC_AUTH_USER, SC_AUTH_PASS, SC_AUTH, SC_READY, SC_RSET, SC_MAIL,
	SC_RCPT, SC_DATA, SC_BODY, SC_DOT, SC_QUIT, SC_DONE,
};

enum sc_timeout { T_NONE, T_CONNECT, T_HELO, T_COMMAND, T_XFER, T_DONE };

static const struct {
	enum smtp_client_stage stage;
	enum sc_timeout timeout;
} states[] = {
	[SC_CONNECT] = { SMTPC_STAGE_CONNECT, T_CONNECT },
	[SC_GREETING] = { SMTPC_STAGE_GREETING, T_HELO },
	[SC_EHLO] = { SMTPC_STAGE_HELO, T_HELO },
	[SC_HELO] = { SMTPC_STAGE_HELO, T_HELO },
	[SC_STARTTLS] = { SMTPC_STAGE_STARTTLS, T_COMMAND },
	[SC_TLS] = { SMTPC_STAGE_TLS, T_COMMAND },
	[SC_AUTH_LOGIN] = { SMTPC_STAGE_AUTH, T_COMMAND },
	[SC_AUTH_USER] = { SMTPC_STAGE_AUTH, T_COMMAND },
	[SC_AUTH_PASS] = { SMTPC_STAGE_AUTH, T_COMMAND },
	[SC_AUTH] = { SMTPC_STAGE_AUTH, T_COMMAND },
	[SC_READY] = { SMTPC_STAGE_IDLE, T_NONE },
	[SC_RSET] = { SMTPC_STAGE_RSET, T_COMMAND },
	[SC_MAIL] = { SMTPC_STAGE_MAIL, T_COMMAND },
	[SC_RCPT] = { SMTPC_STAGE_RCPT, T_COMMAND },
	[SC_DATA] = { SMTPC_STAGE_DATA, T_COMMAND },
	[SC_BODY] = { SMTPC_STAGE_BODY, T_XFER },
	[SC_DOT] = { SMTPC_STAGE_DOT, T_DONE },
	[SC_QUIT] = { SMTPC_STAGE_QUIT, T_COMMAND },
	[SC_DONE] = { SMTPC_STAGE_QUIT, T_COMMAND },
};

struct smtp_client {
	uv_loop_t *loop;
	uv_timer_t timer;        /* owns the struct: freed in its close callback */
	struct conn *conn;
	struct smtp_client_opts o;
	const struct smtp_client_cb *cb;
	void *arg;
	enum sc_state state;
	struct smtp_reply_parser rp;
	struct smtp_ehlo ext;    /* what EHLO offered */
	int esmtp;               /* EHLO worked (else HELO) */
	int tls;                 /* TLS established */
	int need_rset;           /* the last transaction did not end cleanly */
	int abandon;             /* stop after the final dot's reply */
	int closing_timer;       /* uv_close called on the timer */
	struct smtp_client_result result;
	uint64_t t_start, t_ready, t_msg;   /* uv_hrtime() */

	/* The transaction in progress. */
	struct smtp_client_msg *msg;
	size_t rcpt_sent, rcpt_replied, accepted;
	int mail_failed;
	uint64_t body_off;
	struct smtp_dot dot;
};

enum sc_finish { F_ABORT, F_CLOSE, F_QUIT };

static void enter(struct smtp_client *s, enum sc_state st);
static void fail(struct smtp_client *s, const struct smtp_client_fact *f);
static void on_timer(uv_timer_t *t);

/* ---- names ---- */

const char *smtp_client_stage_name(enum smtp_client_stage st)
{
	static const char *const n[] = {
		"connect", "greeting", "helo", "starttls", "tls", "auth", "idle",
		"rset", "mail", "rcpt", "data", "body", "dot", "quit",
	};
	return (size_t)st < sizeof(n) / sizeof(n[0]) ? n[st] : "?";
}

const char *smtp_client_kind_name(enum smtp_client_fact_kind k)
{
	static const char *const n[] = {
		"none", "reply", "connect", "timeout", "lost", "bad_reply", "tls",
		"no_starttls", "no_auth", "too_big", "no_8bitmime", "no_smtputf8",
		"abandoned", "local",
	};
	return (size_t)k < sizeof(n) / sizeof(n[0]) ? n[k] : "?";
}

/* ---- facts ---- */

static double since(uint64_t t0)
{
	return t0 ? (double)(uv_hrtime() - t0) / 1e9 : 0;
}

static void fact_set(struct smtp_client_fact *f, enum smtp_client_fact_kind k,
		     enum smtp_client_stage st, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static void fact_set(struct smtp_client_fact *f, enum smtp_client_fact_kind k,
		     enum smtp_client_stage st, const char *fmt, ...)
{
	va_list ap;

	memset(f, 0, sizeof(*f));
	f->kind = k;
	f->stage = st;
	va_start(ap, fmt);
	vsnprintf(f->text, sizeof(f->text), fmt, ap);
	va_end(ap);
}

static void fact_reply(struct smtp_client_fact *f, enum smtp_client_stage st,
		       const struct smtp_reply *r)
{
	size_t n = 0;

	memset(f, 0, sizeof(*f));
	f->kind = SMTPC_REPLY;
	f->stage = st;
	f->code = r->code;
	snprintf(f->enh, sizeof(f->enh), "%s", r->enh);
	for (size_t i = 0; i < r->text_len && n < sizeof(f->text) - 1; i++)
		f->text[n++] = r->text[i] == '\n' ? ' ' : r->text[i];
	f->text[n] = 0;
}

static enum smtp_client_stage stage(const struct smtp_client *s)
{
	return states[s->state].stage;
}

/* A reply this state did not expect (a 3xx to MAIL, a 2xx to DATA). */
static void unexpected(struct smtp_client *s, const struct smtp_reply *r,
		       const char *cmd)
{
	struct smtp_client_fact f;

	fact_set(&f, SMTPC_BAD_REPLY, stage(s), "unexpected reply to %s: %d %.400s",
		 cmd, r->code, r->text);
	fail(s, &f);
}

/* ---- output ---- */

static int send_line(struct smtp_client *s, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static int send_line(struct smtp_client *s, const char *fmt, ...)
{
	char buf[2048];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf) - 2, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(buf) - 2)
		return -1;
	buf[n++] = '\r';
	buf[n++] = '\n';
	return conn_write(s->conn, buf, (size_t)n);
}

/* Strings that go into commands come from the queue, which checked
 * them; still, nothing with a control octet is ever sent. */
static int clean(const char *p)
{
	for (; p && *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			return 0;
	return 1;
}

static void arm_timer(struct smtp_client *s, enum sc_timeout t)
{
	uint64_t ms = 0;

	switch (t) {
	case T_NONE:
		uv_timer_stop(&s->timer);
		return;
	case T_CONNECT: ms = s->o.connect_ms; break;
	case T_HELO: ms = s->o.helo_ms; break;
	case T_COMMAND: ms = s->o.command_ms; break;
	case T_XFER: ms = s->o.data_xfer_ms; break;
	case T_DONE: ms = s->o.data_done_ms; break;
	}
	uv_timer_start(&s->timer, on_timer, ms ? ms : 1, 0);
}

/* ---- the end ---- */

static void on_timer_closed(uv_handle_t *h)
{
	struct smtp_client *s = h->data;

	if (s->cb->on_closed)
		s->cb->on_closed(s->arg, &s->result);
	free(s);
}

static void close_timer(struct smtp_client *s)
{
	if (s->closing_timer)
		return;
	s->closing_timer = 1;
	uv_close((uv_handle_t *)&s->timer, on_timer_closed);
}

/* The message in progress ends: report it; the session is ready again
 * unless it is ending. */
static void message_done(struct smtp_client *s)
{
	struct smtp_client_msg *m = s->msg;

	s->msg = NULL;
	m->xfer_time = since(s->t_msg);
	s->result.messages++;
	if (s->state != SC_DONE)
		enter(s, SC_READY);
	if (s->cb->on_message_done)
		s->cb->on_message_done(s->arg, s, m);
	if (s->abandon && s->state == SC_READY)
		smtp_client_quit(s);
}

/* Stop: drop the connection, close it after what is queued, or send
 * QUIT first when the dialogue is still in step; the timer bounds a
 * close that waits for the peer. */
static void finish(struct smtp_client *s, enum sc_finish how)
{
	s->state = SC_DONE;
	if (!s->result.setup_time)
		s->result.setup_time = since(s->t_start);
	if (!s->conn) {
		close_timer(s);
		return;
	}
	if (how == F_ABORT || conn_closing(s->conn)) {
		conn_abort(s->conn);
		return;
	}
	if (how == F_QUIT)
		send_line(s, "QUIT");
	conn_close(s->conn);
	arm_timer(s, T_COMMAND);
}

/* The session cannot go on: record why, give every recipient of the
 * message in progress that is not decided yet the same fact. */
static void fail(struct smtp_client *s, const struct smtp_client_fact *f)
{
	struct smtp_client_msg *m = s->msg;
	int polite = f->kind == SMTPC_REPLY || f->kind == SMTPC_NO_STARTTLS ||
		     f->kind == SMTPC_NO_AUTH;

	if (s->state == SC_DONE)
		return;
	/* A 421 says the hop is closing: no QUIT into that. */
	if (f->kind == SMTPC_REPLY && f->code == 421)
		polite = 0;
	/* A TLS session without a finished handshake cannot say QUIT. */
	if (s->state == SC_TLS)
		polite = 0;
	s->result.fact = *f;
	/* A handshake that failed or stalled: Postfix retries `may` in clear. */
	if (s->o.tls == TLS_LEVEL_MAY && (f->kind == SMTPC_TLS_FAILED ||
					  (f->kind == SMTPC_TIMEOUT && s->state == SC_TLS)))
		s->result.tls_fallback = 1;
	finish(s, polite ? F_QUIT : F_ABORT);
	if (m) {
		for (size_t i = 0; i < m->nrcpt; i++)
			if (m->rcpt[i].result.kind == SMTPC_NONE)
				m->rcpt[i].result = *f;
		message_done(s);
	}
}

static void on_timer(uv_timer_t *t)
{
	struct smtp_client *s = t->data;
	struct smtp_client_fact f;
	static const char *const doing[] = {
		[T_NONE] = "", [T_CONNECT] = "connecting",
		[T_HELO] = "waiting for the greeting or the EHLO/HELO reply",
		[T_COMMAND] = "waiting for a reply",
		[T_XFER] = "sending message content",
		[T_DONE] = "waiting for the reply to the final dot",
	};

	if (s->state == SC_DONE) {
		/* The polite close did not finish in time. */
		if (s->conn)
			conn_abort(s->conn);
		return;
	}
	fact_set(&f, SMTPC_TIMEOUT, stage(s), "timed out %s",
		 doing[states[s->state].timeout]);
	fail(s, &f);
}

/* ---- EHLO ---- */

static void log_tls(struct smtp_client *s)
{
	static const char *const trust[] = {
		[TLS_PEER_ANONYMOUS] = "Anonymous", [TLS_PEER_UNTRUSTED] = "Untrusted",
		[TLS_PEER_TRUSTED] = "Trusted", [TLS_PEER_VERIFIED] = "Verified",
	};
	struct tls_conn *t = conn_tls(s->conn);
	int bits = tls_conn_cipher_bits(t);

	log_info(LOG_SVC_SMTP, "%s TLS connection established to %s[%s]:%u: "
		 "%s with cipher %s (%d/%d bits)", trust[tls_conn_peer_trust(t)],
		 s->result.relay.host, s->result.relay.ip, s->result.relay.port,
		 tls_conn_version(t), tls_conn_cipher(t), bits, bits);
}

/* After EHLO (or HELO): STARTTLS, AUTH, or ready. */
static void after_helo(struct smtp_client *s)
{
	struct smtp_client_fact f;

	if (!s->tls && s->o.tls != TLS_LEVEL_NONE) {
		if (s->ext.starttls && s->o.tls_ctx) {
			enter(s, SC_STARTTLS);
			return;
		}
		if (s->o.tls >= TLS_LEVEL_ENCRYPT) {
			fact_set(&f, SMTPC_NO_STARTTLS, SMTPC_STAGE_HELO,
				 "TLS is required, but was not offered by host %s[%s]",
				 s->result.relay.host, s->result.relay.ip);
			fail(s, &f);
			return;
		}
	}
	if (s->o.auth) {
		const char *why = !s->tls ? "TLS is required for AUTH, but is not in use"
				  : !s->ext.auth ? "AUTH is not offered"
				  : !s->ext.auth_plain && !s->ext.auth_login
				  ? "no AUTH mechanism in common (PLAIN, LOGIN)" : NULL;
		if (why) {
			fact_set(&f, SMTPC_NO_AUTH, SMTPC_STAGE_AUTH,
				 "cannot authenticate to %s[%s]: %s",
				 s->result.relay.host, s->result.relay.ip, why);
			fail(s, &f);
			return;
		}
		enter(s, s->ext.auth_plain ? SC_AUTH : SC_AUTH_LOGIN);
		return;
	}
	enter(s, SC_READY);
}

static void reply_ehlo(struct smtp_client *s, const struct smtp_reply *r)
{
	struct smtp_client_fact f;

	if (r->code / 100 == 2) {
		s->esmtp = s->state == SC_EHLO;
		if (s->esmtp)
			smtp_reply_ehlo(r, &s->ext);
		else
			memset(&s->ext, 0, sizeof(s->ext));
		after_helo(s);
	} else if (s->state == SC_EHLO && r->code / 100 == 5 && !s->tls) {
		enter(s, SC_HELO);
	} else if (r->code / 100 == 4 || r->code / 100 == 5) {
		fact_reply(&f, SMTPC_STAGE_HELO, r);
		fail(s, &f);
	} else {
		unexpected(s, r, s->state == SC_EHLO ? "EHLO" : "HELO");
	}
}

/* ---- STARTTLS and AUTH ---- */

static void reply_starttls(struct smtp_client *s, const struct smtp_reply *r)
{
	struct smtp_client_fact f;
	int required = s->o.tls == TLS_LEVEL_VERIFY;

	if (r->code == 220) {
		/* The name checked is the MX host's (its IP when none). */
		const char *name = s->result.relay.host;
		if (conn_starttls_client(s->conn, s->o.tls_ctx, name, name, required)) {
			fact_set(&f, SMTPC_LOCAL_ERROR, SMTPC_STAGE_TLS,
				 "cannot start a TLS session");
			fail(s, &f);
			return;
		}
		enter(s, SC_TLS);
	} else if (r->code / 100 == 4 || r->code / 100 == 5) {
		if (s->o.tls == TLS_LEVEL_MAY) {
			/* Opportunistic: go on in clear (the EHLO still holds). */
			s->ext.starttls = 0;
			after_helo(s);
			return;
		}
		fact_reply(&f, SMTPC_STAGE_STARTTLS, r);
		fail(s, &f);
	} else {
		unexpected(s, r, "STARTTLS");
	}
}

static void tls_up(struct smtp_client *s)
{
	s->tls = 1;
	s->result.tls = 1;
	log_tls(s);
	enter(s, SC_EHLO);
}

/* base64 of s into out (room for 4/3 of it + 1). */
static void b64(const char *in, size_t len, char *out)
{
	EVP_EncodeBlock((unsigned char *)out, (const unsigned char *)in, (int)len);
}

static void reply_auth(struct smtp_client *s, const struct smtp_reply *r)
{
	struct smtp_client_fact f;

	int last = s->state == SC_AUTH || s->state == SC_AUTH_PASS;

	if (!last && r->code == 334) {
		enter(s, s->state == SC_AUTH_LOGIN ? SC_AUTH_USER : SC_AUTH_PASS);
	} else if (last && r->code / 100 == 2) {
		enter(s, SC_READY);
	} else if (r->code / 100 == 4 || r->code / 100 == 5) {
		fact_reply(&f, SMTPC_STAGE_AUTH, r);
		fail(s, &f);
	} else {
		unexpected(s, r, "AUTH");
	}
}

/* The AUTH exchange: PLAIN in one go, LOGIN in three steps. */
static int send_auth(struct smtp_client *s)
{
	const char *colon = strchr(s->o.auth, ':');
	size_t ulen = colon ? (size_t)(colon - s->o.auth) : strlen(s->o.auth);
	const char *pass = colon ? colon + 1 : "";
	char raw[600], enc[820];
	int r;

	if (ulen > 255 || strlen(pass) > 255)
		return -1;
	if (s->state == SC_AUTH) {
		raw[0] = 0;
		memcpy(raw + 1, s->o.auth, ulen);
		raw[1 + ulen] = 0;
		memcpy(raw + 2 + ulen, pass, strlen(pass));
		b64(raw, 2 + ulen + strlen(pass), enc);
		r = send_line(s, "AUTH PLAIN %s", enc);
	} else if (s->state == SC_AUTH_LOGIN) {
		r = send_line(s, "AUTH LOGIN");
	} else {
		if (s->state == SC_AUTH_USER)
			b64(s->o.auth, ulen, enc);
		else
			b64(pass, strlen(pass), enc);
		r = send_line(s, "%s", enc);
	}
	OPENSSL_cleanse(raw, sizeof(raw));
	OPENSSL_cleanse(enc, sizeof(enc));
	return r;
}

/* ---- the transaction ---- */

/* Apply a reply (or failure) to every recipient not decided yet. */
static void decide_pending(struct smtp_client *s, const struct smtp_client_fact *f,
			   int accepted_only)
{
	struct smtp_client_msg *m = s->msg;

	for (size_t i = 0; i < m->nrcpt; i++)
		if (m->rcpt[i].result.kind == SMTPC_NONE &&
		    (!accepted_only || m->rcpt[i].accepted))
			m->rcpt[i].result = *f;
}

static int send_rcpt(struct smtp_client *s, size_t i)
{
	const struct smtp_client_rcpt *rc = &s->msg->rcpt[i];
	char notify[40] = "", orcpt[600] = "";

	if (s->ext.dsn && (rc->notify & (QUEUE_NOTIFY_NEVER | QUEUE_NOTIFY_SUCCESS |
					 QUEUE_NOTIFY_FAILURE | QUEUE_NOTIFY_DELAY))) {
		if (rc->notify & QUEUE_NOTIFY_NEVER)
			snprintf(notify, sizeof(notify), " NOTIFY=NEVER");
		else
			snprintf(notify, sizeof(notify), " NOTIFY=%s%s%s",
				 rc->notify & QUEUE_NOTIFY_SUCCESS ? "SUCCESS," : "",
				 rc->notify & QUEUE_NOTIFY_FAILURE ? "FAILURE," : "",
				 rc->notify & QUEUE_NOTIFY_DELAY ? "DELAY," : "");
		if (notify[strlen(notify) - 1] == ',')
			notify[strlen(notify) - 1] = 0;
	}
	if (s->ext.dsn && rc->orcpt && snprintf(orcpt, sizeof(orcpt), " ORCPT=%s",
						 rc->orcpt) >= (int)sizeof(orcpt))
		return -1;
	s->rcpt_sent++;
	return send_line(s, "RCPT TO:<%s>%s%s", rc->addr, notify, orcpt);
}

static int send_mail(struct smtp_client *s)
{
	const struct smtp_client_msg *m = s->msg;
	char size[32] = "", envid[300] = "";
	const char *ret = "";
	int eight = (m->flags & (SMTPC_MSG_8BIT | SMTPC_MSG_BODY8BIT)) &&
		    s->ext.eightbit;

	if (s->ext.size)
		snprintf(size, sizeof(size), " SIZE=%llu", (unsigned long long)m->size);
	if (s->ext.dsn) {
		ret = m->ret == QUEUE_RET_FULL ? " RET=FULL"
		      : m->ret == QUEUE_RET_HDRS ? " RET=HDRS" : "";
		if (m->envid && snprintf(envid, sizeof(envid), " ENVID=%s",
					 m->envid) >= (int)sizeof(envid))
			return -1;
	}
	if (send_line(s, "MAIL FROM:<%s>%s%s%s%s%s", m->sender, size,
		      eight ? " BODY=8BITMIME" : "",
		      (m->flags & SMTPC_MSG_SMTPUTF8) ? " SMTPUTF8" : "", ret, envid))
		return -1;
	if (s->ext.pipelining)
		for (size_t i = 0; i < m->nrcpt; i++)
			if (send_rcpt(s, i))
				return -1;
	return 0;
}

/* Every RCPT has its reply: DATA, or end the transaction. */
static void rcpts_done(struct smtp_client *s)
{
	if (!s->mail_failed && s->accepted > 0) {
		enter(s, SC_DATA);
		return;
	}
	s->need_rset = 1;
	message_done(s);
}

static void reply_mail(struct smtp_client *s, const struct smtp_reply *r)
{
	struct smtp_client_fact f;

	if (r->code / 100 != 2 && r->code / 100 != 4 && r->code / 100 != 5) {
		unexpected(s, r, "MAIL FROM");
		return;
	}
	if (r->code / 100 != 2) {
		fact_reply(&f, SMTPC_STAGE_MAIL, r);
		decide_pending(s, &f, 0);
		if (r->code == 421) {
			fail(s, &f);
			return;
		}
		s->mail_failed = 1;
		/* Pipelined RCPTs still get (refusing) replies: read them. */
		if (!s->ext.pipelining) {
			rcpts_done(s);
			return;
		}
	}
	enter(s, SC_RCPT);
}

static void reply_rcpt(struct smtp_client *s, const struct smtp_reply *r)
{
	struct smtp_client_rcpt *rc = &s->msg->rcpt[s->rcpt_replied++];
	struct smtp_client_fact f;

	if (r->code / 100 != 2 && r->code / 100 != 4 && r->code / 100 != 5) {
		unexpected(s, r, "RCPT TO");
		return;
	}
	if (!s->mail_failed) {
		if (r->code / 100 == 2) {
			rc->accepted = 1;
			s->accepted++;
		} else {
			fact_reply(&rc->result, SMTPC_STAGE_RCPT, r);
		}
	}
	if (r->code == 421) {
		fact_reply(&f, SMTPC_STAGE_RCPT, r);
		fail(s, &f);
		return;
	}
	if (s->rcpt_replied == s->msg->nrcpt) {
		rcpts_done(s);
	} else if (!s->ext.pipelining) {
		if (send_rcpt(s, s->rcpt_replied)) {
			fact_set(&f, SMTPC_LOCAL_ERROR, SMTPC_STAGE_RCPT, "cannot send RCPT");
			fail(s, &f);
		} else {
			conn_flush(s->conn);
			arm_timer(s, T_COMMAND);
		}
	}
}

static void reply_data(struct smtp_client *s, const struct smtp_reply *r)
{
	struct smtp_client_fact f;

	if (r->code == 354) {
		enter(s, SC_BODY);
	} else if (r->code / 100 == 4 || r->code / 100 == 5) {
		fact_reply(&f, SMTPC_STAGE_DATA, r);
		decide_pending(s, &f, 1);
		if (r->code == 421) {
			fail(s, &f);
			return;
		}
		s->need_rset = 1;
		message_done(s);
	} else {
		unexpected(s, r, "DATA");
	}
}

static void reply_dot(struct smtp_client *s, const struct smtp_reply *r)
{
	struct smtp_client_fact f;

	if (r->code / 100 != 2 && r->code / 100 != 4 && r->code / 100 != 5) {
		unexpected(s, r, "end of DATA");
		return;
	}
	fact_reply(&f, SMTPC_STAGE_DOT, r);
	decide_pending(s, &f, 1);
	if (r->code == 421) {
		fail(s, &f);
		return;
	}
	message_done(s);
}

/* Send content while the connection takes it; the final dot at the end.
 * conn calls on_io again once the output has drained. */
static void pump_body(struct smtp_client *s)
{
	char in[SMTP_CLIENT_CHUNK], out[SMTP_DOT_ROOM(SMTP_CLIENT_CHUNK)];
	struct smtp_client_msg *m = s->msg;
	struct smtp_client_fact f;
	int progress = 0;

	while (s->state == SC_BODY && !conn_output_full(s->conn)) {
		ssize_t n = m->body.read(m->body.arg, s->body_off, in, sizeof(in));
		size_t o;
		if (n < 0 || (size_t)n > sizeof(in)) {
			fact_set(&f, SMTPC_LOCAL_ERROR, SMTPC_STAGE_BODY,
				 "cannot read the message content");
			fail(s, &f);
			return;
		}
		if (n == 0) {
			o = smtp_dot_finish(&s->dot, out);
			if (conn_write(s->conn, out, o)) {
				fact_set(&f, SMTPC_LOST, SMTPC_STAGE_BODY, "write failed");
				fail(s, &f);
				return;
			}
			m->dot_sent = 1;
			enter(s, SC_DOT);
			break;
		}
		s->body_off += (uint64_t)n;
		o = smtp_dot_encode(&s->dot, in, (size_t)n, out);
		if (conn_write(s->conn, out, o)) {
			fact_set(&f, SMTPC_LOST, SMTPC_STAGE_BODY, "write failed");
			fail(s, &f);
			return;
		}
		progress = 1;
	}
	if (s->conn)
		conn_flush(s->conn);
	/* RFC 5321 §4.5.3.2.5: the timeout is per write, not per message. */
	if (progress && s->state == SC_BODY)
		arm_timer(s, T_XFER);
}

/* Checks before MAIL: what the hop said it cannot take. */
static int precheck(struct smtp_client *s, struct smtp_client_fact *f)
{
	const struct smtp_client_msg *m = s->msg;
	const char *host = s->result.relay.host, *ip = s->result.relay.ip;

	if (!clean(m->sender) || !clean(m->envid)) {
		fact_set(f, SMTPC_LOCAL_ERROR, SMTPC_STAGE_MAIL, "bad envelope data");
		return -1;
	}
	for (size_t i = 0; i < m->nrcpt; i++)
		if (!m->rcpt[i].addr || !clean(m->rcpt[i].addr) || !clean(m->rcpt[i].orcpt)) {
			fact_set(f, SMTPC_LOCAL_ERROR, SMTPC_STAGE_MAIL, "bad envelope data");
			return -1;
		}
	if (s->ext.size && s->ext.size_limit && m->size > s->ext.size_limit) {
		fact_set(f, SMTPC_TOO_BIG, SMTPC_STAGE_MAIL,
			 "message size %llu exceeds size limit %llu of server %s[%s]",
			 (unsigned long long)m->size,
			 (unsigned long long)s->ext.size_limit, host, ip);
		f->limit = s->ext.size_limit;
		return -1;
	}
	if ((m->flags & SMTPC_MSG_8BIT) && !s->ext.eightbit) {
		fact_set(f, SMTPC_NO_8BITMIME, SMTPC_STAGE_MAIL,
			 "message has 8-bit content, but server %s[%s] does not "
			 "support 8BITMIME", host, ip);
		return -1;
	}
	if ((m->flags & SMTPC_MSG_SMTPUTF8) && !s->ext.smtputf8) {
		fact_set(f, SMTPC_NO_SMTPUTF8, SMTPC_STAGE_MAIL,
			 "SMTPUTF8 is required, but was not offered by host %s[%s]",
			 host, ip);
		return -1;
	}
	return 0;
}

/* ---- the state machine ---- */

static void enter(struct smtp_client *s, enum sc_state st)
{
	struct smtp_client_fact f;
	int r = 0;

	s->state = st;
	arm_timer(s, states[st].timeout);
	switch (st) {
	case SC_EHLO:
		r = send_line(s, "EHLO %s", s->o.helo_name);
		break;
	case SC_HELO:
		r = send_line(s, "HELO %s", s->o.helo_name);
		break;
	case SC_STARTTLS:
		r = send_line(s, "STARTTLS");
		break;
	case SC_AUTH:
	case SC_AUTH_LOGIN:
	case SC_AUTH_USER:
	case SC_AUTH_PASS:
		r = send_auth(s);
		break;
	case SC_READY:
		if (!s->t_ready) {
			s->t_ready = uv_hrtime();
			s->result.setup_time = since(s->t_start);
			if (s->cb->on_ready)
				s->cb->on_ready(s->arg, s);
			return;
		}
		break;
	case SC_RSET:
		r = send_line(s, "RSET");
		break;
	case SC_MAIL:
		r = send_mail(s);
		break;
	case SC_RCPT:
		if (!s->ext.pipelining && !s->mail_failed)
			r = send_rcpt(s, 0);
		break;
	case SC_DATA:
		r = send_line(s, "DATA");
		break;
	case SC_BODY:
		smtp_dot_init(&s->dot);
		s->body_off = 0;
		pump_body(s);
		return;
	case SC_QUIT:
		r = send_line(s, "QUIT");
		break;
	default:
		break;
	}
	if (r) {
		fact_set(&f, SMTPC_LOCAL_ERROR, stage(s), "cannot send the command");
		fail(s, &f);
		return;
	}
	if (s->conn)
		conn_flush(s->conn);
}

/* One complete reply for the current state. */
static void on_reply(struct smtp_client *s, const struct smtp_reply *r)
{
	struct smtp_client_fact f;

	switch (s->state) {
	case SC_GREETING:
		if (r->code == 220) {
			enter(s, SC_EHLO);
		} else if (r->code / 100 == 4 || r->code / 100 == 5) {
			fact_reply(&f, SMTPC_STAGE_GREETING, r);
			fail(s, &f);
		} else {
			unexpected(s, r, "the connection (greeting)");
		}
		break;
	case SC_EHLO:
	case SC_HELO:
		reply_ehlo(s, r);
		break;
	case SC_STARTTLS:
		reply_starttls(s, r);
		break;
	case SC_AUTH_LOGIN:
	case SC_AUTH_USER:
	case SC_AUTH_PASS:
	case SC_AUTH:
		reply_auth(s, r);
		break;
	case SC_RSET:
		if (r->code / 100 == 2) {
			s->need_rset = 0;
			enter(s, SC_MAIL);
		} else {
			fact_reply(&f, SMTPC_STAGE_RSET, r);
			fail(s, &f);
		}
		break;
	case SC_MAIL:
		reply_mail(s, r);
		break;
	case SC_RCPT:
		reply_rcpt(s, r);
		break;
	case SC_DATA:
		reply_data(s, r);
		break;
	case SC_DOT:
		reply_dot(s, r);
		break;
	case SC_QUIT:
		finish(s, F_CLOSE);
		break;
	default:
		/* A reply nobody asked for (idle, or a 421 before closing). */
		if (r->code / 100 == 4 || r->code / 100 == 5)
			fact_reply(&f, stage(s), r);
		else
			fact_set(&f, SMTPC_BAD_REPLY, stage(s), "unexpected reply: %d %.400s",
				 r->code, r->text);
		fail(s, &f);
		break;
	}
}

static int waits_for_reply(const struct smtp_client *s)
{
	return s->state != SC_CONNECT && s->state != SC_TLS && s->state != SC_BODY &&
	       s->state != SC_DONE;
}

/* The connection's callback: input, EOF, or drained output. */
static void on_io(void *arg)
{
	struct smtp_client *s = arg;
	struct smtp_client_fact f;

	if (s->state == SC_TLS && conn_tls_handshake_done(s->conn))
		tls_up(s);
	if (s->state == SC_BODY && !conn_eof(s->conn))
		pump_body(s);
	while (s->conn && waits_for_reply(s)) {
		size_t n, used;
		const char *p = conn_input(s->conn, &n);
		int r = smtp_reply_feed(&s->rp, p, n, &used);
		conn_consume(s->conn, used);
		if (r == SMTP_REPLY_BAD) {
			fact_set(&f, SMTPC_BAD_REPLY, stage(s), "%s", s->rp.error);
			fail(s, &f);
			return;
		}
		if (r == SMTP_REPLY_MORE)
			break;
		on_reply(s, &s->rp.reply);
	}
	if (s->conn && s->state != SC_DONE && conn_eof(s->conn)) {
		if (s->state == SC_QUIT) {
			finish(s, F_CLOSE);
			return;
		}
		if (s->state == SC_TLS)
			fact_set(&f, SMTPC_TLS_FAILED, SMTPC_STAGE_TLS,
				 "lost connection during the TLS handshake");
		else
			fact_set(&f, SMTPC_LOST, stage(s), "lost connection");
		fail(s, &f);
	}
}

static void on_conn_closed(void *arg)
{
	struct smtp_client *s = arg;
	const char *err = conn_error(s->conn);
	struct smtp_client_fact f;

	if (s->state != SC_DONE && s->state != SC_QUIT) {
		if (s->state == SC_TLS)
			fact_set(&f, SMTPC_TLS_FAILED, SMTPC_STAGE_TLS, "%s",
				 *err ? err : "TLS handshake failed: lost connection");
		else
			fact_set(&f, SMTPC_LOST, stage(s), "lost connection%s%s",
				 *err ? ": " : "", err);
		s->conn = NULL;
		fail(s, &f);
	} else {
		s->state = SC_DONE;
		s->conn = NULL;
	}
	close_timer(s);
}

static void on_connected(void *arg, int status)
{
	struct smtp_client *s = arg;
	struct smtp_client_fact f;

	if (status < 0) {
		fact_set(&f, SMTPC_CONNECT_FAILED, SMTPC_STAGE_CONNECT, "%s",
			 uv_strerror(status));
		f.err = status;
		fail(s, &f);
		return;
	}
	enter(s, SC_GREETING);
}

static const struct conn_cb client_conn_cb = {
	.on_input = on_io,
	.on_closed = on_conn_closed,
	.on_connected = on_connected,
};

/* ---- API ---- */

static void relay_init(struct smtp_client_relay *r, const struct smtp_client_opts *o)
{
	const struct sockaddr_storage *a = &o->addr;

	if (a->ss_family == AF_INET6) {
		uv_ip6_name((const struct sockaddr_in6 *)a, r->ip, sizeof(r->ip));
		r->port = ntohs(((const struct sockaddr_in6 *)a)->sin6_port);
	} else {
		uv_ip4_name((const struct sockaddr_in *)a, r->ip, sizeof(r->ip));
		r->port = ntohs(((const struct sockaddr_in *)a)->sin_port);
	}
	snprintf(r->host, sizeof(r->host), "%s", o->host && *o->host ? o->host : r->ip);
}

struct smtp_client *smtp_client_start(uv_loop_t *loop,
				      const struct smtp_client_opts *o,
				      const struct smtp_client_cb *cb, void *arg)
{
	struct smtp_client *s = calloc(1, sizeof(*s));
	struct smtp_client_fact f;
	int r;

	if (!s)
		return NULL;
	s->loop = loop;
	s->o = *o;
	s->cb = cb;
	s->arg = arg;
	s->t_start = uv_hrtime();
	relay_init(&s->result.relay, o);
	smtp_reply_init(&s->rp);
	uv_timer_init(loop, &s->timer);
	s->timer.data = s;
	s->state = SC_CONNECT;
	if (!clean(o->helo_name) || !clean(o->auth)) {
		fact_set(&f, SMTPC_LOCAL_ERROR, SMTPC_STAGE_CONNECT, "bad HELO name or credentials");
		fail(s, &f);
		return s;
	}
	r = conn_connect(&s->conn, loop, (const struct sockaddr *)&o->addr,
			 o->source.ss_family == AF_UNSPEC ? NULL
			 : (const struct sockaddr *)&o->source,
			 &client_conn_cb, s);
	if (r < 0) {
		fact_set(&f, SMTPC_CONNECT_FAILED, SMTPC_STAGE_CONNECT, "%s", uv_strerror(r));
		f.err = r;
		fail(s, &f);
		return s;
	}
	arm_timer(s, T_CONNECT);
	return s;
}

int smtp_client_send(struct smtp_client *s, struct smtp_client_msg *m)
{
	struct smtp_client_fact f;

	if (s->state != SC_READY || s->msg || s->abandon)
		return -1;
	s->msg = m;
	s->rcpt_sent = s->rcpt_replied = s->accepted = 0;
	s->mail_failed = 0;
	m->dot_sent = 0;
	m->dsn_passed = s->ext.dsn;
	m->setup_time = s->result.messages == 0 ? s->result.setup_time : 0;
	m->xfer_time = 0;
	s->t_msg = uv_hrtime();
	for (size_t i = 0; i < m->nrcpt; i++) {
		memset(&m->rcpt[i].result, 0, sizeof(m->rcpt[i].result));
		m->rcpt[i].accepted = 0;
	}
	if (m->nrcpt == 0 || precheck(s, &f)) {
		if (m->nrcpt == 0)
			fact_set(&f, SMTPC_LOCAL_ERROR, SMTPC_STAGE_MAIL, "no recipients");
		decide_pending(s, &f, 0);
		message_done(s);
		return 0;
	}
	enter(s, s->need_rset ? SC_RSET : SC_MAIL);
	return 0;
}

void smtp_client_quit(struct smtp_client *s)
{
	if (s->state == SC_READY && !s->msg)
		enter(s, SC_QUIT);
}

void smtp_client_abandon(struct smtp_client *s)
{
	struct smtp_client_fact f;

	if (s->state == SC_DONE || s->state == SC_QUIT)
		return;
	s->abandon = 1;
	if (s->state == SC_READY) {
		smtp_client_quit(s);
	} else if (s->state != SC_DOT) {
		fact_set(&f, SMTPC_ABANDONED, stage(s), "delivery abandoned (shutting down)");
		fail(s, &f);
	}
}

const struct smtp_client_relay *smtp_client_relay(const struct smtp_client *s)
{
	return &s->result.relay;
}

static int parse_ip(const char *text, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (!text || !*text) {
		ss->ss_family = AF_UNSPEC;
		return 0;
	}
	if (uv_ip4_addr(text, 0, (struct sockaddr_in *)ss) == 0 ||
	    uv_ip6_addr(text, 0, (struct sockaddr_in6 *)ss) == 0)
		return 0;
	return -1;
}

int smtp_client_opts_config(struct smtp_client_opts *o, const struct config *cfg,
			    int for_relayhost)
{
	o->helo_name = cfg->hostname;
	o->tls = cfg->tls_outbound;
	o->auth = for_relayhost && cfg->relayhost_auth && *cfg->relayhost_auth
		  ? cfg->relayhost_auth : NULL;
	o->connect_ms = cfg->smtp_connect_timeout * 1000;
	o->helo_ms = cfg->smtp_helo_timeout * 1000;
	o->command_ms = cfg->smtp_command_timeout * 1000;
	o->data_xfer_ms = cfg->smtp_data_xfer_timeout * 1000;
	o->data_done_ms = cfg->smtp_data_done_timeout * 1000;
	return parse_ip(cfg->smtp_bind_address, &o->source);
}
