/*
 * fuzz_smtp_reply.c - fuzz target for what the delivery client does with
 * next-hop bytes and with outbound content: the reply reader
 * (relayd/delivery/smtp_reply.h) and the dot-stuffing encoder
 * (relayd/delivery/smtp_dot.h).
 *
 * Input: byte 0 chooses the piece size (1..256) the bytes after it are
 * split into, as socket reads would split them.  The pieces go to
 * smtp_reply_feed the way the client does it (unconsumed bytes kept in
 * front of the next piece); the whole input goes through smtp_dot in the
 * same pieces.  Checked, beyond the absence of crashes:
 *  - smtp_reply_feed never uses more than it was given; a partial line
 *    kept waiting never exceeds SMTP_REPLY_LINE_MAX + 1 bytes; a complete
 *    reply has a code in 200..599, NUL-terminated text shorter than
 *    SMTP_REPLY_TEXT_MAX without control or 8-bit bytes (but '\n'), an
 *    enhanced code that is empty or "D.D.D" of the reply's class; its
 *    EHLO reading (smtp_reply_ehlo) finds AUTH mechanisms only with AUTH
 *    and a SIZE limit only with SIZE; a refusal says why;
 *  - the encoded content has no bare CR or LF, no <CRLF>.<CRLF> before
 *    its end, ends with <CRLF>.<CRLF>, and fits SMTP_DOT_ROOM.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "delivery/smtp_dot.h"
#include "delivery/smtp_reply.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)							\
	do {								\
		if (!(cond)) {						\
			fprintf(stderr, "fuzz_smtp_reply: %s:%d: %s\n",	\
				__FILE__, __LINE__, #cond);		\
			abort();					\
		}							\
	} while (0)

static void check_reply(const struct smtp_reply *r)
{
	CHECK(r->code >= 200 && r->code <= 599);
	CHECK(r->text_len < SMTP_REPLY_TEXT_MAX && r->text[r->text_len] == 0);
	CHECK(strlen(r->text) == r->text_len);
	for (size_t i = 0; i < r->text_len; i++) {
		unsigned char c = (unsigned char)r->text[i];
		CHECK(c == '\n' || (c >= 0x20 && c < 0x7f));
	}
	if (r->enh[0]) {
		int a, b, c, n = 0;
		CHECK(sscanf(r->enh, "%1d.%3d.%3d%n", &a, &b, &c, &n) == 3);
		CHECK((size_t)n == strlen(r->enh) && a == r->code / 100);
	}
	struct smtp_ehlo e;
	smtp_reply_ehlo(r, &e);
	CHECK(e.auth || (!e.auth_plain && !e.auth_login));
	CHECK(e.size || e.size_limit == 0);
}

static void fuzz_replies(const char *in, size_t len, size_t piece)
{
	struct smtp_reply_parser p;
	char *buf = malloc(len + 1);
	size_t have = 0, off = 0;

	if (!buf)
		return;
	smtp_reply_init(&p);
	while (off < len) {
		size_t k = len - off < piece ? len - off : piece;
		memcpy(buf + have, in + off, k);
		have += k;
		off += k;
		for (;;) {
			size_t used = 0;
			int r = smtp_reply_feed(&p, buf, have, &used);
			CHECK(used <= have);
			memmove(buf, buf + used, have - used);
			have -= used;
			if (r == SMTP_REPLY_BAD) {
				CHECK(p.error[0] != 0);
				free(buf);
				return;
			}
			if (r == SMTP_REPLY_MORE) {
				CHECK(have <= SMTP_REPLY_LINE_MAX + 1);
				break;
			}
			CHECK(r == SMTP_REPLY_DONE);
			check_reply(&p.reply);
		}
	}
	free(buf);
}

static void fuzz_dot(const char *in, size_t len, size_t piece)
{
	struct smtp_dot d;
	char *out = malloc(SMTP_DOT_ROOM(len) + 8);
	size_t o = 0;

	if (!out)
		return;
	smtp_dot_init(&d);
	for (size_t off = 0; off < len; off += piece) {
		size_t k = len - off < piece ? len - off : piece;
		o += smtp_dot_encode(&d, in + off, k, out + o);
		CHECK(o <= SMTP_DOT_ROOM(off + k));
	}
	o += smtp_dot_finish(&d, out + o);
	CHECK(o >= 3 && !memcmp(out + o - 3, ".\r\n", 3));
	CHECK(o == 3 || (o >= 5 && !memcmp(out + o - 5, "\r\n.\r\n", 5)));
	for (size_t i = 0; i < o; i++) {
		if (out[i] == '\r')
			CHECK(i + 1 < o && out[i + 1] == '\n');
		if (out[i] == '\n')
			CHECK(i > 0 && out[i - 1] == '\r');
		/* A line that is a lone dot ends the content: only the last. */
		if (out[i] == '.' && (i == 0 || out[i - 1] == '\n') &&
		    i + 2 < o && out[i + 1] == '\r')
			CHECK(i + 3 == o);
	}
	free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	size_t piece = (size_t)data[0] + 1;
	fuzz_replies((const char *)data + 1, size - 1, piece);
	fuzz_dot((const char *)data + 1, size - 1, piece);
	return 0;
}
