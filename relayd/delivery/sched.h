/*
 * sched.h - the delivery scheduler: reads what is due from the queue's
 * due index (one timer on the earliest entry, never a scan), claims the
 * recipients, groups them per destination and message, runs deliveries
 * through smtp_client within destination_concurrency and
 * delivery_concurrency, and commits each result under its claim.
 *
 * Everything here runs on the scheduler's loop thread.  The control
 * socket uses sched_wake, sched_cancel_msg, sched_lift_msg and
 * sched_stats.
 */
#ifndef RELAYD_DELIVERY_SCHED_H
#define RELAYD_DELIVERY_SCHED_H

#include <stdint.h>
#include <uv.h>
#include "config.h"
#include "queue.h"
#include "report.h"

struct sched;
struct dns_resolver;

/* Create on loop, reading queue q and routing with dns (both must outlive
 * the scheduler).  cfg gains a reference.  0 or -1 (out of memory). */
int sched_new(struct sched **out, uv_loop_t *loop, struct queue *q,
	      struct dns_resolver *dns, struct config *cfg);
/* Start: whatever is due is attempted, and what a dead run left in
 * flight is given back and attempted now (not when its lease ends). */
void sched_start(struct sched *s);
/* A new configuration snapshot (reload): routing, TLS policy, limits and
 * lifetimes of every later attempt use it.  Takes a reference. */
void sched_set_config(struct sched *s, struct config *cfg);
/* Register the report service (NULL: none; failures are only logged). */
void sched_set_report_ops(struct sched *s, const struct sched_report_ops *ops);

/* Read the due index now: after new mail was committed, or a flush,
 * requeue or release.  Cheap; many calls in one loop turn make one read. */
void sched_wake(struct sched *s);

/* Message id was flushed: the destinations of its live recipients lose
 * their backoff and slowed pace (the queue's blocks are lifted by the
 * flush itself). */
void sched_lift_msg(struct sched *s, const char *id);

/* A message in flight is being deleted or held: deliveries carrying it
 * abandon it before the final dot (a transaction past the dot is let
 * finish; its result is then applied if the message still exists).
 * 1 when the message was in flight, 0 when not. */
int sched_cancel_msg(struct sched *s, const char *id);

struct sched_stats {
	unsigned connections;        /* SMTP sessions open */
	unsigned deliveries;         /* delivery jobs (routing or connected) */
	unsigned messages;           /* messages in flight */
	unsigned recipients;         /* recipients claimed, not yet applied */
	unsigned destinations;       /* destinations with state (pace, backoff) */
	uint64_t sent, deferred, bounced, expired;   /* since start */
};
void sched_stats(const struct sched *s, struct sched_stats *st);

/* Graceful stop: no new delivery starts; transactions before their final
 * dot are abandoned, those past it get their reply (bounded by
 * smtp_data_done_timeout); every result is committed, then done(arg)
 * runs.  The queue writer must still run until then. */
void sched_stop(struct sched *s, void (*done)(void *arg), void *arg);
/* Free after sched_stop's done (or never started). */
void sched_free(struct sched *s);

#endif
