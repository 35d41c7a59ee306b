/*
 * test_smtp_data.c - the DATA/BDAT content stream: terminator, dot
 * unstuffing, smuggling sequences, header section handling; fed whole and
 * one byte at a time, since the network may split anywhere.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "smtp_data.h"
#include "t/tap.h"

struct out {
	char buf[8192];
	size_t len;
	int headers_called;
	size_t headers_at;
};

static int emit(void *arg, const void *p, size_t n)
{
	struct out *o = arg;
	if (o->len + n > sizeof(o->buf))
		return -1;
	memcpy(o->buf + o->len, p, n);
	o->len += n;
	return 0;
}

static int on_headers(void *arg, struct smtp_data *d)
{
	struct out *o = arg;
	o->headers_called++;
	o->headers_at = o->len;
	if (!d->have_msgid)
		smtp_data_emit(d, "Message-ID: <x@y>\r\n", 19);
	return 0;
}

/* Feed `in` (whole, or byte by byte); returns bytes consumed. */
static size_t run(struct smtp_data *d, struct out *o, enum smtp_data_mode mode,
		  const char *in, size_t n, int bytewise)
{
	memset(o, 0, sizeof(*o));
	smtp_data_init(d, mode, 4096, emit, on_headers, o);
	size_t used = 0;
	if (bytewise) {
		while (used < n && !d->done)
			used += smtp_data_feed(d, in + used, 1);
	} else {
		used = smtp_data_feed(d, in, n);
	}
	if (mode == SMTP_DATA_RAW)
		smtp_data_finish(d);
	o->buf[o->len < sizeof(o->buf) ? o->len : sizeof(o->buf) - 1] = 0;
	return used;
}

#define S(x) x, sizeof(x) - 1

/* Independent oracle: where the first <CRLF>.<CRLF> ends (0: none). */
static size_t end_of(const char *in, size_t n)
{
	if (n >= 3 && memcmp(in, ".\r\n", 3) == 0)
		return 3;
	for (size_t i = 0; i + 5 <= n; i++)
		if (memcmp(in + i, "\r\n.\r\n", 5) == 0)
			return i + 5;
	return 0;
}

static void both(const char *name, enum smtp_data_mode mode, const char *in,
		 size_t n, const char *want, int want_bare, int want_end)
{
	size_t want_used = want_end ? end_of(in, n) : 0;
	for (int bw = 0; bw < 2; bw++) {
		struct smtp_data d;
		struct out o;
		size_t used = run(&d, &o, mode, in, n, bw);
		const char *how = bw ? "bytewise" : "whole";
		if (want)
			ok(o.len == strlen(want) && memcmp(o.buf, want, o.len) == 0,
			   "%s (%s): stored bytes", name, how);
		if (want && !(o.len == strlen(want) && memcmp(o.buf, want, o.len) == 0))
			diag("got [%s]", o.buf);
		if (!ok(d.bare_eol == want_bare, "%s (%s): bare CR/LF %s", name, how,
			want_bare ? "flagged" : "not flagged"))
			diag("got %d", d.bare_eol);
		if (mode == SMTP_DATA_DOT) {
			if (!ok(d.done == want_end, "%s (%s): terminator %s", name, how, want_end ? "found" : "not found")) diag("done=%d", d.done);
			if (want_end)
				is_int(used, want_used, "stops right after the terminator");
		}
	}
}

