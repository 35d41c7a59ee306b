/*
 * smtp_session.c - the SMTP server session: reading command lines,
 * dispatching them through a table, the envelope commands (HELO, EHLO,
 * MAIL, RCPT, RSET, NOOP, VRFY, HELP, QUIT), relay policy, timeouts and
 * the error limit.  DATA/BDAT live in smtp_receive.c, STARTTLS and AUTH in
 * smtp_auth.c.
 *
 * Replies to pipelined commands (RFC 2920) are produced in order into the
 * connection's output buffer and written once all buffered input has been
 * processed.  The session pauses reading while it waits for a commit or
 * a password check, and resumes with whatever the client sent meanwhile.
 */
#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "client_name.h"
#include "conn.h"
#include "log.h"
#include "maillog.h"
#include "metrics.h"
#include "smtp_session_int.h"

static const char *const count_names[C_COUNT] = {
	"helo", "ehlo", "starttls", "auth", "mail", "rcpt", "data", "bdat",
	"rset", "noop", "vrfy", "help", "quit", "unknown",
};

void smtp_count(struct smtp_session *s, enum smtp_count c, int ok)
{
	s->total[c]++;
	if (ok)
		s->ok[c]++;
	if (c == C_AUTH)
		metric_inc_label(METRIC_SMTPD_AUTH, ok ? METRIC_AUTH_SUCCESS : METRIC_AUTH_FAILURE);
}

void smtp_reply(struct smtp_session *s, const char *fmt, ...)
{
	char buf[1024];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf, sizeof(buf) - 2, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n > sizeof(buf) - 3)
		n = sizeof(buf) - 3;
	buf[n++] = '\r';
	buf[n++] = '\n';
	conn_write(s->conn, buf, (size_t)n);
	metric_inc_label(METRIC_SMTPD_REPLIES, (unsigned)metric_reply_class(buf[0]));
	/* 4xx/5xx count towards the error limit (Postfix's
	 * smtpd_hard_error_limit); 421 closes anyway. */
	if ((buf[0] == '4' || buf[0] == '5') && strncmp(buf, "421", 3) != 0 &&
	    ++s->errors == SMTP_ERROR_LIMIT && s->state != SS_DONE) {
		conn_write(s->conn, "421 4.7.0 Error: too many errors\r\n", 34);
		metric_inc_label(METRIC_SMTPD_REPLIES, METRIC_CLASS_4XX);
		log_info(LOG_SVC_SMTPD, "too many errors from %s[%s]",
			 s->client_name, s->client_addr);
		s->quitting = 1;
	}
}

/* ---- life cycle ---- */

void smtp_txn_reset(struct smtp_session *s)
{
	struct smtp_txn *t = s->txn;
	if (!t)
		return;
	for (uint32_t i = 0; i < t->nrcpt; i++) {
		free(t->rcpt[i].addr);
		free(t->rcpt[i].orcpt);
	}
	free(t->rcpt);
	queue_spool_free(t->spool);
	free(t);
	s->txn = NULL;
}

static void log_disconnect(struct smtp_session *s)
{
	struct maillog_cmd_count c[C_COUNT];
	for (int i = 0; i < C_COUNT; i++) {
		c[i].name = count_names[i];
		c[i].ok = s->ok[i];
		c[i].total = s->total[i];
	}
	maillog_disconnect(s->client_name, s->client_addr, c, C_COUNT);
}

void smtp_session_unref(struct smtp_session *s)
{
	if (--s->refs > 0)
		return;
	log_disconnect(s);
	smtp_txn_reset(s);
	smtp_auth_free(s);
	free(s->helo);
	free(s->auth_user);
	s->env->session_ended(s->env->srv, s);
	config_unref(s->cfg);
	free(s);
}

static void on_timer_closed(uv_handle_t *h)
{
	smtp_session_unref(h->data);
}

static void on_conn_closed(void *arg)
{
	struct smtp_session *s = arg;
	const char *err = conn_error(s->conn);
	if (*err)
		log_info(LOG_SVC_SMTPD, "SSL_accept error from %s[%s]: %s",
			 s->client_name, s->client_addr, err);
	s->conn = NULL;
	if (s->state != SS_DONE) {
		s->state = SS_DONE;
	}
	if (!uv_is_closing((uv_handle_t *)&s->timer))
		uv_close((uv_handle_t *)&s->timer, on_timer_closed);
	smtp_session_unref(s);
}

static void on_timer(uv_timer_t *t);

