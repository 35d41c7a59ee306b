/*
 * dns_cache.c - the answer cache shared by every lookup: a hash table of
 * (name, type) entries, bounded in size by evicting the least recently
 * used answer.  An entry whose query is in flight is PENDING and carries
 * the waits of everyone who asked meanwhile, so concurrent lookups of one
 * name cost one query.  Positive answers live for their TTL, negative
 * ones (NXDOMAIN, NODATA) for the SOA's negative TTL (RFC 2308), both
 * clamped by dns_msg.c; temporary failures are not kept.
 *
 * Times are milliseconds of the caller's clock (uv_now), passed in, so
 * the unit tests drive expiry without waiting.
 */
#include <stdlib.h>
#include <string.h>
#include "dns_int.h"

void dns__list_init(struct dns_link *l)
{
	l->prev = l->next = l;
}

void dns__list_unlink(struct dns_link *x)
{
	x->prev->next = x->next;
	x->next->prev = x->prev;
	x->prev = x->next = x;
}

void dns__list_push(struct dns_link *head, struct dns_link *x)
{
	x->next = head->next;
	x->prev = head;
	head->next->prev = x;
	head->next = x;
}

void dns__list_append(struct dns_link *head, struct dns_link *x)
{
	dns__list_push(head->prev, x);
}

int dns__list_empty(const struct dns_link *l)
{
	return l->next == l;
}

int dns__name_norm(const char *in, char *out, size_t outlen)
{
	size_t n = strlen(in);

	if (n && in[n - 1] == '.')
		n--;
	if (!n || n > DNS_NAME_MAX || n >= outlen)
		return -1;
	for (size_t i = 0; i < n; i++) {
		char c = in[i];
		if (c >= 'A' && c <= 'Z')
			c = (char)(c - 'A' + 'a');
		else if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
			   c == '-' || c == '.' || c == '_'))
			return -1;
		if (c == '.' && (i == 0 || in[i - 1] == '.'))
			return -1;         /* empty label */
		out[i] = c;
	}
	out[n] = '\0';
	return 0;
}

static size_t hash(const char *name, uint16_t type, size_t nbucket)
{
	uint32_t h = 2166136261u ^ type;
	for (; *name; name++)
		h = (h ^ (unsigned char)*name) * 16777619u;
	return h & (nbucket - 1);
}

int dns_cache_init(struct dns_cache *c, size_t max)
{
	memset(c, 0, sizeof(*c));
	c->max = max ? max : 1;
	c->nbucket = 64;
	while (c->nbucket < c->max && c->nbucket < ((size_t)1 << 24))
		c->nbucket <<= 1;
	c->bucket = calloc(c->nbucket, sizeof(*c->bucket));
	dns__list_init(&c->lru);
	dns__list_init(&c->fifo);
	return c->bucket ? 0 : -1;
}

void dns_entry_free(struct dns_entry *e)
{
	if (!e)
		return;
	dns_msg_free(e->msg);
	free(e);
}

void dns_cache_free(struct dns_cache *c)
{
	for (size_t i = 0; c->bucket && i < c->nbucket; i++)
		while (c->bucket[i]) {
			struct dns_entry *e = c->bucket[i];
			c->bucket[i] = e->hnext;
			dns_entry_free(e);
		}
	free(c->bucket);
	memset(c, 0, sizeof(*c));
}

struct dns_entry *dns_cache_find(struct dns_cache *c, const char *name,
				 uint16_t type)
{
	struct dns_entry *e = c->bucket[hash(name, type, c->nbucket)];
	while (e && (e->type != type || strcmp(e->name, name)))
		e = e->hnext;
	return e;
}

struct dns_entry *dns_cache_add(struct dns_cache *c, const char *name,
				uint16_t type, uint64_t deadline)
{
	size_t len = strlen(name);
	struct dns_entry *e = calloc(1, sizeof(*e) + len + 1);
	if (!e)
		return NULL;
	memcpy(e->name, name, len + 1);
	e->type = type;
	e->pending = 1;
	e->hashed = 1;
	e->when = deadline;
	dns__list_init(&e->waiters);
	size_t b = hash(name, type, c->nbucket);
	e->hnext = c->bucket[b];
	c->bucket[b] = e;
	dns__list_append(&c->fifo, &e->link);
	c->n++;
	dns_cache_evict(c);
	return e;
}

void dns_cache_restart(struct dns_cache *c, struct dns_entry *e,
		       uint64_t deadline)
{
	dns__list_unlink(&e->link);
	dns_msg_free(e->msg);
	e->msg = NULL;
	e->pending = 1;
	e->when = deadline;
	dns__list_append(&c->fifo, &e->link);
}

void dns_cache_ready(struct dns_cache *c, struct dns_entry *e,
		     struct dns_msg *msg, uint64_t now)
{
	dns__list_unlink(&e->link);
	e->msg = msg;
	e->pending = 0;
	e->when = now + (uint64_t)msg->a.ttl * 1000;
	if (e->hashed) {
		dns__list_push(&c->lru, &e->link);
		dns_cache_evict(c);
	}
}

void dns_cache_unhash(struct dns_cache *c, struct dns_entry *e)
{
	if (!e->hashed)
		return;
	struct dns_entry **pp = &c->bucket[hash(e->name, e->type, c->nbucket)];
	while (*pp && *pp != e)
		pp = &(*pp)->hnext;
	if (*pp)
		*pp = e->hnext;
	e->hnext = NULL;
	e->hashed = 0;
	dns__list_unlink(&e->link);
	c->n--;
}

/* Only READY entries leave: a PENDING one has a query and waits on it. */
void dns_cache_evict(struct dns_cache *c)
{
	struct dns_link *l = c->lru.prev;
	while (c->n > c->max && l != &c->lru) {
		struct dns_entry *e = DNS_CONTAINER(l, struct dns_entry, link);
		l = l->prev;
		if (e->busy)
			continue;          /* its answer is being delivered */
		dns_cache_unhash(c, e);
		dns_entry_free(e);
	}
}