int main(void)
{
	both("simple", SMTP_DATA_DOT,
	     S("Subject: a\r\nMessage-ID: <1@a>\r\n\r\nbody\r\n.\r\nQUIT\r\n"),
	     "Subject: a\r\nMessage-ID: <1@a>\r\n\r\nbody\r\n", 0, 1);
	both("dot unstuffing", SMTP_DATA_DOT,
	     S("Message-ID: <1@a>\r\n\r\n..leading\r\n...\r\n.x\r\n.\r\n"),
	     "Message-ID: <1@a>\r\n\r\n.leading\r\n..\r\nx\r\n", 0, 1);
	both("empty message", SMTP_DATA_DOT, S(".\r\n"), "Message-ID: <x@y>\r\n", 0, 1);
	both("missing Message-ID added at end of headers", SMTP_DATA_DOT,
	     S("Subject: a\r\n\r\nb\r\n.\r\n"),
	     "Subject: a\r\nMessage-ID: <x@y>\r\n\r\nb\r\n", 0, 1);
	both("headers only", SMTP_DATA_DOT, S("Subject: a\r\n.\r\n"),
	     "Subject: a\r\nMessage-ID: <x@y>\r\n", 0, 1);
	both("body line without header section", SMTP_DATA_DOT,
	     S("hello world\r\n.\r\n"),
	     "Message-ID: <x@y>\r\n\r\nhello world\r\n", 0, 1);
	both("folded header", SMTP_DATA_DOT,
	     S("Subject: a\r\n b\r\nMessage-Id: <1@a>\r\n\r\nx\r\n.\r\n"),
	     "Subject: a\r\n b\r\nMessage-Id: <1@a>\r\n\r\nx\r\n", 0, 1);

	both("space before the colon is a field (RFC 5322 4.5)", SMTP_DATA_DOT,
	     S("Subject : a\r\nMessage-ID: <1@a>\r\n\r\nx\r\n.\r\n"),
	     "Subject : a\r\nMessage-ID: <1@a>\r\n\r\nx\r\n", 0, 1);
	both("a 150-character field name is a field", SMTP_DATA_DOT,
	     S("X-LLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLL"
	       "LLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLL: v\r\n"
	       "Message-ID: <1@a>\r\n\r\nx\r\n.\r\n"),
	     "X-LLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLL"
	     "LLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLL: v\r\n"
	     "Message-ID: <1@a>\r\n\r\nx\r\n", 0, 1);
	both("a long line without a colon starts the body", SMTP_DATA_DOT,
	     S("Message-ID: <1@a>\r\nthis is prose, not a header field at all, and it goes on for quite a while"
	       " longer than the buffer that holds the start of a line in the header section\r\n.\r\n"),
	     "Message-ID: <1@a>\r\n\r\nthis is prose, not a header field at all, and it goes on for quite a while"
	     " longer than the buffer that holds the start of a line in the header section\r\n", 0, 1);

	/* Smuggling: none of these may end the data or go unnoticed. */
	both("\\n.\\n is not an end", SMTP_DATA_DOT,
	     S("Message-ID: <1@a>\r\n\r\na\n.\nMAIL FROM:<x@y>\r\n"), NULL, 1, 0);
	both("\\n.\\r\\n is not an end", SMTP_DATA_DOT,
	     S("Message-ID: <1@a>\r\n\r\na\n.\r\nMAIL FROM:<x@y>\r\n"), NULL, 1, 0);
	both("\\r.\\r is not an end", SMTP_DATA_DOT,
	     S("Message-ID: <1@a>\r\n\r\na\r.\rMAIL FROM:<x@y>\r\n"), NULL, 1, 0);
	both("\\r\\n.\\r is not an end", SMTP_DATA_DOT,
	     S("Message-ID: <1@a>\r\n\r\na\r\n.\rMAIL FROM:<x@y>\r\n"), NULL, 1, 0);
	both("\\r.\\r\\n is not an end", SMTP_DATA_DOT,
	     S("Message-ID: <1@a>\r\n\r\na\r.\r\nMAIL FROM:<x@y>\r\n"), NULL, 1, 0);
	both("bare LF then real end", SMTP_DATA_DOT,
	     S("Message-ID: <1@a>\r\n\r\na\n.\nMAIL FROM:<x@y>\r\n.\r\n"), NULL, 1, 1);
	both("bare CR in a header", SMTP_DATA_DOT,
	     S("Subject: a\rb\r\n\r\nx\r\n.\r\n"), NULL, 1, 1);
	both("\\r\\r\\n is a bare CR", SMTP_DATA_DOT,
	     S("Message-ID: <1@a>\r\n\r\nx\r\r\n.\r\n"), NULL, 1, 1);

	/* Header accounting. */
	struct smtp_data d;
	struct out o;
	run(&d, &o, SMTP_DATA_DOT,
	    S("Received: a\r\nreceived: b\r\nDATE: now\r\nX: Received: no\r\n\r\nReceived: body\r\n.\r\n"), 0);
	is_int(d.received, 2, "Received: counted in the header section only");
	is_int(d.have_date, 1, "Date: seen case-insensitively");
	is_int(o.headers_called, 1, "end_headers called once");

	/* Size limit: stops storing, keeps consuming to the end. */
	char big[6000];
	memset(big, 'a', sizeof(big));
	memcpy(big, "\r\n", 2);
	memcpy(big + sizeof(big) - 5, "\r\n.\r\n", 5);
	size_t used = run(&d, &o, SMTP_DATA_DOT, big, sizeof(big), 0);
	is_int(d.too_big, 1, "over the limit flagged");
	is_int(used, sizeof(big), "oversized data still consumed to its end");
	ok(d.size <= 4096, "no more than the limit stored");

	/* Raw (BDAT) mode: no dot handling, final CRLF supplied. */
	both("bdat keeps dots", SMTP_DATA_RAW, S("Message-ID: <1@a>\r\n\r\n.\r\n..x\r\nend"),
	     "Message-ID: <1@a>\r\n\r\n.\r\n..x\r\nend\r\n", 0, 0);
	both("bdat bare LF", SMTP_DATA_RAW, S("Message-ID: <1@a>\r\n\r\na\nb\r\n"), NULL, 1, 0);
	both("bdat trailing CR", SMTP_DATA_RAW, S("Message-ID: <1@a>\r\n\r\na\r"), NULL, 1, 0);

	/* Random input never crashes and never claims an end that is not
	 * preceded by CRLF. */
	srand(7);
	int sound = 1;
	for (int iter = 0; iter < 20000; iter++) {
		char in[64];
		size_t n = (size_t)(rand() % 64);
		for (size_t k = 0; k < n; k++)
			in[k] = "\r\n.aB: "[rand() % 7];
		memset(&o, 0, sizeof(o));
		smtp_data_init(&d, SMTP_DATA_DOT, 4096, emit, on_headers, &o);
		size_t u = smtp_data_feed(&d, in, n);
		size_t e = end_of(in, n);
		if (d.done ? u != e : e != 0) {
			if (sound)
				diag("end at %zu (done=%d), oracle %zu: %.*s", u,
				     d.done, e, (int)n, in);
			sound = 0;
		}
	}
	ok(sound, "20000 random inputs end exactly at the first <CRLF>.<CRLF>");

	/* The 8-bit fact, whole and byte by byte, header or body. */
	for (int bw = 0; bw < 2; bw++) {
		run(&d, &o, SMTP_DATA_DOT, S("Subject: a\r\n\r\nplain ASCII ~\x7f\r\n.\r\n"), bw);
		is_int(d.eightbit, 0, "7-bit content: eightbit 0");
		run(&d, &o, SMTP_DATA_DOT, S("Subject: a\r\n\r\nK\xc3\xb6ln\r\n.\r\n"), bw);
		is_int(d.eightbit, 1, "an octet over 127 in the body: eightbit 1");
		run(&d, &o, SMTP_DATA_RAW, S("Subject: \x80\r\n\r\nx\r\n"), bw);
		is_int(d.eightbit, 1, "in a header field (BDAT): eightbit 1");
	}
	return done_testing();
}
