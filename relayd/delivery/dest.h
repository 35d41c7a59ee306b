/*
 * dest.h - what the scheduler knows of each destination (a recipient
 * domain, or the relayhost): connections running, the pace it is sent
 * at, and whether it is backed off as a whole.
 *
 * The pace adapts: a destination that throttles (421/450/451 saying "too
 * many", "rate", "try again later"...) or refuses connections gets fewer
 * connections and a longer gap between messages; each run of successes
 * gives some back.  destination_rate adds a fixed floor to the gap.
 */
#ifndef RELAYD_DELIVERY_DEST_H
#define RELAYD_DELIVERY_DEST_H

#include <stdint.h>
#include "config.h"
#include "queue.h"

struct dest {
	char name[QUEUE_DEST_MAX + 1];
	struct dest *next;           /* hash chain */
	unsigned active;             /* deliveries running */
	unsigned limit;              /* adaptive cap, <= destination_concurrency */
	uint64_t gap_ms;             /* adaptive gap between messages */
	uint64_t next_slot_ms;       /* loop time the next message may start */
	unsigned conn_fails;         /* consecutive jobs that reached no hop */
	unsigned ok_streak;
	int64_t blocked_until;       /* unix seconds; 0: not blocked */
	int64_t last_used;           /* unix seconds, for expiry of idle state */
};

struct dest_table;

struct dest_table *dest_table_new(void);
void dest_table_free(struct dest_table *t);
/* Find or (create) dest; NULL when out of memory or not found. */
struct dest *dest_get(struct dest_table *t, const char *name, int create);
size_t dest_count(const struct dest_table *t);
/* Up to max destinations with deliveries running, busiest first. */
size_t dest_busiest(const struct dest_table *t, const struct dest **out,
		    size_t max);
/* Forget idle destinations untouched since before `older`. */
void dest_expire(struct dest_table *t, int64_t older);

/* How many more deliveries may start now (0: at the cap, paced or
 * blocked); *paced_until (loop ms) is set when the pace is why. */
unsigned dest_room(struct dest *d, const struct config *cfg, uint64_t now_ms,
		   int64_t now, uint64_t *paced_until);
/* 0: no gap between messages; else the milliseconds between them. */
uint64_t dest_interval_ms(const struct dest *d, const struct config *cfg);
/* A message is starting: the next one waits for the interval. */
void dest_take_slot(struct dest *d, const struct config *cfg, uint64_t now_ms);

/* The hop said slow down, or refused the connection: halve the
 * connections, lengthen the gap (logged). */
void dest_slow_down(struct dest *d, const struct config *cfg, const char *why);
/* A message went through: after a run of them, recover one step. */
void dest_success(struct dest *d, const struct config *cfg);
/* A delivery reached no hop at all: *until (unix s) is when the
 * destination may be tried again (backoff as a whole). */
void dest_conn_failed(struct dest *d, const struct config *cfg, int64_t now,
		      int64_t *until);
void dest_conn_ok(struct dest *d);
/* The admin flushed mail for d: forget its backoff and slowed pace, so
 * that it is tried now at full speed (logged when there was any). */
void dest_lift(struct dest *d);

/* 1 when code and text say "too fast" rather than "not now". */
int dest_is_throttle(int code, const char *text);

#endif