/* Close the session: flush replies, close the connection; the session is
 * freed when the connection, the timer and any pending work are done. */
void smtp_session_end(struct smtp_session *s)
{
	if (s->state == SS_DONE && (!s->conn || conn_closing(s->conn)))
		return;
	s->state = SS_DONE;
	if (s->conn) {
		conn_close(s->conn);
		/* Bound the close: an idle period at most, ten seconds at
		 * least rarely matters. */
		uv_timer_start(&s->timer, on_timer,
			       s->cfg->smtpd_timeout * 1000, 0);
	}
}

/* ---- timeouts ---- */

static uint64_t session_cap(const struct smtp_session *s)
{
	/* A total bound keeps a trickling client from holding a session
	 * forever; twelve idle periods is an hour at the default. */
	return s->cfg->smtpd_timeout * 12;
}

static void on_timer(uv_timer_t *t)
{
	struct smtp_session *s = t->data;
	uint64_t now = uv_now(s->env->loop);
	if (!s->conn)
		return;
	if (s->state == SS_DONE) {
		/* Still closing at the next tick: a TLS handshake that never
		 * completes, or a peer that reads nothing. */
		conn_abort(s->conn);
		return;
	}
	if (s->state == SS_WAIT) {
		/* Waiting on our own commit or hash check: not the client. */
		uv_timer_start(&s->timer, on_timer, 1000, 0);
		return;
	}
	uint64_t idle = s->cfg->smtpd_timeout * 1000;
	int capped = now - s->started >= session_cap(s) * 1000;
	if (!capped && now - s->last_input < idle) {
		uv_timer_start(&s->timer, on_timer, idle - (now - s->last_input), 0);
		return;
	}
	const char *what = capped ? "session time limit exceeded" : "timeout exceeded";
	log_info(LOG_SVC_SMTPD, "%s after %s from %s[%s]",
		 capped ? "session limit" : "timeout",
		 s->state == SS_DATA || s->state == SS_BDAT ? "DATA" : "command",
		 s->client_name, s->client_addr);
	smtp_reply(s, "421 4.4.2 %s Error: %s", s->cfg->hostname, what);
	smtp_session_end(s);
}

static void arm_timer(struct smtp_session *s)
{
	s->last_input = uv_now(s->env->loop);
	if (!uv_is_active((uv_handle_t *)&s->timer))
		uv_timer_start(&s->timer, on_timer, s->cfg->smtpd_timeout * 1000, 0);
}

/* ---- envelope commands ---- */

static int need_arg(struct smtp_session *s, const char *arg, const char *syntax)
{
	if (*arg)
		return 1;
	smtp_reply(s, "501 5.5.4 Syntax: %s", syntax);
	return 0;
}

/* 1 when every byte is printable ASCII other than the space. */
static int printable_word(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x21 || (unsigned char)*s > 0x7e)
			return 0;
	return 1;
}

static int set_helo(struct smtp_session *s, const char *arg)
{
	/* A domain or an address literal (RFC 5321 §4.1.1.1), in ASCII
	 * (A-labels): it reaches the logs and our Received: header. */
	size_t n = strlen(arg);
	if (n > 255 || !printable_word(arg) || strpbrk(arg, "<>\"")) {
		smtp_reply(s, "501 5.5.2 Error: invalid hostname");
		return -1;
	}
	free(s->helo);
	s->helo = strdup(arg);
	smtp_txn_reset(s);
	return 0;
}

static void cmd_helo(struct smtp_session *s, const char *arg)
{
	if (!need_arg(s, arg, "HELO hostname") || set_helo(s, arg)) {
		smtp_count(s, C_HELO, 0);
		return;
	}
	s->esmtp = 0;
	smtp_count(s, C_HELO, 1);
	smtp_reply(s, "250 %s", s->cfg->hostname);
}

