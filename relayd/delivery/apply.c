/*
 * apply.c - one message's results, committed as one atomic group: the
 * recipients' new states, the report they cause (report.h) and the
 * message's removal once every recipient is final.  Recipients handed
 * back without an attempt (stop, cancel) are released instead.
 *
 * Results are applied under the claim they were delivered under: a
 * recipient someone else owns now (QUEUE_ESTALE) is theirs to finish.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "log.h"
#include "maillog.h"
#include "metrics.h"
#include "retry.h"
#include "sched_int.h"

struct apply {
	struct sched *s;
	struct dmsg *m;
	int64_t now;
	struct queue_rcpt_update *u;
	size_t nu;
	char (*reason)[800];         /* expiry texts */
	struct report_rcpt *rr;
	size_t nrr;
	enum report_kind kind;
	int want_report;
	struct queue_op *report_op;
	queue_id report_id;
	int report_status;
	unsigned outstanding;        /* writer ops not yet back */
	int maybe_gone;              /* committed, none of ours still live */
	unsigned warn_flag;
};

static const char *kind_name(enum report_kind k)
{
	return k == REPORT_FAILURE ? "non-delivery" : k == REPORT_DELAY ? "delay" :
	       "delivery status";
}

static void finalize(struct apply *a)
{
	struct sched *s = a->s;
	struct dmsg *m = a->m;
	for (size_t i = 0; i < m->n; i++)
		sched__fl_del(s, m->m.id.s, m->r[i].idx);
	/* The last delivery of a message to finish looks whether it is
	 * gone: another one, to another destination, may have loaded it
	 * before this one's recipients were final. */
	if (sched__fm_unref(s, m->m.id.s) && a->maybe_gone) {
		struct queue_read *r;
		struct queue_msg tmp;
		memset(&tmp, 0, sizeof(tmp));
		if (queue_read_begin(s->q, &r) == 0) {
			if (queue_msg_get(r, m->m.id.s, &tmp) == QUEUE_ENOENT)
				maillog_removed(m->m.id.s);
			queue_msg_clear(&tmp);
			queue_read_end(r);
		}
	}
	dmsg_free(m);
	free(a->u);
	free(a->reason);
	free(a->rr);
	if (a->report_op)
		queue_op_free(a->report_op);
	free(a);
}

static void op_back(struct apply *a)
{
	struct sched *s = a->s;
	if (--a->outstanding == 0) {
		finalize(a);
		sched_wake(s);     /* the due index changed: arm for it */
	}
	sched__op_done(s);
}

static void on_released(void *arg, int status, const struct queue_op *op)
{
	(void)op;
	if (status && status != QUEUE_ENOENT)
		log_warn(LOG_SVC_QMGR, "releasing a claim failed: %s", queue_strerror(status));
	op_back(arg);
}

/* Counters and metrics of a committed attempt. */
static void count(struct sched *s, const struct apply *a)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	double age = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9 -
		     (double)a->m->m.arrival / 1e6;
	for (size_t i = 0; i < a->nu; i++) {
		const struct queue_rcpt_update *u = &a->u[i];
		unsigned label;
		if (u->state == QUEUE_RCPT_SENT) {
			s->st.sent++;
			label = METRIC_STATUS_SENT;
		} else if (u->state == QUEUE_RCPT_DEFERRED) {
			s->st.deferred++;
			label = METRIC_STATUS_DEFERRED;
		} else if (u->dsn && strcmp(u->dsn, "4.4.7") == 0) {
			s->st.expired++;
			label = METRIC_STATUS_EXPIRED;
		} else {
			s->st.bounced++;
			label = METRIC_STATUS_BOUNCED;
		}
		metric_inc_label(METRIC_DELIVERY_RECIPIENTS, label);
		if (u->state != QUEUE_RCPT_DEFERRED)
			metric_observe(METRIC_DELIVERY_LATENCY, age > 0 ? age : 0);
	}
}

