/*
 * smtp_receive.c - DATA and BDAT: receive the content into a queue spool
 * through the smtp_data stream, prepend Received:, add a missing
 * Message-ID: and Date: (RFC 6409 §8), enforce size and hop limits, and
 * hand the message to the queue's group commit.  The 250 goes out only
 * from the commit's completion: "queued" means on disk.
 *
 * The spool writes a large body to its spill file in the thread pool
 * (queue_spool_async), never on the loop: a slow disk must not stall the
 * other sessions.  While a spill write is in flight and the next buffer is
 * full, this session stops consuming input (the conn then stops reading
 * the socket at its input bound), and at the end of the content it waits
 * in SS_WAIT for the last write before submitting; the spool's ready
 * callback resumes it.  Only this session waits for its disk.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "conn.h"
#include "log.h"
#include "maillog.h"
#include "metrics.h"
#include "smtp_session_int.h"
#include "text.h"

#define R_STORAGE "452 4.3.1 Insufficient system storage"

static int spool_emit(void *arg, const void *buf, size_t len)
{
	struct smtp_session *s = arg;
	return queue_spool_write(s->txn->spool, buf, len) ? -1 : 0;
}

static void finish_content(struct smtp_session *s, enum smtp_count which);

/* A spill write finished: go on consuming input, or submit. */
static void on_spool_ready(void *arg)
{
	struct smtp_session *s = arg;
	struct smtp_txn *t = s->txn;
	if (!s->conn || !t || s->state != SS_WAIT)
		return;
	if (t->finish_waiting && !queue_spool_pending(t->spool)) {
		t->finish_waiting = 0;
		s->state = SS_CMD;
		conn_resume(s->conn);
		finish_content(s, t->finish_which);
	} else if (t->spool_wait && !queue_spool_busy(t->spool)) {
		s->state = t->spool_wait;
		t->spool_wait = 0;
	} else {
		return;
	}
	smtp_process(s);
}

static void rfc5322_date(char *buf, size_t len, time_t when)
{
	struct tm tm;
	localtime_r(&when, &tm);
	if (!strftime(buf, len, "%a, %d %b %Y %H:%M:%S %z (%Z)", &tm) && len)
		buf[0] = 0;
}

/* Add what RFC 5322 requires and the client left out. */
static int add_missing(struct smtp_session *s, struct smtp_data *d)
{
	char buf[512];
	time_t now = time(NULL);
	int n;
	if (!d->have_msgid) {
		struct tm tm;
		char stamp[32];
		gmtime_r(&now, &tm);
		strftime(stamp, sizeof(stamp), "%Y%m%d%H%M%S", &tm);
		n = snprintf(buf, sizeof(buf), "Message-ID: <%s.%s@%s>\r\n", stamp,
			     s->txn->id.s, s->cfg->hostname);
		if (n > 0 && (size_t)n < sizeof(buf))
			smtp_data_emit(d, buf, (size_t)n);
	}
	if (!d->have_date) {
		char date[64];
		rfc5322_date(date, sizeof(date), now);
		n = snprintf(buf, sizeof(buf), "Date: %s\r\n", date);
		if (n > 0 && (size_t)n < sizeof(buf))
			smtp_data_emit(d, buf, (size_t)n);
	}
	return 0;
}

/* The RFC 3848 protocol name for Received: "with". */
static const char *with_protocol(const struct smtp_session *s)
{
	static const char *const names[2][2][2] = {
		/* [utf8][tls][auth] */
		{ { "ESMTP", "ESMTPA" }, { "ESMTPS", "ESMTPSA" } },
		{ { "UTF8SMTP", "UTF8SMTPA" }, { "UTF8SMTPS", "UTF8SMTPSA" } },
	};
	if (!s->esmtp)
		return "SMTP";
	return names[s->txn->mail.smtputf8][conn_is_tls(s->conn)][s->auth_user != NULL];
}

