/*
 * dns_rname.c - the forward-confirmed reverse name of a client address,
 * as Postfix's smtpd finds it: the PTR names of the address, then the
 * A (IPv4) or AAAA (IPv6) records of each; the first name one of whose
 * addresses is the client's is its name.  Otherwise there is none, and
 * why says so ("unknown" in the logs).  An IPv4 client seen on an IPv6
 * socket (::ffff:a.b.c.d) is an IPv4 client.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "dns_int.h"

struct rname_job;

struct rname_slot {
	struct dns_wait w;
	struct rname_job *job;
	char *name;
};

struct rname_job {
	struct dns_job job;
	dns_client_name_cb *cb;
	void *arg;
	int *fired;
	int family;
	unsigned char addr[16];
	char ip[INET6_ADDRSTRLEN];
	struct dns_wait ptr;
	struct rname_slot slot[DNS_PTR_MAX];
	size_t nslot;
	int pending;
	const char *found;             /* a confirmed name (a slot's) */
	char why[256];
};

static void rname_destroy(struct dns_job *job)
{
	struct rname_job *j = (struct rname_job *)job;
	dns__unwait(&j->ptr);
	for (size_t i = 0; i < j->nslot; i++) {
		dns__unwait(&j->slot[i].w);
		free(j->slot[i].name);
	}
	free(j);
}

static void finish(struct rname_job *j, const char *name)
{
	if (j->fired)
		*j->fired = 1;
	j->cb(j->arg, name, name ? "" : j->why);
	dns__job_end(&j->job);
}

static void forward_done(struct dns_wait *w, const struct dns_answer *a)
{
	struct rname_slot *s = DNS_CONTAINER(w, struct rname_slot, w);
	struct rname_job *j = s->job;
	size_t len = j->family == AF_INET ? 4 : 16;
	for (size_t i = 0; i < a->n && !j->found; i++)
		if (a->rr[i].family == j->family &&
		    !memcmp(a->rr[i].addr, j->addr, len))
			j->found = s->name;
	if (!j->found && !j->why[0])
		snprintf(j->why, sizeof(j->why), a->rcode == DNS_R_TEMPFAIL
			 ? "hostname %s verification failed: %s"
			 : "hostname %s does not resolve to address %s",
			 s->name, a->rcode == DNS_R_TEMPFAIL ? a->why : j->ip);
	if (--j->pending == 0)
		finish(j, j->found);
}

static void ptr_done(struct dns_wait *w, const struct dns_answer *a)
{
	struct rname_job *j = DNS_CONTAINER(w, struct rname_job, ptr);
	if (a->rcode != DNS_R_NOERROR) {
		snprintf(j->why, sizeof(j->why), "address %s: %s", j->ip,
			 a->rcode == DNS_R_TEMPFAIL ? a->why : "no PTR record");
		finish(j, NULL);
		return;
	}
	j->pending = 1;
	for (size_t i = 0; i < a->n && j->nslot < DNS_PTR_MAX; i++) {
		char norm[DNS_NAME_MAX + 1];
		if (dns__name_norm(a->rr[i].name, norm, sizeof(norm)))
			continue;
		struct rname_slot *s = &j->slot[j->nslot];
		s->name = strdup(norm);
		if (!s->name)
			break;
		s->job = j;
		s->w.done = forward_done;
		dns__list_init(&s->w.link);
		j->nslot++;
	}
	if (!j->nslot)
		snprintf(j->why, sizeof(j->why), "address %s: malformed PTR name", j->ip);
	/* pending holds one until all are started: a cache hit answers at
	 * once.  The names are checked in parallel; the first answer that
	 * confirms its name wins, reported once every answer is in. */
	for (size_t i = 0; i < j->nslot; i++) {
		j->pending++;
		dns__wait(j->job.r, j->slot[i].name,
			  j->family == AF_INET ? DNS_T_A : DNS_T_AAAA, &j->slot[i].w);
	}
	if (--j->pending == 0)
		finish(j, j->found);
}

void dns__reverse_name(int family, const unsigned char *a, char *buf,
		       size_t len)
{
	static const char hex[] = "0123456789abcdef";
	size_t k = 0;
	if (family == AF_INET) {
		snprintf(buf, len, "%u.%u.%u.%u.in-addr.arpa", a[3], a[2], a[1], a[0]);
		return;
	}
	for (int i = 15; i >= 0 && k + 4 < len; i--) {
		buf[k++] = hex[a[i] & 15];
		buf[k++] = '.';
		buf[k++] = hex[a[i] >> 4];
		buf[k++] = '.';
	}
	snprintf(buf + k, len - k, "ip6.arpa");
}

static int take_addr(struct rname_job *j, const struct sockaddr *sa)
{
	static const unsigned char mapped[12] = { [10] = 0xff, [11] = 0xff };
	if (sa->sa_family == AF_INET) {
		j->family = AF_INET;
		memcpy(j->addr, &((const struct sockaddr_in *)sa)->sin_addr, 4);
	} else if (sa->sa_family == AF_INET6) {
		const unsigned char *a = (const unsigned char *)
			&((const struct sockaddr_in6 *)sa)->sin6_addr;
		if (!memcmp(a, mapped, 12)) {
			j->family = AF_INET;
			memcpy(j->addr, a + 12, 4);
		} else {
			j->family = AF_INET6;
			memcpy(j->addr, a, 16);
		}
	} else {
		return -1;
	}
	inet_ntop(j->family, j->addr, j->ip, sizeof(j->ip));
	return 0;
}

struct dns_job *dns_client_name(struct dns_resolver *r,
				const struct sockaddr *sa,
				dns_client_name_cb *cb, void *arg)
{
	struct rname_job *j = calloc(1, sizeof(*j));
	char rev[80];
	int fired = 0;
	if (!j || take_addr(j, sa)) {
		free(j);
		cb(arg, NULL, "not an IP address, or out of memory");
		return NULL;
	}
	j->cb = cb;
	j->arg = arg;
	j->fired = &fired;
	j->ptr.done = ptr_done;
	dns__list_init(&j->ptr.link);
	dns__job_start(r, &j->job, rname_destroy);
	dns__reverse_name(j->family, j->addr, rev, sizeof(rev));
	dns__wait(r, rev, DNS_T_PTR, &j->ptr);
	if (fired)
		return NULL;
	j->fired = NULL;
	return &j->job;
}