static void on_one(void *arg, int status, const struct queue_op *op)
{
	(void)op;
	if (status && status != QUEUE_ESTALE && status != QUEUE_ENOENT)
		log_warn(LOG_SVC_QMGR, "%s: recording a result failed: %s",
			 ((struct apply *)arg)->m->m.id.s, queue_strerror(status));
	op_back(arg);
}

static int submit(struct apply *a, struct queue_op *op, queue_done_fn *fn)
{
	if (!op)
		return -1;
	if (queue_writer_submit(a->s->q, op, fn, a)) {
		queue_op_free(op);
		return -1;
	}
	a->outstanding++;
	a->s->pending_ops++;
	return 0;
}

static void on_group(void *arg, int status, const struct queue_op *op)
{
	struct apply *a = arg;
	(void)op;
	if (status == 0) {
		a->maybe_gone = 1;
		for (size_t i = 0; i < a->nu; i++)
			if (a->u[i].state == QUEUE_RCPT_DEFERRED)
				a->maybe_gone = 0;
		count(a->s, a);
		if (a->report_id.s[0])
			maillog_bounce(a->m->m.id.s, kind_name(a->kind), a->report_id.s);
	} else if (status == QUEUE_ESTALE) {
		/* someone else holds one of them: record the others alone */
		for (size_t i = 0; i < a->nu; i++)
			submit(a, queue_op_rcpt_update(a->m->m.id.s, &a->u[i], 1), on_one);
		submit(a, queue_op_remove_done(a->m->m.id.s), on_one);
	} else if (status != QUEUE_ENOENT) {
		log_warn(LOG_SVC_QMGR, "%s: recording the results failed: %s",
			 a->m->m.id.s, queue_strerror(status));
	}
	op_back(a);
}

static void log_rcpt(const struct apply *a, const struct drcpt *r,
		     const struct queue_rcpt_update *u)
{
	const struct dmsg *m = a->m;
	double arrival = (double)m->m.arrival / 1e6;
	struct maillog_delivery d = {
		.id = m->m.id.s,
		.rcpt = m->m.rcpt[r->idx].addr,
		.relay_host = r->has_relay ? r->relay.host : NULL,
		.relay_ip = r->relay.ip,
		.relay_port = r->relay.port,
		.dsn = u->dsn ? u->dsn : "",
		.status = u->state == QUEUE_RCPT_SENT ? "sent" :
			  u->state == QUEUE_RCPT_DEFERRED ? "deferred" : "bounced",
		.reason = u->reason,
	};
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	d.delay = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9 - arrival;
	if (d.delay < 0)
		d.delay = 0;
	d.delays[0] = 0;
	d.delays[2] = m->setup;
	d.delays[3] = m->xfer;
	d.delays[1] = d.delay - m->setup - m->xfer;
	if (d.delays[1] < 0)
		d.delays[1] = 0;
	maillog_delivery(&d);
}

/* The report's answer is in (or none was asked): log and commit. */
static void commit(struct apply *a)
{
	struct dmsg *m = a->m;
	struct sched *s = a->s;
	if (a->want_report && a->report_status < 0) {
		/* no failure without its report: keep them deferred */
		for (size_t i = 0; i < a->nu; i++)
			if (a->u[i].state == QUEUE_RCPT_FAILED) {
				a->u[i].state = QUEUE_RCPT_DEFERRED;
				a->u[i].next_attempt = a->now + (int64_t)s->cfg->retry_min;
					}
		if (a->report_op) {
			queue_op_free(a->report_op);
			a->report_op = NULL;
		}
	}
	size_t k = 0;
	for (size_t i = 0; i < m->n; i++)
		if (!m->r[i].release)
			log_rcpt(a, &m->r[i], &a->u[k++]);
	struct queue_op *ops[4];
	size_t n = 0;
	ops[n++] = queue_op_rcpt_update(m->m.id.s, a->u, a->nu);
	if (a->warn_flag)
		ops[n++] = queue_op_flags(m->m.id.s, QUEUE_F_WARNED, 0);
	if (a->report_op) {
		ops[n++] = a->report_op;
		a->report_op = NULL;
	}
	ops[n++] = queue_op_remove_done(m->m.id.s);
	int ok = 1;
	for (size_t i = 0; i < n; i++)
		ok &= ops[i] != NULL;
	struct queue_op *g = ok ? queue_op_group(ops, n) : NULL;
	if (!g) {
		for (size_t i = 0; i < n; i++)
			if (ops[i])
				queue_op_free(ops[i]);
		log_warn(LOG_SVC_QMGR, "%s: out of memory recording results", m->m.id.s);
	} else {
		submit(a, g, on_group);
	}
	op_back(a);      /* the hold commit() itself had */
}