static void cmd_ehlo(struct smtp_session *s, const char *arg)
{
	if (!need_arg(s, arg, "EHLO hostname") || set_helo(s, arg)) {
		smtp_count(s, C_EHLO, 0);
		return;
	}
	s->esmtp = 1;
	smtp_count(s, C_EHLO, 1);
	const struct config *cfg = s->cfg;
	char buf[1024];
	int n = snprintf(buf, sizeof(buf),
			 "250-%s\r\n250-PIPELINING\r\n250-SIZE %llu\r\n",
			 cfg->hostname, (unsigned long long)cfg->message_size_limit);
	if (s->tls && !conn_is_tls(s->conn))
		n += snprintf(buf + n, sizeof(buf) - (size_t)n, "250-STARTTLS\r\n");
	if (smtp_auth_offered(s))
		n += snprintf(buf + n, sizeof(buf) - (size_t)n, "250-AUTH PLAIN LOGIN\r\n");
	n += snprintf(buf + n, sizeof(buf) - (size_t)n,
		      "250-ENHANCEDSTATUSCODES\r\n250-8BITMIME\r\n250-DSN\r\n"
		      "250-SMTPUTF8\r\n250 CHUNKING\r\n");
	conn_write(s->conn, buf, (size_t)n);
	metric_inc_label(METRIC_SMTPD_REPLIES, METRIC_CLASS_2XX);
}

/* May this session relay (RFC 5321 §3.6.1; relayd delivers nothing
 * locally, so every recipient is relayed)? */
static int may_relay(const struct smtp_session *s)
{
	return s->auth_user || (s->kind == SMTP_PORT_SMTP && s->trusted);
}

