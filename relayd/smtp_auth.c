/*
 * smtp_auth.c - STARTTLS (RFC 3207), implicit TLS (RFC 8314), SMTP AUTH
 * PLAIN and LOGIN (RFC 4954, 4616) with the brute-force throttle, and the
 * sender ownership check.
 *
 * AUTH is offered and accepted only under TLS.  Password checks run on the
 * thread pool, bounded and in turns (auth_queue.h); the session waits in
 * SS_WAIT meanwhile.  A failed check is answered after a delay that grows
 * with the recent failures of the client (address or IPv6 /64) and of the
 * user name; past the client's limit the client is refused for a while,
 * past the user name's the name is (auth_throttle.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include "auth.h"
#include "auth_queue.h"
#include "auth_throttle.h"
#include "conn.h"
#include "log.h"
#include "smtp_session_int.h"
#include "tls.h"

enum mech { MECH_PLAIN, MECH_LOGIN };

struct smtp_auth_state {
	struct smtp_session *s;
	enum mech mech;
	int step;                    /* LOGIN: 0 user, 1 password */
	char user[256];
	uv_timer_t delay;            /* the failure delay */
	int delay_init;
	char reply[128];
	struct auth_db *db;          /* the credentials checked against */
};

static const char *mech_name(enum mech m)
{
	return m == MECH_PLAIN ? "PLAIN" : "LOGIN";
}

int smtp_auth_offered(const struct smtp_session *s)
{
	return s->env->auth && conn_is_tls(s->conn) && !s->auth_user;
}

int smtp_auth_session_start(struct smtp_session *s)
{
	if (s->env->tls) {
		s->tls = s->env->tls;
		tls_ctx_ref(s->tls);
	}
	if (s->kind == SMTP_PORT_SUBMISSIONS &&
	    (!s->tls || conn_starttls(s->conn, s->tls))) {
		log_warn(LOG_SVC_SMTPD, "cannot start TLS for %s[%s]", s->client_name,
			 s->client_addr);
		return -1;
	}
	unsigned char key[16];
	smtp_server_addr_key(&s->peer, key);
	if (s->kind != SMTP_PORT_SMTP &&
	    auth_throttle_blocked(s->env->throttle, key, time(NULL))) {
		smtp_reply(s, "421 4.7.0 %s Error: too many authentication failures; try again later",
			   s->cfg->hostname);
		return -1;
	}
	return 0;
}

static void state_free(struct smtp_auth_state *a)
{
	if (a) {
		auth_db_unref(a->db);
		free(a);
	}
}

static void delay_closed(uv_handle_t *h)
{
	struct smtp_auth_state *a = h->data;
	struct smtp_session *s = a->s;
	state_free(a);
	smtp_session_unref(s);
}

void smtp_auth_free(struct smtp_session *s)
{
	if (s->tls) {
		tls_ctx_unref(s->tls);
		s->tls = NULL;
	}
	auth_db_unref(s->auth_db);
	s->auth_db = NULL;
	state_free(s->auth);
	s->auth = NULL;
}

/* End the exchange.  The state is detached at once, so a pipelined AUTH
 * can start afresh; it is freed when its timer has closed. */
static void exchange_end(struct smtp_session *s)
{
	struct smtp_auth_state *a = s->auth;
	if (!a)
		return;
	s->auth = NULL;
	if (a->delay_init) {
		s->refs++;
		a->delay.data = a;
		uv_close((uv_handle_t *)&a->delay, delay_closed);
	} else {
		state_free(a);
	}
	if (s->state == SS_AUTH || s->state == SS_WAIT)
		s->state = SS_CMD;
}

void smtp_cmd_starttls(struct smtp_session *s, const char *arg)
{
	const char *err = NULL;
	if (*arg)
		err = "501 5.5.4 Syntax: STARTTLS";
	else if (!s->tls)
		err = "502 5.5.1 Error: command not implemented";
	else if (conn_is_tls(s->conn))
		err = "554 5.5.1 Error: TLS already active";
	if (err) {
		smtp_count(s, C_STARTTLS, 0);
		smtp_reply(s, "%s", err);
		return;
	}
	smtp_count(s, C_STARTTLS, 1);
	smtp_reply(s, "220 2.0.0 Ready to start TLS");
	conn_flush(s->conn);
	/* RFC 3207 §4.2: forget everything learned before TLS; the client
	 * must EHLO again.  conn_starttls drops pipelined cleartext. */
	smtp_txn_reset(s);
	free(s->helo);
	s->helo = NULL;
	s->esmtp = 0;
	if (conn_starttls(s->conn, s->tls)) {
		log_warn(LOG_SVC_SMTPD, "cannot start TLS for %s[%s]", s->client_name,
			 s->client_addr);
		smtp_session_end(s);
	}
}

