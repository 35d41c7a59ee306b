/*
 * retry.c - backoff and lifetimes (retry.h).
 *
 * The jitter keeps a burst deferred together (a next hop that was down
 * for a minute) from coming back together at every later retry.
 */
#include <stdlib.h>
#include "retry.h"

int64_t retry_next(const struct config *cfg, uint32_t attempts, int64_t now)
{
	uint64_t d = cfg->retry_min ? cfg->retry_min : 1;
	for (uint32_t i = 0; i < attempts && d < cfg->retry_max; i++)
		d *= 2;
	if (d > cfg->retry_max)
		d = cfg->retry_max;
	/* +-10%, at least a second either way when d allows it */
	int64_t span = (int64_t)(d / 10);
	int64_t j = span ? (int64_t)(random() % (2 * span + 1)) - span : 0;
	int64_t next = (int64_t)d + j;
	if ((uint64_t)next > cfg->retry_max && d >= cfg->retry_max)
		next = (int64_t)cfg->retry_max - (span ? random() % (span + 1) : 0);
	if (next < 1)
		next = 1;
	return now + next;
}

uint64_t retry_lifetime(const struct config *cfg, const struct queue_msg *m)
{
	if ((m->flags & QUEUE_F_BOUNCE) || !m->sender || !*m->sender)
		return cfg->bounce_lifetime;
	return cfg->queue_lifetime;
}

int retry_expired(const struct config *cfg, const struct queue_msg *m, int64_t now)
{
	int64_t arrived = m->arrival / 1000000;
	return now - arrived >= (int64_t)retry_lifetime(cfg, m);
}