/* Prepend our Received: (RFC 5321 §4.4), Postfix's layout. */
static int write_received(struct smtp_session *s)
{
	struct smtp_txn *t = s->txn;
	char tls[256], date[64], buf[4096], helo[1024], name[1024], rcpt[1024] = "";
	conn_tls_info(s->conn, tls, sizeof(tls));
	rfc5322_date(date, sizeof(date), time(NULL));
	/* What the client chose (and, later, what reverse DNS says) must not
	 * end the header or hide in it: escaped like in the logs. */
	text_escape(helo, sizeof(helo), s->helo, strlen(s->helo));
	text_escape(name, sizeof(name), s->client_name, strlen(s->client_name));
	if (t->nrcpt == 1)
		text_escape(rcpt, sizeof(rcpt), t->rcpt[0].addr, strlen(t->rcpt[0].addr));
	int n = snprintf(buf, sizeof(buf),
			 "Received: from %s (%s [%s])\r\n%s%s%s"
			 "\tby %s (relayd) with %s id %s%s%s%s;\r\n\t%s\r\n",
			 helo, name, s->client_addr,
			 tls[0] ? "\t" : "", tls, tls[0] ? "\r\n" : "",
			 s->cfg->hostname, with_protocol(s), t->id.s,
			 t->nrcpt == 1 ? "\r\n\tfor <" : "", rcpt,
			 t->nrcpt == 1 ? ">" : "", date);
	if (n < 0 || (size_t)n >= sizeof(buf))
		return -1;
	return queue_spool_write(t->spool, buf, (size_t)n);
}

static int headers_cb(void *arg, struct smtp_data *d);

/* Start receiving content for the current transaction. */
static int start_content(struct smtp_session *s, enum smtp_data_mode mode)
{
	struct smtp_txn *t = s->txn;
	int rc = queue_spool_new(s->env->queue, &t->spool);
	if (rc == 0)
		rc = queue_spool_async(t->spool, s->env->loop, on_spool_ready, s);
	if (rc == 0)
		rc = write_received(s);
	if (rc)
		return rc;
	smtp_data_init(&t->data, mode, s->cfg->message_size_limit,
		       spool_emit, headers_cb, s);

	t->data_started = 1;
	return 0;
}

static int headers_cb(void *arg, struct smtp_data *d)
{
	return add_missing(arg, d);
}

static void on_commit(void *arg, int status, const struct queue_op *op)
{
	struct smtp_session *s = arg;
	struct smtp_txn *t = s->txn;
	if (status == 0) {
		s->env->messages++;
		metric_inc(METRIC_SMTPD_MESSAGES);
		metric_observe(METRIC_SMTPD_ACCEPT_LATENCY,
			       (double)(uv_hrtime() - t->content_end) / 1e9);
		maillog_queued(t->id.s, t->mail.addr,
			       (unsigned long long)t->stored_size, t->nrcpt);
		if (s->env->queued)
			s->env->queued(s->env->queued_arg);
	} else {
		log_warn(LOG_SVC_SMTPD, "%s: queue commit failed: %s", t->id.s,
			 queue_strerror(status));
	}
	if (s->conn && s->state == SS_WAIT) {
		if (status == 0)
			smtp_reply(s, "250 2.0.0 Ok: queued as %s", t->id.s);
		else if (status == QUEUE_ENOSPC)
			smtp_reply(s, R_STORAGE);
		else
			smtp_reply(s, "451 4.3.0 Error: queue file write error");
		s->state = SS_CMD;
		smtp_txn_reset(s);
		conn_resume(s->conn);
		smtp_process(s);
	} else {
		smtp_txn_reset(s);
	}
	smtp_session_unref(s);
}

