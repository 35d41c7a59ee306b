/*
 * sched.c - the scheduler's loop (sched.h): what is due, how much may
 * start, claims, and the stop.
 *
 * Work is read from the queue's indexes, never by walking the queue: per
 * destination (queue_dest_next / queue_dest_batch) for MX delivery, the
 * `due` index itself with a relayhost, where every recipient goes to one
 * place.  One timer is armed on the earliest entry that could start;
 * what waits for a free connection is started when a delivery ends.
 *
 * The in-flight set holds each recipient from the read that picked it to
 * the commit of its result, so a second pass never hands it out twice
 * while its claim is still in the writer.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "log.h"
#include "metrics.h"
#include "sched_int.h"
#include "tls.h"

#define HOUSEKEEPING_MS 60000
#define READ_DESTS 256
#define READ_ITEMS 4096
#define LEASE_DEFAULT 300

/* ---- the in-flight set ---- */

struct fl_item {
	struct fl_item *next;
	char id[QUEUE_ID_LEN + 1];
	uint32_t rcpt;
};

struct fl_msg {
	struct fl_msg *next;
	char id[QUEUE_ID_LEN + 1];
	unsigned refs;
};

static unsigned fl_hash(const char *id, uint32_t rcpt)
{
	unsigned h = 2166136261u ^ rcpt;
	for (size_t i = 0; i < QUEUE_ID_LEN && id[i]; i++)
		h = (h ^ (unsigned char)id[i]) * 16777619u;
	return h % FL_BUCKETS;
}

int sched__fl_has(const struct sched *s, const char *id, uint32_t rcpt)
{
	for (struct fl_item *f = s->fl[fl_hash(id, rcpt)]; f; f = f->next)
		if (f->rcpt == rcpt && strcmp(f->id, id) == 0)
			return 1;
	return 0;
}

int sched__fl_add(struct sched *s, const char *id, uint32_t rcpt)
{
	struct fl_item *f = calloc(1, sizeof(*f));
	if (!f)
		return -1;
	unsigned h = fl_hash(id, rcpt);
	snprintf(f->id, sizeof(f->id), "%s", id);
	f->rcpt = rcpt;
	f->next = s->fl[h];
	s->fl[h] = f;
	s->st.recipients++;
	return 0;
}

void sched__fl_del(struct sched *s, const char *id, uint32_t rcpt)
{
	for (struct fl_item **pp = &s->fl[fl_hash(id, rcpt)]; *pp; pp = &(*pp)->next)
		if ((*pp)->rcpt == rcpt && strcmp((*pp)->id, id) == 0) {
			struct fl_item *f = *pp;
			*pp = f->next;
			free(f);
			s->st.recipients--;
			return;
		}
}

void sched__fm_ref(struct sched *s, const char *id)
{
	unsigned h = fl_hash(id, 0);
	for (struct fl_msg *f = s->fm[h]; f; f = f->next)
		if (strcmp(f->id, id) == 0) {
			f->refs++;
			return;
		}
	struct fl_msg *f = calloc(1, sizeof(*f));
	if (!f)
		return;      /* only the "removed" line depends on it */
	snprintf(f->id, sizeof(f->id), "%s", id);
	f->refs = 1;
	f->next = s->fm[h];
	s->fm[h] = f;
	s->st.messages++;
}

int sched__fm_unref(struct sched *s, const char *id)
{
	for (struct fl_msg **pp = &s->fm[fl_hash(id, 0)]; *pp; pp = &(*pp)->next)
		if (strcmp((*pp)->id, id) == 0) {
			struct fl_msg *f = *pp;
			if (--f->refs)
				return 0;
			*pp = f->next;
			free(f);
			s->st.messages--;
			return 1;
		}
	return 1;
}

/* ---- configuration ---- */

static int64_t claim_lease(void)
{
	/* RELAYD_CLAIM_LEASE (tests only, not a configuration key): how long
	 * after a crash the work in flight waits before it is due again. */
	const char *e = getenv("RELAYD_CLAIM_LEASE");
	char *end;
	long v = e ? strtol(e, &end, 10) : 0;
	if (!e || *end || v < 1 || v > 3600)
		return LEASE_DEFAULT;
	return v;
}

/* Apply cfg: route parameters, TLS policy, client TLS context.  What
 * fails to load keeps the running version (logged). */
