/*
 * auth_throttle.c - the AUTH brute-force throttle (auth_throttle.h).
 *
 * Each entry sits in a hash chain and in one of two lists: `counting`,
 * ordered by last failure (the eviction order), or `blocked`, ordered by
 * the end of the block (every block of a table lasts the same time, so
 * appending keeps the order).  Eviction takes the head of `counting`
 * only; expiry pops the heads of both lists, a few per call, so no call
 * scans the table.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include "auth_throttle.h"

#define EXPIRE_BATCH 8           /* expired entries freed per call, at most */

const struct auth_throttle_policy auth_throttle_addr_policy = {
	.fail_limit = AUTH_FAIL_LIMIT,
	.window = AUTH_FAIL_WINDOW,
	.block_time = AUTH_BLOCK_TIME,
	.block_spacing = 0,
	.step_ms = 100,              /* 100 ms more per failure, up to 2 s */
	.max_ms = 2000,
	.max_entries = 100000,
};

const struct auth_throttle_policy auth_throttle_user_policy = {
	.fail_limit = AUTH_USER_FAIL_LIMIT,
	.window = AUTH_USER_FAIL_WINDOW,
	.block_time = AUTH_USER_BLOCK_TIME,
	.block_spacing = AUTH_USER_BLOCK_SPACING,
	.step_ms = 100,
	.max_ms = 2000,
	.max_entries = 100000,
};

struct th_entry {
	struct th_entry *hnext;          /* hash chain */
	struct th_entry *prev, *next;    /* counting or blocked list */
	unsigned char key[16];
	unsigned failures;
	time_t last;                     /* last failure */
	time_t blocked_until;            /* 0: not blocked */
	time_t next_block;               /* no block may start before */
};

struct th_list {
	struct th_entry *head, *tail;
};

struct auth_throttle {
	struct auth_throttle_policy p;
	struct th_entry **b;
	size_t nb;                       /* a power of two */
	uint32_t seed;                   /* chains an attacker cannot aim at */
	struct th_list counting, blocked;
	size_t n;
};

static void list_append(struct th_list *l, struct th_entry *e)
{
	e->next = NULL;
	e->prev = l->tail;
	if (l->tail)
		l->tail->next = e;
	else
		l->head = e;
	l->tail = e;
}

static void list_remove(struct th_list *l, struct th_entry *e)
{
	if (e->prev)
		e->prev->next = e->next;
	else
		l->head = e->next;
	if (e->next)
		e->next->prev = e->prev;
	else
		l->tail = e->prev;
	e->prev = e->next = NULL;
}

struct auth_throttle *auth_throttle_new(const struct auth_throttle_policy *p)
{
	struct auth_throttle *t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	t->p = *p;
	if (t->p.max_entries < 1)
		t->p.max_entries = 1;
	t->nb = 16;
	while (t->nb < t->p.max_entries / 2 && t->nb < (1u << 20))
		t->nb <<= 1;
	if (RAND_bytes((unsigned char *)&t->seed, sizeof(t->seed)) != 1)
		t->seed = (uint32_t)(uintptr_t)t;
	if (!(t->b = calloc(t->nb, sizeof(*t->b)))) {
		free(t);
		return NULL;
	}
	return t;
}

void auth_throttle_free(struct auth_throttle *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->nb; i++)
		while (t->b[i]) {
			struct th_entry *e = t->b[i];
			t->b[i] = e->hnext;
			free(e);
		}
	free(t->b);
	free(t);
}

size_t auth_throttle_size(const struct auth_throttle *t)
{
	return t->n;
}

static struct th_entry **bucket(struct auth_throttle *t, const unsigned char key[16])
{
	uint32_t h = 2166136261u ^ t->seed;
	for (int i = 0; i < 16; i++)
		h = (h ^ key[i]) * 16777619u;
	h ^= h >> 15;
	return &t->b[h & (t->nb - 1)];
}

static struct th_entry *find(struct auth_throttle *t, const unsigned char key[16])
{
	struct th_entry *e = *bucket(t, key);
	while (e && memcmp(e->key, key, 16))
		e = e->hnext;
	return e;
}

