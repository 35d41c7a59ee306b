/*
 * test_smtp_reply.c - the delivery client's reply reader (hostile input
 * included) and the outbound dot-stuffing encoder.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "delivery/smtp_dot.h"
#include "delivery/smtp_reply.h"
#include "t/tap.h"

/* Feed s (len n) in one call; returns the result, *used. */
static int feed(struct smtp_reply_parser *p, const char *s, size_t n, size_t *used)
{
	return smtp_reply_feed(p, s, n, used);
}

static int feed_str(struct smtp_reply_parser *p, const char *s, size_t *used)
{
	return feed(p, s, strlen(s), used);
}

static void test_simple(void)
{
	struct smtp_reply_parser p;
	size_t used;
	const char *l;
	size_t n;

	smtp_reply_init(&p);
	is_int(feed_str(&p, "250 ok\r\n", &used), SMTP_REPLY_DONE, "one line: done");
	is_int(used, 8, "one line: all used");
	is_int(p.reply.code, 250, "one line: code");
	is_str(p.reply.text, "ok", "one line: text");
	is_str(p.reply.enh, "", "one line: no enhanced code");

	smtp_reply_init(&p);
	const char *ehlo = "250-mx.test hello\r\n250-PIPELINING\r\n250-SIZE 1000\r\n250 8BITMIME\r\n";
	is_int(feed_str(&p, ehlo, &used), SMTP_REPLY_DONE, "multi-line: done");
	is_int(used, strlen(ehlo), "multi-line: all used");
	is_int(p.reply.nlines, 4, "multi-line: 4 lines");
	l = smtp_reply_line(&p.reply, 2, &n);
	ok(l && n == 9 && !memcmp(l, "SIZE 1000", 9), "multi-line: line 2 is SIZE 1000");
	l = smtp_reply_line(&p.reply, 3, &n);
	ok(l && n == 8 && !memcmp(l, "8BITMIME", 8), "multi-line: last line");
	ok(smtp_reply_line(&p.reply, 4, &n) == NULL, "multi-line: no line 4");

	/* Split across reads, as the socket delivers it. */
	smtp_reply_init(&p);
	is_int(feed_str(&p, "250-a\r\n25", &used), SMTP_REPLY_MORE, "split: more");
	is_int(used, 7, "split: the whole line used, the partial one kept");
	is_int(feed_str(&p, "250 b\r\n", &used), SMTP_REPLY_DONE, "split: done (the kept octets and the rest)");
	is_str(p.reply.text, "a\nb", "split: both lines' text");

	smtp_reply_init(&p);
	is_int(feed_str(&p, "250 a\r\n251 b\r\n", &used), SMTP_REPLY_DONE, "two replies: first");
	is_int(used, 7, "two replies: stops after the first");
	is_int(feed_str(&p, "251 b\r\n", &used), SMTP_REPLY_DONE, "two replies: second");
	is_int(p.reply.code, 251, "two replies: second code");

	smtp_reply_init(&p);
	is_int(feed_str(&p, "220\r\n", &used), SMTP_REPLY_DONE, "bare code");
	is_str(p.reply.text, "", "bare code: empty text");
	smtp_reply_init(&p);
	is_int(feed_str(&p, "220 hi\n", &used), SMTP_REPLY_DONE, "bare LF ends a line");
	is_str(p.reply.text, "hi", "bare LF: text");
	smtp_reply_init(&p);
	is_int(feed_str(&p, "", &used), SMTP_REPLY_MORE, "empty input: more");
}

