/*
 * metrics_series.c - the daemon's gauges (metrics_series.h).
 *
 * The queue gauges cost one short read snapshot each per scrape: the
 * message and recipient counts are LMDB's own entry counts of `msg`,
 * `rcpt` and `due` (queue_counts, no scan), the oldest message the first
 * key of `msg` (ids sort by arrival), the map's use its highest page in
 * use (queue_env_info, no snapshot).  Recipients by state are what those
 * counts can tell without a scan: by the due invariant (queue/README),
 * `due` holds exactly the live recipients of messages not held, so the
 * rest of `rcpt` is the held and the final ones; in flight comes from the
 * scheduler's own count.
 */
#include <stdio.h>
#include <time.h>
#include "daemon.h"
#include "delivery/sched.h"
#include "metrics.h"
#include "metrics_series.h"
#include "smtp_server.h"

static void sessions(struct metrics_out *o, void *arg)
{
	struct daemon *d = arg;
	struct smtp_server_stats st = { 0 };
	if (d->smtpd)
		smtp_server_stats(d->smtpd, &st);
	metrics_emit(o, NULL, (double)st.sessions);
}

static void queue_messages(struct metrics_out *o, void *arg)
{
	struct daemon *d = arg;
	struct queue_counts c;
	if (d->queue && queue_counts(d->queue, &c) == 0)
		metrics_emit(o, NULL, (double)c.messages);
}

/* relayd_queue_recipients{state}: scheduled and held_or_done add up to
 * every recipient stored; in_flight is a part of scheduled. */
static void queue_recipients(struct metrics_out *o, void *arg)
{
	struct daemon *d = arg;
	struct queue_counts c;
	if (!d->queue || queue_counts(d->queue, &c))
		return;
	struct sched_stats st = { 0 };
	if (d->sched)
		sched_stats(d->sched, &st);
	metrics_emit(o, "scheduled", (double)c.scheduled);
	metrics_emit(o, "in_flight", (double)st.recipients);
	metrics_emit(o, "held_or_done",
		     c.recipients > c.scheduled ? (double)(c.recipients - c.scheduled) : 0);
}

static int first_arrival(const struct queue_msg *m, void *arg)
{
	*(int64_t *)arg = m->arrival;
	return 1;                    /* the first is the oldest: stop */
}

static void queue_oldest(struct metrics_out *o, void *arg)
{
	struct daemon *d = arg;
	struct queue_read *r;
	int64_t arrival = 0;
	if (!d->queue || queue_read_begin(d->queue, &r))
		return;
	int rc = queue_msg_iter(r, NULL, first_arrival, &arrival);
	queue_read_end(r);
	if (rc < 0)
		return;
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	double age = arrival ? (double)now.tv_sec + now.tv_nsec / 1e9 - arrival / 1e6 : 0;
	metrics_emit(o, NULL, age > 0 ? age : 0);
}

static void map_used(struct metrics_out *o, void *arg)
{
	struct daemon *d = arg;
	struct queue_env_info info;
	if (d->queue && queue_env_info(d->queue, &info) == 0)
		metrics_emit(o, NULL, (double)((info.last_page + 1) * info.page_size));
}

static void map_size(struct metrics_out *o, void *arg)
{
	struct daemon *d = arg;
	metrics_emit(o, NULL, (double)d->cfg->queue_map_size);
}

void metrics_series_register(struct daemon *d)
{
	static const enum metric_id counters[] = {
		METRIC_SMTPD_CONNECTIONS, METRIC_SMTPD_MESSAGES,
		METRIC_SMTPD_REPLIES, METRIC_SMTPD_AUTH,
		METRIC_SMTPD_ACCEPT_LATENCY, METRIC_TLS_SESSIONS,
	};
	for (size_t i = 0; i < sizeof(counters) / sizeof(counters[0]); i++)
		metrics_register(counters[i]);
	metrics_gauge(METRIC_SMTPD_SESSIONS, sessions, d);
	metrics_gauge(METRIC_QUEUE_MESSAGES, queue_messages, d);
	metrics_gauge(METRIC_QUEUE_RECIPIENTS, queue_recipients, d);
	metrics_gauge(METRIC_QUEUE_OLDEST_AGE, queue_oldest, d);
	metrics_gauge(METRIC_QUEUE_MAP_USED, map_used, d);
	metrics_gauge(METRIC_QUEUE_MAP_SIZE, map_size, d);
}
