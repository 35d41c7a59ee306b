/*
 * queue_codec.c - encode and validate queue records (layout in
 * queue_codec.h and queue/README).
 */
#include <stdlib.h>
#include <string.h>
#include "queue_codec.h"
#include "queue_int.h"

#define QSTR_NULL 0xffffffffu
/* No string in a record is longer than this; longer means damage. */
#define QSTR_MAX (1u << 20)

static void qbuf_put(struct qbuf *b, const void *p, size_t n)
{
	if (b->err)
		return;
	if (b->cap - b->len < n) {
		size_t cap = b->cap ? b->cap : 256;
		while (cap - b->len < n)
			cap *= 2;
		uint8_t *np = realloc(b->p, cap);
		if (!np) {
			b->err = 1;
			return;
		}
		b->p = np;
		b->cap = cap;
	}
	memcpy(b->p + b->len, p, n);
	b->len += n;
}

void qbuf_u8(struct qbuf *b, uint8_t v)
{
	qbuf_put(b, &v, 1);
}

void qbuf_u32(struct qbuf *b, uint32_t v)
{
	uint8_t x[4] = { v, v >> 8, v >> 16, v >> 24 };
	qbuf_put(b, x, 4);
}

void qbuf_u64(struct qbuf *b, uint64_t v)
{
	qbuf_u32(b, (uint32_t)v);
	qbuf_u32(b, (uint32_t)(v >> 32));
}

void qbuf_str(struct qbuf *b, const char *s)
{
	if (!s) {
		qbuf_u32(b, QSTR_NULL);
		return;
	}
	size_t n = strlen(s);
	if (n > QSTR_MAX) {
		b->err = 1;
		return;
	}
	qbuf_u32(b, (uint32_t)n);
	qbuf_put(b, s, n);
}

void qbuf_free(struct qbuf *b)
{
	free(b->p);
	memset(b, 0, sizeof(*b));
}

static const uint8_t *qrd_take(struct qrd *r, size_t n)
{
	if (r->err || r->len - r->off < n) {
		r->err = 1;
		return NULL;
	}
	const uint8_t *p = r->p + r->off;
	r->off += n;
	return p;
}

uint8_t qrd_u8(struct qrd *r)
{
	const uint8_t *p = qrd_take(r, 1);
	return p ? p[0] : 0;
}

