/*
 * fuzz_smtp_parse.c - fuzz target for the MAIL / RCPT argument grammar
 * (relayd/smtp_parse.h).
 *
 * Input: the text after the verb, as the session passes it (e.g.
 * " FROM:<a@b.example> SIZE=10"); it goes to the parsers as a C string
 * (cut at the first NUL, as a command line would be), and whole, with its
 * length, to smtp_mailbox_valid and smtp_xtext_valid.  Every input runs
 * through smtp_parse_mail, smtp_parse_rcpt with and without SMTPUTF8,
 * smtp_mailbox_valid with and without UTF-8 and smtp_xtext_valid.
 * Checked, beyond the absence of crashes:
 *  - a successful parse yields an address of at most SMTP_PATH_MAX
 *    bytes, with no control byte (NUL included), no '<', '>' or space
 *    outside a quoted local part, that smtp_mailbox_valid accepts (a
 *    non-empty one for RCPT, an empty one for MAIL only from "<>": the
 *    null sender), ASCII unless SMTPUTF8; parameters within
 *    their own grammar (ENVID xtext of at most 100 bytes, RET 0..2,
 *    NOTIFY bits alone or NEVER alone, ORCPT "type;xtext");
 *  - a failed parse sets a reply "4xx ..." or "5xx ..." without CR or LF;
 *  - smtp_mailbox_valid never accepts control bytes (NUL included), nor
 *    8-bit bytes without utf8, and whatever it accepts without utf8 it
 *    accepts with it;
 *  - smtp_xtext_valid agrees with RFC 3461's grammar written out here;
 *  - text_escape (which logs and headers use for the same client text)
 *    yields well-formed UTF-8 with no C0, DEL, C1 or bidi control, within
 *    its buffer, and keeps input that has none of them unchanged.
 * A violation aborts, which libFuzzer (or t/fuzz/driver.c) reports.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "queue.h"
#include "smtp_parse.h"
#include "text.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)							\
	do {								\
		if (!(cond)) {						\
			fprintf(stderr, "fuzz_smtp_parse: %s:%d: %s\n",	\
				__FILE__, __LINE__, #cond);		\
			abort();					\
		}							\
	} while (0)

static int is_ctl(unsigned char c)
{
	return c < 0x20 || c == 0x7f;
}

static int ascii(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] >= 0x80)
			return 0;
	return 1;
}

/* A reply line: three digits starting with 4 or 5, then a space or the
 * end, and no line break (the session adds CRLF). */
static void check_reply(const char *reply)
{
	CHECK(reply != NULL);
	CHECK(reply[0] == '4' || reply[0] == '5');
	CHECK(reply[1] >= '0' && reply[1] <= '9');
	CHECK(reply[2] >= '0' && reply[2] <= '9');
	CHECK(reply[3] == ' ' || reply[3] == '\0');
	CHECK(!strpbrk(reply, "\r\n"));
}

/* An address as stored in the queue and written into MAIL FROM:<...>,
 * RCPT TO:<...> and the logs. */
static void check_addr(const char *addr, int utf8)
{
	size_t n = strnlen(addr, SMTP_PATH_MAX + 1);
	int quoted = 0;

	CHECK(n <= SMTP_PATH_MAX);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)addr[i];

		CHECK(!is_ctl(c));
		if (quoted && c == '\\' && i + 1 < n) {
			i++;
		} else if (c == '"') {
			quoted = !quoted;
		} else if (!quoted) {
			CHECK(c != '<' && c != '>' && c != ' ');
		}
	}
	if (!utf8)
		CHECK(ascii(addr, n));
	if (n)
		CHECK(smtp_mailbox_valid(addr, n, utf8) == 1);
}

static int upper_hex(unsigned char c)
{
	return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'F');
}

/* RFC 3461 §4: xtext = *( xchar / hexchar ), xchar = "!".."~" except
 * "+" and "=", hexchar = "+" 2(upper-case HEXDIG). */
static int xtext_oracle(const uint8_t *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '+') {
			if (n - i < 3 || !upper_hex(s[i + 1]) || !upper_hex(s[i + 2]))
				return 0;
			i += 2;
		} else if (s[i] < 33 || s[i] > 126 || s[i] == '=') {
			return 0;
		}
	}
	return 1;
}

/* 1 when the reverse-path of a MAIL argument is "<>" (RFC 5321 §4.1.2:
 * Reverse-path = Path / "<>", and a Path always holds a Mailbox). */