static void cmd_mail(struct smtp_session *s, const char *arg)
{
	const char *err;
	struct smtp_mail_args m;
	int ok = 0;
	if (!s->helo) {
		smtp_reply(s, "503 5.5.1 Error: send HELO/EHLO first");
	} else if (s->txn) {
		smtp_reply(s, "503 5.5.1 Error: nested MAIL command");
	} else if (s->kind != SMTP_PORT_SMTP && !s->auth_user) {
		smtp_reply(s, "530 5.7.0 Authentication required");
	} else if (smtp_parse_mail(arg, &m, &err)) {
		smtp_reply(s, "%s", err);
	} else if (!s->esmtp && (m.size || m.body_8bit || m.smtputf8 || m.ret ||
				 m.envid[0])) {
		smtp_reply(s, "555 5.5.4 ESMTP parameters need EHLO");
	} else if (m.size > s->cfg->message_size_limit) {
		smtp_reply(s, "552 5.3.4 Message size exceeds fixed limit");
	} else if (smtp_auth_sender_check(s, m.addr)) {
		/* reply sent by the check */
	} else if (!(s->txn = calloc(1, sizeof(*s->txn)))) {
		smtp_reply(s, "451 4.3.0 Error: out of memory");
	} else {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		s->txn->arrival_us = (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
		s->txn->mail = m;
		queue_id_new(s->env->queue, &s->txn->id);
		smtp_reply(s, "250 2.1.0 Ok");
		ok = 1;
	}
	smtp_count(s, C_MAIL, ok);
}

static int add_rcpt(struct smtp_txn *t, const struct smtp_rcpt_args *r)
{
	if (t->nrcpt == t->cap) {
		uint32_t cap = t->cap ? t->cap * 2 : 4;
		struct queue_rcpt *n = realloc(t->rcpt, cap * sizeof(*n));
		if (!n)
			return -1;
		t->rcpt = n;
		t->cap = cap;
	}
	struct queue_rcpt *q = &t->rcpt[t->nrcpt];
	memset(q, 0, sizeof(*q));
	q->addr = strdup(r->addr);
	q->orcpt = r->orcpt[0] ? strdup(r->orcpt) : NULL;
	q->notify = r->notify;
	if (!q->addr || (r->orcpt[0] && !q->orcpt)) {
		free(q->addr);
		free(q->orcpt);
		return -1;
	}
	t->nrcpt++;
	return 0;
}

static void cmd_rcpt(struct smtp_session *s, const char *arg)
{
	const char *err;
	struct smtp_rcpt_args r;
	int ok = 0;
	if (!s->txn) {
		smtp_reply(s, "503 5.5.1 Error: need MAIL command");
	} else if (s->txn->data_started) {
		/* RFC 3030 §3: the envelope is closed once content flows;
		 * the Received: "for" clause is already written. */
		smtp_reply(s, "503 5.5.1 Error: BDAT in progress, RCPT not allowed");
	} else if (smtp_parse_rcpt(arg, s->txn->mail.smtputf8, &r, &err)) {
		smtp_reply(s, "%s", err);
	} else if (!s->esmtp && (r.notify || r.orcpt[0])) {
		smtp_reply(s, "555 5.5.4 ESMTP parameters need EHLO");
	} else if (!may_relay(s)) {
		log_info(LOG_SVC_SMTPD,
			 "NOQUEUE: reject: RCPT from %s[%s]: 554 5.7.1 <%s>: Relay access denied; from=<%s> to=<%s> helo=<%s>",
			 s->client_name, s->client_addr, r.addr, s->txn->mail.addr,
			 r.addr, s->helo);
		smtp_reply(s, "554 5.7.1 Relay access denied");
	} else if (s->txn->nrcpt >= s->cfg->recipient_limit) {
		smtp_reply(s, "452 4.5.3 Error: too many recipients");
	} else if (add_rcpt(s->txn, &r)) {
		smtp_reply(s, "451 4.3.0 Error: out of memory");
	} else {
		/* As Postfix: the queue id's first line comes with the first
		 * recipient taken, so log summaries count a refused
		 * transaction as a rejection only, not also as received. */
		if (s->txn->nrcpt == 1)
			maillog_client(s->txn->id.s, s->client_name, s->client_addr,
				       s->auth_user ? s->auth_method : NULL, s->auth_user);
		smtp_reply(s, "250 2.1.5 Ok");
		ok = 1;
	}
	smtp_count(s, C_RCPT, ok);
}

static void cmd_rset(struct smtp_session *s, const char *arg)
{
	if (*arg) {
		smtp_count(s, C_RSET, 0);
		smtp_reply(s, "501 5.5.4 Syntax: RSET");
		return;
	}
	smtp_txn_reset(s);
	smtp_count(s, C_RSET, 1);
	smtp_reply(s, "250 2.0.0 Ok");
}

static void cmd_noop(struct smtp_session *s, const char *arg)
{
	smtp_count(s, C_NOOP, 1);
	smtp_reply(s, "250 2.0.0 Ok");
}

static void cmd_vrfy(struct smtp_session *s, const char *arg)
{
	/* RFC 5321 §3.5.3: 252, and nothing about who exists. */
	if (!need_arg(s, arg, "VRFY address")) {
		smtp_count(s, C_VRFY, 0);
		return;
	}
	smtp_count(s, C_VRFY, 1);
	smtp_reply(s, "252 2.0.0 Cannot VRFY user, but will accept message and attempt delivery");
}

static void cmd_help(struct smtp_session *s, const char *arg)
{
	smtp_count(s, C_HELP, 1);
	smtp_reply(s, "214 2.0.0 Commands: EHLO HELO MAIL RCPT DATA BDAT RSET NOOP VRFY HELP QUIT STARTTLS AUTH");
}

static void cmd_quit(struct smtp_session *s, const char *arg)
{
	smtp_count(s, C_QUIT, 1);
	smtp_reply(s, "221 2.0.0 Bye");
	s->quitting = 1;
}

static void cmd_expn(struct smtp_session *s, const char *arg)
{
	smtp_count(s, C_UNKNOWN, 0);
	smtp_reply(s, "502 5.5.1 Error: EXPN not supported");
}

struct smtp_cmd {
	const char *name;
	void (*fn)(struct smtp_session *s, const char *arg);
};

static const struct smtp_cmd commands[] = {
	{ "EHLO", cmd_ehlo }, { "HELO", cmd_helo }, { "MAIL", cmd_mail },
	{ "RCPT", cmd_rcpt }, { "DATA", smtp_cmd_data }, { "BDAT", smtp_cmd_bdat },
	{ "RSET", cmd_rset }, { "NOOP", cmd_noop }, { "QUIT", cmd_quit },
	{ "VRFY", cmd_vrfy }, { "HELP", cmd_help }, { "EXPN", cmd_expn },
	{ "STARTTLS", smtp_cmd_starttls }, { "AUTH", smtp_cmd_auth },
};

/* One complete command line (CRLF removed, validated). */
static void dispatch(struct smtp_session *s, char *line)
{
	size_t vn = strcspn(line, " ");
	char *arg = line + vn;
	while (*arg == ' ')
		arg++;
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		if (strlen(commands[i].name) == vn &&
		    strncasecmp(line, commands[i].name, vn) == 0) {
			commands[i].fn(s, arg);
			return;
		}
	}
	smtp_count(s, C_UNKNOWN, 0);
	smtp_reply(s, "502 5.5.2 Error: command not recognized");
}

/* Take k bytes of input; 1 (progress) for command_line's caller. */
static int took(struct smtp_session *s, size_t k)
{
	conn_consume(s->conn, k);
	return 1;
}

/* The longest line (CRLF included) the command starting at p may be.
 * Fewer than five bytes cannot name a longer command yet; they are far
 * below every bound, so the caller waits for more. */
