/*
 * test_dns.c - librelaydns without the network: the answer parser on
 * hand-built messages (good, truncated, malformed, absurd), the MX order
 * and its shuffle, the loop cut, the address caps and family order, the
 * outcomes when nothing is left, and the cache's TTLs and LRU bound.
 * The resolver against a real DNS server is t/integration/dns_route.py.
 */
#include <arpa/inet.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "dns_int.h"
#include "t/tap.h"

/* ---- building answers ---- */

struct pkt {
	unsigned char b[65536];
	size_t n;
};

static void put8(struct pkt *p, unsigned v) { p->b[p->n++] = (unsigned char)v; }
static void put16(struct pkt *p, unsigned v) { put8(p, v >> 8); put8(p, v & 255); }
static void put32(struct pkt *p, uint32_t v) { put16(p, v >> 16); put16(p, v & 0xffff); }

static void put_name(struct pkt *p, const char *name)
{
	while (*name) {
		size_t l = strcspn(name, ".");
		put8(p, (unsigned)l);
		memcpy(p->b + p->n, name, l);
		p->n += l;
		name += l;
		if (*name == '.')
			name++;
	}
	put8(p, 0);
}

static void header(struct pkt *p, unsigned rcode, unsigned an, unsigned ns,
		   const char *qname, unsigned qtype)
{
	p->n = 0;
	put16(p, 0x1234);
	put16(p, 0x8400 | rcode);
	put16(p, 1);
	put16(p, an);
	put16(p, ns);
	put16(p, 0);
	put_name(p, qname);
	put16(p, qtype);
	put16(p, 1);
}

/* An RR header; returns where rdlength goes (set by rr_end). */
static size_t rr_begin(struct pkt *p, const char *owner, unsigned type,
		       uint32_t ttl)
{
	put_name(p, owner);
	put16(p, type);
	put16(p, 1);
	put32(p, ttl);
	put16(p, 0);
	return p->n;
}

static void rr_end(struct pkt *p, size_t start)
{
	size_t len = p->n - start;
	p->b[start - 2] = (unsigned char)(len >> 8);
	p->b[start - 1] = (unsigned char)len;
}

static void rr_mx(struct pkt *p, const char *owner, uint32_t ttl,
		  unsigned pref, const char *host)
{
	size_t s = rr_begin(p, owner, DNS_T_MX, ttl);
	put16(p, pref);
	put_name(p, host);
	rr_end(p, s);
}

static void rr_a(struct pkt *p, const char *owner, uint32_t ttl,
		 unsigned a, unsigned b, unsigned c, unsigned d)
{
	size_t s = rr_begin(p, owner, DNS_T_A, ttl);
	put8(p, a); put8(p, b); put8(p, c); put8(p, d);
	rr_end(p, s);
}

static void rr_cname(struct pkt *p, const char *owner, uint32_t ttl,
		     const char *target)
{
	size_t s = rr_begin(p, owner, DNS_T_CNAME, ttl);
	put_name(p, target);
	rr_end(p, s);
}

static void rr_soa(struct pkt *p, const char *owner, uint32_t ttl,
		   uint32_t minimum)
{
	size_t s = rr_begin(p, owner, 6, ttl);
	put_name(p, "ns.example");
	put_name(p, "host.example");
	put32(p, 1); put32(p, 3600); put32(p, 600); put32(p, 86400);
	put32(p, minimum);
	rr_end(p, s);
}

static struct dns_msg *parse(struct pkt *p, const char *q, unsigned t)
{
	return dns_msg_parse(p->b, p->n, q, (uint16_t)t);
}