uint32_t qrd_u32(struct qrd *r)
{
	const uint8_t *p = qrd_take(r, 4);
	if (!p)
		return 0;
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

uint64_t qrd_u64(struct qrd *r)
{
	uint64_t lo = qrd_u32(r);
	return lo | (uint64_t)qrd_u32(r) << 32;
}

char *qrd_str(struct qrd *r)
{
	uint32_t n = qrd_u32(r);
	if (r->err || n == QSTR_NULL)
		return NULL;
	const uint8_t *p = n <= QSTR_MAX ? qrd_take(r, n) : NULL;
	if (!p || memchr(p, 0, n)) {
		r->err = 1;
		return NULL;
	}
	char *s = malloc((size_t)n + 1);
	if (!s) {
		r->err = 1;
		return NULL;
	}
	memcpy(s, p, n);
	s[n] = 0;
	return s;
}

int queue__msg_encode(struct qbuf *b, const struct queue_msg *m)
{
	qbuf_u8(b, QUEUE_RECORD_VERSION);
	qbuf_u64(b, (uint64_t)m->arrival);
	qbuf_u64(b, m->size);
	qbuf_u32(b, m->flags);
	qbuf_u8(b, (uint8_t)m->ret);
	qbuf_str(b, m->sender ? m->sender : "");
	qbuf_str(b, m->envid);
	qbuf_str(b, m->client_name);
	qbuf_str(b, m->client_addr);
	qbuf_str(b, m->helo);
	qbuf_str(b, m->auth_user);
	qbuf_u32(b, m->nrcpt);
	qbuf_u32(b, m->nchunks);
	return b->err ? QUEUE_ENOMEM : 0;
}

int queue__msg_decode(const void *p, size_t len, struct queue_msg *m)
{
	struct qrd r = { .p = p, .len = len };
	memset(m, 0, sizeof(*m));
	if (qrd_u8(&r) != QUEUE_RECORD_VERSION)
		return QUEUE_ECORRUPT;
	m->arrival = (int64_t)qrd_u64(&r);
	m->size = qrd_u64(&r);
	m->flags = qrd_u32(&r);
	m->ret = (enum queue_ret)qrd_u8(&r);
	m->sender = qrd_str(&r);
	m->envid = qrd_str(&r);
	m->client_name = qrd_str(&r);
	m->client_addr = qrd_str(&r);
	m->helo = qrd_str(&r);
	m->auth_user = qrd_str(&r);
	m->nrcpt = qrd_u32(&r);
	m->nchunks = qrd_u32(&r);
	if (r.err || !m->sender || m->ret > QUEUE_RET_FULL) {
		queue_msg_clear(m);
		return QUEUE_ECORRUPT;
	}
	return 0;
}

int queue__rcpt_encode(struct qbuf *b, const struct queue_rcpt *rc)
{
	qbuf_u8(b, QUEUE_RCPT_VERSION);
	qbuf_u8(b, (uint8_t)rc->state);
	qbuf_u32(b, rc->notify);
	qbuf_u64(b, (uint64_t)rc->next_attempt);
	qbuf_u32(b, rc->attempts);
	qbuf_str(b, rc->addr ? rc->addr : "");
	qbuf_str(b, rc->orcpt);
	qbuf_str(b, rc->dsn);
	qbuf_str(b, rc->reason);
	/* Version 2 from here. */
	qbuf_u32(b, rc->flags);
	qbuf_u64(b, (uint64_t)rc->first_attempt);
	qbuf_u64(b, (uint64_t)rc->last_attempt);
	qbuf_str(b, rc->diag_type);
	qbuf_str(b, rc->hop_host);
	qbuf_str(b, rc->hop_ip);
	qbuf_u32(b, rc->hop_port);
	qbuf_u64(b, rc->claim_gen);
	qbuf_u64(b, (uint64_t)rc->claim_until);
	qbuf_u64(b, rc->claim_owner);
	return b->err ? QUEUE_ENOMEM : 0;
}

int queue__rcpt_decode(const void *p, size_t len, struct queue_rcpt *rc)
{
	struct qrd r = { .p = p, .len = len };
	memset(rc, 0, sizeof(*rc));
	uint8_t ver = qrd_u8(&r);
	if (ver != 1 && ver != QUEUE_RCPT_VERSION)
		return QUEUE_ECORRUPT;
	uint8_t st = qrd_u8(&r);
	rc->state = (enum queue_rcpt_state)st;
	rc->notify = qrd_u32(&r);
	rc->next_attempt = (int64_t)qrd_u64(&r);
	rc->attempts = qrd_u32(&r);
	rc->addr = qrd_str(&r);
	rc->orcpt = qrd_str(&r);
	rc->dsn = qrd_str(&r);
	rc->reason = qrd_str(&r);
	if (ver >= 2) {
		rc->flags = qrd_u32(&r);
		rc->first_attempt = (int64_t)qrd_u64(&r);
		rc->last_attempt = (int64_t)qrd_u64(&r);
		rc->diag_type = qrd_str(&r);
		rc->hop_host = qrd_str(&r);
		rc->hop_ip = qrd_str(&r);
		rc->hop_port = qrd_u32(&r);
		rc->claim_gen = qrd_u64(&r);
		rc->claim_until = (int64_t)qrd_u64(&r);
		rc->claim_owner = qrd_u64(&r);
	}
	if (r.err || !rc->addr || st > QUEUE_RCPT_FAILED || rc->hop_port > 65535) {
		queue__rcpt_clear(rc);
		return QUEUE_ECORRUPT;
	}
	return 0;
}

void queue__rcpt_clear(struct queue_rcpt *rc)
{
	free(rc->addr);
	free(rc->orcpt);
	free(rc->dsn);
	free(rc->reason);
	free(rc->diag_type);
	free(rc->hop_host);
	free(rc->hop_ip);
	memset(rc, 0, sizeof(*rc));
}

int queue__hist_encode(struct qbuf *b, const struct queue_attempt *a, size_t n)
{
	qbuf_u8(b, QUEUE_RECORD_VERSION);
	qbuf_u8(b, (uint8_t)n);
	for (size_t i = 0; i < n; i++) {
		qbuf_u64(b, (uint64_t)a[i].when);
		qbuf_str(b, a[i].hop_host);
		qbuf_str(b, a[i].hop_ip);
		qbuf_u32(b, a[i].hop_port);
		qbuf_str(b, a[i].dsn);
		qbuf_str(b, a[i].reply);
	}
	return b->err || n > QUEUE_HIST_MAX ? QUEUE_ENOMEM : 0;
}

int queue__hist_decode(const void *p, size_t len, struct queue_attempt *a,
		       size_t *n)
{
	struct qrd r = { .p = p, .len = len };
	*n = 0;
	if (qrd_u8(&r) != QUEUE_RECORD_VERSION)
		return QUEUE_ECORRUPT;
	uint8_t cnt = qrd_u8(&r);
	if (cnt > QUEUE_HIST_MAX)
		return QUEUE_ECORRUPT;
	for (size_t i = 0; i < cnt && !r.err; i++) {
		struct queue_attempt *x = &a[i];
		memset(x, 0, sizeof(*x));
		x->when = (int64_t)qrd_u64(&r);
		x->hop_host = qrd_str(&r);
		x->hop_ip = qrd_str(&r);
		x->hop_port = qrd_u32(&r);
		x->dsn = qrd_str(&r);
		x->reply = qrd_str(&r);
		*n = i + 1;
		if (x->hop_port > 65535)
			r.err = 1;
	}
	if (r.err) {
		queue_attempt_clear(a, *n);
		*n = 0;
		return QUEUE_ECORRUPT;
	}
	return 0;
}

void queue_attempt_clear(struct queue_attempt *a, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(a[i].hop_host);
		free(a[i].hop_ip);
		free(a[i].dsn);
		free(a[i].reply);
		memset(&a[i], 0, sizeof(a[i]));
	}
}

