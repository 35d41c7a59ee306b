/*
 * test_metrics.c - the metrics registry and its text exposition: series
 * hidden until registered, fixed labels, histogram buckets (cumulative,
 * bounds inclusive), gauge label values from mail escaped to one line.
 */
#include <stdlib.h>
#include <string.h>
#include "metrics.h"
#include "t/tap.h"

static char *render(void)
{
	size_t len = 0;
	char *s = metrics_render(&len);
	ok(s && strlen(s) == len, "render: length matches the text");
	return s;
}

static void has(const char *text, const char *line, const char *name)
{
	if (!ok(text && strstr(text, line), "%s", name))
		printf("#   missing: %s\n", line);
}

static void dests(struct metrics_out *o, void *arg)
{
	(void)arg;
	metrics_emit(o, "mx.example.org", 3);
	metrics_emit(o, "evil\"}\nrelayd_fake 1\\", 1);
	metrics_emit(o, "b\xc3\xbcro\x01", 2);
}

int main(void)
{
	char *s = render();
	is_str(s, "", "nothing registered: empty exposition");
	free(s);

	metric_inc(METRIC_SMTPD_CONNECTIONS);          /* before registering */
	metrics_register(METRIC_SMTPD_CONNECTIONS);
	metrics_register(METRIC_SMTPD_REPLIES);
	metric_inc(METRIC_SMTPD_CONNECTIONS);
	metric_inc_label(METRIC_SMTPD_REPLIES, (unsigned)metric_reply_class('2'));
	metric_inc_label(METRIC_SMTPD_REPLIES, (unsigned)metric_reply_class('5'));
	metric_inc_label(METRIC_SMTPD_REPLIES, (unsigned)metric_reply_class('x'));
	metric_inc_label(METRIC_SMTPD_REPLIES, 99);
	metric_add(METRIC_SMTPD_REPLIES, 5);       /* labelled: ignored */
	metric_inc_label(METRIC_SMTPD_CONNECTIONS, 0);   /* not labelled: ignored */
	s = render();
	has(s, "# TYPE relayd_smtpd_connections_total counter\n", "TYPE line");
	has(s, "\nrelayd_smtpd_connections_total 2\n", "counts made before registration show");
	has(s, "relayd_smtpd_replies_total{class=\"2xx\"} 1\n", "2xx");
	has(s, "relayd_smtpd_replies_total{class=\"3xx\"} 0\n", "3xx shown at 0");
	has(s, "relayd_smtpd_replies_total{class=\"5xx\"} 1\n", "5xx");
	ok(!strstr(s, "relayd_delivery"), "unregistered series hidden");
	free(s);

	metrics_register(METRIC_SMTPD_ACCEPT_LATENCY);
	metric_observe(METRIC_SMTPD_ACCEPT_LATENCY, 0.001);   /* on a bound: le */
	metric_observe(METRIC_SMTPD_ACCEPT_LATENCY, 0.003);
	metric_observe(METRIC_SMTPD_ACCEPT_LATENCY, 100);
	metric_observe(METRIC_SMTPD_ACCEPT_LATENCY, -1);      /* ignored */
	s = render();
	has(s, "relayd_smtpd_accept_latency_seconds_bucket{le=\"0.001\"} 1\n", "bound inclusive");
	has(s, "relayd_smtpd_accept_latency_seconds_bucket{le=\"0.0025\"} 1\n", "cumulative");
	has(s, "relayd_smtpd_accept_latency_seconds_bucket{le=\"0.005\"} 2\n", "second bucket");
	has(s, "relayd_smtpd_accept_latency_seconds_bucket{le=\"2.5\"} 2\n", "last finite bucket");
	has(s, "relayd_smtpd_accept_latency_seconds_bucket{le=\"+Inf\"} 3\n", "+Inf holds all");
	has(s, "relayd_smtpd_accept_latency_seconds_count 3\n", "count");
	has(s, "relayd_smtpd_accept_latency_seconds_sum 100.004000\n", "sum");
	free(s);

	metrics_gauge(METRIC_DELIVERY_IN_FLIGHT, dests, NULL);
	s = render();
	has(s, "relayd_delivery_in_flight{destination=\"mx.example.org\"} 3\n", "gauge value");
	has(s, "relayd_delivery_in_flight{destination=\"evil\\\"}\\nrelayd_fake 1\\\\\"} 1\n",
	    "quote, newline and backslash escaped");
	ok(!strstr(s, "\nrelayd_fake"), "a label value cannot start a line");
	has(s, "relayd_delivery_in_flight{destination=\"b??ro?\"} 2\n",
	    "bytes outside printable ASCII replaced");
	free(s);

	metrics_gauge(METRIC_SMTPD_CONNECTIONS, dests, NULL);  /* not a gauge */
	metrics_register(METRIC_QUEUE_MESSAGES);             /* a gauge needs fn */
	s = render();
	ok(!strstr(s, "relayd_queue_messages"), "a gauge without a callback stays hidden");
	free(s);

	metrics_reset();
	s = render();
	is_str(s, "", "reset forgets everything");
	free(s);
	is_str(metrics_name(METRIC_DELIVERY_RECIPIENTS), "relayd_delivery_recipients_total",
	       "delivery names are defined");
	ok(metrics_name(METRIC_COUNT) == NULL, "no name past the table");
	return done_testing();
}
