/*
 * metrics.c - the series table and the text exposition (metrics.h).
 */
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "metrics.h"

enum metric_type { M_COUNTER, M_GAUGE, M_HISTOGRAM };

#define LABELS_MAX 4     /* fixed label values of one counter */
#define BUCKETS_MAX 12   /* finite bucket bounds of one histogram */

struct metric_def {
	const char *name;
	enum metric_type type;
	const char *help;
	const char *label;                    /* label name, or NULL */
	const char *values[LABELS_MAX + 1];   /* counters: fixed values */
	double bounds[BUCKETS_MAX];           /* histograms, ascending */
	unsigned nbounds;
};

static const struct metric_def defs[METRIC_COUNT] = {
	[METRIC_SMTPD_CONNECTIONS] = { "relayd_smtpd_connections_total", M_COUNTER,
		"SMTP connections accepted (including those refused with 421)." },
	[METRIC_SMTPD_SESSIONS] = { "relayd_smtpd_sessions", M_GAUGE,
		"SMTP sessions open now." },
	[METRIC_SMTPD_MESSAGES] = { "relayd_smtpd_messages_received_total", M_COUNTER,
		"Messages accepted with 250 after DATA or BDAT LAST (committed to disk)." },
	[METRIC_SMTPD_REPLIES] = { "relayd_smtpd_replies_total", M_COUNTER,
		"SMTP server replies sent, by class.", "class",
		{ "2xx", "3xx", "4xx", "5xx" } },
	[METRIC_SMTPD_AUTH] = { "relayd_smtpd_auth_total", M_COUNTER,
		"AUTH attempts, by result.", "result", { "success", "failure" } },
	[METRIC_SMTPD_ACCEPT_LATENCY] = { "relayd_smtpd_accept_latency_seconds", M_HISTOGRAM,
		"From the end of a message's content to its 250 (the durable commit).",
		.bounds = { 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5 },
		.nbounds = 11 },
	[METRIC_TLS_SESSIONS] = { "relayd_tls_sessions_total", M_COUNTER,
		"TLS handshakes completed, as server (STARTTLS, port 465) or client.",
		"side", { "server", "client" } },
	[METRIC_QUEUE_MESSAGES] = { "relayd_queue_messages", M_GAUGE,
		"Messages in the queue." },
	[METRIC_QUEUE_OLDEST_AGE] = { "relayd_queue_oldest_message_age_seconds", M_GAUGE,
		"Age of the oldest message in the queue (0 when empty)." },
	[METRIC_QUEUE_RECIPIENTS] = { "relayd_queue_recipients", M_GAUGE,
		"Recipients in the queue: scheduled (due for a first or next attempt, "
		"in flight included), in_flight (handed to a delivery now), held_or_done "
		"(of a held message, or final while their message has others left); "
		"scheduled + held_or_done is every recipient.", "state" },
	[METRIC_QUEUE_MAP_USED] = { "relayd_queue_map_used_bytes", M_GAUGE,
		"Bytes of the LMDB map in use (its high-water mark)." },
	[METRIC_QUEUE_MAP_SIZE] = { "relayd_queue_map_size_bytes", M_GAUGE,
		"Size of the LMDB map (queue_map_size)." },
	[METRIC_DELIVERY_RECIPIENTS] = { "relayd_delivery_recipients_total", M_COUNTER,
		"Recipient delivery attempts, by outcome.", "status",
		{ "sent", "deferred", "bounced", "expired" } },
	[METRIC_DELIVERY_LATENCY] = { "relayd_delivery_latency_seconds", M_HISTOGRAM,
		"From arrival to a recipient's final outcome (sent or bounced).",
		.bounds = { 1, 5, 10, 30, 60, 300, 900, 3600, 14400, 86400, 172800 },
		.nbounds = 11 },
	[METRIC_DELIVERY_IN_FLIGHT] = { "relayd_delivery_in_flight", M_GAUGE,
		"Deliveries in progress, for the busiest destinations.", "destination" },
};

/* Histogram sums are kept in microseconds so that they can be atomic. */
struct histogram {
	uint64_t bucket[BUCKETS_MAX + 1];   /* non-cumulative; last is +Inf */
	uint64_t count, sum_us;
};

static struct {
	bool on[METRIC_COUNT];
	metrics_gauge_fn *fn[METRIC_COUNT];
	void *arg[METRIC_COUNT];
	uint64_t value[METRIC_COUNT][LABELS_MAX];
	struct histogram hist[METRIC_COUNT];
} R;

struct metrics_out {
	char *buf;
	size_t len, cap;
	bool failed;
	const struct metric_def *def;
};

const char *metrics_name(enum metric_id id)
{
	return (unsigned)id < METRIC_COUNT ? defs[id].name : NULL;
}

void metrics_register(enum metric_id id)
{
	if ((unsigned)id < METRIC_COUNT && defs[id].type != M_GAUGE)
		R.on[id] = true;
}

void metrics_gauge(enum metric_id id, metrics_gauge_fn *fn, void *arg)
{
	if ((unsigned)id >= METRIC_COUNT || defs[id].type != M_GAUGE)
		return;
	R.fn[id] = fn;
	R.arg[id] = arg;
	R.on[id] = fn != NULL;
}

void metrics_reset(void)
{
	memset(&R, 0, sizeof(R));
}

void metric_add(enum metric_id id, uint64_t n)
{
	/* A counter with labels is counted per value (metric_inc_label). */
	if ((unsigned)id < METRIC_COUNT && defs[id].type == M_COUNTER && !defs[id].label)
		__atomic_add_fetch(&R.value[id][0], n, __ATOMIC_RELAXED);
}

