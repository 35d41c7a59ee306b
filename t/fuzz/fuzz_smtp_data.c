/*
 * fuzz_smtp_data.c - fuzz target for the DATA/BDAT content stream
 * (relayd/smtp_data.h).
 *
 * Input: two control bytes, then the client's bytes.
 *   byte 0  bit 0: 1 = BDAT (raw mode), 0 = DATA (dot mode)
 *           bits 1-2: emit limit, 16 / 300 / 4096 / 65536 bytes
 *           bit 3: the emit callback fails once 100 bytes are stored
 *   byte 1  where the stream is split in two: byte1 * (len + 1) / 256
 *
 * The stream is fed three ways: whole, split in two at the chosen point,
 * and one byte at a time, as the network may cut it anywhere.  Checked,
 * beyond the absence of crashes:
 *  - the three runs agree on done, bytes consumed, bare_eol, too_big,
 *    Received: count, Message-ID:/Date: flags, and (unless the limit or a
 *    failing callback cut the output short) on the bytes emitted;
 *  - dot mode ends exactly after the first <CRLF>.<CRLF> (or a leading
 *    ".\r\n"), computed here independently, and consumes everything when
 *    there is none; raw mode always consumes everything;
 *  - d->size is exactly what reached the callback, never above the limit;
 *  - end_headers runs at most once, and exactly once when the stream is
 *    done;
 *  - the stored output holds no bare CR or LF.
 * A violation aborts, which libFuzzer (or t/fuzz/driver.c) reports.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1	/* memmem */
#endif
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "smtp_data.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define OUT_MAX 65536
#define FAIL_AT 100

static const uint64_t limits[4] = { 16, 300, 4096, OUT_MAX };

struct run {
	struct smtp_data d;
	size_t used;
	int header_calls;
	uint64_t fail_at;	/* emit fails once this much is stored; 0: never */
	size_t len;
	char out[OUT_MAX];
};

static struct run runs[3];

#define CHECK(cond)							\
	do {								\
		if (!(cond)) {						\
			fprintf(stderr, "fuzz_smtp_data: %s:%d: %s\n",	\
				__FILE__, __LINE__, #cond);		\
			abort();					\
		}							\
	} while (0)

static int emit(void *arg, const void *buf, size_t len)
{
	struct run *r = arg;

	/* smtp_data_emit counts the bytes before handing them over. */
	CHECK(len > 0);
	CHECK(r->len + len == r->d.size);
	CHECK(r->d.size <= r->d.limit && r->d.size <= OUT_MAX);
	memcpy(r->out + r->len, buf, len);
	r->len += len;
	return r->fail_at && r->len >= r->fail_at;
}

static int end_headers(void *arg, struct smtp_data *d)
{
	struct run *r = arg;

	r->header_calls++;
	CHECK(r->header_calls == 1);
	if (!d->have_msgid)
		smtp_data_emit(d, "Message-ID: <fuzz@relayd.test>\r\n", 32);
	if (!d->have_date)
		smtp_data_emit(d, "Date: Thu, 1 Jan 1970 00:00:00 +0000\r\n", 38);
	return 0;
}

/* Where DATA must end: just past the first <CRLF>.<CRLF>, the content
 * starting right after the CRLF of the DATA command; 0 when it does not. */
static size_t dot_end(const uint8_t *p, size_t n)
{
	const uint8_t *t;

	if (n >= 3 && !memcmp(p, ".\r\n", 3))
		return 3;
	t = memmem(p, n, "\r\n.\r\n", 5);
	return t ? (size_t)(t - p) + 5 : 0;
}

static void start(struct run *r, enum smtp_data_mode mode, uint64_t limit,
		  int fail)
{
	r->used = 0;
	r->header_calls = 0;
	r->len = 0;
	r->fail_at = fail ? FAIL_AT : 0;
	smtp_data_init(&r->d, mode, limit, emit, end_headers, r);
}

/* Feed p[0..n) in pieces of the given lengths (the last one takes the
 * rest), stopping when the stream is done, as the session does. */
static void feed(struct run *r, const uint8_t *p, size_t n, size_t split,
		 int bytewise)
{
	size_t got;

	if (bytewise) {
		while (r->used < n && !r->d.done) {
			got = smtp_data_feed(&r->d, (const char *)p + r->used, 1);
			CHECK(got <= 1);
			r->used += got;
			if (!got)
				break;
		}
	} else {
		got = smtp_data_feed(&r->d, (const char *)p, split);
		CHECK(got <= split);
		r->used = got;
		if (!r->d.done) {
			CHECK(got == split);
			got = smtp_data_feed(&r->d, (const char *)p + split,
					     n - split);
			CHECK(got <= n - split);
			r->used += got;
		}
	}
	if (r->d.mode == SMTP_DATA_RAW)
		smtp_data_finish(&r->d);
}

/* What must hold for one run on its own. */
static void check_run(const struct run *r, const uint8_t *p, size_t n)
{
	const struct smtp_data *d = &r->d;
	size_t i, end;

	CHECK(d->size == r->len);
	CHECK(d->size <= d->limit);
	CHECK(!d->emit_failed || r->fail_at);
	CHECK(r->header_calls <= 1);
	if (d->done)
		CHECK(r->header_calls == 1);
	if (d->mode == SMTP_DATA_RAW) {
		CHECK(d->done && r->used == n);
	} else {
		end = dot_end(p, n);
		if (end)
			CHECK(d->done && r->used == end);
		else
			CHECK(!d->done && r->used == n);
	}
	/* Line ends leave only as CR LF pairs. */
	for (i = 0; i < r->len; i++) {
		if (r->out[i] == '\r')
			CHECK(i + 1 < r->len && r->out[i + 1] == '\n');
		if (r->out[i] == '\n')
			CHECK(i > 0 && r->out[i - 1] == '\r');
	}
}

/* What must not depend on how the stream was cut. */
static void check_same(const struct run *a, const struct run *b)
{
	CHECK(a->d.done == b->d.done);
	CHECK(a->used == b->used);
	CHECK(a->d.bare_eol == b->d.bare_eol);
	CHECK(a->d.received == b->d.received);
	CHECK(a->d.have_msgid == b->d.have_msgid);
	CHECK(a->d.have_date == b->d.have_date);
	CHECK(a->header_calls == b->header_calls);
	if (a->fail_at)
		return;		/* which emit call fails depends on the cuts */
	CHECK(a->d.too_big == b->d.too_big);
	if (a->d.too_big)
		return;		/* the refused chunk depends on the cuts */
	CHECK(a->d.size == b->d.size);
	CHECK(a->len == b->len && !memcmp(a->out, b->out, a->len));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	enum smtp_data_mode mode;
	uint64_t limit;
	size_t n, split;
	const uint8_t *p;
	int fail, i;

	if (size < 2)
		return 0;
	mode = data[0] & 1 ? SMTP_DATA_RAW : SMTP_DATA_DOT;
	limit = limits[(data[0] >> 1) & 3];
	fail = (data[0] >> 3) & 1;
	p = data + 2;
	n = size - 2;
	split = (size_t)data[1] * (n + 1) / 256;

	for (i = 0; i < 3; i++)
		start(&runs[i], mode, limit, fail);
	feed(&runs[0], p, n, n, 0);
	feed(&runs[1], p, n, split, 0);
	feed(&runs[2], p, n, 0, 1);
	for (i = 0; i < 3; i++)
		check_run(&runs[i], p, n);
	check_same(&runs[0], &runs[1]);
	check_same(&runs[0], &runs[2]);
	return 0;
}