static void test_parse(void)
{
	struct pkt *p = malloc(sizeof(*p));
	struct dns_msg *m;

	header(p, 0, 2, 0, "example.org", DNS_T_MX);
	rr_mx(p, "example.org", 300, 20, "mx2.example.org");
	rr_mx(p, "example.org", 200, 10, "mx1.example.org");
	m = parse(p, "example.org", DNS_T_MX);
	is_int(m->a.rcode, DNS_R_NOERROR, "MX: noerror");
	is_int(m->a.n, 2, "MX: two records");
	is_str(m->a.rr[1].name, "mx1.example.org", "MX: exchange");
	is_int(m->a.rr[1].pref, 10, "MX: preference");
	is_int(m->a.ttl, 200, "MX: least TTL");
	dns_msg_free(m);

	header(p, 0, 3, 0, "www.example.org", DNS_T_A);
	rr_cname(p, "www.example.org", 60, "a.example.net");
	rr_cname(p, "a.example.net", 600, "b.example.net");
	rr_a(p, "b.example.net", 300, 192, 0, 2, 7);
	m = parse(p, "WWW.example.org", DNS_T_A);
	is_int(m->a.n, 1, "CNAME chain followed");
	ok(m->a.n == 1 && m->a.rr[0].addr[3] == 7, "address at the end of the chain");
	is_int(m->a.ttl, 60, "chain's least TTL");
	dns_msg_free(m);

	header(p, 0, 1, 0, "x.example.org", DNS_T_A);
	rr_a(p, "other.example.org", 300, 192, 0, 2, 8);
	m = parse(p, "x.example.org", DNS_T_A);
	is_int(m->a.rcode, DNS_R_NODATA, "a record for another name is ignored");
	dns_msg_free(m);

	header(p, 3, 0, 1, "nx.example.org", DNS_T_MX);
	rr_soa(p, "example.org", 900, 120);
	m = parse(p, "nx.example.org", DNS_T_MX);
	is_int(m->a.rcode, DNS_R_NXDOMAIN, "NXDOMAIN");
	is_int(m->a.ttl, 120, "negative TTL: SOA MINIMUM when lower");
	dns_msg_free(m);

	header(p, 0, 0, 1, "e.example.org", DNS_T_MX);
	rr_soa(p, "example.org", 30, 3600);
	m = parse(p, "e.example.org", DNS_T_MX);
	is_int(m->a.rcode, DNS_R_NODATA, "NODATA");
	is_int(m->a.ttl, 30, "negative TTL: the SOA's TTL when lower");
	dns_msg_free(m);

	header(p, 0, 0, 0, "e.example.org", DNS_T_MX);
	m = parse(p, "e.example.org", DNS_T_MX);
	is_int(m->a.ttl, 0, "no SOA: negative answer not cached");
	dns_msg_free(m);

	header(p, 0, 0, 1, "e.example.org", DNS_T_MX);
	rr_soa(p, "example.org", 999999, 999999);
	m = parse(p, "e.example.org", DNS_T_MX);
	is_int(m->a.ttl, DNS_NEG_TTL_MAX, "negative TTL clamped");
	dns_msg_free(m);

	header(p, 0, 2, 0, "t.example.org", DNS_T_A);
	rr_a(p, "t.example.org", 0xffffffffu, 192, 0, 2, 1);
	rr_a(p, "t.example.org", 0x7fffffffu, 192, 0, 2, 2);
	m = parse(p, "t.example.org", DNS_T_A);
	is_int(m->a.n, 2, "absurd TTLs: records kept");
	is_int(m->a.ttl, 0, "a TTL with the top bit set counts as 0");
	dns_msg_free(m);
	header(p, 0, 1, 0, "t.example.org", DNS_T_A);
	rr_a(p, "t.example.org", 0x7fffffffu, 192, 0, 2, 2);
	m = parse(p, "t.example.org", DNS_T_A);
	is_int(m->a.ttl, DNS_TTL_MAX, "a huge TTL is clamped");
	dns_msg_free(m);

	header(p, 0, 500, 0, "many.example.org", DNS_T_A);
	for (unsigned i = 0; i < 500; i++)
		rr_a(p, "many.example.org", 300, 10, 0, i >> 8, i & 255);
	m = parse(p, "many.example.org", DNS_T_A);
	is_int(m->a.n, DNS_RR_MAX, "hundreds of records: a bounded number kept");
	dns_msg_free(m);

	header(p, 0, 2, 0, "example.org", DNS_T_MX);
	rr_mx(p, "example.org", 300, 10, "mx1.example.org");
	size_t full = p->n;
	rr_mx(p, "example.org", 300, 20, "mx2.example.org");
	for (size_t cut = 0; cut < p->n; cut++) {
		m = dns_msg_parse(p->b, cut, "example.org", DNS_T_MX);
		if (!m || m->a.rcode != DNS_R_TEMPFAIL) {
			ok(0, "truncated at %zu: temporary failure", cut);
			dns_msg_free(m);
			break;
		}
		dns_msg_free(m);
		if (cut == p->n - 1)
			ok(1, "every truncation is a temporary failure");
	}
	(void)full;

	header(p, 0, 1, 0, "example.org", DNS_T_MX);
	size_t at = p->n;
	put16(p, 0xc000 | (unsigned)at);   /* owner: a pointer to itself */
	m = parse(p, "example.org", DNS_T_MX);
	is_int(m->a.rcode, DNS_R_TEMPFAIL, "compression loop: temporary failure");
	dns_msg_free(m);

	header(p, 0, 1, 0, "example.org", DNS_T_MX);
	size_t s = rr_begin(p, "example.org", DNS_T_MX, 300);
	put16(p, 10);
	put_name(p, "mx.example.org");
	rr_end(p, s);
	p->b[s - 1] = 3;                  /* rdlength shorter than the name */
	p->n = s + 3;
	m = parse(p, "example.org", DNS_T_MX);
	ok(m->a.rcode != DNS_R_NOERROR || m->a.n == 0, "MX name overrunning its rdata is refused");
	dns_msg_free(m);

	header(p, 0, 1, 0, "example.org", DNS_T_MX);
	s = rr_begin(p, "example.org", DNS_T_A, 300);
	put8(p, 1); put8(p, 2); put8(p, 3);    /* A with 3 bytes */
	rr_end(p, s);
	m = parse(p, "example.org", DNS_T_A);
	is_int(m->a.n, 0, "A record of the wrong size dropped");
	dns_msg_free(m);

	header(p, 2, 0, 0, "example.org", DNS_T_MX);
	m = parse(p, "example.org", DNS_T_MX);
	is_int(m->a.rcode, DNS_R_TEMPFAIL, "SERVFAIL: temporary");
	dns_msg_free(m);

	header(p, 0, 1, 0, "example.org", DNS_T_MX);
	rr_mx(p, "example.org", 300, 0, "");
	m = parse(p, "example.org", DNS_T_MX);
	ok(m->a.n == 1 && m->a.rr[0].name[0] == '\0', "null MX: an empty exchange");
	dns_msg_free(m);

	header(p, 0, 0, 0, "example.org", DNS_T_MX);
	p->b[2] |= 0x02;                   /* TC */
	m = parse(p, "example.org", DNS_T_MX);
	is_int(m->a.rcode, DNS_R_TEMPFAIL, "truncated (TC) answer: temporary");
	dns_msg_free(m);
	free(p);
}