/* The content is complete: check it and commit, or refuse it. */
static void finish_content(struct smtp_session *s, enum smtp_count which)
{
	struct smtp_txn *t = s->txn;
	struct smtp_data *d = &t->data;
	const char *refuse = NULL;
	if (!t->content_end)         /* not again after a spill wait */
		t->content_end = uv_hrtime();
	if (d->bare_eol)
		refuse = "550 5.6.0 Error: bare <CR> or <LF> in message content";
	else if (d->too_big)
		refuse = "552 5.3.4 Message size exceeds fixed limit";
	else if (d->received + 1 > SMTP_HOP_LIMIT)
		refuse = "554 5.4.6 Error: too many hops";
	else if (d->emit_failed)
		refuse = R_STORAGE;
	if (refuse) {
		log_info(LOG_SVC_SMTPD, "%s: reject: %s from %s[%s]: %s", t->id.s,
			 which == C_DATA ? "DATA" : "BDAT", s->client_name,
			 s->client_addr, refuse);
		smtp_count(s, which, 0);
		smtp_reply(s, "%s", refuse);
		smtp_txn_reset(s);
		s->state = SS_CMD;
		return;
	}
	if (queue_spool_pending(t->spool)) {
		/* The last spill write is still in flight. */
		t->finish_waiting = 1;
		t->finish_which = which;
		s->state = SS_WAIT;
		conn_pause(s->conn);
		return;
	}
	struct queue_msg m = {
		.id = t->id,
		.arrival = t->arrival_us,
		.flags = (t->mail.smtputf8 ? QUEUE_F_SMTPUTF8 : 0) |
			 (t->mail.body_8bit ? QUEUE_F_8BITMIME : 0) |
			 (t->data.eightbit ? QUEUE_F_8BITDATA : 0) | QUEUE_F_SCANNED,
		.ret = (enum queue_ret)t->mail.ret,
		.sender = t->mail.addr,
		.envid = t->mail.envid[0] ? t->mail.envid : NULL,
		.client_name = s->client_name,
		.client_addr = s->client_addr,
		.helo = s->helo,
		.auth_user = s->auth_user,
		.nrcpt = t->nrcpt,
		.rcpt = t->rcpt,
	};
	t->stored_size = queue_spool_size(t->spool);
	struct queue_op *op = queue_op_submit(&m, t->spool, time(NULL));
	t->spool = NULL;              /* consumed, whatever happened */
	smtp_count(s, which, 1);
	if (!op || queue_writer_submit(s->env->queue, op, on_commit, s)) {
		smtp_reply(s, "451 4.3.0 Error: queue file write error");
		smtp_txn_reset(s);
		s->state = SS_CMD;
		return;
	}
	s->refs++;
	s->state = SS_WAIT;
	conn_pause(s->conn);
}

/* Common preconditions of DATA and BDAT; replies and returns -1 when the
 * transaction is not ready. */
static const char *not_ready(struct smtp_session *s)
{
	if (!s->txn)
		return "503 5.5.1 Error: need MAIL command";
	if (!s->txn->nrcpt)
		return "503 5.5.1 Error: need RCPT command";
	return NULL;
}

void smtp_cmd_data(struct smtp_session *s, const char *arg)
{
	const char *err = *arg ? "501 5.5.4 Syntax: DATA" : not_ready(s);
	if (!err && s->txn->data_started)
		err = "503 5.5.1 Error: BDAT in progress, DATA not allowed";
	if (err) {
		smtp_count(s, C_DATA, 0);
		smtp_reply(s, "%s", err);
		return;
	}
	if (start_content(s, SMTP_DATA_DOT)) {
		smtp_count(s, C_DATA, 0);
		smtp_reply(s, R_STORAGE);
		smtp_txn_reset(s);
		return;
	}
	smtp_reply(s, "354 End data with <CR><LF>.<CR><LF>");
	s->state = SS_DATA;
}

/* A BDAT chunk has been read completely. */
static void chunk_end(struct smtp_session *s)
{
	struct smtp_txn *t = s->txn;
	s->state = SS_CMD;
	if (t && t->bdat_reply) {
		smtp_count(s, C_BDAT, 0);
		smtp_reply(s, "%s", t->bdat_reply);
		smtp_txn_reset(s);
		return;
	}
	if (!t)
		return;          /* refused up front; reply already sent */
	struct smtp_data *d = &t->data;
	if (s->bdat_last) {
		smtp_data_finish(d);
		finish_content(s, C_BDAT);
		return;
	}
	if (d->bare_eol || d->too_big || d->emit_failed) {
		finish_content(s, C_BDAT);   /* refuses, resets */
		return;
	}
	smtp_count(s, C_BDAT, 1);
	smtp_reply(s, "250 2.0.0 Ok: %llu octets received",
		   (unsigned long long)d->size);
}

