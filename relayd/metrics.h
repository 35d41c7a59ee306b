/*
 * metrics.h - the series relayd exposes on metrics_listen (Prometheus
 * text format, see metrics_http.h), and the registry that holds them.
 *
 * Every series relayd can expose is named here, in one table, so names
 * stay consistent across services and the documentation (relayd.conf(5),
 * doc/architecture.md) can list them.  A service turns its series on with
 * one call: metrics_register() for counters and histograms, which it then
 * bumps with metric_inc/metric_add/metric_observe; metrics_gauge() for
 * gauges, whose values a callback computes at scrape time.  A series not
 * registered is not shown, so a scrape never shows a delivery counter
 * stuck at zero before delivery exists.
 *
 * Labels take a fixed set of values per counter (reply class, AUTH
 * result, TLS side, delivery status): no input can grow the set.  Gauges
 * with open-ended label values (a destination) emit what their callback
 * chooses, top N, at scrape time; values are escaped on output.
 *
 * The registry is process-wide, like the log: counters are bumped from
 * deep inside sessions and TLS connections, and passing a handle down
 * every layer would buy nothing.  Counters and histograms are atomic (any
 * thread may count); registration and rendering happen on the loop
 * thread.
 */
#ifndef RELAYD_METRICS_H
#define RELAYD_METRICS_H

#include <stddef.h>
#include <stdint.h>

enum metric_id {
	/* SMTP server (registered by the daemon at start) */
	METRIC_SMTPD_CONNECTIONS,    /* relayd_smtpd_connections_total */
	METRIC_SMTPD_SESSIONS,       /* relayd_smtpd_sessions (gauge) */
	METRIC_SMTPD_MESSAGES,       /* relayd_smtpd_messages_received_total */
	METRIC_SMTPD_REPLIES,        /* relayd_smtpd_replies_total{class} */
	METRIC_SMTPD_AUTH,           /* relayd_smtpd_auth_total{result} */
	METRIC_SMTPD_ACCEPT_LATENCY, /* relayd_smtpd_accept_latency_seconds */
	METRIC_TLS_SESSIONS,         /* relayd_tls_sessions_total{side} */
	/* queue (gauges computed at scrape time) */
	METRIC_QUEUE_MESSAGES,       /* relayd_queue_messages */
	METRIC_QUEUE_OLDEST_AGE,     /* relayd_queue_oldest_message_age_seconds */
	METRIC_QUEUE_RECIPIENTS,     /* relayd_queue_recipients{state} */
	METRIC_QUEUE_MAP_USED,       /* relayd_queue_map_used_bytes */
	METRIC_QUEUE_MAP_SIZE,       /* relayd_queue_map_size_bytes */
	/* delivery (registered by the delivery engine) */
	METRIC_DELIVERY_RECIPIENTS,  /* relayd_delivery_recipients_total{status} */
	METRIC_DELIVERY_LATENCY,     /* relayd_delivery_latency_seconds */
	METRIC_DELIVERY_IN_FLIGHT,   /* relayd_delivery_in_flight{destination} */
	METRIC_COUNT
};

/* Label values of the counters that have labels, as indexes for
 * metric_inc_label (the table in metrics.c spells them). */
enum { METRIC_CLASS_2XX, METRIC_CLASS_3XX, METRIC_CLASS_4XX, METRIC_CLASS_5XX };
enum { METRIC_AUTH_SUCCESS, METRIC_AUTH_FAILURE };
enum { METRIC_TLS_SERVER, METRIC_TLS_CLIENT };
/* status=: the outcome of one recipient's delivery attempt, as in the
 * log's status=, plus expired (queue_lifetime reached, 4.4.7). */
enum { METRIC_STATUS_SENT, METRIC_STATUS_DEFERRED, METRIC_STATUS_BOUNCED,
       METRIC_STATUS_EXPIRED };

/* Show a counter or histogram from now on (idempotent). */
void metrics_register(enum metric_id id);

/* A gauge's values, asked for at every scrape on the loop thread.  The
 * callback calls metrics_emit once per value: label NULL for a gauge
 * without labels, else the label's value (escaped here).  It must be
 * cheap: a scrape runs on the loop. */
struct metrics_out;
typedef void metrics_gauge_fn(struct metrics_out *o, void *arg);
void metrics_gauge(enum metric_id id, metrics_gauge_fn *fn, void *arg);
void metrics_emit(struct metrics_out *o, const char *label, double value);

/* Counters.  Counting a series not registered is allowed (it shows once
 * registered).  metric_add counts a counter without labels, and
 * metric_inc_label one of a labelled counter's values; either ignores
 * the other kind, and a label index out of range. */
void metric_add(enum metric_id id, uint64_t n);
static inline void metric_inc(enum metric_id id) { metric_add(id, 1); }
void metric_inc_label(enum metric_id id, unsigned label);
/* The reply class label of an SMTP reply's first digit ('2'..'5');
 * -1 for anything else. */
int metric_reply_class(char first_digit);
/* Histograms: one observation, in seconds. */
void metric_observe(enum metric_id id, double seconds);

/* The exposition of every registered series (text format 0.0.4):
 * malloc'd, length in *len; NULL when out of memory. */
char *metrics_render(size_t *len);

/* Forget registrations and values; for tests and a clean stop. */
void metrics_reset(void);

/* The name of a series, for documentation checks and tests. */
const char *metrics_name(enum metric_id id);

#endif
