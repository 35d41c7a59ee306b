/*
 * dns.h - librelaydns: an asynchronous resolver on c-ares driven by a
 * libuv loop, with a TTL-honouring cache, the next-hop list of RFC 5321
 * §5.1 / RFC 7505 and the forward-confirmed reverse name of a client.
 *
 * Nothing here blocks: c-ares sockets are watched with uv_poll, its
 * timeouts with one uv_timer, and every lookup completes through a
 * callback.  Any number of lookups may be in flight; concurrent lookups of
 * the same name and type share one query.
 *
 * Callbacks: a lookup answered from the cache calls its callback before
 * the starting function returns, and that function then returns NULL.
 * Otherwise it returns a job handle, valid until the callback has run or
 * dns_cancel() was called, whichever is first.  After dns_cancel() the
 * callback never runs.  The result passed to a callback is owned by the
 * library and valid only during the call: copy what you keep.
 *
 * Ownership: the caller owns the loop and struct dns_options (copied by
 * dns_resolver_new); the resolver owns everything else.  The library
 * never aborts on bad input: a malformed, truncated or absurd answer is a
 * temporary failure or is ignored record by record.
 */
#ifndef RELAYD_DNS_H
#define RELAYD_DNS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

struct dns_resolver;
struct dns_job;

/* Named outcomes across the delivery seam. */
enum dns_status {
	DNS_OK,          /* an answer (possibly an empty one, see rcode) */
	DNS_RETRY,       /* temporary: SERVFAIL, REFUSED, timeout, ... */
	DNS_FAIL,        /* permanent: NXDOMAIN, null MX, mail loop, ... */
};

/* Record types the library understands (numbers as on the wire). */
enum dns_type {
	DNS_T_A = 1,
	DNS_T_CNAME = 5,
	DNS_T_PTR = 12,
	DNS_T_MX = 15,
	DNS_T_AAAA = 28,
	DNS_T_TLSA = 52,   /* raw rdata in dns_rr.data, for DANE later */
};

/* What the server said, once transport trouble is set apart. */
enum dns_rcode {
	DNS_R_NOERROR,   /* records of the type asked for */
	DNS_R_NODATA,    /* the name exists, no record of that type */
	DNS_R_NXDOMAIN,  /* the name does not exist */
	DNS_R_TEMPFAIL,  /* SERVFAIL, REFUSED, timeout, bad answer */
};

enum dns_family { DNS_INET_ALL, DNS_INET_IPV4, DNS_INET_IPV6 };

struct dns_options {
	/* Servers (IP and port); none: those of /etc/resolv.conf. */
	const struct sockaddr_storage *servers;
	size_t nservers;
	unsigned timeout_ms;     /* bound on one lookup; 0: 10 s */
	size_t cache_size;       /* entries; 0: 65536 */
	/* Prefer IPv6 addresses of a next hop: 1 yes, 0 no, -1 when the
	 * host has a global IPv6 address (detected at creation). */
	int prefer_ipv6;
};

/* Create a resolver on loop; 0, or a negative errno-style code with the
 * reason in err. */
int dns_resolver_new(struct dns_resolver **out, uv_loop_t *loop,
		     const struct dns_options *opt, char *err, size_t errlen);
/* Cancel every job (no callback runs), close the handles.  The loop
 * must run afterwards: the memory goes with the last close callback. */
void dns_resolver_free(struct dns_resolver *r);
/* Cancel a job; its callback will not run. */
void dns_cancel(struct dns_job *job);

/* ---- one lookup ---- */

struct dns_rr {
	uint16_t type;
	uint16_t pref;             /* MX */
	uint32_t ttl;
	const char *name;          /* MX exchange, PTR or CNAME target */
	int family;                /* A / AAAA: AF_INET or AF_INET6 */
	unsigned char addr[16];
	const unsigned char *data; /* raw rdata (TLSA and unknown types) */
	size_t len;
};

struct dns_answer {
	enum dns_rcode rcode;
	const char *qname;
	uint16_t qtype;
	const char *why;           /* DNS_R_TEMPFAIL: what went wrong */
	uint32_t ttl;              /* how long it may be cached */
	size_t n;
	const struct dns_rr *rr;
};

typedef void dns_answer_cb(void *arg, const struct dns_answer *a);
struct dns_job *dns_lookup(struct dns_resolver *r, const char *name,
			   enum dns_type type, dns_answer_cb *cb, void *arg);

/* ---- next hops (RFC 5321 §5.1, RFC 7505) ---- */

/* Delivery parameters of a route, copied at the call. */
struct dns_route_params {
	uint16_t port;             /* delivery_port */
	enum dns_family family;    /* inet_protocols */
	unsigned address_limit;    /* addresses in all; 0: no limit */
	const char *relayhost;     /* NULL: MX delivery */
	uint16_t relayhost_port;
	/* This host, to refuse mail that would loop back: its name, and
	 * the addresses it listens on (a wildcard listener stands for every
	 * local address with that port). */
	const char *myhostname;
	const struct sockaddr_storage *listen;
	size_t nlisten;
};

struct dns_hop {
	unsigned pref;
	const char *host;
	struct sockaddr_storage addr;   /* with the port to connect to */
	socklen_t addrlen;
};

struct dns_route {
	enum dns_status status;
	const char *dsn;           /* "4.4.3", "5.1.2", ...; NULL when OK */
	const char *text;          /* why, Postfix style; "" when OK */
	size_t n;
	const struct dns_hop *hop; /* in the order to try them */
};

typedef void dns_route_cb(void *arg, const struct dns_route *rt);
/* The next hops for domain (or a mail address: the part after '@'). */
struct dns_job *dns_route(struct dns_resolver *r, const char *domain,
			  const struct dns_route_params *p, dns_route_cb *cb,
			  void *arg);

/* ---- client names ---- */

/* name: the forward-confirmed reverse name of the address (its PTR, one
 * of whose A/AAAA records is the address), or NULL with why set. */
typedef void dns_client_name_cb(void *arg, const char *name, const char *why);
struct dns_job *dns_client_name(struct dns_resolver *r,
				const struct sockaddr *sa,
				dns_client_name_cb *cb, void *arg);

/* Counters, for the benchmark and status. */
struct dns_stats {
	unsigned long long queries;    /* sent to a server */
	unsigned long long hits;       /* answered from the cache */
	size_t entries;
};
void dns_resolver_stats(const struct dns_resolver *r, struct dns_stats *st);

/* "IP:PORT" or "[IPv6]:PORT" of an address. */
void dns_addr_text(const struct sockaddr *sa, char *buf, size_t len);

#endif
