/*
 * dns_route.c - the next hops of a domain (RFC 5321 §5.1, RFC 7505):
 * the MX lookup, then the A/AAAA lookups of every MX host in parallel,
 * then dns_order.c's rules.  With a relayhost, its addresses instead.
 *
 *   NXDOMAIN                      -> FAIL 5.1.2
 *   null MX ("0 .")               -> FAIL 5.1.10
 *   SERVFAIL, REFUSED, timeout    -> RETRY 4.4.3
 *   no MX (NODATA)                -> the domain itself, preference 0
 *   an MX host without addresses  -> skipped, unless all are
 *   an MX host that is this host  -> it and the less preferred dropped;
 *                                    nothing left: FAIL 5.4.6
 */
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "dns_int.h"

struct route_job;

struct route_slot {
	struct dns_wait w;
	struct route_job *job;
	size_t host;
	int fam;                       /* 0: A, 1: AAAA */
};

struct route_job {
	struct dns_job job;
	struct dns_route_params p;     /* strings and listen copied below */
	char *myhostname;
	struct sockaddr_storage *listen;
	char domain[DNS_NAME_MAX + 1];
	dns_route_cb *cb;
	void *arg;
	int *fired;                    /* set while dns_route runs */
	struct dns_wait mx;
	struct dns_rhost host[DNS_MX_MAX];
	struct route_slot slot[DNS_MX_MAX][2];
	size_t nhost;
	int pending;
};

static void route_destroy(struct dns_job *job)
{
	struct route_job *j = (struct route_job *)job;
	dns__unwait(&j->mx);
	for (size_t i = 0; i < j->nhost; i++) {
		dns__unwait(&j->slot[i][0].w);
		dns__unwait(&j->slot[i][1].w);
		free(j->host[i].name);
	}
	free(j->myhostname);
	free(j->listen);
	free(j);
}

static void finish(struct route_job *j, struct dns_route_out *out)
{
	if (j->fired)
		*j->fired = 1;
	j->cb(j->arg, &out->rt);
	free(out->hop);
	dns__job_end(&j->job);
}

static void finish_fail(struct route_job *j, enum dns_status st,
			const char *dsn, const char *text)
{
	struct dns_route_out out;
	memset(&out, 0, sizeof(out));
	dns__route_fail(&out, st, dsn, "%s", text);
	finish(j, &out);
}

static void build(struct route_job *j)
{
	struct dns_route_out out;
	struct dns_self self = {
		.myhostname = j->myhostname, .listen = j->listen,
		.nlisten = j->p.nlisten,
	};
	dns__local_addrs(j->job.r, &self.local, &self.nlocal);
	dns__route_build(j->host, j->nhost, &j->p, dns__prefer_ipv6(j->job.r),
			 &self, j->domain, &out);
	finish(j, &out);
}

static void addr_done(struct dns_wait *w, const struct dns_answer *a)
{
	struct route_slot *s = DNS_CONTAINER(w, struct route_slot, w);
	struct route_job *j = s->job;
	struct dns_rhost *h = &j->host[s->host];
	int want = s->fam ? AF_INET6 : AF_INET;
	h->rc[s->fam] = a->rcode;
	snprintf(h->why[s->fam], sizeof(h->why[0]), "%s", a->why ? a->why : "");
	for (size_t i = 0; i < a->n && h->naddr[s->fam] < DNS_RR_MAX; i++)
		if (a->rr[i].family == want)
			memcpy(h->addr[s->fam][h->naddr[s->fam]++], a->rr[i].addr, 16);
	if (--j->pending == 0)
		build(j);
}

/* Look up the addresses of every host; the route is built when the
 * last answer is in (perhaps before this returns). */
static void resolve_hosts(struct route_job *j)
{
	int want[2] = { j->p.family != DNS_INET_IPV6, j->p.family != DNS_INET_IPV4 };
	j->pending = 1;            /* held until every lookup is started */
	for (size_t i = 0; i < j->nhost; i++)
		for (int f = 0; f < 2; f++) {
			struct route_slot *s = &j->slot[i][f];
			s->job = j;
			s->host = i;
			s->fam = f;
			s->w.done = addr_done;
			dns__list_init(&s->w.link);
			if (!want[f])
				continue;
			struct dns_rhost *h = &j->host[i];
			/* A literal needs no lookup. */
			unsigned char lit[16];
			if (inet_pton(f ? AF_INET6 : AF_INET, h->name, lit) == 1) {
				h->asked[f] = 1;
				h->rc[f] = DNS_R_NOERROR;
				memcpy(h->addr[f][0], lit, 16);
				h->naddr[f] = 1;
				continue;
			}
			if (inet_pton(f ? AF_INET : AF_INET6, h->name, lit) == 1)
				continue;
			h->asked[f] = 1;
			j->pending++;
			dns__wait(j->job.r, h->name, f ? DNS_T_AAAA : DNS_T_A, &s->w);
		}
	if (--j->pending == 0)
		build(j);
}

static int add_host(struct route_job *j, const char *name, unsigned pref)
{
	struct dns_rhost *h = &j->host[j->nhost];
	memset(h, 0, sizeof(*h));
	h->name = strdup(name);
	if (!h->name)
		return -1;
	h->pref = pref;
	j->nhost++;
	return 0;
}