/* Decode base64 into out (NUL-terminated); -1 when malformed. */
static int b64_decode(const char *in, size_t inlen, char *out, size_t outlen,
		      size_t *n)
{
	if (inlen % 4 || inlen / 4 * 3 + 1 > outlen)
		return -1;
	for (size_t i = 0; i < inlen; i++) {
		char c = in[i];
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		      (c >= '0' && c <= '9') || c == '+' || c == '/' ||
		      (c == '=' && i >= inlen - 2 && (i == inlen - 1 || in[inlen - 1] == '='))))
			return -1;
	}
	int len = EVP_DecodeBlock((unsigned char *)out, (const unsigned char *)in,
				  (int)inlen);
	if (len < 0)
		return -1;
	/* EVP_DecodeBlock counts padding as zero bytes. */
	if (inlen >= 1 && in[inlen - 1] == '=')
		len--;
	if (inlen >= 2 && in[inlen - 2] == '=')
		len--;
	out[len] = 0;
	*n = (size_t)len;
	return 0;
}

static void fail_reply(uv_timer_t *t)
{
	struct smtp_session *s = t->data;
	struct smtp_auth_state *a = s->auth;
	if (s->conn && s->state == SS_WAIT) {
		s->state = SS_CMD;
		smtp_reply(s, "%s", a->reply);
		if (strncmp(a->reply, "421", 3) == 0)
			s->quitting = 1;
		exchange_end(s);
		conn_resume(s->conn);
		smtp_process(s);
	} else {
		exchange_end(s);
	}
	smtp_session_unref(s);
}

static void on_verified(void *arg, int ok)
{
	struct smtp_session *s = arg;
	struct smtp_auth_state *a = s->auth;
	unsigned char key[16];
	smtp_server_addr_key(&s->peer, key);
	if (!s->conn || s->state != SS_WAIT) {
		exchange_end(s);
		smtp_session_unref(s);
		return;
	}
	if (ok) {
		/* A success does not wipe the address's failures: one valid
		 * account must not buy unlimited guesses at the others. */
		s->auth_user = strdup(a->user);
		s->auth_db = a->db;
		a->db = NULL;
		s->auth_method = mech_name(a->mech);
		smtp_count(s, C_AUTH, s->auth_user != NULL);
		smtp_reply(s, s->auth_user ? "235 2.7.0 Authentication successful"
				: "454 4.7.0 Temporary authentication failure");
		exchange_end(s);
		conn_resume(s->conn);
		smtp_process(s);
		smtp_session_unref(s);
		return;
	}
	/* Postfix's wording, which fail2ban's filters match, with the name
	 * tried (escaped by the log like any client text). */
	log_warn(LOG_SVC_SMTPD, "%s[%s]: SASL %s authentication failed: authentication failure, sasl_username=%s",
		 s->client_name, s->client_addr, mech_name(a->mech), a->user);
	smtp_count(s, C_AUTH, 0);
	time_t now = time(NULL);
	long ms = auth_throttle_fail(s->env->throttle, key, now);
	unsigned char ukey[16];
	auth_throttle_user_key(a->user, ukey);
	long ums = auth_throttle_fail(s->env->user_throttle, ukey, now);
	if (ums < 0) {
		/* The log escapes client text such as the name. */
		log_warn(LOG_SVC_SMTPD, "too many authentication failures for user %s; refusing it for up to %d s",
			 a->user, AUTH_USER_BLOCK_TIME);
		ums = auth_throttle_user_policy.max_ms;
	}
	if (ms >= 0 && ums > ms)
		ms = ums;
	if (ms < 0) {
		log_warn(LOG_SVC_SMTPD, "%s[%s]: too many authentication failures; refusing for %d s",
			 s->client_name, s->client_addr, AUTH_BLOCK_TIME);
		snprintf(a->reply, sizeof(a->reply),
			 "421 4.7.0 Error: too many authentication failures");
		ms = 0;
	} else {
		snprintf(a->reply, sizeof(a->reply),
			 "535 5.7.8 Error: authentication failed: authentication failure");
	}
	uv_timer_init(s->env->loop, &a->delay);
	a->delay.data = s;
	a->delay_init = 1;
	/* The session reference of the check carries over to the timer. */
	uv_timer_start(&a->delay, fail_reply, (uint64_t)ms, 0);
}

