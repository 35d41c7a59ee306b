/*
 * retry.h - when a deferred recipient is tried again, and when it has
 * been tried long enough.
 */
#ifndef RELAYD_DELIVERY_RETRY_H
#define RELAYD_DELIVERY_RETRY_H

#include <stdint.h>
#include "config.h"
#include "queue.h"

/* retry_min * 2^attempts, +-10%, capped at retry_max; attempts is the
 * number made before this one. */
int64_t retry_next(const struct config *cfg, uint32_t attempts, int64_t now);
/* The lifetime that applies to m: bounce_lifetime for a report relayd
 * made or mail from <>, queue_lifetime otherwise. */
uint64_t retry_lifetime(const struct config *cfg, const struct queue_msg *m);
/* 1 when m has been queued for longer than its lifetime at now. */
int retry_expired(const struct config *cfg, const struct queue_msg *m, int64_t now);

#endif