int queue__dstate_encode(struct qbuf *b, const struct queue_dstate *d)
{
	qbuf_u8(b, QUEUE_RECORD_VERSION);
	qbuf_u64(b, (uint64_t)d->earliest);
	qbuf_u64(b, (uint64_t)d->blocked_until);
	qbuf_u64(b, d->nrcpt);
	return b->err ? QUEUE_ENOMEM : 0;
}

int queue__dstate_decode(const void *p, size_t len, struct queue_dstate *d)
{
	struct qrd r = { .p = p, .len = len };
	memset(d, 0, sizeof(*d));
	if (qrd_u8(&r) != QUEUE_RECORD_VERSION)
		return QUEUE_ECORRUPT;
	d->earliest = (int64_t)qrd_u64(&r);
	d->blocked_until = (int64_t)qrd_u64(&r);
	d->nrcpt = qrd_u64(&r);
	return r.err ? QUEUE_ECORRUPT : 0;
}

void queue_msg_clear(struct queue_msg *m)
{
	free(m->sender);
	free(m->envid);
	free(m->client_name);
	free(m->client_addr);
	free(m->helo);
	free(m->auth_user);
	for (uint32_t i = 0; m->rcpt && i < m->nrcpt; i++)
		queue__rcpt_clear(&m->rcpt[i]);
	free(m->rcpt);
	queue_id id = m->id;
	memset(m, 0, sizeof(*m));
	m->id = id;
}