void metric_inc_label(enum metric_id id, unsigned label)
{
	if ((unsigned)id >= METRIC_COUNT || defs[id].type != M_COUNTER ||
	    label >= LABELS_MAX || !defs[id].values[label])
		return;
	__atomic_add_fetch(&R.value[id][label], 1, __ATOMIC_RELAXED);
}

int metric_reply_class(char c)
{
	return c >= '2' && c <= '5' ? c - '2' : -1;
}

void metric_observe(enum metric_id id, double seconds)
{
	if ((unsigned)id >= METRIC_COUNT || defs[id].type != M_HISTOGRAM ||
	    !(seconds >= 0))            /* NaN too */
		return;
	const struct metric_def *d = &defs[id];
	struct histogram *h = &R.hist[id];
	unsigned i = 0;
	while (i < d->nbounds && seconds > d->bounds[i])
		i++;
	__atomic_add_fetch(&h->bucket[i], 1, __ATOMIC_RELAXED);
	__atomic_add_fetch(&h->count, 1, __ATOMIC_RELAXED);
	double us = seconds * 1e6;
	__atomic_add_fetch(&h->sum_us, us < 1.8e19 ? (uint64_t)us : 0, __ATOMIC_RELAXED);
}

/* ---- rendering ---- */

static void out_printf(struct metrics_out *o, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void out_printf(struct metrics_out *o, const char *fmt, ...)
{
	for (int tries = 0; tries < 2 && !o->failed; tries++) {
		va_list ap;
		va_start(ap, fmt);
		int n = vsnprintf(o->buf + o->len, o->cap - o->len, fmt, ap);
		va_end(ap);
		if (n < 0) {
			o->failed = true;
			return;
		}
		if ((size_t)n < o->cap - o->len) {
			o->len += (size_t)n;
			return;
		}
		size_t cap = o->cap * 2 + (size_t)n;
		char *b = realloc(o->buf, cap);
		if (!b) {
			o->failed = true;
			return;
		}
		o->buf = b;
		o->cap = cap;
	}
}

/* A label value as the text format wants it: \\, \" and \n escaped.
 * Other control bytes and bytes outside ASCII become '?': a value
 * comes from mail (a destination) and must stay one valid line. */
static void out_label(struct metrics_out *o, const char *v)
{
	char esc[512];
	size_t n = 0;
	for (; *v && n + 2 < sizeof(esc); v++) {
		unsigned char c = (unsigned char)*v;
		if (c == '\\' || c == '"') {
			esc[n++] = '\\';
			esc[n++] = (char)c;
		} else if (c == '\n') {
			esc[n++] = '\\';
			esc[n++] = 'n';
		} else {
			esc[n++] = c < 0x20 || c >= 0x7f ? '?' : (char)c;
		}
	}
	esc[n] = 0;
	out_printf(o, "{%s=\"%s\"}", o->def->label, esc);
}

static void out_double(struct metrics_out *o, double v)
{
	if (isnan(v))
		out_printf(o, " NaN\n");
	else if (isinf(v))
		out_printf(o, " %sInf\n", v > 0 ? "+" : "-");
	else
		out_printf(o, " %.15g\n", v);
}

void metrics_emit(struct metrics_out *o, const char *label, double value)
{
	out_printf(o, "%s", o->def->name);
	if (label && o->def->label)
		out_label(o, label);
	out_double(o, value);
}

static void render_counter(struct metrics_out *o, enum metric_id id)
{
	const struct metric_def *d = o->def;
	for (unsigned i = 0; i < (d->label ? LABELS_MAX : 1); i++) {
		if (d->label && !d->values[i])
			break;
		uint64_t v = __atomic_load_n(&R.value[id][i], __ATOMIC_RELAXED);
		out_printf(o, "%s", d->name);
		if (d->label)
			out_label(o, d->values[i]);
		out_printf(o, " %llu\n", (unsigned long long)v);
	}
}

static void render_histogram(struct metrics_out *o, enum metric_id id)
{
	const struct metric_def *d = o->def;
	const struct histogram *h = &R.hist[id];
	uint64_t cum = 0;
	for (unsigned i = 0; i <= d->nbounds; i++) {
		cum += __atomic_load_n(&h->bucket[i], __ATOMIC_RELAXED);
		if (i < d->nbounds)
			out_printf(o, "%s_bucket{le=\"%g\"} %llu\n", d->name,
				   d->bounds[i], (unsigned long long)cum);
		else
			out_printf(o, "%s_bucket{le=\"+Inf\"} %llu\n", d->name,
				   (unsigned long long)cum);
	}
	/* The count is the +Inf bucket's, so a reader never sees them
	 * disagree while another thread observes. */
	out_printf(o, "%s_sum %.6f\n%s_count %llu\n", d->name,
		   (double)__atomic_load_n(&h->sum_us, __ATOMIC_RELAXED) / 1e6,
		   d->name, (unsigned long long)cum);
}

static const char *const type_names[] = { "counter", "gauge", "histogram" };

char *metrics_render(size_t *len)
{
	struct metrics_out o = { .cap = 4096 };
	o.buf = malloc(o.cap);
	if (!o.buf)
		return NULL;
	o.buf[0] = 0;
	for (unsigned id = 0; id < METRIC_COUNT; id++) {
		if (!R.on[id])
			continue;
		o.def = &defs[id];
		out_printf(&o, "# HELP %s %s\n# TYPE %s %s\n", o.def->name,
			   o.def->help, o.def->name, type_names[o.def->type]);
		switch (o.def->type) {
		case M_COUNTER: render_counter(&o, id); break;
		case M_HISTOGRAM: render_histogram(&o, id); break;
		case M_GAUGE: R.fn[id](&o, R.arg[id]); break;
		}
	}
	if (o.failed) {
		free(o.buf);
		return NULL;
	}
	*len = o.len;
	return o.buf;
}
