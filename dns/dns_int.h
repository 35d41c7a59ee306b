/*
 * dns_int.h - what the modules of librelaydns share: the cache entries
 * and the waits on them (dns_cache.c), the answer parser (dns_msg.c), the
 * resolver core (dns_resolver.c) and the pure parts of the next-hop logic
 * (dns_order.c), exposed with a dns__ prefix for the unit tests.  Not for
 * use outside dns/ and t/unit/test_dns.c.
 */
#ifndef RELAYD_DNS_INT_H
#define RELAYD_DNS_INT_H

#include <ares.h>
#include "dns.h"

#define DNS_NAME_MAX 255          /* presentation form, no trailing dot */
#define DNS_RR_MAX 64             /* records kept from one answer */
#define DNS_CNAME_HOPS 8          /* CNAME chain followed in an answer */
#define DNS_TTL_MAX 86400         /* positive answers, seconds */
#define DNS_NEG_TTL_MAX 10800     /* negative answers (RFC 2308 §5) */
#define DNS_MX_MAX 16             /* MX hosts resolved per route */
#define DNS_PTR_MAX 4             /* PTR names checked per client */

/* Intrusive doubly-linked list. */
struct dns_link {
	struct dns_link *prev, *next;
};

struct dns_entry;

/* One interest in one (name, type): linked on its entry until answered
 * or cancelled. */
struct dns_wait {
	struct dns_link link;
	struct dns_entry *e;               /* NULL: not waiting */
	void (*done)(struct dns_wait *w, const struct dns_answer *a);
};

/* A parsed answer in one allocation owner: the record array and every
 * string it points to are freed by dns_msg_free. */
struct dns_msg {
	struct dns_answer a;
	struct dns_rr rr[];
};

/* A cache entry: PENDING while its query is in flight (on the
 * resolver's deadline list), READY afterwards (on the LRU list). */
struct dns_entry {
	struct dns_link link;              /* LRU or deadline list */
	struct dns_entry *hnext;           /* hash chain */
	struct dns_link waiters;           /* struct dns_wait */
	struct dns_msg *msg;               /* READY: the answer */
	struct dns_resolver *r;
	uint64_t when;                     /* READY: expiry; PENDING: deadline */
	uint16_t type;
	uint8_t pending;
	uint8_t hashed;                    /* findable in the table */
	uint8_t busy;                      /* delivering: not evictable */
	char name[];
};

struct dns_cache {
	struct dns_entry **bucket;
	size_t nbucket;                    /* a power of two */
	struct dns_link lru;               /* READY, most recent first */
	struct dns_link fifo;              /* PENDING, by deadline */
	size_t n, max;                     /* hashed entries */
};

/* ---- lists ---- */
void dns__list_init(struct dns_link *l);
void dns__list_unlink(struct dns_link *x);
void dns__list_push(struct dns_link *head, struct dns_link *x);  /* front */
void dns__list_append(struct dns_link *head, struct dns_link *x);
int dns__list_empty(const struct dns_link *l);
#define DNS_CONTAINER(p, type, member) \
	((type *)(void *)((char *)(p) - offsetof(type, member)))

/* ---- dns_cache.c (times in milliseconds) ---- */
int dns_cache_init(struct dns_cache *c, size_t max);
void dns_cache_free(struct dns_cache *c);   /* frees every hashed entry */
struct dns_entry *dns_cache_find(struct dns_cache *c, const char *name,
				 uint16_t type);
/* A new PENDING entry, hashed and on the deadline list; NULL: ENOMEM. */
struct dns_entry *dns_cache_add(struct dns_cache *c, const char *name,
				uint16_t type, uint64_t deadline);
/* A READY entry past its expiry goes PENDING again (deadline given). */
void dns_cache_restart(struct dns_cache *c, struct dns_entry *e,
		       uint64_t deadline);
/* PENDING -> READY with msg (owned), expiring ttl seconds from now;
 * LRU-evicts READY entries beyond max. */
void dns_cache_ready(struct dns_cache *c, struct dns_entry *e,
		     struct dns_msg *msg, uint64_t now);