static int null_path(const char *line)
{
	while (*line == ' ')
		line++;
	if (strncasecmp(line, "FROM:", 5))
		return 0;
	for (line += 5; *line == ' '; line++)
		;
	return !strncmp(line, "<>", 2) && (line[2] == ' ' || line[2] == '\0');
}

static void check_mail(const char *line)
{
	struct smtp_mail_args m;
	const char *reply = NULL;

	if (smtp_parse_mail(line, &m, &reply) < 0) {
		check_reply(reply);
		return;
	}
	check_addr(m.addr, m.smtputf8);
	CHECK(m.addr[0] || null_path(line));
	CHECK(m.ret == QUEUE_RET_DEFAULT || m.ret == QUEUE_RET_HDRS ||
	      m.ret == QUEUE_RET_FULL);
	CHECK(strnlen(m.envid, sizeof(m.envid)) <= 100);
	CHECK(xtext_oracle((const uint8_t *)m.envid, strlen(m.envid)));
}

static void check_rcpt(const char *line, int utf8)
{
	struct smtp_rcpt_args r;
	const char *reply = NULL, *semi;
	unsigned known = QUEUE_NOTIFY_NEVER | QUEUE_NOTIFY_SUCCESS |
			 QUEUE_NOTIFY_FAILURE | QUEUE_NOTIFY_DELAY;

	if (smtp_parse_rcpt(line, utf8, &r, &reply) < 0) {
		check_reply(reply);
		return;
	}
	CHECK(r.addr[0] != '\0');
	check_addr(r.addr, utf8);
	CHECK(!(r.notify & ~known));
	CHECK(!(r.notify & QUEUE_NOTIFY_NEVER) || r.notify == QUEUE_NOTIFY_NEVER);
	CHECK(strnlen(r.orcpt, sizeof(r.orcpt)) <= 500);
	if (r.orcpt[0]) {
		semi = strchr(r.orcpt, ';');
		CHECK(semi && semi > r.orcpt && semi[1]);
		CHECK(xtext_oracle((const uint8_t *)semi + 1, strlen(semi + 1)));
	}
}

static void check_mailbox(const uint8_t *data, size_t size)
{
	const char *s = (const char *)data;
	int plain = smtp_mailbox_valid(s, size, 0);
	int intl = smtp_mailbox_valid(s, size, 1);

	CHECK(plain == 0 || plain == 1);
	CHECK(intl == 0 || intl == 1);
	CHECK(!plain || intl);
	if (!intl)
		return;
	CHECK(memchr(s, '@', size) != NULL);
	for (size_t i = 0; i < size; i++)
		CHECK(!is_ctl(data[i]));
	if (plain)
		CHECK(ascii(s, size));
}

/* 1 for a code point text_escape must never let through raw. */
static int hostile_cp(uint32_t cp)
{
	return cp < 0x20 || (cp >= 0x7f && cp <= 0x9f) || cp == 0x61c ||
	       cp == 0x200e || cp == 0x200f || (cp >= 0x202a && cp <= 0x202e) ||
	       (cp >= 0x2066 && cp <= 0x2069) || cp == 0x2028 || cp == 0x2029;
}

/* 1 when s (n bytes) is well-formed UTF-8 free of hostile code points. */
static int harmless(const uint8_t *s, size_t n)
{
	for (size_t i = 0; i < n;) {
		uint32_t cp;
		size_t k = text_utf8_len(s + i, n - i, &cp);
		if (!k || hostile_cp(cp))
			return 0;
		i += k;
	}
	return 1;
}

static void check_escape(const uint8_t *data, size_t size)
{
	char out[1024];
	size_t n = text_escape(out, sizeof(out), (const char *)data, size);

	CHECK(n < sizeof(out) && out[n] == '\0' && strlen(out) == n);
	CHECK(harmless((const uint8_t *)out, n));
	if (harmless(data, size) && size < sizeof(out))
		CHECK(n == size && memcmp(out, data, size) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *line = malloc(size + 1);

	if (!line)
		return 0;
	memcpy(line, data, size);
	line[size] = '\0';
	check_mail(line);
	check_rcpt(line, 0);
	check_rcpt(line, 1);
	check_mailbox(data, size);
	CHECK(smtp_xtext_valid((const char *)data, size) ==
	      xtext_oracle(data, size));
	check_escape(data, size);
	free(line);
	return 0;
}