static void test_enh(void)
{
	static const struct { const char *in, *enh; } cases[] = {
		{ "550 5.1.1 <x@y>: unknown\r\n", "5.1.1" },
		{ "250 2.0.0\r\n", "2.0.0" },
		{ "451 4.7.1 greylisted\r\n", "4.7.1" },
		{ "550 4.1.1 wrong class\r\n", "" },
		{ "550 5.1.1234 too long\r\n", "" },
		{ "550 5.1 short\r\n", "" },
		{ "550 5.1.1x glued\r\n", "" },
		{ "550 5.123.456 max\r\n", "5.123.456" },
		{ "550-5.7.1 first\r\n550 5.7.2 second\r\n", "5.7.1" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct smtp_reply_parser p;
		size_t used;
		smtp_reply_init(&p);
		int r = feed_str(&p, cases[i].in, &used);
		ok(r == SMTP_REPLY_DONE && !strcmp(p.reply.enh, cases[i].enh),
		   "enhanced code of %.*s: \"%s\"", (int)strcspn(cases[i].in, "\r"),
		   cases[i].in, cases[i].enh);
	}
}

static void test_hostile(void)
{
	static const char *const bad[] = {
		"abc\r\n", "2x0 ok\r\n", "199 too low\r\n", "600 too high\r\n",
		"250x glued\r\n", "250-a\r\n251 b\r\n", "25\r\n", "\r\n",
		"250\tTAB\r\n", "-250 x\r\n",
	};
	struct smtp_reply_parser p;
	size_t used;
	char *big;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		smtp_reply_init(&p);
		int r = feed_str(&p, bad[i], &used);
		ok(r == SMTP_REPLY_BAD && p.error[0], "malformed %.*s refused (%s)",
		   (int)strcspn(bad[i], "\r"), bad[i], p.error);
	}

	big = malloc(3 * SMTP_REPLY_LINE_MAX);
	memset(big, 'a', 3 * SMTP_REPLY_LINE_MAX);
	memcpy(big, "250 ", 4);
	smtp_reply_init(&p);
	is_int(feed(&p, big, 3 * SMTP_REPLY_LINE_MAX, &used), SMTP_REPLY_BAD,
	       "a line without LF past the bound is refused");
	smtp_reply_init(&p);
	is_int(feed(&p, big, SMTP_REPLY_LINE_MAX, &used), SMTP_REPLY_MORE,
	       "a long line within the bound waits for its end");
	memcpy(big + SMTP_REPLY_LINE_MAX + 1, "\r\n", 2);
	smtp_reply_init(&p);
	is_int(feed(&p, big, SMTP_REPLY_LINE_MAX + 3, &used), SMTP_REPLY_BAD,
	       "a complete line one octet over the bound is refused");
	memcpy(big + SMTP_REPLY_LINE_MAX, "\r\n", 2);
	smtp_reply_init(&p);
	is_int(feed(&p, big, SMTP_REPLY_LINE_MAX + 2, &used), SMTP_REPLY_DONE,
	       "a line of exactly the bound is read");
	ok(p.reply.text_len < SMTP_REPLY_TEXT_MAX && p.reply.text[p.reply.text_len] == 0,
	   "its kept text is cut and terminated");
	free(big);

	/* Endless continuation lines. */
	smtp_reply_init(&p);
	int r = SMTP_REPLY_MORE;
	for (int i = 0; i <= SMTP_REPLY_LINES_MAX + 1 && r == SMTP_REPLY_MORE; i++)
		r = feed_str(&p, "250-more\r\n", &used);
	is_int(r, SMTP_REPLY_BAD, "too many continuation lines refused");

	/* 8-bit octets, NUL and controls are kept as '?'. */
	smtp_reply_init(&p);
	static const char raw[] = "550 caf\xc3\xa9 \x01\x7f\x00x\r\n";
	is_int(feed(&p, raw, sizeof(raw) - 1, &used), SMTP_REPLY_DONE, "8-bit text read");
	is_str(p.reply.text, "caf?? ???x", "8-bit, controls and NUL shown as ?");

	/* Random garbage: never a crash, every result in range, bounded. */
	srand(1);
	int fine = 1;
	for (int round = 0; round < 20000; round++) {
		char buf[64];
		size_t n = (size_t)(rand() % (int)sizeof(buf));
		for (size_t i = 0; i < n; i++) {
			int k = rand() % 8;
			buf[i] = k == 0 ? '\n' : k == 1 ? '\r' : k == 2 ? '-' : k == 3 ? ' '
				 : k < 6 ? (char)('0' + rand() % 10) : (char)rand();
		}
		smtp_reply_init(&p);
		size_t off = 0;
		while (off <= n) {
			r = feed(&p, buf + off, n - off, &used);
			if (used > n - off || r < SMTP_REPLY_BAD || r > SMTP_REPLY_DONE ||
			    p.reply.text_len >= SMTP_REPLY_TEXT_MAX) {
				fine = 0;
				break;
			}
			if (r != SMTP_REPLY_DONE)
				break;
			off += used;
		}
	}
	ok(fine, "20000 random inputs: results in range, used within input");
}

static void ehlo(const char *text, struct smtp_ehlo *e)
{
	struct smtp_reply_parser p;
	size_t used;

	smtp_reply_init(&p);
	memset(e, 0xff, sizeof(*e));
	if (feed_str(&p, text, &used) != SMTP_REPLY_DONE)
		diag("EHLO reply not read: %s", text);
	smtp_reply_ehlo(&p.reply, e);
}

