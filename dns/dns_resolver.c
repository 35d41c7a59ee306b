/*
 * dns_resolver.c - c-ares on the caller's libuv loop, the cache in front
 * of it, and the life cycle of jobs.
 *
 * c-ares tells us which sockets it wants watched (the socket state
 * callback): each gets a uv_poll, whose events go to ares_process_fd.
 * One uv_timer follows ares_timeout() for c-ares' retransmissions, and a
 * second one enforces timeout_ms on every query: the PENDING entries are
 * on a list in start order, which is also deadline order because all
 * queries get the same bound, so the timer only ever looks at its head.
 * A query past its deadline is answered "timeout" and leaves the table;
 * its entry is freed when c-ares finally calls back.
 *
 * Ownership: the resolver owns its channel, handles, cache and every job
 * until the job's callback has run.  Handles are freed in their close
 * callbacks; the resolver itself with the last of them.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include "dns_int.h"

#define DEFAULT_TIMEOUT_MS 10000
#define DEFAULT_CACHE 65536
#define LOCAL_MAX 64

struct dns_poll {
	uv_poll_t h;
	ares_socket_t fd;
	struct dns_resolver *r;
	struct dns_poll *next;
};

struct dns_resolver {
	uv_loop_t *loop;
	ares_channel ch;
	int ch_ok;
	uv_timer_t ares_timer;
	uv_timer_t deadline_timer;
	struct dns_poll *polls;
	struct dns_cache cache;
	struct dns_link jobs;
	unsigned timeout_ms;
	int prefer_ipv6;
	uint64_t rng;
	struct sockaddr_storage local[LOCAL_MAX];
	size_t nlocal;
	struct dns_stats stats;
	int closing;
	int open_handles;
};

/* ---- libuv <-> c-ares ---- */

static void on_ares_timer(uv_timer_t *t);

/* Follow c-ares' next retransmission or timeout. */
static void update_timer(struct dns_resolver *r)
{
	struct timeval tv;
	if (r->closing)
		return;
	if (ares_timeout(r->ch, NULL, &tv)) {
		uint64_t ms = (uint64_t)tv.tv_sec * 1000 +
			      (uint64_t)tv.tv_usec / 1000 + 1;
		uv_timer_start(&r->ares_timer, on_ares_timer, ms, 0);
	} else {
		uv_timer_stop(&r->ares_timer);
	}
}

