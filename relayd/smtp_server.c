/*
 * smtp_server.c - listeners, accept, per-client connection counting and
 * the graceful stop of every session (smtp_server.h).
 */
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include "conn.h"
#include "log.h"
#include "metrics.h"
#include "smtp_server.h"
#include "smtp_session.h"
#include "tls.h"
#include "auth.h"
#include "auth_queue.h"
#include "auth_throttle.h"

#define IP_BUCKETS 1024
#define STOP_GRACE_MS 10000      /* how long DATA in progress may finish */
/* Beyond smtpd_session_limit a connection still gets its 421 through a
 * session; past this many more it is closed without a word, so refusals
 * that linger (a 465 handshake never finished) cannot pile up. */
#define REFUSE_SLACK 64
#define LIMIT_LOG_MS 1000        /* at most one session-limit warning per second */

struct listener {
	uv_tcp_t tcp;
	struct smtp_server *srv;
	enum smtp_listener_kind kind;
	char name[80];
};

/* Open sessions per client address. */
struct ip_count {
	struct ip_count *next;
	uint8_t addr[16];
	unsigned n;
};

struct smtp_server {
	struct smtpd_env env;
	struct listener *lst;
	size_t nlst;
	size_t lst_open;
	struct smtp_session *sessions;
	unsigned long nsessions;
	unsigned long long accepted;
	struct ip_count *ip[IP_BUCKETS];
	uv_timer_t stop_timer;
	uint64_t limit_logged;       /* uv_now() of the last session-limit warning */
	unsigned long limit_refused; /* refusals since that warning */
	int free_pending;            /* close callbacks before free */
	void (*stop_done)(void *);
	void *stop_arg;
};

/* The client as 16 bytes (IPv4 as v4-mapped), so both families share one
 * table and a v4 client counts the same on v4 and v6 listeners.  An IPv6
 * client is its /64: one host is routinely given a whole /64 and may use
 * any address in it, so counting single addresses would give it
 * unlimited sessions and password guesses. */
void smtp_server_addr_key(const struct sockaddr_storage *ss, unsigned char key[16])
{
	memset(key, 0, 16);
	if (ss->ss_family == AF_INET6) {
		const struct in6_addr *a = &((const struct sockaddr_in6 *)ss)->sin6_addr;
		memcpy(key, a, IN6_IS_ADDR_V4MAPPED(a) ? 16 : SMTP_CLIENT_V6_PREFIX / 8);
	} else {
		key[10] = key[11] = 0xff;
		memcpy(key + 12, &((const struct sockaddr_in *)ss)->sin_addr, 4);
	}
}

static struct ip_count **ip_slot(struct smtp_server *s, const uint8_t key[16])
{
	uint32_t h = 2166136261u;
	for (int i = 0; i < 16; i++)
		h = (h ^ key[i]) * 16777619u;
	struct ip_count **pp = &s->ip[h % IP_BUCKETS];
	while (*pp && memcmp((*pp)->addr, key, 16))
		pp = &(*pp)->next;
	return pp;
}

/* Count a new session; returns the count including it, 0 on ENOMEM. */
static unsigned ip_add(struct smtp_server *s, const struct sockaddr_storage *ss)
{
	uint8_t key[16];
	smtp_server_addr_key(ss, key);
	struct ip_count **pp = ip_slot(s, key);
	if (!*pp) {
		if (!(*pp = calloc(1, sizeof(**pp))))
			return 0;
		memcpy((*pp)->addr, key, 16);
	}
	return ++(*pp)->n;
}

static void ip_del(struct smtp_server *s, const struct sockaddr_storage *ss)
{
	uint8_t key[16];
	smtp_server_addr_key(ss, key);
	struct ip_count **pp = ip_slot(s, key), *e = *pp;
	if (e && --e->n == 0) {
		*pp = e->next;
		free(e);
	}
}

static void maybe_stopped(struct smtp_server *s)
{
	if (!s->env.stopping || s->sessions || s->lst_open || !s->stop_done)
		return;
	void (*done)(void *) = s->stop_done;
	s->stop_done = NULL;
	uv_timer_stop(&s->stop_timer);
	done(s->stop_arg);
}

static void session_ended(void *arg, struct smtp_session *sess)
{
	struct smtp_server *s = arg;
	smtp_session_unlink(sess);
	s->nsessions--;
	maybe_stopped(s);
}

/* Over smtpd_session_limit: warn at most once a second, with the number
 * refused meanwhile, so a flood cannot flood the log too. */
static void session_limit_warn(struct smtp_server *s)
{
	uint64_t now = uv_now(s->env.loop);
	s->limit_refused++;
	if (s->limit_logged && now - s->limit_logged < LIMIT_LOG_MS)
		return;
	log_warn(LOG_SVC_SMTPD, "session limit reached: %lu sessions (smtpd_session_limit = %llu); %lu connection(s) refused",
		 s->nsessions, (unsigned long long)s->env.cfg->smtpd_session_limit,
		 s->limit_refused);
	s->limit_logged = now;
	s->limit_refused = 0;
}