static void load_config(struct sched *s, struct config *cfg)
{
	struct resolver_conf rc;
	if (resolver_conf_init(&rc, cfg) == 0) {
		resolver_conf_free(&s->rc);
		s->rc = rc;
	} else {
		log_err(LOG_SVC_QMGR, "out of memory loading the route parameters");
	}
	char err[512];
	if (cfg->tls_policy && *cfg->tls_policy) {
		struct tls_policy *p;
		if (tls_policy_load(&p, cfg->tls_policy, err, sizeof(err)) == 0) {
			tls_policy_free(s->policy);
			s->policy = p;
		} else {
			log_warn(LOG_SVC_QMGR, "tls_policy: %s%s", err,
				 s->policy ? "; keeping the running policy" : "");
		}
	} else {
		tls_policy_free(s->policy);
		s->policy = NULL;
	}
	struct tls_ctx *t;
	const char *ca = cfg->tls_ca_file && *cfg->tls_ca_file ? cfg->tls_ca_file : NULL;
	if (tls_client_ctx_new(&t, ca, err, sizeof(err)) == 0) {
		tls_ctx_unref(s->tls);
		s->tls = t;
	} else {
		log_warn(LOG_SVC_QMGR, "outbound TLS: %s%s", err,
			 s->tls ? "; keeping the running context" : "");
	}
	config_ref(cfg);
	if (s->cfg)
		config_unref(s->cfg);
	s->cfg = cfg;
}

/* ---- the pass ---- */

static void pass(struct sched *s);

static void on_timer(uv_timer_t *t)
{
	pass(t->data);
}

static void arm(struct sched *s, int64_t when, int64_t now, uint64_t paced_ms)
{
	uint64_t now_ms = uv_now(s->loop), ms = UINT64_MAX;
	if (when != INT64_MAX)
		ms = when <= now ? 0 : (uint64_t)(when - now) * 1000;
	if (paced_ms != UINT64_MAX) {
		uint64_t p = paced_ms > now_ms ? paced_ms - now_ms : 0;
		if (p < ms)
			ms = p;
	}
	uv_timer_stop(&s->timer);
	if (ms != UINT64_MAX)
		uv_timer_start(&s->timer, on_timer, ms ? ms : 1, 0);
}

static int cmp_due_msg(const void *a, const void *b)
{
	const struct queue_due *x = a, *y = b;
	int c = memcmp(x->id.s, y->id.s, QUEUE_ID_LEN);
	return c ? c : (x->rcpt > y->rcpt) - (x->rcpt < y->rcpt);
}

static void start_claim(struct sched *s, struct job *j);

/* Split a destination's due items (not in flight) into at most room
 * deliveries; a paced destination gets one message. */
static void dispatch(struct sched *s, struct dest *d, const char *name,
		     struct queue_due *it, size_t n, unsigned room)
{
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		if (!sched__fl_has(s, it[i].id.s, it[i].rcpt))
			it[k++] = it[i];
	n = k;
	if (!n)
		return;
	/* due order is time order; a delivery wants them per message */
	qsort(it, n, sizeof(*it), cmp_due_msg);
	size_t msgs = 1;
	for (size_t i = 1; i < n; i++)
		msgs += strcmp(it[i].id.s, it[i - 1].id.s) != 0;
	uint64_t iv = dest_interval_ms(d, s->cfg);
	size_t per = iv ? 1 : (msgs + room - 1) / room;
	if (per > JOB_MAX_MSGS)
		per = JOB_MAX_MSGS;
	size_t i = 0;
	while (i < n && room > 0 && s->njobs < s->cfg->delivery_concurrency) {
		size_t start = i, m = 0;
		for (; i < n; i++) {
			if (i == start || strcmp(it[i].id.s, it[i - 1].id.s) != 0) {
				if (m == per)
					break;
				m++;
			}
		}
		struct job *j = delivery_new(s, d, name, it + start, i - start);
		if (!j)
			return;
		for (size_t x = start; x < i; x++)
			sched__fl_add(s, it[x].id.s, it[x].rcpt);
		dest_take_slot(d, s->cfg, uv_now(s->loop));
		room--;
		start_claim(s, j);
	}
}