/* Credentials complete: check them off the loop. */
static void verify(struct smtp_session *s, const char *pass)
{
	unsigned char ukey[16];
	auth_throttle_user_key(s->auth->user, ukey);
	if (auth_throttle_blocked(s->env->user_throttle, ukey, time(NULL))) {
		/* Temporary, and no password check: the real user's client
		 * retries later, and the attacker learns nothing. */
		log_info(LOG_SVC_SMTPD, "%s[%s]: AUTH refused: user %s is blocked after too many failures",
			 s->client_name, s->client_addr, s->auth->user);
		smtp_count(s, C_AUTH, 0);
		smtp_reply(s, "454 4.7.0 Temporary authentication failure: too many failures for this user; try again later");
		exchange_end(s);
		return;
	}
	/* The session keeps the db its user was checked against: its sender
	 * map still applies if a reload drops or replaces it. */
	s->auth->db = s->env->auth;
	auth_db_ref(s->auth->db);
	unsigned char key[16];
	smtp_server_addr_key(&s->peer, key);
	int suspect = auth_throttle_known(s->env->throttle, key, time(NULL));
	int rc = s->env->auth ? auth_queue_check(s->env->checks, s->env->auth, key, suspect,
						 s->auth->user, pass, on_verified, s) : -1;
	if (rc) {
		if (rc == AUTH_QUEUE_BUSY)
			log_info(LOG_SVC_SMTPD, "%s[%s]: AUTH refused: too many password checks waiting",
				 s->client_name, s->client_addr);
		smtp_count(s, C_AUTH, 0);
		smtp_reply(s, "454 4.7.0 Temporary authentication failure");
		exchange_end(s);
		return;
	}
	s->refs++;
	s->state = SS_WAIT;
	conn_pause(s->conn);
}

/* RFC 4616: [authzid] NUL authcid NUL passwd. */
static void plain_response(struct smtp_session *s, const char *resp, size_t n)
{
	char buf[SMTP_AUTH_LINE_MAX];
	size_t len;
	if (b64_decode(resp, n, buf, sizeof(buf), &len)) {
		smtp_count(s, C_AUTH, 0);
		smtp_reply(s, "501 5.5.2 Error: malformed base64 response");
		exchange_end(s);
		return;
	}
	const char *authz = buf;
	const char *nul1 = memchr(buf, 0, len);
	const char *nul2 = nul1 ? memchr(nul1 + 1, 0, len - (size_t)(nul1 + 1 - buf)) : NULL;
	const char *authc = nul1 ? nul1 + 1 : NULL;
	if (!nul2 || !*authc || strlen(authc) >= sizeof(s->auth->user) ||
	    (*authz && strcmp(authz, authc) != 0)) {
		OPENSSL_cleanse(buf, sizeof(buf));
		smtp_count(s, C_AUTH, 0);
		smtp_reply(s, "535 5.7.8 Error: authentication failed: bad PLAIN response");
		exchange_end(s);
		return;
	}
	strcpy(s->auth->user, authc);
	verify(s, nul2 + 1);
	OPENSSL_cleanse(buf, sizeof(buf));
}

