/*
 * relayq_json.c - "relayq -j": one JSON object per message per line,
 * with postqueue -j's names (queue_name, queue_id, arrival_time,
 * message_size, forced_expire, sender, recipients[].address,
 * recipients[].delay_reason) so that tools written for Postfix read it,
 * plus what only relayd knows, under names Postfix does not use: per
 * recipient its state, attempts, next_attempt_time and the last attempts
 * (attempt_history: time, next_hop, dsn, reply).
 *
 * Built with jansson, never by hand.  JSON strings must be UTF-8 and an
 * address or a reply may not be: a byte that is not part of well-formed
 * UTF-8 is written as the four characters \xHH (a backslash, x, two hex
 * digits), the convention of the text listing and the logs; well-formed
 * text, controls included, is left to jansson's escaping.
 */
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include "relayq.h"
#include "text.h"

static json_t *json_text(const char *s)
{
	size_t n = strlen(s), i = 0, o = 0;
	uint32_t cp;
	while (i < n) {
		size_t l = text_utf8_len((const unsigned char *)s + i, n - i, &cp);
		if (!l)
			break;
		i += l;
	}
	if (i == n)
		return json_stringn(s, n);
	char *buf = malloc(4 * n + 1);
	if (!buf)
		return NULL;
	for (i = 0; i < n;) {
		size_t l = text_utf8_len((const unsigned char *)s + i, n - i, &cp);
		if (l) {
			memcpy(buf + o, s + i, l);
			o += l;
			i += l;
		} else {
			o += (size_t)sprintf(buf + o, "\\x%02X", (unsigned char)s[i]);
			i++;
		}
	}
	json_t *j = json_stringn(buf, o);
	free(buf);
	return j;
}

static json_t *opt_text(const char *s)
{
	return s ? json_text(s) : json_null();
}

static json_t *next_hop(const char *host, const char *ip, unsigned port)
{
	char buf[600];
	if (!host && !ip)
		return json_null();
	snprintf(buf, sizeof(buf), "%s[%s]:%u", host ? host : "", ip ? ip : "", port);
	return json_text(buf);
}

static const char *rcpt_state(const struct queue_rcpt *r, int64_t now)
{
	if (qsel_rcpt_active(r, now))
		return "active";
	return r->state == QUEUE_RCPT_DEFERRED ? "deferred" : "pending";
}

static json_t *history(struct queue *q, const char *id, uint32_t idx)
{
	struct queue_attempt h[QUEUE_HIST_MAX];
	struct queue_read *rd;
	size_t n = 0;
	json_t *a = json_array();
	if (!a || queue_read_begin(q, &rd))
		return a;
	int rc = queue_rcpt_history(rd, id, idx, h, QUEUE_HIST_MAX, &n);
	queue_read_end(rd);
	for (size_t i = 0; !rc && i < n; i++)
		json_array_append_new(a, json_pack("{s:I, s:o, s:o, s:o}",
			"time", (json_int_t)h[i].when,
			"next_hop", next_hop(h[i].hop_host, h[i].hop_ip, h[i].hop_port),
			"dsn", opt_text(h[i].dsn), "reply", opt_text(h[i].reply)));
	queue_attempt_clear(h, n);
	return a;
}

static json_t *rcpt_json(struct queue *q, const struct queue_msg *m,
			 uint32_t idx, int64_t now)
{
	const struct queue_rcpt *r = &m->rcpt[idx];
	json_t *o = json_pack("{s:o, s:s, s:i, s:I, s:o}",
		"address", json_text(r->addr),
		"state", rcpt_state(r, now),
		"attempts", (int)r->attempts,
		"next_attempt_time", (json_int_t)r->next_attempt,
		"attempt_history", r->attempts ? history(q, m->id.s, idx) : json_array());
	if (o && r->reason)
		json_object_set_new(o, "delay_reason", json_text(r->reason));
	return o;
}

struct json_walk {
	struct queue *q;
	FILE *out;
	int64_t now;
};

static int json_msg(const struct queue_msg *m, void *arg)
{
	struct json_walk *w = arg;
	json_t *rcpts = json_array();
	for (uint32_t i = 0; rcpts && i < m->nrcpt; i++)
		if (qsel_rcpt_live(&m->rcpt[i]))
			json_array_append_new(rcpts, rcpt_json(w->q, m, i, w->now));
	json_t *o = json_pack("{s:s, s:s, s:I, s:I, s:b, s:o, s:o}",
		"queue_name", qsel_state_name(qsel_state_of(m, w->now)),
		"queue_id", m->id.s,
		"arrival_time", (json_int_t)(m->arrival / 1000000),
		"message_size", (json_int_t)m->size,
		"forced_expire", 0,
		"sender", json_text(m->sender),
		"recipients", rcpts);
	if (!o || json_dumpf(o, w->out, JSON_COMPACT) || fputc('\n', w->out) == EOF) {
		json_decref(o);
		return 1;       /* positive: the walk's own codes are negative */
	}
	json_decref(o);
	return 0;
}

int relayq_json(struct queue *q, FILE *out, int64_t now)
{
	struct json_walk w = { .q = q, .out = out, .now = now };
	int rc = qsel_walk(q, RELAYQ_PAGE, json_msg, &w);
	if (rc == 1) {
		if (ferror(out))
			return relayq_finish(0, out);
		fprintf(stderr, "relayq: out of memory\n");
		return -1;
	}
	return relayq_finish(rc, out);
}