/* Unhash and free an entry already off its list. */
static void drop(struct auth_throttle *t, struct th_entry *e)
{
	struct th_entry **pp = bucket(t, e->key);
	while (*pp != e)
		pp = &(*pp)->hnext;
	*pp = e->hnext;
	free(e);
	t->n--;
}

static int block_active(const struct th_entry *e, time_t now)
{
	return e->blocked_until && now < e->blocked_until;
}

/* Free or move on what has expired at the heads of both lists. */
static void expire(struct auth_throttle *t, time_t now)
{
	for (int i = 0; i < EXPIRE_BATCH && t->blocked.head &&
			!block_active(t->blocked.head, now); i++) {
		struct th_entry *e = t->blocked.head;
		list_remove(&t->blocked, e);
		e->blocked_until = 0;
		e->failures = 0;
		if (now < e->next_block) {
			/* Remember the spacing: the entry counts again. */
			e->last = now;
			list_append(&t->counting, e);
		} else {
			drop(t, e);
		}
	}
	for (int i = 0; i < EXPIRE_BATCH && t->counting.head; i++) {
		struct th_entry *e = t->counting.head;
		if (now - e->last <= t->p.window || now < e->next_block)
			break;
		list_remove(&t->counting, e);
		drop(t, e);
	}
}

/* A new entry for key, evicting the oldest counting one when full; NULL
 * when every entry is blocked or memory is short. */
static struct th_entry *insert(struct auth_throttle *t, const unsigned char key[16])
{
	if (t->n >= t->p.max_entries) {
		struct th_entry *old = t->counting.head;
		if (!old)
			return NULL;
		list_remove(&t->counting, old);
		drop(t, old);
	}
	struct th_entry *e = calloc(1, sizeof(*e));
	if (!e)
		return NULL;
	memcpy(e->key, key, 16);
	struct th_entry **b = bucket(t, key);
	e->hnext = *b;
	*b = e;
	t->n++;
	return e;
}

long auth_throttle_fail(struct auth_throttle *t, const unsigned char key[16],
			time_t now)
{
	expire(t, now);
	struct th_entry *e = find(t, key);
	if (e && block_active(e, now))
		return -1;               /* a check that was in flight */
	if (!e) {
		/* Untracked must never mean unlimited: refuse. */
		if (!(e = insert(t, key)))
			return -1;
	} else if (e->blocked_until) {
		/* A block that ended but is not expired yet. */
		list_remove(&t->blocked, e);
		e->blocked_until = 0;
		e->failures = 0;
	} else {
		list_remove(&t->counting, e);
		if (now - e->last > t->p.window)
			e->failures = 0;
	}
	e->failures++;
	e->last = now;
	if (e->failures >= t->p.fail_limit && now >= e->next_block) {
		e->blocked_until = now + t->p.block_time;
		if (t->p.block_spacing)
			e->next_block = now + t->p.block_spacing;
		list_append(&t->blocked, e);
		return -1;
	}
	list_append(&t->counting, e);
	long ms = t->p.step_ms * (long)e->failures;
	return ms > t->p.max_ms ? t->p.max_ms : ms;
}

int auth_throttle_blocked(struct auth_throttle *t, const unsigned char key[16],
			  time_t now)
{
	struct th_entry *e = find(t, key);
	if (e)
		return block_active(e, now);
	/* Untracked must never mean unlimited: when no entry could be made
	 * for key (full, every entry blocked), its failures would go
	 * uncounted, one guess per connection for ever. */
	expire(t, now);
	return t->n >= t->p.max_entries && !t->counting.head;
}

int auth_throttle_known(struct auth_throttle *t, const unsigned char key[16],
			time_t now)
{
	struct th_entry *e = find(t, key);
	return e && (block_active(e, now) ||
		     (e->failures && now - e->last <= t->p.window));
}

void auth_throttle_user_key(const char *user, unsigned char key[16])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int len = 0;
	memset(key, 0, 16);
	if (EVP_Digest(user, strlen(user), md, &len, EVP_sha256(), NULL) && len >= 16)
		memcpy(key, md, 16);
	else                             /* no digest: still a key */
		memcpy(key, user, strnlen(user, 16));
}
