/*
 * test_failure_policy.c - every kind of fact the SMTP client reports,
 * mapped to sent / deferred / bounced, its status code, its reason and
 * whether the next address may be tried.
 */
#include <stdio.h>
#include <string.h>
#include "delivery/failure_policy.h"
#include "t/tap.h"

static const struct smtp_client_relay relay = { "mx.example.org", "192.0.2.25", 25 };

static struct smtp_client_fact reply(enum smtp_client_stage st, int code,
				     const char *enh, const char *text)
{
	struct smtp_client_fact f;

	memset(&f, 0, sizeof(f));
	f.kind = SMTPC_REPLY;
	f.stage = st;
	f.code = code;
	snprintf(f.enh, sizeof(f.enh), "%s", enh);
	snprintf(f.text, sizeof(f.text), "%s", text);
	return f;
}

static struct smtp_client_fact fact(enum smtp_client_fact_kind k,
				    enum smtp_client_stage st, const char *text)
{
	struct smtp_client_fact f;

	memset(&f, 0, sizeof(f));
	f.kind = k;
	f.stage = st;
	snprintf(f.text, sizeof(f.text), "%s", text);
	return f;
}

static void check(const char *name, struct smtp_client_fact f,
		  enum delivery_status st, const char *dsn, int next,
		  const char *reason)
{
	struct delivery_outcome o;

	failure_policy_decide(&f, &relay, &o);
	int good = o.status == st && !strcmp(o.dsn, dsn) && o.try_next == next &&
		   strstr(o.reason, reason) != NULL;
	if (!ok(good, "%s: %s %s next=%d", name, delivery_status_name(st), dsn, next))
		diag("got %s %s next=%d reason \"%s\"", delivery_status_name(o.status),
		     o.dsn, o.try_next, o.reason);
}