static size_t line_max(const struct smtp_session *s, const char *p, size_t n)
{
	if (s->state == SS_AUTH || (n >= 5 && !strncasecmp(p, "AUTH ", 5)))
		return SMTP_AUTH_LINE_MAX;
	if (n >= 5 && (!strncasecmp(p, "MAIL ", 5) || !strncasecmp(p, "RCPT ", 5)))
		return SMTP_PARAM_LINE_MAX;
	return SMTP_LINE_MAX;
}

/* Handle one line from the input, consuming it before it is acted on, so
 * a command that resets the input (STARTTLS) resets only what follows.
 * Returns 0 when no complete line is buffered yet, else 1. */
static int command_line(struct smtp_session *s, const char *p, size_t n)
{
	size_t max = line_max(s, p, n);
	const char *lf = memchr(p, '\n', n);
	if (s->discard_line) {
		/* The rest of a line already refused as too long. */
		if (!lf)
			return took(s, n);
		s->discard_line = 0;
		return took(s, (size_t)(lf - p) + 1);
	}
	if (!lf) {
		if (n < max)
			return 0;
		/* Already longer than its command may be, whatever follows:
		 * refuse once and drop the rest of the line as it arrives,
		 * so no more than max bytes of one line are ever held. */
		smtp_reply(s, "500 5.5.2 Error: line too long");
		s->discard_line = 1;
		return took(s, n);
	}
	size_t len = (size_t)(lf - p) + 1;
	if (len < 2 || p[len - 2] != '\r') {
		smtp_reply(s, "500 5.5.2 Error: bare <LF> received");
		return took(s, len);
	}
	if (len > max) {
		smtp_reply(s, "500 5.5.2 Error: line too long");
		return took(s, len);
	}
	char line[SMTP_AUTH_LINE_MAX + 1];
	memcpy(line, p, len - 2);
	line[len - 2] = 0;
	if (memchr(line, '\r', len - 2)) {
		smtp_reply(s, "500 5.5.2 Error: bare <CR> received");
		return took(s, len);
	}
	if (memchr(line, 0, len - 2)) {
		smtp_reply(s, "500 5.5.2 Error: NUL character in command");
		return took(s, len);
	}
	took(s, len);
	if (s->state == SS_AUTH)
		smtp_auth_line(s, line, len - 2);
	else
		dispatch(s, line);
	return 1;
}

/* During a graceful stop, a session between commands ends now, unless a
 * BDAT message is half received: that one may finish. */
static int stop_now(const struct smtp_session *s)
{
	return s->env->stopping && s->state == SS_CMD &&
	       !(s->txn && s->txn->data_started);
}

/* Process buffered input until it runs out or the session must wait:
 * for a commit or a password check, or for a client that does not read
 * its replies (the output bound; conn calls on_input when it drains). */
void smtp_process(struct smtp_session *s)
{
	while (s->conn && !s->quitting && s->state != SS_DONE &&
	       s->state != SS_WAIT && !stop_now(s) && !conn_output_full(s->conn)) {
		size_t n;
		const char *p = conn_input(s->conn, &n);
		if (n == 0)
			break;
		if (s->state == SS_DATA || s->state == SS_BDAT) {
			size_t used = smtp_receive_input(s, p, n);
			if (used == 0)
				break;
			conn_consume(s->conn, used);
		} else if (!command_line(s, p, n)) {
			break;
		}
	}
	if (!s->conn)
		return;
	if (s->quitting || stop_now(s)) {
		if (!s->quitting)
			smtp_reply(s, "421 4.3.2 %s Service shutting down",
				   s->cfg->hostname);
		smtp_session_end(s);
		return;
	}
	conn_flush(s->conn);
	if (conn_eof(s->conn) && s->state != SS_WAIT) {
		if (s->state == SS_DATA || s->state == SS_BDAT)
			log_info(LOG_SVC_SMTPD, "lost connection after %s from %s[%s]",
				 s->state == SS_DATA ? "DATA" : "BDAT",
				 s->client_name, s->client_addr);
		smtp_session_end(s);
	}
}

static void on_input(void *arg)
{
	struct smtp_session *s = arg;
	arm_timer(s);
	smtp_process(s);
}

static const struct conn_cb session_cb = {
	.on_input = on_input,
	.on_closed = on_conn_closed,
};