static void pass_relayhost(struct sched *s, struct queue_read *r, int64_t now,
			   int64_t *next, uint64_t *paced)
{
	struct dest *d = dest_get(s->dests, s->cfg->relayhost.host, 1);
	if (!d)
		return;
	if (d->blocked_until > now) {
		if (d->blocked_until < *next)
			*next = d->blocked_until;
		return;
	}
	uint64_t pu = UINT64_MAX;
	unsigned room = dest_room(d, s->cfg, uv_now(s->loop), now, &pu);
	if (pu < *paced)
		*paced = pu;
	if (room) {
		static struct queue_due it[READ_ITEMS];
		size_t n = 0;
		if (queue_due_next(r, now, it, READ_ITEMS, &n) == 0 && n)
			dispatch(s, d, s->cfg->relayhost.host, it, n, room);
	}
	struct queue_due first;
	if (queue_due_first(r, &first) == 0 && first.when > now && first.when < *next)
		*next = first.when;
}

static void pass_mx(struct sched *s, struct queue_read *r, int64_t now,
		    int64_t *next, uint64_t *paced)
{
	static struct queue_dest ds[READ_DESTS];
	static struct queue_due it[READ_ITEMS];
	size_t nd = 0;
	if (queue_dest_next(r, INT64_MAX, ds, READ_DESTS, &nd))
		return;
	for (size_t i = 0; i < nd; i++) {
		if (ds[i].when > now) {
			if (ds[i].when < *next)
				*next = ds[i].when;
			break;      /* sorted by when */
		}
		if (s->njobs >= s->cfg->delivery_concurrency)
			break;
		struct dest *d = dest_get(s->dests, ds[i].name, 1);
		if (!d)
			break;
		uint64_t pu = UINT64_MAX;
		unsigned room = dest_room(d, s->cfg, uv_now(s->loop), now, &pu);
		if (pu < *paced)
			*paced = pu;
		if (d->blocked_until > now && d->blocked_until < *next)
			*next = d->blocked_until;
		if (!room)
			continue;
		size_t want = (size_t)room * JOB_MAX_MSGS *
			      (size_t)s->cfg->destination_recipient_limit, n = 0;
		if (want > READ_ITEMS)
			want = READ_ITEMS;
		if (queue_dest_batch(r, ds[i].name, now, it, want, &n) == 0 && n)
			dispatch(s, d, ds[i].name, it, n, room);
	}
}

static void pass(struct sched *s)
{
	if (s->stopping || !s->started)
		return;
	int64_t now = time(NULL), next = INT64_MAX;
	uint64_t paced = UINT64_MAX;
	struct queue_read *r;
	if (s->njobs >= s->cfg->delivery_concurrency)
		return;      /* a delivery's end calls us again */
	int rc = queue_read_begin(s->q, &r);
	if (rc) {
		log_warn(LOG_SVC_QMGR, "cannot read the queue: %s; trying again in a second",
			 queue_strerror(rc));
		arm(s, now + 1, now, UINT64_MAX);
		return;
	}
	if (s->cfg->relayhost.host)
		pass_relayhost(s, r, now, &next, &paced);
	else
		pass_mx(s, r, now, &next, &paced);
	queue_read_end(r);
	arm(s, next, now, paced);
}

static void on_wake(uv_timer_t *t)
{
	struct sched *s = t->data;
	s->wake_armed = 0;
	pass(s);
}

void sched_wake(struct sched *s)
{
	if (!s || s->wake_armed || s->stopping)
		return;
	s->wake_armed = 1;
	uv_timer_start(&s->wake, on_wake, 0, 0);
}

/* ---- claims ---- */

static void on_claimed(void *arg, int status, const struct queue_op *op)
{
	struct job *j = arg;
	struct sched *s = j->s;
	size_t n = 0;
	const uint64_t *gens = status == 0 ? queue_op_claim_gens(op, &n) : NULL;
	if (status)
		log_warn(LOG_SVC_QMGR, "claim for %s failed: %s", j->dest,
			 queue_strerror(status));
	delivery_claimed(j, gens, gens ? n : 0);
	sched_wake(s);
	sched__op_done(s);
}

static void start_claim(struct sched *s, struct job *j)
{
	struct queue_op *op = queue_op_claim(j->items, j->nitems, time(NULL), s->lease);
	if (!op || queue_writer_submit(s->q, op, on_claimed, j)) {
		if (op)
			queue_op_free(op);
		delivery_claimed(j, NULL, 0);
		return;
	}
	s->pending_ops++;
}