void smtp_cmd_bdat(struct smtp_session *s, const char *arg)
{
	char *end;
	errno = 0;
	unsigned long long size = strtoull(arg, &end, 10);
	int last = 0;
	if (*arg < '0' || *arg > '9' || strlen(arg) > 40 || errno == ERANGE) {
		end = NULL;
	} else if (*end == ' ') {
		while (*end == ' ')
			end++;
		if (!strcasecmp(end, "LAST"))
			last = 1;
		else
			end = NULL;
	} else if (*end) {
		end = NULL;
	}
	if (!end) {
		/* Without a size we cannot tell content from commands: the
		 * session cannot continue safely (RFC 3030 §3). */
		smtp_count(s, C_BDAT, 0);
		smtp_reply(s, "501 5.5.4 Syntax: BDAT count [LAST]");
		s->quitting = 1;
		return;
	}
	/* Content over the limit is read and thrown away (RFC 3030 §3: the
	 * session cannot go on without reading it), but only up to twice
	 * the limit: beyond that, refuse and close rather than read on. */
	uint64_t limit = s->cfg->message_size_limit;
	uint64_t cap = limit > UINT64_MAX / 2 ? UINT64_MAX : 2 * limit;
	uint64_t have = s->txn && s->txn->data_started ? s->txn->data.size : 0;
	if (size > cap - (have < cap ? have : cap)) {
		smtp_count(s, C_BDAT, 0);
		smtp_reply(s, "552 5.3.4 Message size exceeds fixed limit");
		s->quitting = 1;
		return;
	}
	const char *err = s->esmtp ? not_ready(s) : "503 5.5.1 Error: send EHLO first";
	s->bdat_left = size;
	s->bdat_last = last;
	if (err && s->txn) {
		s->txn->bdat_reply = err;
	} else if (err) {
		/* No transaction to attach the error to: answer at chunk end
		 * after discarding the bytes. */
		smtp_count(s, C_BDAT, 0);
		smtp_reply(s, "%s", err);
		s->state = size ? SS_BDAT : SS_CMD;
		return;
	} else if (!s->txn->data_started && start_content(s, SMTP_DATA_RAW)) {
		s->txn->bdat_reply = R_STORAGE;
	}
	s->state = SS_BDAT;
	if (size == 0)
		chunk_end(s);
}

/* Both spill buffers full: wait in SS_WAIT (so that input after EOF is
 * kept) until on_spool_ready; 1 when the session now waits. */
static int wait_for_spool(struct smtp_session *s)
{
	struct smtp_txn *t = s->txn;
	if ((s->state != SS_DATA && s->state != SS_BDAT) || !t || !t->spool ||
	    !queue_spool_busy(t->spool))
		return 0;
	t->spool_wait = s->state;
	s->state = SS_WAIT;
	return 1;
}

size_t smtp_receive_input(struct smtp_session *s, const char *p, size_t n)
{
	struct smtp_txn *t = s->txn;
	size_t used;
	/* Checked before taking content too: a BDAT chunk read whole with
	 * its command ends in SS_CMD, so the check after it never runs, and
	 * small chunks would pile up in memory while the disk is slow. */
	if (wait_for_spool(s))
		return 0;
	if (s->state == SS_DATA) {
		used = smtp_data_feed(&t->data, p, n);
		if (t->data.done)
			finish_content(s, C_DATA);
	} else {
		used = n < s->bdat_left ? n : (size_t)s->bdat_left;
		if (t && !t->bdat_reply)
			smtp_data_feed(&t->data, p, used);
		s->bdat_left -= used;
		if (s->bdat_left == 0)
			chunk_end(s);
	}
	wait_for_spool(s);
	return used;
}