int main(void)
{
	check("250 after the dot", reply(SMTPC_STAGE_DOT, 250, "2.0.0", "2.0.0 Ok: queued as X"),
	      DELIVERY_OK, "2.0.0", 0, "250 2.0.0 Ok: queued as X");
	check("250 without enhanced code", reply(SMTPC_STAGE_DOT, 250, "", "ok"),
	      DELIVERY_OK, "2.0.0", 0, "250 ok");
	check("550 to RCPT", reply(SMTPC_STAGE_RCPT, 550, "5.1.1", "5.1.1 <u@x>: unknown"),
	      DELIVERY_FAIL, "5.1.1", 0,
	      "host mx.example.org[192.0.2.25] said: 550 5.1.1 <u@x>: unknown (in reply to RCPT TO command)");
	check("550 without enhanced code", reply(SMTPC_STAGE_RCPT, 550, "", "no"),
	      DELIVERY_FAIL, "5.0.0", 0, "said: 550 no");
	check("450 to RCPT", reply(SMTPC_STAGE_RCPT, 450, "4.2.0", "4.2.0 greylisted"),
	      DELIVERY_RETRY, "4.2.0", 1, "(in reply to RCPT TO command)");
	check("451 without enhanced code", reply(SMTPC_STAGE_MAIL, 451, "", "later"),
	      DELIVERY_RETRY, "4.0.0", 1, "(in reply to MAIL FROM command)");
	check("554 after the dot", reply(SMTPC_STAGE_DOT, 554, "5.7.1", "5.7.1 spam"),
	      DELIVERY_FAIL, "5.7.1", 0, "(in reply to end of DATA command)");
	check("452 after the dot", reply(SMTPC_STAGE_DOT, 452, "4.3.1", "4.3.1 full"),
	      DELIVERY_RETRY, "4.3.1", 1, "end of DATA");
	check("554 to DATA", reply(SMTPC_STAGE_DATA, 554, "", "no valid recipients"),
	      DELIVERY_FAIL, "5.0.0", 0, "(in reply to DATA command)");
	check("421 greeting", reply(SMTPC_STAGE_GREETING, 421, "", "busy"),
	      DELIVERY_RETRY, "4.0.0", 1, "refused to talk to me: 421 busy");
	check("554 greeting is skipped, not bounced", reply(SMTPC_STAGE_GREETING, 554, "5.7.1", "5.7.1 go away"),
	      DELIVERY_RETRY, "4.7.1", 1, "refused to talk to me: 554 5.7.1 go away");
	check("550 to HELO bounces", reply(SMTPC_STAGE_HELO, 550, "", "bad helo"),
	      DELIVERY_FAIL, "5.0.0", 0, "refused to talk to me");
	check("535 to AUTH defers", reply(SMTPC_STAGE_AUTH, 535, "5.7.8", "5.7.8 bad credentials"),
	      DELIVERY_RETRY, "4.7.8", 1, "(in reply to AUTH command)");
	check("554 to STARTTLS defers", reply(SMTPC_STAGE_STARTTLS, 554, "", "no tls"),
	      DELIVERY_RETRY, "4.0.0", 1, "STARTTLS");
	check("421 while idle", reply(SMTPC_STAGE_IDLE, 421, "4.4.2", "4.4.2 idle timeout"),
	      DELIVERY_RETRY, "4.4.2", 1, "(while waiting for the next transaction)");
	check("connect refused", fact(SMTPC_CONNECT_FAILED, SMTPC_STAGE_CONNECT, "connection refused"),
	      DELIVERY_RETRY, "4.4.1", 1, "connect to mx.example.org[192.0.2.25]:25: connection refused");
	check("connect timeout", fact(SMTPC_TIMEOUT, SMTPC_STAGE_CONNECT, ""),
	      DELIVERY_RETRY, "4.4.1", 1, ":25: Connection timed out");
	check("greeting timeout", fact(SMTPC_TIMEOUT, SMTPC_STAGE_GREETING, ""),
	      DELIVERY_RETRY, "4.4.2", 1,
	      "conversation with mx.example.org[192.0.2.25] timed out while receiving the initial server greeting");
	check("body timeout", fact(SMTPC_TIMEOUT, SMTPC_STAGE_BODY, ""),
	      DELIVERY_RETRY, "4.4.2", 1, "while sending message body");
	check("timeout after the dot: no next address", fact(SMTPC_TIMEOUT, SMTPC_STAGE_DOT, ""),
	      DELIVERY_RETRY, "4.4.2", 0, "may be sent more than once");
	check("lost in the body", fact(SMTPC_LOST, SMTPC_STAGE_BODY, ""),
	      DELIVERY_RETRY, "4.4.2", 1, "lost connection with mx.example.org[192.0.2.25] while sending message body");
	check("lost after the dot", fact(SMTPC_LOST, SMTPC_STAGE_DOT, ""),
	      DELIVERY_RETRY, "4.4.2", 0, "lost connection");
	check("malformed reply", fact(SMTPC_BAD_REPLY, SMTPC_STAGE_RCPT, "malformed reply: no reply code"),
	      DELIVERY_RETRY, "4.5.0", 1, "malformed reply while sending RCPT TO: malformed reply: no reply code");
	check("TLS failed", fact(SMTPC_TLS_FAILED, SMTPC_STAGE_TLS, "handshake failed: certificate verify failed"),
	      DELIVERY_RETRY, "4.7.5", 1, "Cannot start TLS with mx.example.org[192.0.2.25]: handshake failed");
	check("no STARTTLS", fact(SMTPC_NO_STARTTLS, SMTPC_STAGE_HELO, "TLS is required, but was not offered"),
	      DELIVERY_RETRY, "4.7.4", 1, "TLS is required");
	check("no AUTH", fact(SMTPC_NO_AUTH, SMTPC_STAGE_AUTH, "cannot authenticate"),
	      DELIVERY_RETRY, "4.7.0", 1, "cannot authenticate");
	check("too big", fact(SMTPC_TOO_BIG, SMTPC_STAGE_MAIL, "message size 9 exceeds size limit 5"),
	      DELIVERY_FAIL, "5.3.4", 0, "exceeds size limit");
	check("no 8BITMIME", fact(SMTPC_NO_8BITMIME, SMTPC_STAGE_MAIL, "8-bit"),
	      DELIVERY_FAIL, "5.6.3", 0, "8-bit");
	check("no SMTPUTF8", fact(SMTPC_NO_SMTPUTF8, SMTPC_STAGE_MAIL, "SMTPUTF8"),
	      DELIVERY_FAIL, "5.6.7", 0, "SMTPUTF8");
	check("abandoned", fact(SMTPC_ABANDONED, SMTPC_STAGE_BODY, ""),
	      DELIVERY_RETRY, "4.3.2", 0, "shutting down");
	check("local error", fact(SMTPC_LOCAL_ERROR, SMTPC_STAGE_BODY, "cannot read"),
	      DELIVERY_RETRY, "4.3.0", 0, "local error");
	check("no fact", fact(SMTPC_NONE, SMTPC_STAGE_MAIL, ""),
	      DELIVERY_RETRY, "4.3.0", 0, "unknown");
	is_str(delivery_status_name(DELIVERY_OK), "sent", "status word sent");
	is_str(delivery_status_name(DELIVERY_RETRY), "deferred", "status word deferred");
	is_str(delivery_status_name(DELIVERY_FAIL), "bounced", "status word bounced");
	return done_testing();
}