static void test_ehlo(void)
{
	struct smtp_ehlo e;

	ehlo("250-mx.test hello\r\n250-PIPELINING\r\n250-SIZE 36700160\r\n"
	     "250-8BITMIME\r\n250-SMTPUTF8\r\n250-DSN\r\n250-STARTTLS\r\n"
	     "250-AUTH PLAIN LOGIN\r\n250 ENHANCEDSTATUSCODES\r\n", &e);
	ok(e.pipelining && e.size && e.eightbit && e.smtputf8 && e.dsn && e.starttls &&
	   e.auth && e.auth_plain && e.auth_login, "EHLO: every extension seen");
	is_int(e.size_limit, 36700160, "EHLO: the SIZE limit");

	ehlo("250 mx.test\r\n", &e);
	ok(!e.pipelining && !e.size && !e.starttls && !e.auth && e.size_limit == 0,
	   "EHLO with no extension: nothing (the struct is cleared)");
	ehlo("250-STARTTLS\r\n250 8BITMIME\r\n", &e);
	ok(!e.starttls && e.eightbit, "the first line is the server's name, never a keyword");
	ehlo("250-mx\r\n250-pipelining\r\n250-size=1000\r\n250 auth=login\r\n", &e);
	ok(e.pipelining && e.size_limit == 1000 && e.auth_login && !e.auth_plain,
	   "lower case and the old KEYWORD=value form");
	ehlo("250-mx\r\n250-SIZE\r\n250 AUTH CRAM-MD5\r\n", &e);
	ok(e.size && e.size_limit == 0 && e.auth && !e.auth_plain && !e.auth_login,
	   "SIZE without a number: no limit; AUTH without PLAIN/LOGIN: none usable");
	ehlo("250-mx\r\n250-SIZE -5\r\n250 SIZE 12x\r\n", &e);
	ok(e.size && e.size_limit == 0, "SIZE with a bad number: no limit assumed");
	ehlo("250-mx\r\n250-PIPELININGX\r\n250-STARTTLSSTARTTLSSTARTTLSSTARTTLSSTARTTLS\r\n"
	     "250 X-\xff\x01 PIPELINING\r\n", &e);
	ok(!e.pipelining && !e.starttls, "look-alike, over-long and garbage keywords ignored");
}

/* Encode `in` split into pieces of `step` octets; the wire form. */
static char *stuff(const char *in, size_t n, size_t step, size_t *outlen)
{
	struct smtp_dot d;
	char *out = malloc(SMTP_DOT_ROOM(n) + 5);
	size_t o = 0;

	smtp_dot_init(&d);
	for (size_t off = 0; off < n; off += step) {
		size_t k = n - off < step ? n - off : step;
		o += smtp_dot_encode(&d, in + off, k, out + o);
	}
	o += smtp_dot_finish(&d, out + o);
	out[o] = 0;
	*outlen = o;
	return out;
}

static void test_dot(void)
{
	static const struct { const char *in, *out, *name; } cases[] = {
		{ "", ".\r\n", "empty content" },
		{ "a\r\n", "a\r\n.\r\n", "ends with CRLF" },
		{ "a", "a\r\n.\r\n", "no final CRLF: one is added" },
		{ ".\r\n", "..\r\n.\r\n", "a lone dot first" },
		{ "a\r\n.b\r\n..c\r\n", "a\r\n..b\r\n...c\r\n.\r\n", "leading dots doubled" },
		{ "a.b\r\n", "a.b\r\n.\r\n", "inner dots kept" },
		{ "a\nb", "a\r\nb\r\n.\r\n", "bare LF becomes CRLF" },
		{ "a\rb", "a\r\nb\r\n.\r\n", "bare CR becomes CRLF" },
		{ "a\r", "a\r\n.\r\n", "trailing CR completed" },
		{ "x\n.\ny", "x\r\n..\r\ny\r\n.\r\n", "smuggled LF.LF neutralised" },
		{ "x\r.\ry", "x\r\n..\r\ny\r\n.\r\n", "smuggled CR.CR neutralised" },
		{ "\r\n.\r\n", "\r\n..\r\n.\r\n", "an inner terminator is stuffed" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t n = strlen(cases[i].in);
		int same = 1;
		for (size_t step = 1; step <= (n ? n : 1); step++) {
			size_t olen;
			char *o = stuff(cases[i].in, n, step, &olen);
			if (olen != strlen(cases[i].out) || memcmp(o, cases[i].out, olen)) {
				diag("step %zu: got \"%s\"", step, o);
				same = 0;
			}
			free(o);
		}
		ok(same, "dot: %s, in pieces of every size", cases[i].name);
	}

	/* Worst-case growth stays within SMTP_DOT_ROOM. */
	char in[1000];
	for (size_t i = 0; i < sizeof(in); i++)
		in[i] = i % 2 ? '.' : '\r';
	struct smtp_dot d;
	char *out = malloc(SMTP_DOT_ROOM(sizeof(in)));
	smtp_dot_init(&d);
	size_t o = smtp_dot_encode(&d, in, sizeof(in), out);
	ok(o <= SMTP_DOT_ROOM(sizeof(in)), "worst case fits SMTP_DOT_ROOM (%zu)", o);
	free(out);
}

int main(void)
{
	test_simple();
	test_enh();
	test_hostile();
	test_ehlo();
	test_dot();
	return done_testing();
}
