/*
 * failure_policy.c - facts to outcomes (failure_policy.h).
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include "failure_policy.h"

/* What the client was doing, for "... while DOING". */
static const char *doing(enum smtp_client_stage st)
{
	static const char *const n[] = {
		[SMTPC_STAGE_CONNECT] = "connecting",
		[SMTPC_STAGE_GREETING] = "receiving the initial server greeting",
		[SMTPC_STAGE_HELO] = "performing the EHLO handshake",
		[SMTPC_STAGE_STARTTLS] = "sending STARTTLS",
		[SMTPC_STAGE_TLS] = "performing the TLS handshake",
		[SMTPC_STAGE_AUTH] = "authenticating",
		[SMTPC_STAGE_IDLE] = "waiting for the next transaction",
		[SMTPC_STAGE_RSET] = "sending RSET",
		[SMTPC_STAGE_MAIL] = "sending MAIL FROM",
		[SMTPC_STAGE_RCPT] = "sending RCPT TO",
		[SMTPC_STAGE_DATA] = "sending DATA command",
		[SMTPC_STAGE_BODY] = "sending message body",
		[SMTPC_STAGE_DOT] = "sending end of data -- message may be sent more than once",
		[SMTPC_STAGE_QUIT] = "sending QUIT",
	};
	return (size_t)st < sizeof(n) / sizeof(n[0]) && n[st] ? n[st] : "talking";
}

/* The command a reply answered, for "(in reply to CMD command)". */
static const char *command(enum smtp_client_stage st)
{
	static const char *const n[] = {
		[SMTPC_STAGE_HELO] = "EHLO/HELO", [SMTPC_STAGE_STARTTLS] = "STARTTLS",
		[SMTPC_STAGE_AUTH] = "AUTH", [SMTPC_STAGE_RSET] = "RSET",
		[SMTPC_STAGE_MAIL] = "MAIL FROM", [SMTPC_STAGE_RCPT] = "RCPT TO",
		[SMTPC_STAGE_DATA] = "DATA", [SMTPC_STAGE_DOT] = "end of DATA",
		[SMTPC_STAGE_QUIT] = "QUIT",
	};
	return (size_t)st < sizeof(n) / sizeof(n[0]) ? n[st] : NULL;
}

static void set(struct delivery_outcome *o, enum delivery_status st,
		const char *dsn, int try_next, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));
static void set(struct delivery_outcome *o, enum delivery_status st,
		const char *dsn, int try_next, const char *fmt, ...)
{
	va_list ap;

	o->status = st;
	snprintf(o->dsn, sizeof(o->dsn), "%s", dsn);
	o->try_next = try_next;
	va_start(ap, fmt);
	vsnprintf(o->reason, sizeof(o->reason), fmt, ap);
	va_end(ap);
}

static void decide_reply(const struct smtp_client_fact *f,
			 const struct smtp_client_relay *r,
			 struct delivery_outcome *o)
{
	int cls = f->code / 100;
	enum smtp_client_stage st = f->stage;
	const char *cmd = command(st);
	char dsn[16];

	if (cls == 2) {
		set(o, DELIVERY_OK, *f->enh ? f->enh : "2.0.0", 0, "%d %s", f->code, f->text);
		return;
	}
	snprintf(dsn, sizeof(dsn), "%s", *f->enh ? f->enh : cls == 4 ? "4.0.0" : "5.0.0");
	/* Not the message's fault: the hop, its greeting or our setup. */
	if (cls == 5 && (st == SMTPC_STAGE_GREETING || st == SMTPC_STAGE_STARTTLS ||
			 st == SMTPC_STAGE_AUTH || st == SMTPC_STAGE_RSET ||
			 st == SMTPC_STAGE_IDLE || st == SMTPC_STAGE_QUIT))
		dsn[0] = '4';
	enum delivery_status status = dsn[0] == '4' ? DELIVERY_RETRY : DELIVERY_FAIL;
	if (st == SMTPC_STAGE_GREETING || st == SMTPC_STAGE_HELO)
		set(o, status, dsn, status == DELIVERY_RETRY,
		    "host %s[%s] refused to talk to me: %d %s", r->host, r->ip,
		    f->code, f->text);
	else if (cmd)
		set(o, status, dsn, status == DELIVERY_RETRY,
		    "host %s[%s] said: %d %s (in reply to %s command)", r->host, r->ip,
		    f->code, f->text, cmd);
	else
		set(o, status, dsn, status == DELIVERY_RETRY,
		    "host %s[%s] said: %d %s (while %s)", r->host, r->ip, f->code,
		    f->text, doing(st));
}