static void on_ares_timer(uv_timer_t *t)
{
	struct dns_resolver *r = t->data;
	ares_process_fd(r->ch, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
	update_timer(r);
}

static void on_poll(uv_poll_t *h, int status, int events)
{
	struct dns_poll *p = h->data;
	struct dns_resolver *r = p->r;
	ares_socket_t rfd = ARES_SOCKET_BAD, wfd = ARES_SOCKET_BAD;
	/* On an error let c-ares read and write, so it sees it and drops
	 * the socket. */
	if (status < 0 || (events & UV_READABLE))
		rfd = p->fd;
	if (status < 0 || (events & UV_WRITABLE))
		wfd = p->fd;
	ares_process_fd(r->ch, rfd, wfd);
	update_timer(r);
}

static void on_handle_closed(uv_handle_t *h)
{
	struct dns_resolver *r = h->data;
	if (h->type == UV_POLL) {
		struct dns_poll *p = h->data;
		r = p->r;
		free(p);
	}
	if (--r->open_handles == 0 && r->closing)
		free(r);
}

static void sock_state(void *data, ares_socket_t fd, int readable,
		       int writable)
{
	struct dns_resolver *r = data;
	struct dns_poll **pp = &r->polls;
	while (*pp && (*pp)->fd != fd)
		pp = &(*pp)->next;
	if (!readable && !writable) {
		struct dns_poll *p = *pp;
		if (p) {
			*pp = p->next;
			uv_close((uv_handle_t *)&p->h, on_handle_closed);
		}
		return;
	}
	struct dns_poll *p = *pp;
	if (!p) {
		p = calloc(1, sizeof(*p));
		if (!p)
			return;   /* c-ares times the query out */
		if (uv_poll_init_socket(r->loop, &p->h, fd)) {
			free(p);
			return;
		}
		p->fd = fd;
		p->r = r;
		p->h.data = p;
		p->next = r->polls;
		r->polls = p;
		r->open_handles++;
	}
	uv_poll_start(&p->h, (readable ? UV_READABLE : 0) |
			     (writable ? UV_WRITABLE : 0), on_poll);
}

/* ---- queries and the cache ---- */

static void arm_deadline(struct dns_resolver *r);

/* Hand msg to every wait of e, e staying findable meanwhile. */
static void deliver(struct dns_entry *e, const struct dns_answer *a)
{
	e->busy = 1;
	while (!dns__list_empty(&e->waiters)) {
		struct dns_wait *w = DNS_CONTAINER(e->waiters.next,
						   struct dns_wait, link);
		dns__list_unlink(&w->link);
		w->e = NULL;
		w->done(w, a);
	}
	e->busy = 0;
}

static void on_answer(void *arg, int status, int timeouts,
		      unsigned char *abuf, int alen)
{
	struct dns_entry *e = arg;
	struct dns_resolver *r = e->r;
	if (r->closing || !e->hashed || !e->pending) {
		/* Shutting down, or an orphan past its deadline. */
		dns_entry_free(e);
		return;
	}
	struct dns_msg *m;
	if (status == ARES_SUCCESS || status == ARES_ENODATA ||
	    status == ARES_ENOTFOUND)
		m = dns_msg_parse(abuf, alen > 0 ? (size_t)alen : 0, e->name, e->type);
	else
		m = dns_msg_empty(e->name, e->type, DNS_R_TEMPFAIL,
				  status == ARES_ETIMEOUT ? "timeout" :
				  ares_strerror(status));
	if (!m) {
		static const struct dns_answer oom = {
			.rcode = DNS_R_TEMPFAIL, .why = "out of memory",
		};
		dns_cache_unhash(&r->cache, e);
		deliver(e, &oom);
		dns_entry_free(e);
		arm_deadline(r);
		return;
	}
	if (m->a.rcode == DNS_R_TEMPFAIL) {
		/* Not cached: the next lookup asks again. */
		dns_cache_unhash(&r->cache, e);
		deliver(e, &m->a);
		dns_msg_free(m);
		dns_entry_free(e);
	} else {
		dns_cache_ready(&r->cache, e, m, uv_now(r->loop));
		deliver(e, &e->msg->a);
		dns_cache_evict(&r->cache);
	}
	arm_deadline(r);
}

static void on_deadline(uv_timer_t *t)
{
	struct dns_resolver *r = t->data;
	uint64_t now = uv_now(r->loop);
	while (!dns__list_empty(&r->cache.fifo)) {
		struct dns_entry *e = DNS_CONTAINER(r->cache.fifo.next,
						    struct dns_entry, link);
		if (e->when > now)
			break;
		struct dns_answer a = {
			.rcode = DNS_R_TEMPFAIL, .qname = e->name,
			.qtype = e->type, .why = "timeout",
		};
		dns_cache_unhash(&r->cache, e);   /* an orphan until c-ares is done */
		deliver(e, &a);
	}
	arm_deadline(r);
}

static void arm_deadline(struct dns_resolver *r)
{
	if (r->closing)
		return;
	if (dns__list_empty(&r->cache.fifo)) {
		uv_timer_stop(&r->deadline_timer);
		return;
	}
	struct dns_entry *e = DNS_CONTAINER(r->cache.fifo.next,
					    struct dns_entry, link);
	uint64_t now = uv_now(r->loop);
	uv_timer_start(&r->deadline_timer, on_deadline,
		       e->when > now ? e->when - now : 0, 0);
}

void dns__wait(struct dns_resolver *r, const char *name, uint16_t type,
	       struct dns_wait *w)
{
	char norm[DNS_NAME_MAX + 1];
	uint64_t now = uv_now(r->loop);
	dns__list_init(&w->link);
	w->e = NULL;
	if (dns__name_norm(name, norm, sizeof(norm))) {
		struct dns_answer a = {
			.rcode = DNS_R_NXDOMAIN, .qname = name, .qtype = type,
			.why = "malformed name",
		};
		w->done(w, &a);
		return;
	}
	struct dns_entry *e = dns_cache_find(&r->cache, norm, type);
	if (e && !e->pending && e->when > now) {
		r->stats.hits++;
		dns__list_unlink(&e->link);            /* most recent */
		dns__list_push(&r->cache.lru, &e->link);
		e->busy = 1;
		w->done(w, &e->msg->a);
		e->busy = 0;
		return;
	}
	if (e && e->pending) {
		dns__list_append(&e->waiters, &w->link);
		w->e = e;
		return;
	}
	if (e)
		dns_cache_restart(&r->cache, e, now + r->timeout_ms);
	else
		e = dns_cache_add(&r->cache, norm, type, now + r->timeout_ms);
	if (!e) {
		struct dns_answer a = {
			.rcode = DNS_R_TEMPFAIL, .qname = name, .qtype = type,
			.why = "out of memory",
		};
		w->done(w, &a);
		return;
	}
	e->r = r;
	dns__list_append(&e->waiters, &w->link);
	w->e = e;
	r->stats.queries++;
	/* Entries join the list's tail: an armed timer is for an earlier
	 * deadline already. */
	if (!uv_is_active((uv_handle_t *)&r->deadline_timer))
		arm_deadline(r);
	/* May call on_answer at once (a bad name, no memory). */
	ares_query(r->ch, e->name, 1 /* IN */, type, on_answer, e);
	update_timer(r);
}

void dns__unwait(struct dns_wait *w)
{
	if (!w->e)
		return;
	dns__list_unlink(&w->link);
	w->e = NULL;
}

/* ---- jobs ---- */

void dns__job_start(struct dns_resolver *r, struct dns_job *job,
		    void (*destroy)(struct dns_job *))
{
	job->r = r;
	job->destroy = destroy;
	dns__list_append(&r->jobs, &job->link);
}

void dns__job_end(struct dns_job *job)
{
	dns__list_unlink(&job->link);
	job->destroy(job);
}

void dns_cancel(struct dns_job *job)
{
	if (job)
		dns__job_end(job);
}

/* dns_lookup's job: one wait. */
struct lookup_job {
	struct dns_job job;
	struct dns_wait w;
	dns_answer_cb *cb;
	void *arg;
	int *fired;               /* set while dns_lookup runs */
};

static void lookup_destroy(struct dns_job *job)
{
	struct lookup_job *l = (struct lookup_job *)job;
	dns__unwait(&l->w);
	free(l);
}

static void lookup_done(struct dns_wait *w, const struct dns_answer *a)
{
	struct lookup_job *l = DNS_CONTAINER(w, struct lookup_job, w);
	if (l->fired)
		*l->fired = 1;
	l->cb(l->arg, a);
	dns__job_end(&l->job);
}

struct dns_job *dns_lookup(struct dns_resolver *r, const char *name,
			   enum dns_type type, dns_answer_cb *cb, void *arg)
{
	struct lookup_job *l = calloc(1, sizeof(*l));
	if (!l) {
		struct dns_answer a = {
			.rcode = DNS_R_TEMPFAIL, .qname = name, .qtype = type,
			.why = "out of memory",
		};
		cb(arg, &a);
		return NULL;
	}
	int fired = 0;
	l->cb = cb;
	l->arg = arg;
	l->fired = &fired;
	l->w.done = lookup_done;
	dns__job_start(r, &l->job, lookup_destroy);
	dns__wait(r, name, (uint16_t)type, &l->w);
	if (fired)
		return NULL;      /* answered at once: the job is gone */
	l->fired = NULL;
	return &l->job;
}

/* ---- the resolver ---- */

/* Addresses of this host's interfaces, for loop detection. */
static void read_local_addrs(struct dns_resolver *r)
{
	struct ifaddrs *ifa, *i;
	int global6 = 0;
	if (getifaddrs(&ifa))
		return;
	for (i = ifa; i; i = i->ifa_next) {
		if (!i->ifa_addr)
			continue;
		int fam = i->ifa_addr->sa_family;
		if (fam != AF_INET && fam != AF_INET6)
			continue;
		if (fam == AF_INET6) {
			const struct in6_addr *a =
				&((struct sockaddr_in6 *)i->ifa_addr)->sin6_addr;
			if (!IN6_IS_ADDR_LOOPBACK(a) && !IN6_IS_ADDR_LINKLOCAL(a))
				global6 = 1;
		}
		if (r->nlocal < LOCAL_MAX)
			memcpy(&r->local[r->nlocal++], i->ifa_addr,
			       fam == AF_INET ? sizeof(struct sockaddr_in)
					      : sizeof(struct sockaddr_in6));
	}
	freeifaddrs(ifa);
	if (r->prefer_ipv6 < 0)
		r->prefer_ipv6 = global6;
}

static int set_servers(struct dns_resolver *r, const struct dns_options *o,
		       char *err, size_t errlen)
{
	struct ares_addr_port_node *v = calloc(o->nservers, sizeof(*v));
	if (!v)
		return -ENOMEM;
	for (size_t i = 0; i < o->nservers; i++) {
		const struct sockaddr_storage *ss = &o->servers[i];
		if (ss->ss_family == AF_INET) {
			const struct sockaddr_in *s = (const void *)ss;
			v[i].family = AF_INET;
			v[i].addr.addr4 = s->sin_addr;
			v[i].udp_port = v[i].tcp_port = ntohs(s->sin_port);
		} else {
			const struct sockaddr_in6 *s = (const void *)ss;
			v[i].family = AF_INET6;
			memcpy(&v[i].addr.addr6, &s->sin6_addr, 16);
			v[i].udp_port = v[i].tcp_port = ntohs(s->sin6_port);
		}
		v[i].next = i + 1 < o->nservers ? &v[i + 1] : NULL;
	}
	int rc = ares_set_servers_ports(r->ch, v);
	free(v);
	if (rc != ARES_SUCCESS) {
		snprintf(err, errlen, "cannot set DNS servers: %s", ares_strerror(rc));
		return -EINVAL;
	}
	return 0;
}

static int init_channel(struct dns_resolver *r, const struct dns_options *o,
			char *err, size_t errlen)
{
	struct ares_options ao;
	memset(&ao, 0, sizeof(ao));
	ao.sock_state_cb = sock_state;
	ao.sock_state_cb_data = r;
	/* Two tries, the second with twice the wait (c-ares doubles it):
	 * about the whole bound with one server; the deadline timer holds
	 * the bound with more. */
	ao.timeout = (int)(r->timeout_ms / 3 ? r->timeout_ms / 3 : 1);
	ao.tries = 2;
	ao.flags = ARES_FLAG_NOSEARCH | ARES_FLAG_NOALIASES;
	int rc = ares_init_options(&r->ch, &ao, ARES_OPT_SOCK_STATE_CB |
				   ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES |
				   ARES_OPT_FLAGS);
	if (rc != ARES_SUCCESS) {
		snprintf(err, errlen, "cannot start the resolver: %s",
			 ares_strerror(rc));
		return -EIO;
	}
	r->ch_ok = 1;
	return o->nservers ? set_servers(r, o, err, errlen) : 0;
}

int dns_resolver_new(struct dns_resolver **out, uv_loop_t *loop,
		     const struct dns_options *opt, char *err, size_t errlen)
{
	static int lib_ready;
	struct dns_resolver *r = calloc(1, sizeof(*r));
	*out = NULL;
	if (!r) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	if (!lib_ready) {
		/* Process-wide and idempotent in c-ares >= 1.11. */
		ares_library_init(ARES_LIB_INIT_ALL);
		lib_ready = 1;
	}
	r->loop = loop;
	r->timeout_ms = opt->timeout_ms ? opt->timeout_ms : DEFAULT_TIMEOUT_MS;
	r->prefer_ipv6 = opt->prefer_ipv6;
	dns__list_init(&r->jobs);
	if (getrandom(&r->rng, sizeof(r->rng), 0) != sizeof(r->rng))
		r->rng = (uint64_t)time(NULL) ^ (uint64_t)(uintptr_t)r;
	r->rng |= 1;
	read_local_addrs(r);
	if (dns_cache_init(&r->cache, opt->cache_size ? opt->cache_size
						      : DEFAULT_CACHE)) {
		snprintf(err, errlen, "out of memory");
		free(r);
		return -ENOMEM;
	}
	int rc = init_channel(r, opt, err, errlen);
	if (rc) {
		if (r->ch_ok)
			ares_destroy(r->ch);
		dns_cache_free(&r->cache);
		free(r);
		return rc;
	}
	uv_timer_init(loop, &r->ares_timer);
	uv_timer_init(loop, &r->deadline_timer);
	r->ares_timer.data = r->deadline_timer.data = r;
	r->open_handles = 2;
	*out = r;
	return 0;
}

void dns_resolver_free(struct dns_resolver *r)
{
	if (!r)
		return;
	while (!dns__list_empty(&r->jobs))
		dns_cancel(DNS_CONTAINER(r->jobs.next, struct dns_job, link));
	r->closing = 1;
	/* Pending entries are freed by their callbacks (ARES_EDESTRUCTION);
	 * take them out of the table first so the cache does not free them
	 * too. */
	while (!dns__list_empty(&r->cache.fifo))
		dns_cache_unhash(&r->cache, DNS_CONTAINER(r->cache.fifo.next,
							  struct dns_entry, link));
	ares_destroy(r->ch);       /* closes its sockets: the polls go too */
	dns_cache_free(&r->cache);
	uv_close((uv_handle_t *)&r->ares_timer, on_handle_closed);
	uv_close((uv_handle_t *)&r->deadline_timer, on_handle_closed);
}

void dns_resolver_stats(const struct dns_resolver *r, struct dns_stats *st)
{
	*st = r->stats;
	st->entries = r->cache.n;
}

uint64_t dns__random(struct dns_resolver *r)
{
	return dns__xorshift(&r->rng);
}

void dns__local_addrs(const struct dns_resolver *r,
		      const struct sockaddr_storage **v, size_t *n)
{
	*v = r->local;
	*n = r->nlocal;
}

int dns__prefer_ipv6(const struct dns_resolver *r)
{
	return r->prefer_ipv6 > 0;
}

void dns_addr_text(const struct sockaddr *sa, char *buf, size_t len)
{
	char ip[INET6_ADDRSTRLEN] = "?";
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *s = (const void *)sa;
		inet_ntop(AF_INET, &s->sin_addr, ip, sizeof(ip));
		snprintf(buf, len, "%s:%u", ip, ntohs(s->sin_port));
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s = (const void *)sa;
		inet_ntop(AF_INET6, &s->sin6_addr, ip, sizeof(ip));
		snprintf(buf, len, "[%s]:%u", ip, ntohs(s->sin6_port));
	} else {
		snprintf(buf, len, "?");
	}
}
