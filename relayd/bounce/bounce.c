/*
 * bounce.c - the report service (see bounce.h): NOTIFY decides who is
 * reported, dsn_compose writes the report in the thread pool, and the
 * scheduler gets back one submit op for its atomic group.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "bounce/bounce.h"
#include "bounce/dsn_compose.h"
#include "log.h"

struct bounce {
	uv_loop_t *loop;
	struct queue *q;
	struct config *cfg;
	struct sched_report_ops ops;
	unsigned jobs;          /* reports being built */
	int closing;            /* free when the last job ends */
};

/* One report being built.  m and the scheduler's recipients stay valid
 * until done() is called (report.h), so only what the thread pool writes
 * lives here. */
struct bounce_job {
	uv_work_t work;
	struct bounce *b;
	struct config *cfg;
	const struct queue_msg *m;
	const char *to;
	int notice;             /* to bounce_notice_recipient (QUEUE_F_NOTICE) */
	struct dsn_rcpt *rc;
	size_t n;
	enum dsn_kind kind;
	report_done_fn *done;
	void *cbarg;
	int status;
	struct queue_op *op;
	queue_id newid;
};

int bounce_wanted(unsigned notify, enum report_action a)
{
	if (notify & QUEUE_NOTIFY_NEVER)
		return 0;
	switch (a) {
	case REPORT_ACTION_FAILED:
		return notify == 0 || (notify & QUEUE_NOTIFY_FAILURE);
	case REPORT_ACTION_DELAYED:
		return notify == 0 || (notify & QUEUE_NOTIFY_DELAY);
	case REPORT_ACTION_RELAYED:
	case REPORT_ACTION_EXPANDED:
		return (notify & QUEUE_NOTIFY_SUCCESS) != 0;
	case REPORT_ACTION_DELIVERED:
		return 0;   /* the next hop took NOTIFY: it reports (bounce.h) */
	}
	return 0;
}

static enum dsn_action dsn_action_of(enum report_action a)
{
	switch (a) {
	case REPORT_ACTION_FAILED: return DSN_ACTION_FAILED;
	case REPORT_ACTION_DELAYED: return DSN_ACTION_DELAYED;
	case REPORT_ACTION_DELIVERED: return DSN_ACTION_DELIVERED;
	case REPORT_ACTION_RELAYED: return DSN_ACTION_RELAYED;
	case REPORT_ACTION_EXPANDED: return DSN_ACTION_EXPANDED;
	}
	return DSN_ACTION_FAILED;
}

static enum dsn_kind dsn_kind_of(enum report_kind k)
{
	return k == REPORT_DELAY ? DSN_KIND_DELAY :
	       k == REPORT_SUCCESS ? DSN_KIND_SUCCESS : DSN_KIND_FAILURE;
}

struct body_src {
	struct queue *q;
	const char *id;
	int err;                /* the queue's error, if reading failed */
};

static int read_body(void *arg, uint64_t off, void *buf, size_t len, size_t *got)
{
	struct body_src *s = arg;
	return s->err = queue_body_copy(s->q, s->id, off, buf, len, got);
}

/* In the thread pool: compose, spool and make the submit op. */
static void job_work(uv_work_t *w)
{
	struct bounce_job *j = w->data;
	const struct queue_msg *m = j->m;
	struct body_src src = { j->b->q, m->id.s, 0 };
	int64_t now = (int64_t)time(NULL);
	queue_id_new(j->b->q, &j->newid);
	struct dsn_report r = {
		.kind = j->kind, .hostname = j->cfg->hostname, .queue_id = m->id.s,
		.report_id = j->newid.s, .to = j->to, .envid = m->envid,
		.arrival = m->arrival / 1000000, .now = now,
		.ret_full = m->ret == QUEUE_RET_FULL,
		.utf8 = (m->flags & QUEUE_F_SMTPUTF8) != 0,
		.orig_size = m->size, .size_limit = j->cfg->message_size_limit,
		.read = read_body, .read_arg = &src, .rcpt = j->rc, .nrcpt = j->n,
	};
	struct dsn_result res;
	int rc = dsn_compose(&r, &res);
	if (rc) {
		j->status = src.err ? src.err : QUEUE_ENOMEM;
		return;
	}
	struct queue_spool *sp = NULL;
	if ((rc = queue_spool_new(j->b->q, &sp)) ||
	    (rc = queue_spool_write(sp, res.data, res.len))) {
		if (rc && sp)
			queue_spool_free(sp);
		dsn_result_free(&res);
		j->status = rc;
		return;
	}
	struct queue_rcpt nr = { .addr = (char *)j->to, .notify = QUEUE_NOTIFY_NEVER };
	struct queue_msg nm = {
		.id = j->newid, .arrival = now * 1000000, .sender = "",
		.flags = QUEUE_F_BOUNCE | (j->notice ? QUEUE_F_NOTICE : 0) |
			 (res.eightbit ? QUEUE_F_8BITMIME | QUEUE_F_8BITDATA : 0) |
			 QUEUE_F_SCANNED |
			 (m->flags & QUEUE_F_SMTPUTF8),
		.client_name = "localhost", .client_addr = "127.0.0.1",
		.nrcpt = 1, .rcpt = &nr,
	};
	dsn_result_free(&res);
	/* The op copies the envelope (queue_op_submit encodes it), so nm may
	 * go; it takes the spool, and flushes it here, off the loop. */
	j->op = queue_op_submit(&nm, sp, now);
	j->status = j->op ? 0 : QUEUE_ENOMEM;
}