static void on_connection(uv_stream_t *server, int status)
{
	struct listener *l = server->data;
	struct smtp_server *s = l->srv;
	if (status < 0 || s->env.stopping)
		return;
	struct conn *c = conn_accept(server);
	if (!c)
		return;
	s->accepted++;
	metric_inc(METRIC_SMTPD_CONNECTIONS);
	const struct config *cfg = s->env.cfg;
	const uint64_t limit = cfg->smtpd_session_limit;
	if (s->nsessions >= limit + REFUSE_SLACK) {
		session_limit_warn(s);
		conn_start(c, NULL, NULL);
		conn_abort(c);
		return;
	}
	const struct sockaddr_storage *peer = conn_peer(c);
	unsigned n = ip_add(s, peer);
	const char *busy = NULL;
	int trusted = config_cidr_match(&cfg->trusted_networks,
					(const struct sockaddr *)peer);
	if (n == 0) {
		busy = "421 4.3.2 Service temporarily unavailable";
	} else if (s->nsessions >= limit) {
		busy = "421 4.7.0 Error: too many sessions; try again later";
		session_limit_warn(s);
	} else if (!trusted && cfg->client_connection_limit &&
		 n > cfg->client_connection_limit) {
		busy = "421 4.7.0 Error: too many connections from your address";
		log_warn(LOG_SVC_SMTPD, "Connection concurrency limit exceeded: %u from unknown[%s]",
			 n, conn_peer_ip(c));
	}
	struct smtp_session *sess = smtp_session_new(&s->env, c, l->kind, busy);
	if (!sess) {
		ip_del(s, peer);
		return;
	}
	smtp_session_link(sess, &s->sessions);
	s->nsessions++;
}

/* Session end also releases its address count: wrap session_ended. */
static void session_ended_count(void *arg, struct smtp_session *sess)
{
	struct smtp_server *s = arg;
	ip_del(s, smtp_session_peer(sess));
	session_ended(arg, sess);
}

static int bind_list(struct smtp_server *s, const struct config_addr_list *l,
		     enum smtp_listener_kind kind, uv_loop_t *loop)
{
	for (size_t i = 0; i < l->n; i++) {
		struct listener *ls = &s->lst[s->nlst];
		const struct config_addr *a = &l->v[i];
		ls->srv = s;
		ls->kind = kind;
		snprintf(ls->name, sizeof(ls->name), "%s%s%s:%u",
			 a->ss.ss_family == AF_INET6 ? "[" : "", a->host,
			 a->ss.ss_family == AF_INET6 ? "]" : "", a->port);
		uv_tcp_init(loop, &ls->tcp);
		ls->tcp.data = ls;
		s->nlst++;
		s->lst_open++;
		unsigned flags = a->ss.ss_family == AF_INET6 ? UV_TCP_IPV6ONLY : 0;
		int rc = uv_tcp_bind(&ls->tcp, (const struct sockaddr *)&a->ss, flags);
		if (rc) {
			log_err(LOG_SVC_SMTPD, "cannot bind %s: %s", ls->name, uv_strerror(rc));
			return -1;
		}
	}
	return 0;
}

int smtp_server_new(struct smtp_server **out, uv_loop_t *loop,
		    struct config *cfg, struct queue *q)
{
	struct smtp_server *s = calloc(1, sizeof(*s));
	*out = NULL;
	if (!s)
		return -1;
	s->env.loop = loop;
	s->env.cfg = config_ref(cfg);
	s->env.queue = q;
	s->env.session_ended = session_ended_count;
	s->env.srv = s;
	s->env.throttle = auth_throttle_new(&auth_throttle_addr_policy);
	s->env.user_throttle = auth_throttle_new(&auth_throttle_user_policy);
	/* A client may have as many logins waiting as it may have sessions:
	 * an application server opening client_connection_limit connections
	 * at once must not get 454s; fairness between clients comes from
	 * their turns, not from refusing. */
	s->env.checks = auth_queue_new(loop, 0, 0,
				       cfg->client_connection_limit > 8 ?
				       (size_t)cfg->client_connection_limit : 8);
	size_t n = cfg->smtp_listen.n + cfg->submission_listen.n +
		   cfg->submissions_listen.n;
	s->lst = calloc(n ? n : 1, sizeof(*s->lst));
	uv_timer_init(loop, &s->stop_timer);
	s->stop_timer.data = s;
	if (!s->lst || !s->env.throttle || !s->env.user_throttle || !s->env.checks ||
	    bind_list(s, &cfg->smtp_listen, SMTP_PORT_SMTP, loop) ||
	    bind_list(s, &cfg->submission_listen, SMTP_PORT_SUBMISSION, loop) ||
	    bind_list(s, &cfg->submissions_listen, SMTP_PORT_SUBMISSIONS, loop)) {
		*out = s;            /* the caller frees: handles need the loop */
		return -1;
	}
	*out = s;
	return 0;
}