/* ---- MX order ---- */

static void test_order(void)
{
	uint64_t rng = 42;
	struct dns_mxname v[5];
	const char *names[] = { "d", "a", "b", "c", "e" };
	unsigned prefs[] = { 20, 10, 10, 10, 30 };
	int first[3] = { 0, 0, 0 }, sorted = 1;
	const int runs = 3000;

	for (int r = 0; r < runs; r++) {
		for (int i = 0; i < 5; i++) {
			v[i].name = names[i];
			v[i].pref = prefs[i];
		}
		dns__mx_order(v, 5, &rng);
		for (int i = 1; i < 5; i++)
			if (v[i - 1].pref > v[i].pref)
				sorted = 0;
		if (strcmp(v[3].name, "d") || strcmp(v[4].name, "e"))
			sorted = 0;
		first[v[0].name[0] - 'a']++;
	}
	ok(sorted, "sorted by preference in every run");
	/* Each of three equal hosts first a third of the time: 1000 +- 150
	 * is over 6 standard deviations. */
	for (int i = 0; i < 3; i++)
		ok(first[i] > 850 && first[i] < 1150,
		   "equal preference shuffled: host %c first %d times of %d",
		   'a' + i, first[i], runs);

	struct dns_mxname w[] = { { "a.example", 10 }, { "me.example", 20 },
				  { "b.example", 20 }, { "c.example", 30 } };
	int looped;
	is_int(dns__mx_cut_self(w, 4, "ME.example.", &looped), 1,
	       "MX naming this host: it and the less preferred dropped");
	ok(looped, "... and that is reported");
	is_int(dns__mx_cut_self(w, 4, "other.example", &looped), 4, "no cut for another name");
	is_int(dns__mx_cut_self(w, 1, "a.example", &looped), 0, "best MX is this host: nothing left");
}

