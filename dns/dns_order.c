/*
 * dns_order.c - the next-hop rules of RFC 5321 §5.1 without the network:
 * MX order (preference, equal preferences shuffled at every lookup so
 * load spreads), the cut at this host's own preference (mail must never
 * be sent to ourselves, nor to anyone less preferred), the address order
 * per family, the address cap, and the outcome when nothing is left.
 * The unit tests drive these functions directly.
 */
#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "dns_int.h"

uint64_t dns__xorshift(uint64_t *state)
{
	uint64_t x = *state;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*state = x;
	return x * 0x2545F4914F6CDD1DULL;
}

void dns__mx_order(struct dns_mxname *v, size_t n, uint64_t *rng)
{
	/* Insertion sort: stable and n <= DNS_RR_MAX. */
	for (size_t i = 1; i < n; i++) {
		struct dns_mxname x = v[i];
		size_t j = i;
		for (; j > 0 && v[j - 1].pref > x.pref; j--)
			v[j] = v[j - 1];
		v[j] = x;
	}
	/* Fisher-Yates inside each run of equal preference. */
	for (size_t lo = 0, hi; lo < n; lo = hi) {
		for (hi = lo + 1; hi < n && v[hi].pref == v[lo].pref; hi++)
			;
		for (size_t i = hi - 1; i > lo; i--) {
			size_t j = lo + (size_t)(dns__xorshift(rng) % (i - lo + 1));
			struct dns_mxname t = v[i];
			v[i] = v[j];
			v[j] = t;
		}
	}
}

static int same_host(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	if (la && a[la - 1] == '.')
		la--;
	if (lb && b[lb - 1] == '.')
		lb--;
	return la == lb && !strncasecmp(a, b, la);
}

size_t dns__mx_cut_self(const struct dns_mxname *v, size_t n,
			const char *myname, int *looped)
{
	*looped = 0;
	if (!myname || !*myname)
		return n;
	for (size_t i = 0; i < n; i++) {
		if (!same_host(v[i].name, myname))
			continue;
		*looped = 1;
		size_t k = 0;
		while (k < n && v[k].pref < v[i].pref)
			k++;
		return k;
	}
	return n;
}

static int is_loopback(int family, const unsigned char *a)
{
	static const unsigned char one6[16] = { [15] = 1 };
	return family == AF_INET ? a[0] == 127 : !memcmp(a, one6, 16);
}

static const unsigned char *sa_bytes(const struct sockaddr_storage *ss,
				     uint16_t *port)
{
	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *s = (const void *)ss;
		*port = ntohs(s->sin_port);
		return (const unsigned char *)&s->sin_addr;
	}
	const struct sockaddr_in6 *s = (const void *)ss;
	*port = ntohs(s->sin6_port);
	return (const unsigned char *)&s->sin6_addr;
}

static int is_local(const struct dns_self *self, int family,
		    const unsigned char *addr)
{
	size_t len = family == AF_INET ? 4 : 16;
	uint16_t port;
	if (is_loopback(family, addr))
		return 1;
	for (size_t i = 0; i < self->nlocal; i++)
		if (self->local[i].ss_family == family &&
		    !memcmp(sa_bytes(&self->local[i], &port), addr, len))
			return 1;
	return 0;
}

int dns__is_self(const struct dns_self *self, int family,
		 const unsigned char *addr, uint16_t port)
{
	static const unsigned char any[16];
	size_t len = family == AF_INET ? 4 : 16;
	for (size_t i = 0; i < self->nlisten; i++) {
		const struct sockaddr_storage *l = &self->listen[i];
		uint16_t lport;
		if (l->ss_family != family)
			continue;
		const unsigned char *la = sa_bytes(l, &lport);
		if (lport != port)
			continue;
		if (!memcmp(la, addr, len))
			return 1;
		if (!memcmp(la, any, len) && is_local(self, family, addr))
			return 1;
	}
	return 0;
}

void dns__route_fail(struct dns_route_out *out, enum dns_status st,
		     const char *dsn, const char *fmt, ...)
{
	va_list ap;
	free(out->hop);
	out->hop = NULL;
	memset(&out->rt, 0, sizeof(out->rt));
	out->rt.status = st;
	snprintf(out->dsn, sizeof(out->dsn), "%s", dsn);
	va_start(ap, fmt);
	vsnprintf(out->text, sizeof(out->text), fmt, ap);
	va_end(ap);
	out->rt.dsn = out->dsn;
	out->rt.text = out->text;
}

