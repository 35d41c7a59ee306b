/*
 * failure_policy.h - the one place that turns what the SMTP client saw
 * (smtp_client.h facts) into what happens to a recipient: sent,
 * deferred (retry later) or bounced, with the RFC 3463 status and the
 * reason that goes into the log line and the bounce, and whether the
 * next address or MX may be tried at once (Postfix src/smtp/smtp_trouble.c
 * is the model).
 *
 * The rules, in short:
 *  - a 2xx reply: sent.  A 5xx reply: bounced, except a 5xx greeting
 *    (Postfix's smtp_skip_5xx_greeting: another MX may be fine), a 5xx to
 *    STARTTLS or AUTH (a configuration problem on one side, never the
 *    message's fault) and 5xx outside a transaction (RSET, idle), which
 *    defer.  A 4xx: deferred.
 *  - connect failure, timeout, lost connection, malformed reply, TLS
 *    failure, STARTTLS missing under encrypt/verify, AUTH impossible:
 *    deferred (4.4.1, 4.4.2, 4.5.0, 4.7.x).
 *  - the hop's own limits, known before MAIL: over its SIZE 5.3.4,
 *    8-bit content without 8BITMIME 5.6.3 (relayd does not down-convert
 *    to quoted-printable; RFC 6152 §3 allows returning the message),
 *    SMTPUTF8 not offered 5.6.7: bounced.
 *  - shutting down (abandoned) or a local error: deferred, same address.
 *  - the next address may be tried after every deferral caused by the
 *    hop, except once the final dot has gone out without a reply (the
 *    message may have been delivered: a second copy at once elsewhere
 *    would double the duplicate).
 */
#ifndef RELAYD_DELIVERY_FAILURE_POLICY_H
#define RELAYD_DELIVERY_FAILURE_POLICY_H

#include "smtp_client.h"

enum delivery_status { DELIVERY_OK, DELIVERY_RETRY, DELIVERY_FAIL };

struct delivery_outcome {
	enum delivery_status status;
	char dsn[16];            /* "2.0.0", "4.4.1", "5.1.1" */
	char reason[700];        /* for "status=deferred (REASON)" and bounces */
	int try_next;            /* the next address / MX may be tried now */
};

/* Decide for one recipient's fact (or a session's) at relay. */
void failure_policy_decide(const struct smtp_client_fact *f,
			   const struct smtp_client_relay *relay,
			   struct delivery_outcome *out);

/* "sent", "deferred", "bounced": the status= word of the log line. */
const char *delivery_status_name(enum delivery_status st);

#endif