/* ---- life cycle ---- */

/* The timers' memory is ours until their close callbacks: the stop is
 * reported, and the scheduler may be freed, after the last one. */
static void on_timer_closed(uv_handle_t *h)
{
	struct sched *s = h->data;
	if (--s->closing == 0)
		s->stop_done(s->stop_arg);
}

static void maybe_stopped(struct sched *s)
{
	if (!s->stopping || s->njobs || s->pending_ops || !s->stop_done ||
	    s->closing)
		return;
	s->closing = 3;
	uv_close((uv_handle_t *)&s->timer, on_timer_closed);
	uv_close((uv_handle_t *)&s->wake, on_timer_closed);
	uv_close((uv_handle_t *)&s->housekeeping, on_timer_closed);
}

void sched__op_done(struct sched *s)
{
	s->pending_ops--;
	maybe_stopped(s);
}

void sched__job_end(struct job *j)
{
	struct sched *s = j->s;
	if (j->prev)
		j->prev->next = j->next;
	else
		s->jobs = j->next;
	if (j->next)
		j->next->prev = j->prev;
	s->njobs--;
	s->st.deliveries = s->njobs;
	if (j->d)
		j->d->active--;
	delivery_free(j);
	sched_wake(s);
	maybe_stopped(s);
}

static void on_housekeeping(uv_timer_t *t)
{
	struct sched *s = t->data;
	dest_expire(s->dests, time(NULL) - 3600);
}

/* relayd_delivery_in_flight{destination}: the busiest ten. */
static void in_flight(struct metrics_out *o, void *arg)
{
	const struct sched *s = arg;
	const struct dest *top[10];
	size_t n = dest_busiest(s->dests, top, 10);
	for (size_t i = 0; i < n; i++)
		metrics_emit(o, top[i]->name, (double)top[i]->active);
}

int sched_new(struct sched **out, uv_loop_t *loop, struct queue *q,
	      struct dns_resolver *dns, struct config *cfg)
{
	struct sched *s = calloc(1, sizeof(*s));
	if (!s || !(s->dests = dest_table_new())) {
		free(s);
		return -1;
	}
	s->loop = loop;
	s->q = q;
	s->dns = dns;
	s->lease = claim_lease();
	load_config(s, cfg);
	uv_timer_init(loop, &s->timer);
	uv_timer_init(loop, &s->wake);
	uv_timer_init(loop, &s->housekeeping);
	s->timer.data = s->wake.data = s->housekeeping.data = s;
	metrics_register(METRIC_DELIVERY_RECIPIENTS);
	metrics_register(METRIC_DELIVERY_LATENCY);
	metrics_gauge(METRIC_DELIVERY_IN_FLIGHT, in_flight, s);
	*out = s;
	return 0;
}

/* At start, what a dead run had in flight waits in the due index until
 * its lease ends.  Claims of other handles are void for us (the daemon
 * lock), so give them back at once: a restart redelivers now, not a
 * lease later.  Only entries due within one lease are looked at. */
#define RECOVER_MAX 4096

static void on_recovered(void *arg, int status, const struct queue_op *op)
{
	struct sched *s = arg;
	size_t n = 0;
	const uint64_t *g = status == 0 ? queue_op_claim_gens(op, &n) : NULL;
	size_t k = 0;
	for (size_t i = 0; g && i < n; i++)
		k += g[i] != 0;
	if (status)
		log_warn(LOG_SVC_QMGR, "giving back a dead run's claims failed: %s",
			 queue_strerror(status));
	else if (k)
		log_info(LOG_SVC_QMGR, "%zu recipient%s in flight when relayd stopped: due again now",
			 k, k == 1 ? "" : "s");
	sched_wake(s);
	sched__op_done(s);
}

