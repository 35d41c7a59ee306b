/*
 * report.h - the seam between the scheduler and the report (DSN) service.
 *
 * When an attempt leaves recipients failed, or a delay warning or a
 * success notice is due, the scheduler asks the report service for ONE
 * queue op that submits the report (a bounce, a delay warning, a delivery
 * status notification) and commits it in the same atomic group as the
 * recipients' new states and the original's removal: no failure without
 * its bounce, no bounce for a failure that was not recorded, none twice.
 *
 * The scheduler never asks for a report about a message from the null
 * sender or one relayd generated itself (QUEUE_F_BOUNCE): those are only
 * logged.  The service applies NOTIFY (RFC 3461) itself: it may answer
 * "nothing to send" for recipients that asked for no such report.
 *
 * Without a service registered (ops NULL) failures are logged
 * (status=bounced) and the message removed once every recipient is final:
 * what a relay without a bounce service does.
 *
 * Threading: prepare() is called on the scheduler's loop thread; done()
 * must be called exactly once, on that same loop thread, either from
 * inside prepare() or later (building a report may read a large original
 * off the loop thread).  m and r stay valid until done() is called.
 */
#ifndef RELAYD_DELIVERY_REPORT_H
#define RELAYD_DELIVERY_REPORT_H

#include <stddef.h>
#include <stdint.h>
#include "queue.h"

/* What the report is mainly about (an RFC 3464 report may mix actions:
 * each recipient carries its own). */
enum report_kind {
	REPORT_FAILURE,      /* non-delivery: at least one recipient failed */
	REPORT_DELAY,        /* delay warning: delay_warning has passed */
	REPORT_SUCCESS,      /* NOTIFY=SUCCESS recipients delivered/relayed */
};

/* RFC 3464 Action of one recipient. */
enum report_action {
	REPORT_ACTION_FAILED,
	REPORT_ACTION_DELAYED,
	REPORT_ACTION_DELIVERED,   /* the next hop took NOTIFY (QUEUE_RF_DELIVERED) */
	REPORT_ACTION_RELAYED,     /* sent to a hop without DSN (QUEUE_RF_RELAYED) */
	REPORT_ACTION_EXPANDED,    /* unused by relayd; for completeness */
};

/* One recipient the report covers, with the facts of this attempt (the
 * stored queue_msg has the facts of the previous one). */
struct report_rcpt {
	uint32_t rcpt;             /* index into m->rcpt */
	const char *addr;          /* without <> */
	const char *orcpt;         /* RFC 3461 ORCPT or NULL */
	unsigned notify;           /* QUEUE_NOTIFY_* (0: not given) */
	enum report_action action;
	const char *dsn;           /* "5.1.1", "4.4.7", "2.0.0" */
	const char *reason;        /* the remote reply or the local reason */
	const char *diag_type;     /* "smtp" when reason is a remote reply, else NULL */
	const char *hop_host;      /* Remote-MTA, or NULL when none was reached */
	const char *hop_ip;
	unsigned hop_port;
	int64_t when;              /* unix seconds of the attempt */
	int64_t will_retry_until;  /* REPORT_ACTION_DELAYED: arrival + queue_lifetime */
};

/*
 * The answer.  status 0 with submit_op NULL: nothing to send (NOTIFY
 * said no).  status 0 with submit_op: the op that submits the report
 * (taken over by the scheduler, which puts it into its group) and the
 * report's queue id in *newid (for the "sender non-delivery notification:
 * NEWID" line the scheduler logs once the group is durable).  status < 0
 * (a QUEUE_E* code): the report cannot be built now: the scheduler keeps
 * the failed recipients deferred and asks again at the next attempt, so
 * no failure is ever recorded without its report.
 */
typedef void report_done_fn(void *cbarg, int status, struct queue_op *submit_op,
			    const queue_id *newid);

struct sched_report_ops {
	void (*prepare)(void *arg, const struct queue_msg *m,
			const struct report_rcpt *r, size_t n,
			enum report_kind kind, report_done_fn *done, void *cbarg);
	void *arg;
};

#endif
