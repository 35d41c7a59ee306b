/*
 * maillog.h - the mail log records of DESIGN §6, each built by exactly one
 * function so operators' Postfix log tools (pflogsumm, fail2ban, ...) keep
 * working.  Diagnostics go through log.h directly; these are the records.
 */
#ifndef RELAYD_MAILLOG_H
#define RELAYD_MAILLOG_H

#include <stddef.h>

/* smtpd: "connect from HOST[IP]" */
void maillog_connect(const char *host, const char *ip);

/* smtpd: "ID: client=HOST[IP]" plus ", sasl_method=M, sasl_username=U"
 * when the session authenticated. */
void maillog_client(const char *id, const char *host, const char *ip,
		    const char *sasl_method, const char *sasl_user);

/* qmgr: "ID: from=<SENDER>, size=N, nrcpt=N (queue active)" */
void maillog_queued(const char *id, const char *sender,
		    unsigned long long size, unsigned nrcpt);

/* smtp: one line per recipient attempt. */
struct maillog_delivery {
	const char *id;
	const char *rcpt;
	const char *relay_host;  /* NULL: "none" */
	const char *relay_ip;
	unsigned relay_port;
	double delay;            /* total seconds since arrival */
	double delays[4];        /* before queue, in queue, setup, transmission */
	const char *dsn;         /* "2.0.0" */
	const char *status;      /* "sent", "deferred", "bounced" */
	const char *reason;      /* remote reply or local reason */
};
void maillog_delivery(const struct maillog_delivery *d);

/* bounce: "ID: sender KIND notification: NEWID" (KIND is
 * "non-delivery", "delay" or "delivery status"). */
void maillog_bounce(const char *id, const char *kind, const char *new_id);
/* a failure copied to bounce_notice_recipient:
 * "ID: postmaster non-delivery notification: NEWID" (Postfix's words) */
void maillog_notice(const char *id, const char *new_id);

/* qmgr: "ID: removed" */
void maillog_removed(const char *id);

/* smtpd: "disconnect from HOST[IP] ehlo=1 mail=1 ... commands=N".
 * Commands with ok == total print "name=N", others "name=ok/total"
 * (Postfix style); names with total 0 are left out. */
struct maillog_cmd_count {
	const char *name;
	unsigned ok, total;
};
void maillog_disconnect(const char *host, const char *ip,
			const struct maillog_cmd_count *c, size_t n);

/* Postfix's short form for delays: "0", "0.03", "1.2", "15". */
void maillog_fmt_delay(char *buf, size_t len, double seconds);

#endif