static void mx_done(struct dns_wait *w, const struct dns_answer *a)
{
	struct route_job *j = DNS_CONTAINER(w, struct route_job, mx);
	char text[512];
	if (a->rcode == DNS_R_NXDOMAIN) {
		snprintf(text, sizeof(text), "Host or domain name not found. Name service error for name=%s type=MX: Host not found",
			 j->domain);
		finish_fail(j, DNS_FAIL, "5.1.2", text);
		return;
	}
	if (a->rcode == DNS_R_TEMPFAIL) {
		snprintf(text, sizeof(text), "Host or domain name not found. Name service error for name=%s type=MX: Host not found, try again (%s)",
			 j->domain, a->why);
		finish_fail(j, DNS_RETRY, "4.4.3", text);
		return;
	}
	if (a->rcode == DNS_R_NODATA) {
		if (add_host(j, j->domain, 0))
			goto oom;
		resolve_hosts(j);
		return;
	}
	struct dns_mxname mx[DNS_RR_MAX];
	size_t n = 0, nnull = 0;
	for (size_t i = 0; i < a->n && n < DNS_RR_MAX; i++) {
		if (!a->rr[i].name[0]) {
			nnull++;     /* "." : RFC 7505 */
			continue;
		}
		char norm[DNS_NAME_MAX + 1];
		if (dns__name_norm(a->rr[i].name, norm, sizeof(norm)))
			continue;    /* not a host name: never reachable */
		mx[n].name = a->rr[i].name;
		mx[n].pref = a->rr[i].pref;
		n++;
	}
	if (!n && nnull) {
		snprintf(text, sizeof(text), "Domain %s does not accept mail (nullMX)",
			 j->domain);
		finish_fail(j, DNS_FAIL, "5.1.10", text);
		return;
	}
	uint64_t rng = dns__random(j->job.r);
	dns__mx_order(mx, n, &rng);
	int looped;
	size_t keep = dns__mx_cut_self(mx, n, j->myhostname, &looped);
	if (!keep) {
		snprintf(text, sizeof(text), looped ? "mail for %s loops back to myself"
			 : "Host or domain name not found. Name service error for name=%s type=MX: Malformed or unexpected name server reply",
			 j->domain);
		finish_fail(j, looped ? DNS_FAIL : DNS_RETRY, looped ? "5.4.6" : "4.4.3", text);
		return;
	}
	for (size_t i = 0; i < keep && j->nhost < DNS_MX_MAX; i++)
		if (add_host(j, mx[i].name, mx[i].pref))
			goto oom;
	resolve_hosts(j);
	return;
oom:
	finish_fail(j, DNS_RETRY, "4.3.0", "out of memory");
}

/* The domain of an address, without brackets of a literal. */
static int take_domain(const char *in, char *out, size_t len)
{
	const char *at = strrchr(in, '@');
	const char *d = at ? at + 1 : in;
	size_t n = strlen(d);
	if (n >= 2 && d[0] == '[' && d[n - 1] == ']') {
		d++;
		n -= 2;
		if (!strncasecmp(d, "IPv6:", 5)) {
			d += 5;
			n -= 5;
		}
	}
	if (!n || n >= len)
		return -1;
	memcpy(out, d, n);
	out[n] = '\0';
	return 0;
}

static int copy_params(struct route_job *j, const struct dns_route_params *p)
{
	j->p = *p;
	j->p.relayhost = NULL;
	j->p.myhostname = NULL;
	j->p.listen = NULL;
	if (p->myhostname && !(j->myhostname = strdup(p->myhostname)))
		return -1;
	if (p->nlisten) {
		j->listen = calloc(p->nlisten, sizeof(*j->listen));
		if (!j->listen)
			return -1;
		memcpy(j->listen, p->listen, p->nlisten * sizeof(*j->listen));
	}
	return 0;
}

struct dns_job *dns_route(struct dns_resolver *r, const char *domain,
			  const struct dns_route_params *p, dns_route_cb *cb,
			  void *arg)
{
	struct route_job *j = calloc(1, sizeof(*j));
	struct dns_route_out out;
	int fired = 0;
	if (!j || copy_params(j, p)) {
		if (j)
			route_destroy(&j->job);
		memset(&out, 0, sizeof(out));
		dns__route_fail(&out, DNS_RETRY, "4.3.0", "out of memory");
		cb(arg, &out.rt);
		return NULL;
	}
	j->cb = cb;
	j->arg = arg;
	j->fired = &fired;
	dns__list_init(&j->mx.link);
	j->mx.done = mx_done;
	dns__job_start(r, &j->job, route_destroy);
	if (p->relayhost) {
		/* The relayhost's own addresses, no MX lookup ([host]). */
		snprintf(j->domain, sizeof(j->domain), "%s", p->relayhost);
		j->p.port = p->relayhost_port;
		if (add_host(j, p->relayhost, 0))
			finish_fail(j, DNS_RETRY, "4.3.0", "out of memory");
		else
			resolve_hosts(j);
	} else if (take_domain(domain, j->domain, sizeof(j->domain))) {
		finish_fail(j, DNS_FAIL, "5.1.2", "bad destination domain");
	} else {
		unsigned char lit[16];
		if (inet_pton(AF_INET, j->domain, lit) == 1 ||
		    inet_pton(AF_INET6, j->domain, lit) == 1) {
			if (add_host(j, j->domain, 0))
				finish_fail(j, DNS_RETRY, "4.3.0", "out of memory");
			else
				resolve_hosts(j);
		} else {
			dns__wait(r, j->domain, DNS_T_MX, &j->mx);
		}
	}
	if (fired)
		return NULL;
	j->fired = NULL;
	return &j->job;
}