/* Take e out of the table (it stays allocated: an orphan). */
void dns_cache_unhash(struct dns_cache *c, struct dns_entry *e);
void dns_cache_evict(struct dns_cache *c);
void dns_entry_free(struct dns_entry *e);
/* Lower-case, strip one trailing dot; -1 for an empty, too long or
 * non-hostname name. */
int dns__name_norm(const char *in, char *out, size_t outlen);

/* ---- dns_msg.c ---- */
/* Parse the answer to (qname, qtype); never fails on bad input (that is
 * a DNS_R_TEMPFAIL message); NULL only when out of memory. */
struct dns_msg *dns_msg_parse(const unsigned char *buf, size_t len,
			      const char *qname, uint16_t qtype);
/* A message without records: rcode with why. */
struct dns_msg *dns_msg_empty(const char *qname, uint16_t qtype,
			      enum dns_rcode rcode, const char *why);
void dns_msg_free(struct dns_msg *m);
const char *dns_type_name(uint16_t type);

/* ---- dns_resolver.c ---- */
/* Wait for (name, type); done runs now when the cache answers. */
void dns__wait(struct dns_resolver *r, const char *name, uint16_t type,
	       struct dns_wait *w);
void dns__unwait(struct dns_wait *w);

/* Every job: linked on the resolver so that freeing it cancels them. */
struct dns_job {
	struct dns_link link;
	struct dns_resolver *r;
	void (*destroy)(struct dns_job *job);  /* cancel waits, free */
};
void dns__job_start(struct dns_resolver *r, struct dns_job *job,
		    void (*destroy)(struct dns_job *));
/* The job finished (its callback ran or is about to): unlink and free. */
void dns__job_end(struct dns_job *job);
uint64_t dns__random(struct dns_resolver *r);
/* Local interface addresses (for loop detection). */
void dns__local_addrs(const struct dns_resolver *r,
		      const struct sockaddr_storage **v, size_t *n);
int dns__prefer_ipv6(const struct dns_resolver *r);

/* ---- dns_rname.c ---- */
/* d.c.b.a.in-addr.arpa, or the 32 nibbles of ip6.arpa (len >= 74). */
void dns__reverse_name(int family, const unsigned char *addr, char *buf,
		       size_t len);

/* ---- dns_order.c: the next-hop rules without the network ---- */

/* One MX host and what its address lookups gave. */
struct dns_rhost {
	char *name;
	unsigned pref;
	int asked[2];                  /* [0] A, [1] AAAA */
	enum dns_rcode rc[2];
	char why[2][96];
	size_t naddr[2];
	unsigned char addr[2][DNS_RR_MAX][16];
};

/* Where loops are detected. */
struct dns_self {
	const char *myhostname;
	const struct sockaddr_storage *listen;
	size_t nlisten;
	const struct sockaddr_storage *local;
	size_t nlocal;
};

/* An MX record before its addresses are known. */
struct dns_mxname {
	const char *name;
	unsigned pref;
};

uint64_t dns__xorshift(uint64_t *state);
/* Sort by preference, shuffle equal preferences. */
void dns__mx_order(struct dns_mxname *v, size_t n, uint64_t *rng);
/* Drop the MX hosts at and after the preference of one named like this
 * host (RFC 5321 §5.1); returns how many are left, and sets *looped
 * when one was dropped. */
size_t dns__mx_cut_self(const struct dns_mxname *v, size_t n,
			const char *myname, int *looped);
/* 1 when connecting to addr (family, bytes) at port reaches this host. */
int dns__is_self(const struct dns_self *self, int family,
		 const unsigned char *addr, uint16_t port);

/* The route's outcome, built from resolved hosts (h in try order). */
struct dns_route_out {
	struct dns_route rt;
	struct dns_hop *hop;           /* owned */
	char dsn[8];
	char text[512];
};
void dns__route_build(const struct dns_rhost *h, size_t n,
		      const struct dns_route_params *p, int prefer_ipv6,
		      const struct dns_self *self, const char *domain,
		      struct dns_route_out *out);
void dns__route_fail(struct dns_route_out *out, enum dns_status st,
		     const char *dsn, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

#endif