/* ---- next hops ---- */

static void host(struct dns_rhost *h, const char *name, unsigned pref,
		 int n4, int n6, unsigned base)
{
	memset(h, 0, sizeof(*h));
	h->name = (char *)name;
	h->pref = pref;
	h->asked[0] = h->asked[1] = 1;
	h->rc[0] = n4 ? DNS_R_NOERROR : DNS_R_NODATA;
	h->rc[1] = n6 ? DNS_R_NOERROR : DNS_R_NODATA;
	for (int i = 0; i < n4; i++) {
		h->addr[0][i][0] = 192;
		h->addr[0][i][3] = (unsigned char)(base + i);
	}
	for (int i = 0; i < n6; i++) {
		h->addr[1][i][0] = 0x20;
		h->addr[1][i][15] = (unsigned char)(base + i);
	}
	h->naddr[0] = (size_t)n4;
	h->naddr[1] = (size_t)n6;
}

static void test_build(void)
{
	static struct dns_rhost h[4];
	struct dns_route_params p = { .port = 2525, .family = DNS_INET_ALL };
	struct dns_self self = { 0 };
	struct dns_route_out out;
	char buf[80];

	host(&h[0], "mx1", 10, 2, 1, 1);
	host(&h[1], "mx2", 20, 3, 0, 10);
	dns__route_build(h, 2, &p, 0, &self, "d", &out);
	is_int(out.rt.status, DNS_OK, "route ok");
	is_int(out.rt.n, 6, "every address without a limit");
	dns_addr_text((struct sockaddr *)&out.rt.hop[0].addr, buf, sizeof(buf));
	is_str(buf, "192.0.0.1:2525", "IPv4 first without IPv6 preference, port applied");
	dns_addr_text((struct sockaddr *)&out.rt.hop[2].addr, buf, sizeof(buf));
	is_str(buf, "[2000::1]:2525", "then the host's IPv6 address");
	free(out.hop);

	dns__route_build(h, 2, &p, 1, &self, "d", &out);
	dns_addr_text((struct sockaddr *)&out.rt.hop[0].addr, buf, sizeof(buf));
	is_str(buf, "[2000::1]:2525", "IPv6 first when preferred");
	free(out.hop);

	p.address_limit = 5;
	dns__route_build(h, 2, &p, 0, &self, "d", &out);
	is_int(out.rt.n, 5, "smtp_mx_address_limit caps the addresses");
	is_int(out.rt.hop[4].pref, 20, "... in preference order");
	free(out.hop);

	p.family = DNS_INET_IPV6;
	dns__route_build(h, 2, &p, 0, &self, "d", &out);
	is_int(out.rt.n, 1, "inet_protocols = ipv6: IPv6 addresses only");
	free(out.hop);
	p.family = DNS_INET_ALL;
	p.address_limit = 0;

	/* mx2's first address is ours on the delivery port. */
	struct sockaddr_in l = { .sin_family = AF_INET, .sin_port = htons(2525) };
	memcpy(&l.sin_addr, h[1].addr[0][0], 4);
	struct sockaddr_storage ls;
	memset(&ls, 0, sizeof(ls));
	memcpy(&ls, &l, sizeof(l));
	self.listen = &ls;
	self.nlisten = 1;
	host(&h[2], "mx2b", 20, 1, 0, 50);
	struct dns_rhost order[3] = { h[0], h[2], h[1] };
	dns__route_build(order, 3, &p, 0, &self, "d", &out);
	is_int(out.rt.n, 3, "a host of ours: it and equal or less preferred dropped");
	free(out.hop);
	dns__route_build(&h[1], 1, &p, 0, &self, "d", &out);
	is_int(out.rt.status, DNS_FAIL, "best MX is this host: permanent");
	is_str(out.rt.dsn, "5.4.6", "... mail loops back to myself");
	free(out.hop);
	p.port = 25;
	dns__route_build(&h[1], 1, &p, 0, &self, "d", &out);
	is_int(out.rt.status, DNS_OK, "same address on another port is not us");
	free(out.hop);
	self.nlisten = 0;

	host(&h[0], "mx1", 10, 0, 0, 0);
	host(&h[1], "mx2", 20, 0, 0, 0);
	h[1].rc[0] = DNS_R_TEMPFAIL;
	dns__route_build(h, 2, &p, 0, &self, "d", &out);
	is_int(out.rt.status, DNS_RETRY, "no address, one lookup temporary: retry");
	is_str(out.rt.dsn, "4.4.3", "... 4.4.3");
	free(out.hop);
	h[1].rc[0] = DNS_R_NXDOMAIN;
	dns__route_build(h, 2, &p, 0, &self, "d", &out);
	is_int(out.rt.status, DNS_FAIL, "no MX host has an address: permanent");
	is_str(out.rt.dsn, "5.4.4", "... 5.4.4");
	free(out.hop);
	host(&h[1], "mx2", 20, 1, 0, 3);
	dns__route_build(h, 2, &p, 0, &self, "d", &out);
	ok(out.rt.status == DNS_OK && out.rt.n == 1 && !strcmp(out.rt.hop[0].host, "mx2"),
	   "an MX host without addresses is skipped");
	free(out.hop);
}