/* Log the connection, then refuse it or send the banner. */
static void greet(struct smtp_session *s, int refused, const char *busy_msg)
{
	maillog_connect(s->client_name, s->client_addr);
	if (refused || busy_msg) {
		if (!refused)
			smtp_reply(s, "%s", busy_msg);
		smtp_session_end(s);
		return;
	}
	/* On 465 this is written into TLS and leaves after the handshake. */
	smtp_reply(s, "220 %s ESMTP relayd", s->cfg->hostname);
	conn_flush(s->conn);
	arm_timer(s);
}

static void on_client_name(void *arg, const char *name)
{
	struct smtp_session *s = arg;
	snprintf(s->client_name, sizeof(s->client_name), "%s", name);
	if (s->conn && s->state == SS_WAIT) {
		s->state = SS_CMD;
		greet(s, 0, NULL);
		smtp_process(s);       /* what the client sent too early */
	} else {
		maillog_connect(s->client_name, s->client_addr);
	}
	smtp_session_unref(s);
}

/* Look the client's name up before the banner, for at most
 * CLIENT_NAME_WAIT_MS; the session waits holding a reference.  Returns
 * 0 when there is nothing to wait for (no lookups, or a cached name). */
static int wait_client_name(struct smtp_session *s)
{
	if (!s->env->dns || !s->cfg->smtpd_peername_lookup)
		return 0;
	s->refs++;
	s->state = SS_WAIT;
	/* No need to keep the handle: the lookup ends within the wait, and
	 * the reference keeps the session until it does. */
	client_name_start(s->env->loop, s->env->dns,
			  (const struct sockaddr *)&s->peer, CLIENT_NAME_WAIT_MS,
			  on_client_name, s);
	return 1;
}

struct smtp_session *smtp_session_new(struct smtpd_env *env, struct conn *c,
				      enum smtp_listener_kind kind,
				      const char *busy_msg)
{
	struct smtp_session *s = calloc(1, sizeof(*s));
	if (!s) {
		conn_start(c, NULL, NULL);
		conn_close(c);
		return NULL;
	}
	s->env = env;
	s->cfg = config_ref(env->cfg);
	s->conn = c;
	s->kind = kind;
	s->refs = 2;                  /* the conn and the timer */
	s->started = s->last_input = uv_now(env->loop);
	strcpy(s->client_name, "unknown");
	snprintf(s->client_addr, sizeof(s->client_addr), "%s", conn_peer_ip(c));
	s->peer = *conn_peer(c);
	s->trusted = config_cidr_match(&s->cfg->trusted_networks,
				       (const struct sockaddr *)conn_peer(c));
	uv_timer_init(env->loop, &s->timer);
	s->timer.data = s;
	conn_start(c, &session_cb, s);
	/* On 465 TLS starts first, so even a refusal goes out encrypted
	 * (RFC 8314 §3.3). */
	int refused = smtp_auth_session_start(s);
	if (refused || busy_msg || !wait_client_name(s))
		greet(s, refused, busy_msg);
	return s;
}

void smtp_session_shutdown(struct smtp_session *s)
{
	s->stop_requested = 1;
	if (s->conn && stop_now(s)) {
		smtp_reply(s, "421 4.3.2 %s Service shutting down", s->cfg->hostname);
		smtp_session_end(s);
	}
}

/* The stop deadline passed.  Returns 1 when the session is not gone yet
 * (waiting for a commit or a check, or sending its 421): the server
 * calls again shortly, and a session stuck closing is then cut off. */
int smtp_session_abort(struct smtp_session *s)
{
	if (!s->conn)
		return 0;
	if (s->state == SS_WAIT)
		return 1;
	if (s->state == SS_DONE || conn_closing(s->conn)) {
		/* Already closing, but stuck: a handshake that never ends or
		 * a peer that reads nothing. */
		conn_abort(s->conn);
		return 0;
	}
	/* Say why, and give the 421 one more pass to leave. */
	smtp_reply(s, "421 4.3.2 %s Service shutting down", s->cfg->hostname);
	smtp_session_end(s);
	return 1;
}

struct smtp_session *smtp_session_next(struct smtp_session *s)
{
	return s->next;
}

void smtp_session_link(struct smtp_session *s, struct smtp_session **head)
{
	s->next = *head;
	if (s->next)
		s->next->pprev = &s->next;
	s->pprev = head;
	*head = s;
}

void smtp_session_unlink(struct smtp_session *s)
{
	if (!s->pprev)
		return;
	*s->pprev = s->next;
	if (s->next)
		s->next->pprev = s->pprev;
	s->pprev = NULL;
	s->next = NULL;
}

const struct sockaddr_storage *smtp_session_peer(const struct smtp_session *s)
{
	return &s->peer;
}
