/*
 * dest.c - per-destination state and pace (dest.h).
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "dest.h"
#include "log.h"
#include "retry.h"

#define DEST_BUCKETS 1024
#define GAP_FIRST_MS 1000
#define GAP_MAX_MS 60000
#define RECOVER_AFTER 10        /* successes per recovery step */

struct dest_table {
	struct dest *b[DEST_BUCKETS];
	size_t n;
};

static unsigned hash(const char *s)
{
	unsigned h = 2166136261u;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h % DEST_BUCKETS;
}

struct dest_table *dest_table_new(void)
{
	return calloc(1, sizeof(struct dest_table));
}

void dest_table_free(struct dest_table *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < DEST_BUCKETS; i++)
		for (struct dest *d = t->b[i], *nx; d; d = nx) {
			nx = d->next;
			free(d);
		}
	free(t);
}

struct dest *dest_get(struct dest_table *t, const char *name, int create)
{
	unsigned h = hash(name);
	for (struct dest *d = t->b[h]; d; d = d->next)
		if (strcmp(d->name, name) == 0)
			return d;
	if (!create)
		return NULL;
	struct dest *d = calloc(1, sizeof(*d));
	if (!d)
		return NULL;
	snprintf(d->name, sizeof(d->name), "%s", name);
	d->limit = UINT32_MAX;    /* the configured cap until slowed down */
	d->next = t->b[h];
	t->b[h] = d;
	t->n++;
	return d;
}

size_t dest_count(const struct dest_table *t)
{
	return t->n;
}

size_t dest_busiest(const struct dest_table *t, const struct dest **out,
		    size_t max)
{
	size_t n = 0;
	for (size_t i = 0; i < DEST_BUCKETS && max; i++)
		for (const struct dest *d = t->b[i]; d; d = d->next) {
			if (!d->active)
				continue;
			/* insertion into the sorted top list */
			size_t k = n < max ? n++ : max;
			if (k == max && out[max - 1]->active >= d->active)
				continue;
			if (k == max)
				k = max - 1;
			while (k > 0 && out[k - 1]->active < d->active) {
				out[k] = out[k - 1];
				k--;
			}
			out[k] = d;
		}
	return n;
}

void dest_expire(struct dest_table *t, int64_t older)
{
	for (size_t i = 0; i < DEST_BUCKETS; i++)
		for (struct dest **pp = &t->b[i]; *pp;) {
			struct dest *d = *pp;
			if (!d->active && d->last_used < older &&
			    d->limit == UINT32_MAX && !d->gap_ms &&
			    d->blocked_until < older) {
				*pp = d->next;
				free(d);
				t->n--;
			} else {
				pp = &d->next;
			}
		}
}

static unsigned cap(const struct dest *d, const struct config *cfg)
{
	unsigned c = (unsigned)cfg->destination_concurrency;
	return d->limit < c ? d->limit : c;
}

uint64_t dest_interval_ms(const struct dest *d, const struct config *cfg)
{
	uint64_t rate = cfg->destination_rate ? 60000 / cfg->destination_rate : 0;
	return rate > d->gap_ms ? rate : d->gap_ms;
}

unsigned dest_room(struct dest *d, const struct config *cfg, uint64_t now_ms,
		   int64_t now, uint64_t *paced_until)
{
	d->last_used = now;
	if (d->blocked_until > now)
		return 0;
	unsigned c = cap(d, cfg);
	if (d->active >= c)
		return 0;
	if (dest_interval_ms(d, cfg)) {
		if (now_ms < d->next_slot_ms) {
			*paced_until = d->next_slot_ms;
			return 0;
		}
		return 1;      /* one message at a time, one slot each */
	}
	return c - d->active;
}

void dest_take_slot(struct dest *d, const struct config *cfg, uint64_t now_ms)
{
	uint64_t iv = dest_interval_ms(d, cfg);
	if (iv)
		d->next_slot_ms = now_ms + iv;
}

static void log_pace(const struct dest *d, unsigned oc, unsigned nc,
		     uint64_t og, uint64_t ng, const char *why)
{
	log_info(LOG_SVC_QMGR, "%s: pace changed: concurrency %u -> %u, gap %.1fs -> %.1fs (%s)",
		 d->name, oc, nc, (double)og / 1000, (double)ng / 1000, why);
}

void dest_slow_down(struct dest *d, const struct config *cfg, const char *why)
{
	unsigned oc = cap(d, cfg), nc = oc > 1 ? oc / 2 : 1;
	uint64_t og = d->gap_ms;
	uint64_t ng = og ? og * 2 : GAP_FIRST_MS;
	if (ng > GAP_MAX_MS)
		ng = GAP_MAX_MS;
	d->limit = nc;
	d->gap_ms = ng;
	d->ok_streak = 0;
	if (oc != nc || og != ng)
		log_pace(d, oc, nc, og, ng, why);
}

void dest_success(struct dest *d, const struct config *cfg)
{
	if (d->limit == UINT32_MAX && !d->gap_ms)
		return;
	if (++d->ok_streak < RECOVER_AFTER)
		return;
	d->ok_streak = 0;
	unsigned oc = cap(d, cfg), nc = oc + 1;
	uint64_t og = d->gap_ms, ng = og / 2 < GAP_FIRST_MS / 4 ? 0 : og / 2;
	if (nc >= cfg->destination_concurrency && !ng) {
		d->limit = UINT32_MAX;
		nc = (unsigned)cfg->destination_concurrency;
	} else {
		d->limit = nc;
	}
	d->gap_ms = ng;
	log_pace(d, oc, nc, og, ng, "accepting again");
}

void dest_conn_failed(struct dest *d, const struct config *cfg, int64_t now,
		      int64_t *until)
{
	*until = retry_next(cfg, d->conn_fails, now);
	d->conn_fails++;
	d->blocked_until = *until;
}

void dest_conn_ok(struct dest *d)
{
	d->conn_fails = 0;
	d->blocked_until = 0;
}

void dest_lift(struct dest *d)
{
	if (!d->blocked_until && !d->conn_fails && d->limit == UINT32_MAX &&
	    !d->gap_ms)
		return;
	log_info(LOG_SVC_QMGR, "%s: backoff and pace reset by flush", d->name);
	d->blocked_until = 0;
	d->conn_fails = 0;
	d->limit = UINT32_MAX;
	d->gap_ms = 0;
	d->ok_streak = 0;
	d->next_slot_ms = 0;
}

/* word at p, not inside a longer word */
static int has_word(const char *text, const char *w)
{
	size_t wl = strlen(w);
	for (const char *p = text; (p = strcasestr(p, w)); p++) {
		int before = p == text || !isalpha((unsigned char)p[-1]);
		int after = !isalpha((unsigned char)p[wl]);
		if (before && after)
			return 1;
	}
	return 0;
}

int dest_is_throttle(int code, const char *text)
{
	static const char *const phrases[] = {
		"too many", "throttl", "try again later", "slow down", "too fast",
		"rate limit", "ratelimit", "rate-limit", "rate exceeded",
	};
	if (code != 421 && code != 450 && code != 451)
		return 0;
	for (size_t i = 0; i < sizeof(phrases) / sizeof(phrases[0]); i++)
		if (strcasestr(text, phrases[i]))
			return 1;
	return has_word(text, "rate");
}
