/*
 * fuzz_sendmail.c - fuzz target for what relay-sendmail parses from its
 * caller: address lists (tools/sendmail_addr.h), header sections
 * (tools/sendmail_headers.h) and standard input (tools/sendmail_input.h).
 *
 * Input: the first byte chooses the input options (bit 0: -i; bits 1-3:
 * where the input is cut in two feeds); the rest is used whole, as an
 * address list, as a header section, and as standard input.
 * Checked, beyond the absence of crashes:
 *  - every address parsed is at most SM_ADDR_MAX bytes, has an '@' and
 *    no control byte (nothing can break the SMTP command it goes into),
 *    and is canonical: parsed again, it gives itself and nothing else;
 *  - a failed parse gives a message;
 *  - after sm_hdr_strip_bcc no Bcc: or Resent-Bcc: field is left, and
 *    the other fields are kept in order, byte for byte;
 *  - the normalised input has CR LF line ends only (no bare CR or LF)
 *    in the header section and in the body, and respects its bounds.
 * A violation aborts, which libFuzzer (or t/fuzz/driver.c) reports.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "tools/sendmail_addr.h"
#include "tools/sendmail_headers.h"
#include "tools/sendmail_input.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)							\
	do {								\
		if (!(cond)) {						\
			fprintf(stderr, "fuzz_sendmail: %s:%d: %s\n",	\
				__FILE__, __LINE__, #cond);		\
			abort();					\
		}							\
	} while (0)

static void check_addr(const char *a)
{
	size_t n = strlen(a);
	CHECK(n > 0 && n <= SM_ADDR_MAX);
	CHECK(strchr(a, '@') != NULL);
	for (size_t i = 0; i < n; i++)
		CHECK((unsigned char)a[i] >= 32 && a[i] != 127);
	struct sm_addr_list again = { .limit = 2 };
	const char *err = NULL;
	CHECK(sm_addr_parse_list(a, n, NULL, &again, &err) == 0);
	CHECK(again.n == 1 && strcmp(again.v[0], a) == 0);
	sm_addr_free(&again);
}

static void addresses(const char *s, size_t n)
{
	struct sm_addr_list l = { .limit = 1000 };
	const char *err = NULL;
	if (sm_addr_parse_list(s, n, "host.example", &l, &err))
		CHECK(err && *err);
	for (size_t i = 0; i < l.n; i++)
		check_addr(l.v[i]);
	sm_addr_dedup(&l);
	sm_addr_free(&l);
}

static void headers(const char *s, size_t n)
{
	char *h = malloc(n ? n : 1), *kept = malloc(n ? n : 1);
	CHECK(h && kept);
	memcpy(h, s, n);
	/* What stripping must leave: every other field, in order. */
	struct sm_field f;
	size_t pos = 0, k = 0;
	while (sm_hdr_next(s, n, &pos, &f)) {
		CHECK(f.len > 0 && f.start + f.len <= n);
		if (sm_hdr_is(s, &f, "Bcc") || sm_hdr_is(s, &f, "Resent-Bcc"))
			continue;
		memcpy(kept + k, s + f.start, f.len);
		k += f.len;
	}
	size_t m = sm_hdr_strip_bcc(h, n);
	CHECK(m == k && memcmp(h, kept, k) == 0);
	pos = 0;
	while (sm_hdr_next(h, m, &pos, &f))
		CHECK(!sm_hdr_is(h, &f, "Bcc") && !sm_hdr_is(h, &f, "Resent-Bcc"));
	struct sm_addr_list l = { .limit = 1000 };
	const char *err = NULL, *field = NULL;
	sm_hdr_recipients(s, n, "host.example", &l, &err, &field);
	for (size_t i = 0; i < l.n; i++)
		check_addr(l.v[i]);
	sm_addr_free(&l);
	struct sm_hdr_info info;
	sm_hdr_info(s, n, &info);
	free(h);
	free(kept);
}

/* Every CR is followed by LF and every LF preceded by CR. */
static void check_crlf(const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (p[i] == '\r')
			CHECK(i + 1 < n && p[i + 1] == '\n');
		if (p[i] == '\n')
			CHECK(i > 0 && p[i - 1] == '\r');
	}
}

static void input(unsigned opts, const char *s, size_t n)
{
	struct sm_input in = { .ignore_dots = opts & 1, .head_max = 512,
			       .size_max = 4096 };
	sm_input_init(&in);
	size_t cut = n * ((opts >> 1) & 7) / 8;
	if (!sm_input_feed(&in, s, cut))
		sm_input_feed(&in, s + cut, n - cut);
	sm_input_end(&in);
	if (in.status == SM_IN_OK) {
		CHECK(in.head_len <= in.head_max);
		CHECK(sm_input_size(&in) <= in.size_max);
		check_crlf(in.head, in.head_len);
		CHECK(!in.head_len || (in.head_len >= 2 &&
				       !memcmp(in.head + in.head_len - 2, "\r\n", 2)));
		uint64_t off = 0;
		const char *body = NULL;
		char buf[64];
		ssize_t r = sm_spool_read(&in.body, &off, buf, sizeof(buf), &body);
		CHECK(r >= 0 && (uint64_t)r == in.body.size);   /* in memory */
		check_crlf(body, (size_t)r);
	}
	sm_input_free(&in);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!size)
		return 0;
	const char *s = (const char *)data + 1;
	size_t n = size - 1;
	addresses(s, n);
	headers(s, n);
	input(data[0], s, n);
	return 0;
}
