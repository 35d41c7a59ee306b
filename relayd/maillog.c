/*
 * maillog.c - the Postfix-format mail records (see maillog.h).
 */
#include <stdio.h>
#include <string.h>
#include "log.h"
#include "maillog.h"

void maillog_connect(const char *host, const char *ip)
{
	log_info(LOG_SVC_SMTPD, "connect from %s[%s]", host, ip);
}

void maillog_client(const char *id, const char *host, const char *ip,
		    const char *sasl_method, const char *sasl_user)
{
	if (sasl_method && sasl_user)
		log_info(LOG_SVC_SMTPD,
			 "%s: client=%s[%s], sasl_method=%s, sasl_username=%s",
			 id, host, ip, sasl_method, sasl_user);
	else
		log_info(LOG_SVC_SMTPD, "%s: client=%s[%s]", id, host, ip);
}

void maillog_queued(const char *id, const char *sender,
		    unsigned long long size, unsigned nrcpt)
{
	log_info(LOG_SVC_QMGR, "%s: from=<%s>, size=%llu, nrcpt=%u (queue active)",
		 id, sender, size, nrcpt);
}

void maillog_fmt_delay(char *buf, size_t len, double s)
{
	/* Postfix's resolution: at most two decimals below one second, two
	 * significant digits below ten, whole seconds above. */
	if (s < 0.005) {
		snprintf(buf, len, "0");
	} else if (s < 1) {
		snprintf(buf, len, "%.2f", s);
		size_t n = strlen(buf);
		while (n > 0 && buf[n - 1] == '0')
			buf[--n] = 0;
	} else if (s < 9.95) {
		snprintf(buf, len, "%.2g", s);
	} else {
		snprintf(buf, len, "%.0f", s);
	}
}

void maillog_delivery(const struct maillog_delivery *d)
{
	char relay[300], delay[16], dl[4][16];
	if (d->relay_host)
		snprintf(relay, sizeof(relay), "%s[%s]:%u", d->relay_host,
			 d->relay_ip ? d->relay_ip : "", d->relay_port);
	else
		snprintf(relay, sizeof(relay), "none");
	maillog_fmt_delay(delay, sizeof(delay), d->delay);
	for (int i = 0; i < 4; i++)
		maillog_fmt_delay(dl[i], sizeof(dl[i]), d->delays[i]);
	log_info(LOG_SVC_SMTP,
		 "%s: to=<%s>, relay=%s, delay=%s, delays=%s/%s/%s/%s, dsn=%s, status=%s (%s)",
		 d->id, d->rcpt, relay, delay, dl[0], dl[1], dl[2], dl[3],
		 d->dsn, d->status, d->reason ? d->reason : "");
}

void maillog_bounce(const char *id, const char *kind, const char *new_id)
{
	log_info(LOG_SVC_BOUNCE, "%s: sender %s notification: %s", id, kind,
		 new_id);
}

void maillog_notice(const char *id, const char *new_id)
{
	log_info(LOG_SVC_BOUNCE, "%s: postmaster non-delivery notification: %s", id,
		 new_id);
}

void maillog_removed(const char *id)
{
	log_info(LOG_SVC_QMGR, "%s: removed", id);
}

void maillog_disconnect(const char *host, const char *ip,
			const struct maillog_cmd_count *c, size_t n)
{
	char buf[512];
	size_t off = 0;
	unsigned ok = 0, total = 0;
	for (size_t i = 0; i < n; i++) {
		if (!c[i].total)
			continue;
		ok += c[i].ok;
		total += c[i].total;
		int w = c[i].ok == c[i].total
			? snprintf(buf + off, sizeof(buf) - off, " %s=%u", c[i].name, c[i].total)
			: snprintf(buf + off, sizeof(buf) - off, " %s=%u/%u", c[i].name,
				   c[i].ok, c[i].total);
		if (w < 0 || (size_t)w >= sizeof(buf) - off)
			break;
		off += (size_t)w;
	}
	buf[off] = 0;
	if (ok == total)
		log_info(LOG_SVC_SMTPD, "disconnect from %s[%s]%s commands=%u",
			 host, ip, buf, total);
	else
		log_info(LOG_SVC_SMTPD, "disconnect from %s[%s]%s commands=%u/%u",
			 host, ip, buf, ok, total);
}
