/*
 * control_admin.h - one admin action (hold, release, delete, requeue,
 * flush, deliver) on a list of queue ids, through the group-commit
 * writer: the ops of one list share a commit, so they serialize with
 * deliveries and arrivals.  The daemon's control socket and relayctl
 * (when the daemon is down, on a loop and a writer of its own) both
 * call this, so both paths change the queue the same way and log it the
 * same way, Postfix postsuper-style ("QUEUEID: removed").
 *
 * Recipients a delivery holds (claimed) are left to it by the queue
 * (queue_op_admin); a deleted message's deliveries in flight are told
 * through the cancel hook, and the scheduler is woken after anything
 * that makes mail due now.
 */
#ifndef RELAYD_CONTROL_ADMIN_H
#define RELAYD_CONTROL_ADMIN_H

#include <stddef.h>
#include <jansson.h>
#include "queue.h"

/* What the daemon lends the control socket; every pointer may be NULL
 * (relayctl has no scheduler; nor has a daemon without one). */
struct control_hooks {
	void *arg;
	/* The queue changed under the scheduler: read the due index again. */
	void (*queue_changed)(void *arg);
	/* Message id is gone: abort its deliveries in flight. */
	int (*cancel_msg)(void *arg, const char *id);
	/* Message id was flushed: its destinations' backoff is lifted. */
	void (*lift_msg)(void *arg, const char *id);
	/* Add the scheduler's counters to a status reply. */
	void (*stats)(void *arg, json_t *out);
};

struct control_action;
/* The action called name ("hold", "release", "delete", "requeue",
 * "flush", "deliver"), or NULL. */
const struct control_action *control_action_find(const char *name);
/* What the log and relayctl say was done: "removed", "placed on hold"... */
const char *control_action_done(const struct control_action *a);

#define CONTROL_ERRORS_MAX 100   /* per-id errors reported, at most */

struct control_admin_result {
	size_t done;              /* ops applied */
	size_t missing;           /* no such message (any more) */
	size_t failed;            /* other errors */
	int err;                  /* the first other error (QUEUE_E*) */
	json_t *errors;           /* [{id, error}], up to CONTROL_ERRORS_MAX */
};
typedef void control_admin_done_fn(void *arg,
				   const struct control_admin_result *r);

/* Apply a to the n ids (copied) through q's writer, which must run on
 * the calling loop thread; done(arg, result) runs once every op has
 * completed (the result and its errors array are freed after it).  h
 * (may be NULL) is read when the ops complete, so it must live until
 * then; clearing its members there stops the calls.  An id
 * that is not a queue id counts as failed.  0, or QUEUE_ENOMEM (done is
 * not called then). */
int control_admin_run(struct queue *q, const struct control_hooks *h,
		      const struct control_action *a, const char *const *ids,
		      size_t n, control_admin_done_fn *done, void *arg);

#endif