static void on_report(void *cbarg, int status, struct queue_op *submit_op,
		      const queue_id *newid)
{
	struct apply *a = cbarg;
	a->report_status = status;
	if (status == 0 && submit_op) {
		a->report_op = submit_op;
		if (newid)
			a->report_id = *newid;
	} else if (submit_op) {
		queue_op_free(submit_op);
	}
	commit(a);
}

/* Which report this attempt calls for, if any; fills a->rr. */
static void choose_report(struct apply *a)
{
	struct dmsg *m = a->m;
	struct sched *s = a->s;
	if (!s->have_report || !m->m.sender || !*m->m.sender ||
	    (m->m.flags & QUEUE_F_BOUNCE))
		return;
	int failed = 0, delay = 0, success = 0;
	int64_t arrived = m->m.arrival / 1000000;
	int warn_due = s->cfg->delay_warning &&
		       a->now - arrived >= (int64_t)s->cfg->delay_warning;
	for (size_t i = 0; i < a->nu; i++) {
		const struct queue_rcpt *q = &m->m.rcpt[a->u[i].rcpt];
		failed |= a->u[i].state == QUEUE_RCPT_FAILED;
		delay |= warn_due && a->u[i].state == QUEUE_RCPT_DEFERRED &&
			 !(q->flags & QUEUE_RF_WARNED);
		success |= a->u[i].state == QUEUE_RCPT_SENT &&
			   (q->notify & QUEUE_NOTIFY_SUCCESS);
	}
	a->kind = failed ? REPORT_FAILURE : delay ? REPORT_DELAY : REPORT_SUCCESS;
	if (!failed && !delay && !success)
		return;
	a->rr = calloc(a->nu, sizeof(*a->rr));
	if (!a->rr)
		return;
	size_t k = 0;
	for (size_t i = 0, ri = 0; i < m->n; i++) {
		const struct drcpt *r = &m->r[i];
		if (r->release)
			continue;
		struct queue_rcpt_update *u = &a->u[ri++];
		const struct queue_rcpt *q = &m->m.rcpt[r->idx];
		struct report_rcpt *x = &a->rr[k];
		if (a->kind == REPORT_FAILURE && u->state != QUEUE_RCPT_FAILED)
			continue;
		if (a->kind == REPORT_DELAY && (u->state != QUEUE_RCPT_DEFERRED ||
						(q->flags & QUEUE_RF_WARNED)))
			continue;
		if (a->kind == REPORT_SUCCESS && (u->state != QUEUE_RCPT_SENT ||
						  !(q->notify & QUEUE_NOTIFY_SUCCESS)))
			continue;
		x->rcpt = r->idx;
		x->addr = q->addr;
		x->orcpt = q->orcpt;
		x->notify = q->notify;
		x->action = a->kind == REPORT_FAILURE ? REPORT_ACTION_FAILED :
			    a->kind == REPORT_DELAY ? REPORT_ACTION_DELAYED :
			    (u->flags_set & QUEUE_RF_DELIVERED) ? REPORT_ACTION_DELIVERED :
			    REPORT_ACTION_RELAYED;
		x->dsn = u->dsn;
		x->reason = u->reason;
		x->diag_type = u->diag_type;
		x->hop_host = u->hop_host;
		x->hop_ip = u->hop_ip;
		x->hop_port = u->hop_port;
		x->when = a->now;
		x->will_retry_until = arrived + (int64_t)retry_lifetime(s->cfg, &m->m);
		if (a->kind == REPORT_DELAY) {
			u->flags_set |= QUEUE_RF_WARNED;
			a->warn_flag = 1;
		} else if (a->kind == REPORT_SUCCESS) {
			u->flags_set |= QUEUE_RF_NOTIFIED;
		}
		k++;
	}
	a->nrr = k;
	a->want_report = k > 0;
}

