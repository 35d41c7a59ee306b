/*
 * fuzz_queue_codec.c - fuzz target for the queue's record decoders
 * (queue/queue_codec.h): what comes back from disk may be damaged and
 * must be refused, never trusted.
 *
 * Input: one record, given to queue__msg_decode, queue__rcpt_decode,
 * queue__hist_decode and queue__dstate_decode.  Checked,
 * beyond the absence of crashes:
 *  - a decoder returns 0 or QUEUE_ECORRUPT, and on failure leaves no
 *    pointer behind (nothing to free, nothing dangling);
 *  - a decoded record has its mandatory string (sender, addr) and values
 *    in range (ret, state);
 *  - encoding what was decoded gives back the bytes that were decoded
 *    (a prefix of the input: trailing bytes are ignored; a version 1
 *    recipient comes back as version 2), and decoding that again gives
 *    equal fields.
 * A violation aborts, which libFuzzer (or t/fuzz/driver.c) reports.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "queue_codec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)							\
	do {								\
		if (!(cond)) {						\
			fprintf(stderr, "fuzz_queue_codec: %s:%d: %s\n",	\
				__FILE__, __LINE__, #cond);		\
			abort();					\
		}							\
	} while (0)

/* Both NULL, or equal strings. */
static int same(const char *a, const char *b)
{
	return (!a && !b) || (a && b && !strcmp(a, b));
}

static void check_msg_equal(const struct queue_msg *a,
			    const struct queue_msg *b)
{
	CHECK(a->arrival == b->arrival);
	CHECK(a->size == b->size);
	CHECK(a->flags == b->flags);
	CHECK(a->ret == b->ret);
	CHECK(same(a->sender, b->sender));
	CHECK(same(a->envid, b->envid));
	CHECK(same(a->client_name, b->client_name));
	CHECK(same(a->client_addr, b->client_addr));
	CHECK(same(a->helo, b->helo));
	CHECK(same(a->auth_user, b->auth_user));
	CHECK(a->nrcpt == b->nrcpt);
	CHECK(a->nchunks == b->nchunks);
	CHECK(!a->rcpt && !b->rcpt);
}

static void check_msg(const uint8_t *data, size_t size)
{
	struct queue_msg m, m2;
	struct qbuf b;
	int rc;

	memset(&b, 0, sizeof(b));
	rc = queue__msg_decode(data, size, &m);
	CHECK(rc == 0 || rc == QUEUE_ECORRUPT);
	if (rc) {
		CHECK(!m.sender && !m.envid && !m.client_name &&
		      !m.client_addr && !m.helo && !m.auth_user && !m.rcpt);
		return;
	}
	CHECK(m.sender != NULL);
	CHECK(m.ret <= QUEUE_RET_FULL);
	CHECK(!m.rcpt);

	CHECK(queue__msg_encode(&b, &m) == 0);
	CHECK(b.len <= size && !memcmp(b.p, data, b.len));
	CHECK(queue__msg_decode(b.p, b.len, &m2) == 0);
	check_msg_equal(&m, &m2);

	qbuf_free(&b);
	queue_msg_clear(&m);
	queue_msg_clear(&m2);
}

static void check_rcpt_equal(const struct queue_rcpt *a,
			     const struct queue_rcpt *b)
{
	CHECK(same(a->addr, b->addr));
	CHECK(same(a->orcpt, b->orcpt));
	CHECK(a->notify == b->notify);
	CHECK(a->state == b->state);
	CHECK(a->next_attempt == b->next_attempt);
	CHECK(a->attempts == b->attempts);
	CHECK(same(a->dsn, b->dsn));
	CHECK(same(a->reason, b->reason));
	CHECK(a->flags == b->flags);
	CHECK(a->first_attempt == b->first_attempt);
	CHECK(a->last_attempt == b->last_attempt);
	CHECK(same(a->diag_type, b->diag_type));
	CHECK(same(a->hop_host, b->hop_host));
	CHECK(same(a->hop_ip, b->hop_ip));
	CHECK(a->hop_port == b->hop_port);
	CHECK(a->claim_gen == b->claim_gen);
	CHECK(a->claim_until == b->claim_until);
	CHECK(a->claim_owner == b->claim_owner);
}

static void check_rcpt(const uint8_t *data, size_t size)
{
	struct queue_rcpt r, r2;
	struct qbuf b;
	int rc;

	memset(&b, 0, sizeof(b));
	rc = queue__rcpt_decode(data, size, &r);
	CHECK(rc == 0 || rc == QUEUE_ECORRUPT);
	if (rc) {
		CHECK(!r.addr && !r.orcpt && !r.dsn && !r.reason &&
		      !r.diag_type && !r.hop_host && !r.hop_ip);
		return;
	}
	CHECK(r.addr != NULL);
	CHECK(r.state == QUEUE_RCPT_PENDING || r.state == QUEUE_RCPT_DEFERRED ||
	      r.state == QUEUE_RCPT_SENT || r.state == QUEUE_RCPT_FAILED);

	CHECK(queue__rcpt_encode(&b, &r) == 0);
	CHECK(data[0] != 2 || (b.len <= size && !memcmp(b.p, data, b.len)));
	CHECK(queue__rcpt_decode(b.p, b.len, &r2) == 0);
	check_rcpt_equal(&r, &r2);

	qbuf_free(&b);
	queue__rcpt_clear(&r);
	queue__rcpt_clear(&r2);
}

static void check_hist(const uint8_t *data, size_t size)
{
	struct queue_attempt a[QUEUE_HIST_MAX], a2[QUEUE_HIST_MAX];
	struct qbuf b;
	size_t n, n2;
	memset(&b, 0, sizeof(b));
	int rc = queue__hist_decode(data, size, a, &n);
	CHECK(rc == 0 || rc == QUEUE_ECORRUPT);
	if (rc) {
		CHECK(n == 0);
		return;
	}
	CHECK(n <= QUEUE_HIST_MAX);
	CHECK(queue__hist_encode(&b, a, n) == 0);
	CHECK(b.len <= size && !memcmp(b.p, data, b.len));
	CHECK(queue__hist_decode(b.p, b.len, a2, &n2) == 0 && n2 == n);
	for (size_t i = 0; i < n; i++) {
		CHECK(a[i].when == a2[i].when && a[i].hop_port == a2[i].hop_port);
		CHECK(same(a[i].hop_host, a2[i].hop_host) && same(a[i].hop_ip, a2[i].hop_ip));
		CHECK(same(a[i].dsn, a2[i].dsn) && same(a[i].reply, a2[i].reply));
	}
	queue_attempt_clear(a, n);
	queue_attempt_clear(a2, n2);
	qbuf_free(&b);
}

static void check_dstate(const uint8_t *data, size_t size)
{
	struct queue_dstate d, d2;
	struct qbuf b;
	memset(&b, 0, sizeof(b));
	if (queue__dstate_decode(data, size, &d))
		return;
	CHECK(queue__dstate_encode(&b, &d) == 0);
	CHECK(b.len <= size && !memcmp(b.p, data, b.len));
	CHECK(queue__dstate_decode(b.p, b.len, &d2) == 0);
	CHECK(d.earliest == d2.earliest && d.blocked_until == d2.blocked_until &&
	      d.nrcpt == d2.nrcpt);
	qbuf_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	check_msg(data, size);
	check_rcpt(data, size);
	check_hist(data, size);
	check_dstate(data, size);
	return 0;
}