int smtp_server_start(struct smtp_server *s)
{
	for (size_t i = 0; i < s->nlst; i++) {
		struct listener *l = &s->lst[i];
		if (l->kind == SMTP_PORT_SUBMISSIONS && !s->env.tls) {
			log_warn(LOG_SVC_SMTPD, "%s: submissions_listen needs tls_cert_file and tls_key_file; not listening",
				 l->name);
			continue;
		}
		int rc = uv_listen((uv_stream_t *)&l->tcp, 511, on_connection);
		if (rc) {
			log_err(LOG_SVC_SMTPD, "cannot listen on %s: %s", l->name,
				uv_strerror(rc));
			return -1;
		}
		log_info(LOG_SVC_SMTPD, "listening on %s (%s)", l->name,
			 l->kind == SMTP_PORT_SMTP ? "smtp" :
			 l->kind == SMTP_PORT_SUBMISSION ? "submission" : "submissions");
	}
	return 0;
}

void smtp_server_set_queue(struct smtp_server *s, struct queue *q)
{
	s->env.queue = q;
}

void smtp_server_set_on_queued(struct smtp_server *s, void (*fn)(void *arg),
			       void *arg)
{
	s->env.queued = fn;
	s->env.queued_arg = arg;
}

void smtp_server_set_dns(struct smtp_server *s, struct dns_resolver *dns)
{
	s->env.dns = dns;
}

void smtp_server_set_config(struct smtp_server *s, struct config *cfg)
{
	config_ref(cfg);
	config_unref(s->env.cfg);
	s->env.cfg = cfg;
}

void smtp_server_set_tls(struct smtp_server *s, struct tls_ctx *ctx)
{
	if (s->env.tls)
		tls_ctx_unref(s->env.tls);
	s->env.tls = ctx;
}

void smtp_server_set_auth(struct smtp_server *s, struct auth_db *db)
{
	if (s->env.auth)
		auth_db_unref(s->env.auth);
	s->env.auth = db;
}

int smtp_server_has_tls(const struct smtp_server *s)
{
	return s->env.tls != NULL;
}

int smtp_server_has_auth(const struct smtp_server *s)
{
	return s->env.auth != NULL;
}

static void on_listener_closed(uv_handle_t *h)
{
	struct listener *l = h->data;
	l->srv->lst_open--;
	maybe_stopped(l->srv);
}

static void on_stop_deadline(uv_timer_t *t)
{
	struct smtp_server *s = t->data;
	int waiting = 0;
	for (struct smtp_session *x = s->sessions, *next; x; x = next) {
		next = smtp_session_next(x);
		waiting |= smtp_session_abort(x);
	}
	/* A commit or password check in flight finishes on its own soon,
	 * and a 421 needs a moment to leave: the next pass closes them. */
	if (waiting)
		uv_timer_start(&s->stop_timer, on_stop_deadline, 100, 0);
}

void smtp_server_stop(struct smtp_server *s, void (*done)(void *), void *arg)
{
	s->env.stopping = 1;
	s->stop_done = done;
	s->stop_arg = arg;
	for (size_t i = 0; i < s->nlst; i++)
		if (!uv_is_closing((uv_handle_t *)&s->lst[i].tcp))
			uv_close((uv_handle_t *)&s->lst[i].tcp, on_listener_closed);
	for (struct smtp_session *x = s->sessions, *next; x; x = next) {
		next = smtp_session_next(x);
		smtp_session_shutdown(x);
	}
	uv_timer_start(&s->stop_timer, on_stop_deadline, STOP_GRACE_MS, 0);
	maybe_stopped(s);
}

static void on_free_closed(uv_handle_t *h)
{
	struct smtp_server *s = h->data;
	if (h->type == UV_TCP)
		s = ((struct listener *)h->data)->srv;
	if (--s->free_pending > 0)
		return;
	for (int i = 0; i < IP_BUCKETS; i++)
		while (s->ip[i]) {
			struct ip_count *e = s->ip[i];
			s->ip[i] = e->next;
			free(e);
		}
	auth_throttle_free(s->env.throttle);
	auth_throttle_free(s->env.user_throttle);
	auth_queue_free(s->env.checks);
	free(s->lst);
	free(s);
}

/* Free after a stop (or a failed start); the loop must run afterwards for
 * the close callbacks, the last of which frees the memory. */
void smtp_server_free(struct smtp_server *s)
{
	if (!s)
		return;
	smtp_server_set_tls(s, NULL);
	smtp_server_set_auth(s, NULL);
	config_unref(s->env.cfg);
	s->env.cfg = NULL;
	s->free_pending = 1;
	for (size_t i = 0; i < s->nlst; i++)
		if (!uv_is_closing((uv_handle_t *)&s->lst[i].tcp)) {
			s->free_pending++;
			uv_close((uv_handle_t *)&s->lst[i].tcp, on_free_closed);
		}
	uv_close((uv_handle_t *)&s->stop_timer, on_free_closed);
}

void smtp_server_stats(const struct smtp_server *s, struct smtp_server_stats *st)
{
	st->sessions = s->nsessions;
	st->accepted = s->accepted;
	st->messages = s->env.messages;
}
