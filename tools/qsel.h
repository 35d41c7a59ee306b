/*
 * qsel.h - how the admin tools see the queue: a message's queue name
 * (hold, active, deferred, incoming), the filters of bulk actions, and a
 * walk over every message, page by page, from short read-only snapshots
 * (queue_list_page), so that a listing of a million messages never holds
 * one snapshot for long and works while the daemon is down.
 */
#ifndef RELAYD_QSEL_H
#define RELAYD_QSEL_H

#include <regex.h>
#include <stdint.h>
#include "config.h"
#include "queue.h"

/* Postfix's queue names, as postqueue -j prints them: "hold" for a held
 * message, "active" while one of its recipients is claimed by a delivery
 * in flight, "deferred" once one was tried, "incoming" before any try. */
enum qsel_state { QSEL_INCOMING, QSEL_ACTIVE, QSEL_DEFERRED, QSEL_HOLD,
		  QSEL_NSTATES };
const char *qsel_state_name(enum qsel_state s);
enum qsel_state qsel_state_of(const struct queue_msg *m, int64_t now);

/* A recipient still to be delivered (pending or deferred). */
int qsel_rcpt_live(const struct queue_rcpt *r);
/* A recipient a delivery holds right now (a live claim). */
int qsel_rcpt_active(const struct queue_rcpt *r, int64_t now);

/* The filters of relayctl's bulk actions; a message must pass all that
 * are set.  from: the sender exactly (case-insensitive), or "@domain"
 * for any sender at that domain; to_domain: a live recipient at that
 * domain; older_than: arrived at least that many seconds ago; reason: a
 * live recipient whose last delay reason matches (POSIX extended). */
struct qsel_filter {
	const char *from;
	const char *to_domain;
	uint64_t older_than;
	int has_reason;
	regex_t reason;
	int64_t now;
};
/* Compile the reason filter; 0, or -1 with the regex error in err. */
int qsel_filter_reason(struct qsel_filter *f, const char *re, char *err,
		       size_t errlen);
void qsel_filter_free(struct qsel_filter *f);
int qsel_filter_set(const struct qsel_filter *f);
int qsel_match(const struct qsel_filter *f, const struct queue_msg *m);

/* Open cfg's queue read-only; 0, or -1 with a message on stderr naming
 * the program (prog). */
int qsel_open(struct queue **q, const struct config *cfg, const char *prog);

/* Call fn for every message in arrival order, in pages of `page` copied
 * out of one snapshot each; fn returns non-zero to stop (that value is
 * returned).  0 at the end, or a negative QUEUE_E* code. */
typedef int qsel_fn(const struct queue_msg *m, void *arg);
int qsel_walk(struct queue *q, size_t page, qsel_fn *fn, void *arg);

#endif
