/*
 * bounce.h - the report service: implements the scheduler's report seam
 * (delivery/report.h) by composing delivery status notifications
 * (dsn_compose.h) and handing back the op that queues them.
 *
 * NOTIFY (RFC 3461 §4.1), per recipient:
 *  - NEVER: no report about it, whatever happened;
 *  - not given: failures and delays are reported;
 *  - otherwise what it lists: FAILURE, DELAY, SUCCESS.
 * Success (RFC 3461 §5.2.2 and §5.2.1): relayd never delivers to a
 * mailbox, it relays.  A next hop that did not offer DSN cannot report
 * success, so relayd reports "Action: relayed" for a NOTIFY=SUCCESS
 * recipient it handed over (REPORT_ACTION_RELAYED).  A next hop that
 * took NOTIFY (REPORT_ACTION_DELIVERED) now owns the success report:
 * relayd sends none, or the sender would get two.
 *
 * A report is a new message from <> to the original's sender (or, for a
 * failure of a null-sender message, to bounce_notice_recipient when one
 * is set; never to the null sender), flagged QUEUE_F_BOUNCE, its one
 * recipient NOTIFY=NEVER, 8BITMIME when it carries 8-bit bytes and
 * SMTPUTF8 when the original needed it.  It is built in libuv's thread
 * pool: the original is read in pieces with queue_body_copy, the report
 * spooled, and the submit op made there; the answer comes back on the
 * loop thread.
 *
 * Lifetimes (bounce_lifetime for QUEUE_F_BOUNCE messages), when a delay
 * warning is due and the flags that record it are the scheduler's
 * (delivery/retry.h, delivery/apply.c); so is the "sender non-delivery
 * notification: NEWID" log line, written once the group is durable.
 *
 * Ownership: the service keeps a reference on its config snapshot and
 * uses the queue it was given, which must outlive it.
 */
#ifndef RELAYD_BOUNCE_BOUNCE_H
#define RELAYD_BOUNCE_BOUNCE_H

#include <stdint.h>
#include <uv.h>
#include "config.h"
#include "queue.h"
#include "delivery/report.h"

struct bounce;

/* 0, or -1 when out of memory. */
int bounce_new(struct bounce **out, uv_loop_t *loop, struct queue *q,
	       struct config *cfg);
/* A new configuration snapshot (reload); reports begun keep the old one. */
void bounce_set_config(struct bounce *b, struct config *cfg);
/* The ops to give sched_set_report_ops; valid while b lives. */
const struct sched_report_ops *bounce_ops(struct bounce *b);
/* Free.  Reports still being built finish first (the loop must run):
 * their answers are still delivered. */
void bounce_free(struct bounce *b);

/* The RFC 3461 rule above: 1 when recipient r wants to hear of action a. */
int bounce_wanted(unsigned notify, enum report_action a);

#endif
