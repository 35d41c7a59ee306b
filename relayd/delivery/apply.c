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

#define REPORT_KINDS 3

struct apply {
	struct sched *s;
	struct dmsg *m;
	int64_t now;
	struct queue_rcpt_update *u;
	size_t nu;
	char (*reason)[800];         /* expiry texts */
	unsigned char *want;         /* per update: 1 << each report_kind covering it */
	struct report_rcpt *rr;      /* the recipients of the report being built */
	enum report_kind kinds[REPORT_KINDS];   /* the reports due, in asking order */
	size_t nkinds, cur;
	struct queue_op *report_op[REPORT_KINDS];   /* the answers, for the group */
	queue_id report_id[REPORT_KINDS];
	enum report_kind report_kind[REPORT_KINDS];
	size_t nreports;
	unsigned outstanding;        /* writer ops not yet back */
	int maybe_gone;              /* committed, none of ours still live */
	unsigned warn_flag;
};

static const char *kind_name(enum report_kind k)
{
	return k == REPORT_FAILURE ? "non-delivery" : k == REPORT_DELAY ? "delay" :
	       "delivery status";
}

/* Reports about a message without a sender to tell (the null sender, or
 * a report of relayd's own) go to bounce_notice_recipient. */
static int from_null(const struct queue_msg *m)
{
	return !m->sender || !*m->sender || (m->flags & QUEUE_F_BOUNCE);
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
	free(a->want);
	free(a->rr);
	for (size_t i = 0; i < a->nreports; i++)
		if (a->report_op[i])
			queue_op_free(a->report_op[i]);
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
		for (size_t i = 0; i < a->nreports; i++)
			if (from_null(&a->m->m))
				maillog_notice(a->m->m.id.s, a->report_id[i].s);
			else
				maillog_bounce(a->m->m.id.s, kind_name(a->report_kind[i]),
					       a->report_id[i].s);
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

/* Every report's answer is in (or none was asked): log and commit. */
static void commit(struct apply *a)
{
	struct dmsg *m = a->m;
	size_t k = 0;
	for (size_t i = 0; i < m->n; i++)
		if (!m->r[i].release)
			log_rcpt(a, &m->r[i], &a->u[k++]);
	struct queue_op *ops[3 + REPORT_KINDS];
	size_t n = 0;
	ops[n++] = queue_op_rcpt_update(m->m.id.s, a->u, a->nu);
	if (a->warn_flag)
		ops[n++] = queue_op_flags(m->m.id.s, QUEUE_F_WARNED, 0);
	for (size_t i = 0; i < a->nreports; i++) {
		ops[n++] = a->report_op[i];
		a->report_op[i] = NULL;
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

/* A report that cannot be built now: take back what it would have
 * recorded, so that the next attempt asks for it again: no failure
 * without its report, no delay warning flagged as sent that was not. */
static void report_lost(struct apply *a, enum report_kind kind)
{
	for (size_t i = 0; i < a->nu; i++) {
		struct queue_rcpt_update *u = &a->u[i];
		if (!(a->want[i] & (1u << kind)))
			continue;
		if (kind == REPORT_FAILURE) {
			u->state = QUEUE_RCPT_DEFERRED;
			u->next_attempt = a->now + (int64_t)a->s->cfg->retry_min;
		} else if (kind == REPORT_DELAY) {
			u->flags_set &= ~QUEUE_RF_WARNED;
		} else {
			u->flags_set &= ~QUEUE_RF_NOTIFIED;
		}
	}
	if (kind == REPORT_DELAY)
		a->warn_flag = 0;
}

static void next_report(struct apply *a);

static void on_report(void *cbarg, int status, struct queue_op *submit_op,
		      const queue_id *newid)
{
	struct apply *a = cbarg;
	enum report_kind kind = a->kinds[a->cur++];
	if (status == 0 && submit_op) {
		a->report_op[a->nreports] = submit_op;
		a->report_kind[a->nreports] = kind;
		if (newid)
			a->report_id[a->nreports] = *newid;
		a->nreports++;
	} else {
		if (submit_op)
			queue_op_free(submit_op);
		if (status < 0)
			report_lost(a, kind);
	}
	next_report(a);
}

/* The report_rcpt of update i for a report of this kind. */
static void fill_rcpt(struct apply *a, size_t i, enum report_kind kind,
		      struct report_rcpt *x)
{
	const struct queue_rcpt_update *u = &a->u[i];
	const struct queue_rcpt *q = &a->m->m.rcpt[u->rcpt];
	x->rcpt = u->rcpt;
	x->addr = q->addr;
	x->orcpt = q->orcpt;
	x->notify = q->notify;
	x->action = kind == REPORT_FAILURE ? REPORT_ACTION_FAILED :
		    kind == REPORT_DELAY ? REPORT_ACTION_DELAYED :
		    (u->flags_set & QUEUE_RF_DELIVERED) ? REPORT_ACTION_DELIVERED :
		    REPORT_ACTION_RELAYED;
	x->dsn = u->dsn;
	x->reason = u->reason;
	x->diag_type = u->diag_type;
	x->hop_host = u->hop_host;
	x->hop_ip = u->hop_ip;
	x->hop_port = u->hop_port;
	x->when = a->now;
	x->will_retry_until = a->m->m.arrival / 1000000 +
			      (int64_t)retry_lifetime(a->s->cfg, &a->m->m);
}

/* Ask for the next report that is due, one at a time (each answer may
 * come later, from the thread pool); commit once every one is in.  The
 * report service keeps r only until it answers, so a->rr is reused. */
static void next_report(struct apply *a)
{
	while (a->cur < a->nkinds) {
		enum report_kind kind = a->kinds[a->cur];
		size_t k = 0;
		for (size_t i = 0; i < a->nu; i++)
			if (a->want[i] & (1u << kind))
				fill_rcpt(a, i, kind, &a->rr[k++]);
		if (k) {
			a->s->report.prepare(a->s->report.arg, &a->m->m, a->rr, k, kind,
					     on_report, a);
			return;
		}
		a->cur++;
	}
	commit(a);
}

/* Which reports this attempt calls for, and who each covers: a failure
 * report, a delay warning and a success notice may all be due at once,
 * and each is a separate message (one kind per report, as Postfix does),
 * all queued in the attempt's group.  A message from the null sender,
 * or one relayd made, only has its failures copied to
 * bounce_notice_recipient, when one is set; a failure of such a notice
 * (QUEUE_F_NOTICE) is only logged, so notices never loop. */
static int plan_reports(struct apply *a)
{
	struct dmsg *m = a->m;
	struct sched *s = a->s;
	const char *notice = s->cfg->bounce_notice_recipient;
	int null = from_null(&m->m);
	if (!s->have_report ||
	    (null && (!notice || !*notice || (m->m.flags & QUEUE_F_NOTICE))))
		return 0;
	a->want = calloc(a->nu ? a->nu : 1, 1);
	a->rr = calloc(a->nu ? a->nu : 1, sizeof(*a->rr));
	if (!a->want || !a->rr)
		return -1;
	int64_t arrived = m->m.arrival / 1000000;
	int warn_due = !null && s->cfg->delay_warning &&
		       a->now - arrived >= (int64_t)s->cfg->delay_warning;
	unsigned all = 0;
	for (size_t i = 0; i < a->nu; i++) {
		struct queue_rcpt_update *u = &a->u[i];
		const struct queue_rcpt *q = &m->m.rcpt[u->rcpt];
		if (u->state == QUEUE_RCPT_FAILED) {
			a->want[i] = 1u << REPORT_FAILURE;
		} else if (warn_due && u->state == QUEUE_RCPT_DEFERRED &&
			   !(q->flags & QUEUE_RF_WARNED)) {
			a->want[i] = 1u << REPORT_DELAY;
			u->flags_set |= QUEUE_RF_WARNED;
			a->warn_flag = 1;
		} else if (!null && u->state == QUEUE_RCPT_SENT &&
			   (q->notify & QUEUE_NOTIFY_SUCCESS)) {
			a->want[i] = 1u << REPORT_SUCCESS;
			u->flags_set |= QUEUE_RF_NOTIFIED;
		}
		all |= a->want[i];
	}
	static const enum report_kind order[] = { REPORT_FAILURE, REPORT_DELAY,
						  REPORT_SUCCESS };
	for (size_t i = 0; i < REPORT_KINDS; i++)
		if (all & (1u << order[i]))
			a->kinds[a->nkinds++] = order[i];
	return 0;
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
	if (plan_reports(a)) {
		/* no failure without its report: keep them deferred */
		for (size_t i = 0; i < a->nu; i++)
			if (a->u[i].state == QUEUE_RCPT_FAILED) {
				a->u[i].state = QUEUE_RCPT_DEFERRED;
				a->u[i].next_attempt = a->now + (int64_t)s->cfg->retry_min;
			}
	}
	next_report(a);
}