static void hop_set(struct dns_hop *hop, const struct dns_rhost *h, int f,
		    size_t k, uint16_t port)
{
	memset(hop, 0, sizeof(*hop));
	hop->pref = h->pref;
	hop->host = h->name;
	if (f == 0) {
		struct sockaddr_in *s = (struct sockaddr_in *)&hop->addr;
		s->sin_family = AF_INET;
		s->sin_port = htons(port);
		memcpy(&s->sin_addr, h->addr[0][k], 4);
		hop->addrlen = sizeof(*s);
	} else {
		struct sockaddr_in6 *s = (struct sockaddr_in6 *)&hop->addr;
		s->sin6_family = AF_INET6;
		s->sin6_port = htons(port);
		memcpy(&s->sin6_addr, h->addr[1][k], 16);
		hop->addrlen = sizeof(*s);
	}
}

/* Nothing to connect to: say why, temporary when any lookup was. */
static void no_address(const struct dns_rhost *h, size_t n,
		       struct dns_route_out *out)
{
	static const char *const tname[2] = { "A", "AAAA" };
	const struct dns_rhost *first = NULL;
	int ffirst = 0;
	for (size_t i = 0; i < n; i++)
		for (int f = 0; f < 2; f++) {
			if (!h[i].asked[f])
				continue;
			if (h[i].rc[f] == DNS_R_TEMPFAIL) {
				dns__route_fail(out, DNS_RETRY, "4.4.3",
						"Host or domain name not found. Name service error for name=%s type=%s: Host not found, try again (%s)",
						h[i].name, tname[f], h[i].why[f]);
				return;
			}
			if (!first) {
				first = &h[i];
				ffirst = f;
			}
		}
	if (!first) {
		dns__route_fail(out, DNS_FAIL, "5.4.4",
				"No address of a usable family for the next hop");
		return;
	}
	dns__route_fail(out, DNS_FAIL, "5.4.4",
			"Host or domain name not found. Name service error for name=%s type=%s: %s",
			first->name, tname[ffirst],
			first->rc[ffirst] == DNS_R_NXDOMAIN ? "Host not found"
			: "Host found but no data record of requested type");
}

void dns__route_build(const struct dns_rhost *h, size_t n,
		      const struct dns_route_params *p, int prefer_ipv6,
		      const struct dns_self *self, const char *domain,
		      struct dns_route_out *out)
{
	int fam[2] = { prefer_ipv6 ? 1 : 0, prefer_ipv6 ? 0 : 1 }, nfam = 2;
	size_t total = 0, k = 0;
	unsigned cut = ~0u;
	memset(out, 0, sizeof(*out));
	if (p->family == DNS_INET_IPV4 || p->family == DNS_INET_IPV6) {
		fam[0] = p->family == DNS_INET_IPV4 ? 0 : 1;
		nfam = 1;
	}
	for (size_t i = 0; i < n; i++)
		total += h[i].naddr[0] + h[i].naddr[1];
	out->hop = calloc(total ? total : 1, sizeof(*out->hop));
	if (!out->hop) {
		dns__route_fail(out, DNS_RETRY, "4.3.0", "out of memory");
		return;
	}
	for (size_t i = 0; i < n && h[i].pref < cut; i++)
		for (int fi = 0; fi < nfam; fi++) {
			int f = fam[fi];
			for (size_t a = 0; a < h[i].naddr[f] && h[i].pref < cut; a++) {
				if (dns__is_self(self, f ? AF_INET6 : AF_INET,
						 h[i].addr[f][a], p->port))
					cut = h[i].pref;
				else
					hop_set(&out->hop[k++], &h[i], f, a, p->port);
			}
		}
	/* Equal preferences shuffled before the local one go as well. */
	while (k && out->hop[k - 1].pref >= cut)
		k--;
	if (p->address_limit && k > p->address_limit)
		k = p->address_limit;
	if (!k && cut != ~0u) {
		dns__route_fail(out, DNS_FAIL, "5.4.6",
				"mail for %s loops back to myself", domain);
		return;
	}
	if (!k) {
		no_address(h, n, out);
		return;
	}
	out->rt.status = DNS_OK;
	out->rt.text = "";
	out->rt.n = k;
	out->rt.hop = out->hop;
}