/* Turn each decided recipient into its update. */
static int build_updates(struct apply *a)
{
	struct dmsg *m = a->m;
	struct config *cfg = a->s->cfg;
	a->u = calloc(m->n, sizeof(*a->u));
	a->reason = calloc(m->n, sizeof(*a->reason));
	if (!a->u || !a->reason)
		return -1;
	int expired = retry_expired(cfg, &m->m, a->now);
	for (size_t i = 0; i < m->n; i++) {
		struct drcpt *r = &m->r[i];
		if (r->release)
			continue;
		struct queue_rcpt_update *u = &a->u[a->nu++];
		const struct queue_rcpt *q = &m->m.rcpt[r->idx];
		u->rcpt = r->idx;
		u->claim = r->gen;
		u->when = a->now;
		u->dsn = r->out.dsn;
		u->reason = r->out.reason;
		u->diag_type = r->remote ? "smtp" : NULL;
		if (r->has_relay) {
			u->hop_host = r->relay.host;
			u->hop_ip = r->relay.ip;
			u->hop_port = r->relay.port;
		}
		switch (r->out.status) {
		case DELIVERY_OK:
			u->state = QUEUE_RCPT_SENT;
			u->flags_set = m->cm.dsn_passed ? QUEUE_RF_DELIVERED :
				       QUEUE_RF_RELAYED;
			break;
		case DELIVERY_FAIL:
			u->state = QUEUE_RCPT_FAILED;
			break;
		case DELIVERY_RETRY:
			if (expired) {
				u->state = QUEUE_RCPT_FAILED;
				u->dsn = "4.4.7";
				snprintf(a->reason[i], sizeof(a->reason[i]),
					 "message expired after %llds in the queue: %s",
					 (long long)(a->now - m->m.arrival / 1000000),
					 r->out.reason);
				u->reason = a->reason[i];
			} else {
				u->state = QUEUE_RCPT_DEFERRED;
				u->next_attempt = retry_next(cfg, q->attempts, a->now);
			}
			break;
		}
	}
	return 0;
}

void apply_msg(struct sched *s, struct dmsg *m)
{
	struct apply *a = calloc(1, sizeof(*a));
	if (!a) {
		/* nothing recorded: the lease brings them back */
		for (size_t i = 0; i < m->n; i++)
			sched__fl_del(s, m->m.id.s, m->r[i].idx);
		sched__fm_unref(s, m->m.id.s);
		dmsg_free(m);
		return;
	}
	a->s = s;
	a->m = m;
	a->now = time(NULL);
	a->outstanding = 1;      /* held until commit() or the end here */
	s->pending_ops++;
	/* released recipients: no attempt, due again now */
	size_t nrel = 0;
	for (size_t i = 0; i < m->n; i++)
		nrel += m->r[i].release;
	if (nrel) {
		struct queue_due *it = calloc(nrel, sizeof(*it));
		uint64_t *g = calloc(nrel, sizeof(*g));
		size_t k = 0;
		for (size_t i = 0; it && g && i < m->n; i++)
			if (m->r[i].release) {
				it[k].id = m->m.id;
				it[k].rcpt = m->r[i].idx;
				g[k++] = m->r[i].gen;
			}
		if (it && g)
			submit(a, queue_op_claim_release(it, g, k, a->now), on_released);
		free(it);
		free(g);
	}
	if (build_updates(a) || a->nu == 0) {
		op_back(a);
		return;
	}
	choose_report(a);
	if (a->want_report) {
		s->report.prepare(s->report.arg, &m->m, a->rr, a->nrr, a->kind,
				  on_report, a);
		return;
	}
	commit(a);
}