static void bounce_maybe_free(struct bounce *b)
{
	if (b->closing && b->jobs == 0) {
		config_unref(b->cfg);
		free(b);
	}
}

static void job_free(struct bounce_job *j)
{
	config_unref(j->cfg);
	free(j->rc);
	free(j);
}

static void job_after(uv_work_t *w, int status)
{
	struct bounce_job *j = w->data;
	struct bounce *b = j->b;
	if (status == UV_ECANCELED && !j->status)
		j->status = QUEUE_ESTOPPED;
	if (j->status) {
		log_warn(LOG_SVC_BOUNCE, "%s: cannot build the %s report: %s",
			j->m->id.s, j->kind == DSN_KIND_FAILURE ? "non-delivery" :
			j->kind == DSN_KIND_DELAY ? "delay" : "delivery status",
			queue_strerror(j->status));
		queue_op_free(j->op);
		j->done(j->cbarg, j->status, NULL, NULL);
	} else {
		j->done(j->cbarg, 0, j->op, &j->newid);
	}
	job_free(j);
	b->jobs--;
	bounce_maybe_free(b);
}

/* Where a report about m goes: its sender, or for a message without
 * one (a bounce of ours, a null sender) bounce_notice_recipient on a
 * failure, else nowhere (never bounce a bounce).  A notice that failed
 * goes nowhere: a copy of it would fail the same way, forever. */
static const char *report_to(const struct bounce *b, const struct queue_msg *m,
			     enum report_kind kind)
{
	if (m->sender && m->sender[0] && !(m->flags & QUEUE_F_BOUNCE))
		return m->sender;
	const char *n = b->cfg->bounce_notice_recipient;
	return kind == REPORT_FAILURE && n && n[0] && !(m->flags & QUEUE_F_NOTICE) ?
	       n : NULL;
}

static void bounce_prepare(void *arg, const struct queue_msg *m,
			   const struct report_rcpt *r, size_t n,
			   enum report_kind kind, report_done_fn *done, void *cbarg)
{
	struct bounce *b = arg;
	const char *to = report_to(b, m, kind);
	struct bounce_job *j = NULL;
	if (!to) {
		done(cbarg, 0, NULL, NULL);
		return;
	}
	if (!(j = calloc(1, sizeof(*j))) || !(j->rc = calloc(n ? n : 1, sizeof(*j->rc))))
		goto nomem;
	for (size_t i = 0; i < n; i++) {
		/* A notice to the postmaster reports every failure. */
		if (to == m->sender ? !bounce_wanted(r[i].notify, r[i].action) :
		    r[i].action != REPORT_ACTION_FAILED)
			continue;
		j->rc[j->n++] = (struct dsn_rcpt){
			.addr = r[i].addr, .orcpt = r[i].orcpt,
			.action = dsn_action_of(r[i].action), .status = r[i].dsn,
			.remote_mta = r[i].hop_host, .diag_type = r[i].diag_type,
			.reply = r[i].reason, .last_attempt = r[i].when,
			.will_retry_until = r[i].will_retry_until,
		};
	}
	if (j->n == 0) {
		free(j->rc);
		free(j);
		done(cbarg, 0, NULL, NULL);
		return;
	}
	j->b = b;
	j->cfg = config_ref(b->cfg);
	j->m = m;
	j->to = to;
	j->notice = to != m->sender;
	j->kind = dsn_kind_of(kind);
	j->done = done;
	j->cbarg = cbarg;
	j->work.data = j;
	if (uv_queue_work(b->loop, &j->work, job_work, job_after)) {
		job_free(j);
		done(cbarg, QUEUE_ENOMEM, NULL, NULL);
		return;
	}
	b->jobs++;
	return;
nomem:
	if (j)
		free(j->rc);
	free(j);
	done(cbarg, QUEUE_ENOMEM, NULL, NULL);
}

int bounce_new(struct bounce **out, uv_loop_t *loop, struct queue *q,
	       struct config *cfg)
{
	struct bounce *b = calloc(1, sizeof(*b));
	if (!b)
		return -1;
	b->loop = loop;
	b->q = q;
	b->cfg = config_ref(cfg);
	b->ops.prepare = bounce_prepare;
	b->ops.arg = b;
	*out = b;
	return 0;
}

void bounce_set_config(struct bounce *b, struct config *cfg)
{
	struct config *old = b->cfg;
	b->cfg = config_ref(cfg);
	config_unref(old);
}

const struct sched_report_ops *bounce_ops(struct bounce *b)
{
	return &b->ops;
}

void bounce_free(struct bounce *b)
{
	if (!b)
		return;
	b->closing = 1;
	bounce_maybe_free(b);
}