/* ---- cache ---- */

static struct dns_msg *msg(const char *name, uint32_t ttl)
{
	struct dns_msg *m = dns_msg_empty(name, DNS_T_A, DNS_R_NODATA, NULL);
	m->a.ttl = ttl;
	return m;
}

static void test_cache(void)
{
	struct dns_cache c;
	char norm[300];
	ok(dns_cache_init(&c, 3) == 0, "cache init");
	struct dns_entry *a = dns_cache_add(&c, "a", DNS_T_A, 10000);
	ok(a && a->pending, "new entry is pending");
	ok(dns_cache_find(&c, "a", DNS_T_A) == a, "found by name and type");
	ok(!dns_cache_find(&c, "a", DNS_T_MX), "not under another type");
	dns_cache_ready(&c, a, msg("a", 60), 1000);
	is_int(a->when, 61000, "expiry is the TTL from now");
	struct dns_entry *b = dns_cache_add(&c, "b", DNS_T_A, 10000);
	dns_cache_ready(&c, b, msg("b", 60), 1000);
	struct dns_entry *cc = dns_cache_add(&c, "c", DNS_T_A, 10000);
	dns_cache_ready(&c, cc, msg("c", 60), 1000);
	/* a is the least recently used. */
	struct dns_entry *d = dns_cache_add(&c, "d", DNS_T_A, 10000);
	is_int(c.n, 3, "bounded: the LRU entry went");
	ok(!dns_cache_find(&c, "a", DNS_T_A), "... and it was the oldest");
	struct dns_entry *e = dns_cache_add(&c, "e", DNS_T_A, 10000);
	(void)e;
	is_int(c.n, 3, "still bounded");
	ok(dns_cache_find(&c, "d", DNS_T_A) == d, "a pending entry is never evicted");
	dns_cache_restart(&c, cc, 5000);
	ok(cc->pending && !cc->msg, "an expired entry goes pending again");
	dns_cache_free(&c);

	is_int(dns__name_norm("Mx.Example.ORG.", norm, sizeof(norm)), 0, "name normalised");
	is_str(norm, "mx.example.org", "... lower case, no trailing dot");
	ok(dns__name_norm("a..b", norm, sizeof(norm)) < 0, "empty label refused");
	ok(dns__name_norm("a b", norm, sizeof(norm)) < 0, "space refused");
	ok(dns__name_norm("", norm, sizeof(norm)) < 0, "empty name refused");
}

static void test_reverse(void)
{
	char buf[80];
	unsigned char v4[4] = { 192, 0, 2, 10 }, v6[16];
	dns__reverse_name(AF_INET, v4, buf, sizeof(buf));
	is_str(buf, "10.2.0.192.in-addr.arpa", "IPv4 reverse name");
	inet_pton(AF_INET6, "2001:db8::567:89ab", v6);
	dns__reverse_name(AF_INET6, v6, buf, sizeof(buf));
	is_str(buf, "b.a.9.8.7.6.5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa",
	       "IPv6 reverse name (RFC 3596 example)");
}

int main(void)
{
	test_reverse();
	test_parse();
	test_order();
	test_build();
	test_cache();
	return done_testing();
}