static void recover(struct sched *s)
{
	static struct queue_due it[RECOVER_MAX];
	static uint64_t gens[RECOVER_MAX];
	int64_t now = time(NULL);
	struct queue_read *r;
	size_t n = 0, k = 0;
	if (queue_read_begin(s->q, &r))
		return;
	if (queue_due_next(r, now + (s->lease > LEASE_DEFAULT ? s->lease : LEASE_DEFAULT),
			   it, RECOVER_MAX, &n))
		n = 0;
	struct queue_msg m;
	memset(&m, 0, sizeof(m));
	for (size_t i = 0; i < n; i++) {
		if (it[i].when <= now)
			continue;        /* due anyway */
		if (!m.nrcpt || strcmp(m.id.s, it[i].id.s) != 0) {
			queue_msg_clear(&m);
			memset(&m, 0, sizeof(m));
			if (queue_msg_get(r, it[i].id.s, &m))
				continue;
		}
		if (it[i].rcpt >= m.nrcpt)
			continue;
		const struct queue_rcpt *q = &m.rcpt[it[i].rcpt];
		if (q->claim_gen && q->claim_until > now) {
			it[k] = it[i];
			gens[k++] = q->claim_gen;
		}
	}
	queue_msg_clear(&m);
	queue_read_end(r);
	if (!k)
		return;
	struct queue_op *op = queue_op_claim_release(it, gens, k, now);
	if (op && queue_writer_submit(s->q, op, on_recovered, s) == 0)
		s->pending_ops++;
	else if (op)
		queue_op_free(op);
}

void sched_lift_msg(struct sched *s, const char *id)
{
	struct queue_read *r;
	struct queue_msg m;
	if (queue_read_begin(s->q, &r))
		return;
	memset(&m, 0, sizeof(m));
	if (queue_msg_get(r, id, &m) == 0)
		for (uint32_t i = 0; i < m.nrcpt; i++) {
			const struct queue_rcpt *q = &m.rcpt[i];
			char name[QUEUE_DEST_MAX + 1];
			if (q->state != QUEUE_RCPT_PENDING && q->state != QUEUE_RCPT_DEFERRED)
				continue;
			if (s->cfg->relayhost.host)
				snprintf(name, sizeof(name), "%s", s->cfg->relayhost.host);
			else
				queue_dest_of(q->addr, name);
			struct dest *d = dest_get(s->dests, name, 0);
			if (d)
				dest_lift(d);
		}
	queue_msg_clear(&m);
	queue_read_end(r);
}

void sched_start(struct sched *s)
{
	s->started = 1;
	recover(s);
	uv_timer_start(&s->housekeeping, on_housekeeping, HOUSEKEEPING_MS,
		       HOUSEKEEPING_MS);
	sched_wake(s);
}

void sched_set_config(struct sched *s, struct config *cfg)
{
	load_config(s, cfg);
	sched_wake(s);
}

void sched_set_report_ops(struct sched *s, const struct sched_report_ops *ops)
{
	s->have_report = ops && ops->prepare;
	if (s->have_report)
		s->report = *ops;
}

int sched_cancel_msg(struct sched *s, const char *id)
{
	int found = 0;
	for (struct job *j = s->jobs; j; j = j->next)
		found |= delivery_cancel_msg(j, id);
	return found;
}

void sched_stats(const struct sched *s, struct sched_stats *st)
{
	*st = s->st;
	st->deliveries = s->njobs;
	st->destinations = (unsigned)dest_count(s->dests);
}

void sched_stop(struct sched *s, void (*done)(void *arg), void *arg)
{
	s->stopping = 1;
	s->stop_done = done;
	s->stop_arg = arg;
	uv_timer_stop(&s->timer);
	uv_timer_stop(&s->wake);
	uv_timer_stop(&s->housekeeping);
	for (struct job *j = s->jobs, *nx; j; j = nx) {
		nx = j->next;
		delivery_stop(j);
	}
	maybe_stopped(s);
}

void sched_free(struct sched *s)
{
	if (!s)
		return;
	metrics_gauge(METRIC_DELIVERY_IN_FLIGHT, NULL, NULL);
	for (size_t i = 0; i < FL_BUCKETS; i++) {
		for (struct fl_item *f = s->fl[i], *nx; f; f = nx) {
			nx = f->next;
			free(f);
		}
		for (struct fl_msg *f = s->fm[i], *nx; f; f = nx) {
			nx = f->next;
			free(f);
		}
	}
	dest_table_free(s->dests);
	tls_policy_free(s->policy);
	tls_ctx_unref(s->tls);
	resolver_conf_free(&s->rc);
	config_unref(s->cfg);
	free(s);
}

void sched__job_add(struct sched *s, struct job *j)
{
	j->next = s->jobs;
	if (s->jobs)
		s->jobs->prev = j;
	s->jobs = j;
	s->njobs++;
	s->st.deliveries = s->njobs;
	if (j->d)
		j->d->active++;
}