void failure_policy_decide(const struct smtp_client_fact *f,
			   const struct smtp_client_relay *r,
			   struct delivery_outcome *o)
{
	/* Once the dot is out, the hop may have the message. */
	int next = f->stage != SMTPC_STAGE_DOT;

	switch (f->kind) {
	case SMTPC_REPLY:
		decide_reply(f, r, o);
		return;
	case SMTPC_CONNECT_FAILED:
		set(o, DELIVERY_RETRY, "4.4.1", 1, "connect to %s[%s]:%u: %s", r->host,
		    r->ip, r->port, f->text);
		return;
	case SMTPC_TIMEOUT:
		if (f->stage == SMTPC_STAGE_CONNECT)
			set(o, DELIVERY_RETRY, "4.4.1", 1, "connect to %s[%s]:%u: "
			    "Connection timed out", r->host, r->ip, r->port);
		else
			set(o, DELIVERY_RETRY, "4.4.2", next, "conversation with %s[%s] "
			    "timed out while %s", r->host, r->ip, doing(f->stage));
		return;
	case SMTPC_LOST:
		set(o, DELIVERY_RETRY, "4.4.2", next, "lost connection with %s[%s] while %s",
		    r->host, r->ip, doing(f->stage));
		return;
	case SMTPC_BAD_REPLY:
		set(o, DELIVERY_RETRY, "4.5.0", next, "host %s[%s] sent a malformed "
		    "reply while %s: %s", r->host, r->ip, doing(f->stage), f->text);
		return;
	case SMTPC_TLS_FAILED:
		set(o, DELIVERY_RETRY, "4.7.5", 1, "Cannot start TLS with %s[%s]: %s",
		    r->host, r->ip, f->text);
		return;
	case SMTPC_NO_STARTTLS:
		set(o, DELIVERY_RETRY, "4.7.4", 1, "%s", f->text);
		return;
	case SMTPC_NO_AUTH:
		set(o, DELIVERY_RETRY, "4.7.0", 1, "%s", f->text);
		return;
	case SMTPC_TOO_BIG:
		set(o, DELIVERY_FAIL, "5.3.4", 0, "%s", f->text);
		return;
	case SMTPC_NO_8BITMIME:
		set(o, DELIVERY_FAIL, "5.6.3", 0, "%s", f->text);
		return;
	case SMTPC_NO_SMTPUTF8:
		set(o, DELIVERY_FAIL, "5.6.7", 0, "%s", f->text);
		return;
	case SMTPC_ABANDONED:
		set(o, DELIVERY_RETRY, "4.3.2", 0, "delivery to %s[%s] stopped: relayd "
		    "is shutting down", r->host, r->ip);
		return;
	case SMTPC_LOCAL_ERROR:
		set(o, DELIVERY_RETRY, "4.3.0", 0, "local error while talking to "
		    "%s[%s]: %s", r->host, r->ip, f->text);
		return;
	case SMTPC_NONE:
		break;
	}
	set(o, DELIVERY_RETRY, "4.3.0", 0, "delivery status unknown");
}

const char *delivery_status_name(enum delivery_status st)
{
	return st == DELIVERY_OK ? "sent" : st == DELIVERY_FAIL ? "bounced" : "deferred";
}