static void login_response(struct smtp_session *s, const char *resp, size_t n)
{
	char buf[SMTP_AUTH_LINE_MAX];
	size_t len;
	if (b64_decode(resp, n, buf, sizeof(buf), &len) || memchr(buf, 0, len)) {
		smtp_count(s, C_AUTH, 0);
		smtp_reply(s, "501 5.5.2 Error: malformed base64 response");
		exchange_end(s);
		return;
	}
	if (s->auth->step == 0) {
		if (!len || len >= sizeof(s->auth->user)) {
			smtp_count(s, C_AUTH, 0);
			smtp_reply(s, "535 5.7.8 Error: authentication failed: bad username");
			exchange_end(s);
			return;
		}
		strcpy(s->auth->user, buf);
		s->auth->step = 1;
		s->state = SS_AUTH;
		smtp_reply(s, "334 UGFzc3dvcmQ6");   /* "Password:" */
		return;
	}
	verify(s, buf);
	OPENSSL_cleanse(buf, sizeof(buf));
}

static void response(struct smtp_session *s, const char *resp, size_t n)
{
	if (s->auth->mech == MECH_PLAIN)
		plain_response(s, resp, n);
	else
		login_response(s, resp, n);
}

void smtp_auth_line(struct smtp_session *s, const char *line, size_t len)
{
	s->state = SS_CMD;
	if (len == 1 && line[0] == '*') {
		smtp_count(s, C_AUTH, 0);
		smtp_reply(s, "501 5.7.0 Error: authentication aborted");
		exchange_end(s);
		return;
	}
	response(s, line, len);
}

void smtp_cmd_auth(struct smtp_session *s, const char *arg)
{
	const char *err = NULL;
	char mech[32];
	size_t ml = strcspn(arg, " ");
	const char *initial = arg[ml] ? arg + ml + 1 : NULL;
	if (!s->env->auth || !s->tls)
		err = "502 5.5.1 Error: authentication not enabled";
	else if (!conn_is_tls(s->conn))
		err = "538 5.7.11 Encryption required for requested authentication mechanism";
	else if (!s->helo)
		err = "503 5.5.1 Error: send HELO/EHLO first";
	else if (s->auth_user)
		err = "503 5.5.1 Error: already authenticated";
	else if (s->txn)
		err = "503 5.5.1 Error: MAIL transaction in progress";
	else if (ml == 0 || ml >= sizeof(mech))
		err = "501 5.5.4 Syntax: AUTH mechanism";
	if (!err) {
		unsigned char key[16];
		smtp_server_addr_key(&s->peer, key);
		if (auth_throttle_blocked(s->env->throttle, key, time(NULL))) {
			smtp_count(s, C_AUTH, 0);
			smtp_reply(s, "421 4.7.0 Error: too many authentication failures");
			s->quitting = 1;
			return;
		}
	}
	if (!err) {
		memcpy(mech, arg, ml);
		mech[ml] = 0;
		if (strcasecmp(mech, "PLAIN") && strcasecmp(mech, "LOGIN"))
			err = "504 5.5.4 Error: unsupported authentication mechanism";
	}
	if (!err && !(s->auth = calloc(1, sizeof(*s->auth))))
		err = "454 4.7.0 Temporary authentication failure";
	if (!err)
		s->auth->s = s;
	if (err) {
		smtp_count(s, C_AUTH, 0);
		smtp_reply(s, "%s", err);
		return;
	}
	s->auth->mech = strcasecmp(mech, "PLAIN") ? MECH_LOGIN : MECH_PLAIN;
	if (initial && !strcmp(initial, "="))
		initial = "";            /* RFC 4954 §4: "=" is an empty response */
	if (initial) {
		response(s, initial, strlen(initial));
		return;
	}
	s->state = SS_AUTH;
	smtp_reply(s, s->auth->mech == MECH_PLAIN ? "334 " : "334 VXNlcm5hbWU6");
}

int smtp_auth_sender_check(struct smtp_session *s, const char *sender)
{
	if (!s->auth_user || s->cfg->sender_login_policy == SENDER_POLICY_ANY)
		return 0;
	if (s->auth_db && auth_sender_allowed(s->auth_db, s->auth_user, sender))
		return 0;
	log_info(LOG_SVC_SMTPD,
		 "NOQUEUE: reject: MAIL from %s[%s]: 553 5.7.1 <%s>: Sender address rejected: not owned by user %s",
		 s->client_name, s->client_addr, sender, s->auth_user);
	smtp_reply(s, "553 5.7.1 <%s>: Sender address rejected: not owned by user %s",
		   sender, s->auth_user);
	return -1;
}
