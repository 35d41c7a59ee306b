/*
 * test_sendmail.c - relay-sendmail's parsing of what it is given: address
 * lists (command line and To:/Cc:/Bcc:), header sections for -t and
 * Bcc: removal, and the normalisation of standard input; hostile inputs
 * included (huge headers, unterminated quotes, nested comments, NULs).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "tools/sendmail_addr.h"
#include "tools/sendmail_headers.h"
#include "tools/sendmail_input.h"
#include "t/tap.h"

/* The addresses of list s (n bytes) joined with " ", or "ERR: why". */
static char out[8192];

/* The addresses of l joined with " " into out. */
static void join(const struct sm_addr_list *l)
{
	size_t k = 0;
	out[0] = 0;
	for (size_t i = 0; i < l->n && k < sizeof(out); i++)
		k += (size_t)snprintf(out + k, sizeof(out) - k, "%s%s",
				      i ? " " : "", l->v[i]);
}

static const char *parse_n(const char *s, size_t n)
{
	struct sm_addr_list l = { .limit = 1000 };
	const char *err = NULL;
	if (sm_addr_parse_list(s, n, "host.example", &l, &err)) {
		snprintf(out, sizeof(out), "ERR: %s", err);
	} else {
		join(&l);
	}
	sm_addr_free(&l);
	return out;
}

static const char *parse(const char *s)
{
	return parse_n(s, strlen(s));
}

static int is_err(const char *got)
{
	return strncmp(got, "ERR: ", 5) == 0;
}

static void addresses(void)
{
	is_str(parse("a@b.example"), "a@b.example", "bare addr-spec");
	is_str(parse("a@b.example, c@d.example"), "a@b.example c@d.example",
	       "two addresses");
	is_str(parse("Alice Example <alice@x.example>"), "alice@x.example", "name-addr");
	is_str(parse("\"Doe, John\" <john@x.example>, bob@y.example"),
	       "john@x.example bob@y.example", "comma inside a quoted display name");
	is_str(parse("alice@x.example (Alice, the (real) one), b@y"),
	       "alice@x.example b@y", "nested comment with a comma");
	is_str(parse("a(comment)@(more)x.example"), "a@x.example", "comments between tokens");
	is_str(parse("\"john doe\"@x.example"), "\"john doe\"@x.example",
	       "quoted local part kept quoted");
	is_str(parse("\"john\"@x.example"), "john@x.example",
	       "needlessly quoted local part unquoted");
	is_str(parse("\"a\\\"b\"@x.example"), "\"a\\\"b\"@x.example", "quoted-pair in local part");
	is_str(parse("Team: a@x.example, b@y.example;, c@z.example"),
	       "a@x.example b@y.example c@z.example", "group and a mailbox after it");
	is_str(parse("undisclosed-recipients:;"), "", "empty group");
	is_str(parse("root"), "root@host.example", "bare local part qualified");
	is_str(parse("<@relay.example,@r2.example:user@x.example>"), "user@x.example",
	       "source route dropped");
	is_str(parse("user@[192.0.2.1]"), "user@[192.0.2.1]", "domain literal");
	is_str(parse("a@x.example,,, ,b@y.example"), "a@x.example b@y.example",
	       "empty list elements (obs-addr-list)");
	is_str(parse("Folded\r\n Name\r\n <a@x.example>"), "a@x.example", "folded header value");
	is_str(parse("\"fold\r\n ed\"@x.example"), "\"fold ed\"@x.example",
	       "folding inside a quoted string removed");
	is_str(parse("j\xc3\xb6rg@b\xc3\xbcro.example"), "j\xc3\xb6rg@b\xc3\xbcro.example",
	       "UTF-8 address kept");
	is_str(parse("a.b.c@x.example"), "a.b.c@x.example", "dot-atom local part");
	is_str(parse("\"a..b\"@x.example"), "\"a..b\"@x.example", "double dot stays quoted");

	ok(is_err(parse("\"unterminated@x.example")), "unterminated quote refused");
	ok(is_err(parse("a@x.example (unterminated (nested) comment")),
	   "unterminated comment refused");
	ok(is_err(parse("Name <a@x.example")), "missing '>' refused");
	ok(is_err(parse("a@x.example>")), "stray '>' refused");
	ok(is_err(parse("<>")), "empty address refused");
	ok(is_err(parse("a@")), "missing domain refused");
	ok(is_err(parse("@x.example")), "missing local part refused");
	ok(is_err(parse("G1: G2: a@x;;")), "nested group refused");
	ok(is_err(parse("G: a@x.example")), "unterminated group refused");
	ok(is_err(parse("a@x.example b@y.example")), "missing comma refused");
	ok(is_err(parse("a@[1.2.3.4")), "unterminated domain literal refused");
	ok(is_err(parse("a@[\\ 1.2.3.4]")), "quoted pair in a domain literal refused");
	ok(is_err(parse("a@x;")), "';' outside a group refused");
	ok(is_err(parse_n("a\0b@x.example", 13)), "NUL in an atom refused");
	ok(is_err(parse_n("\"a\0b\"@x.example", 15)), "NUL in a quoted string refused");
	ok(is_err(parse("\"a\x01" "b\"@x.example")), "control character refused");
	ok(is_err(parse("\"a\tb\"@x.example")), "TAB in a quoted local part refused (RFC 5321)");
	ok(is_err(parse("\"a\r\nRCPT TO:<evil@x>\"@x.example")) ||
	   !strchr(parse("\"a\r\nRCPT TO:<evil@x>\"@x.example"), '\n'),
	   "no CR/LF can reach an SMTP command");
	ok(is_err(parse("a\\@x.example")), "backslash outside quotes refused");

	char big[600];
	memset(big, 'a', 300);
	strcpy(big + 300, "@x.example");
	ok(is_err(parse(big)), "address over 254 octets refused");

	/* 100,000 opening parentheses: counted, not recursed into. */
	size_t n = 100000;
	char *deep = malloc(n * 2 + 32);
	memset(deep, '(', n);
	strcpy(deep + n, "a@x.example");
	ok(is_err(parse(deep)), "100000 unclosed comment levels refused");
	memset(deep + n, ')', n);
	strcpy(deep + 2 * n, "a@x.example");
	is_str(parse(deep), "a@x.example", "100000 nested comments skipped");
	free(deep);

	struct sm_addr_list l = { .limit = 3 };
	const char *err = NULL;
	ok(sm_addr_parse_list("a@x,b@x,c@x,d@x", 15, "h", &l, &err) == -1 &&
	   !strcmp(err, "too many addresses"), "address limit enforced");
	sm_addr_free(&l);

	l = (struct sm_addr_list){ .limit = 0 };
	sm_addr_parse_list("a@X.example, b@x, a@x.EXAMPLE, A@x.example, b@x", 48, "h", &l, &err);
	sm_addr_dedup(&l);
	is_int(l.n, 3, "dedup: domain without case, local part with");
	ok(l.n == 3 && !strcmp(l.v[0], "a@X.example") && !strcmp(l.v[1], "b@x") &&
	   !strcmp(l.v[2], "A@x.example"), "dedup keeps the first of each, in order");
	sm_addr_free(&l);
}

static const char *rcpts(const char *head)
{
	struct sm_addr_list l = { .limit = 1000 };
	const char *err = NULL, *field = NULL;
	if (sm_hdr_recipients(head, strlen(head), "host.example", &l, &err, &field)) {
		snprintf(out, sizeof(out), "ERR: %s: %s", field ? field : "?", err);
	} else {
		join(&l);
	}
	sm_addr_free(&l);
	return out;
}

static void headers(void)
{
	is_str(rcpts("Subject: hi\r\nTo: a@x\r\nCC: b@x,\r\n c@x\r\nbcc: d@x\r\nFrom: e@x\r\n"),
	       "a@x b@x c@x d@x", "To, folded Cc and Bcc, names without case");
	is_str(rcpts("To: a@x\r\nResent-To: r@x\r\nResent-Bcc: s@x\r\n"), "r@x s@x",
	       "Resent-* replace To/Cc/Bcc");
	is_str(rcpts("To: a@x\r\nResent-From: f@x\r\n"), "a@x",
	       "Resent-From alone does not");
	is_str(rcpts("To : a@x\r\nX-To: z@x\r\nTo-Not: y@x\r\n"), "a@x",
	       "space before the colon; other names ignored");
	is_str(rcpts("Subject: none\r\n"), "", "no recipient fields");
	is_str(rcpts("To: \"unterminated@x\r\n"), "ERR: To: unterminated quoted string",
	       "an error names its field");

	char h[] = "To: a@x\r\nBcc: secret@x,\r\n\tmore@x\r\nSubject: s\r\nresent-bcc: r@x\r\n";
	size_t n = sm_hdr_strip_bcc(h, strlen(h));
	ok(n == strlen("To: a@x\r\nSubject: s\r\n") &&
	   !memcmp(h, "To: a@x\r\nSubject: s\r\n", n), "Bcc and Resent-Bcc stripped, folds too");

	struct sm_hdr_info info;
	const char *hh = "from: x\r\nDATE: y\r\nMessage-Id: <z>\r\n";
	sm_hdr_info(hh, strlen(hh), &info);
	ok(info.from && info.date && info.msgid, "From/Date/Message-ID found without case");
	hh = "X-From: x\r\nSubject: Date: no\r\n";
	sm_hdr_info(hh, strlen(hh), &info);
	ok(!info.from && !info.date && !info.msgid, "look-alikes are not those fields");

	/* 1 MiB of one folded To: with 50,000 addresses. */
	size_t cap = 1 << 20, k = 0;
	char *big = malloc(cap);
	k += (size_t)snprintf(big, cap, "To: ");
	for (int i = 0; i < 50000 && k + 64 < cap; i++)
		k += (size_t)snprintf(big + k, cap - k, "u%d@x.example,\r\n ", i);
	k += (size_t)snprintf(big + k, cap - k, "last@x.example\r\n");
	struct sm_addr_list l = { .limit = 100000 };
	const char *err = NULL, *field = NULL;
	ok(sm_hdr_recipients(big, k, "h", &l, &err, &field) == 0 && l.n == 50001,
	   "50001 addresses from one huge folded field");
	sm_addr_dedup(&l);
	is_int(l.n, 50001, "all distinct after dedup");
	sm_addr_free(&l);
	free(big);
}

/* Append n bytes to out, a NUL shown as "\\0". */
static void append(size_t *k, const char *p, size_t n)
{
	for (size_t i = 0; i < n && *k + 3 < sizeof(out); i++) {
		if (p[i])
			out[(*k)++] = p[i];
		else
			*k += (size_t)snprintf(out + *k, sizeof(out) - *k, "\\0");
	}
	out[*k] = 0;
}

/* Feed s through the input normaliser in pieces of `step` bytes;
 * returns header section + "|" + body, or an error name. */
static const char *input(const char *s, size_t len, int ignore_dots, size_t step)
{
	struct sm_input in = { .ignore_dots = ignore_dots, .head_max = 64,
			       .size_max = 1000 };
	sm_input_init(&in);
	for (size_t i = 0; i < len && !in.done; i += step)
		sm_input_feed(&in, s + i, len - i < step ? len - i : step);
	sm_input_end(&in);
	if (in.status != SM_IN_OK) {
		snprintf(out, sizeof(out), "ERR %d", (int)in.status);
	} else {
		uint64_t off = 0;
		const char *data = "";
		char buf[16];
		ssize_t n = sm_spool_read(&in.body, &off, buf, sizeof(buf), &data);
		size_t k = 0;
		append(&k, in.head, in.head_len);
		if (in.blank)
			append(&k, "(blank)", 7);
		append(&k, "|", 1);
		append(&k, data, n > 0 ? (size_t)n : 0);
	}
	sm_input_free(&in);
	return out;
}

#define IN(s, dots, want, name) do { \
	for (size_t st_ = 1; st_ <= sizeof(s); st_ += sizeof(s) - 1) \
		is_str(input(s, sizeof(s) - 1, dots, st_), want, name); \
} while (0)

static void normalise(void)
{
	IN("To: a\nSubject: b\n\nline\n", 0, "To: a\r\nSubject: b\r\n(blank)|line\r\n",
	   "LF becomes CRLF, blank line separates");
	IN("To: a\r\n\r\nx\r\ny", 0, "To: a\r\n(blank)|x\r\ny\r\n",
	   "CRLF kept; last line completed");
	IN("To: a\r\r\n\r\nx\ry\r\r\r\nz", 0, "To: a\r\n(blank)|x\r\ny\r\nz\r\n",
	   "CR runs before LF collapse; a bare CR ends a line");
	IN("To: a\n\nbefore\n.\nafter\n", 0, "To: a\r\n(blank)|before\r\n",
	   "a lone dot ends the input without -i");
	IN("To: a\n\nbefore\n.\nafter\n", 1, "To: a\r\n(blank)|before\r\n.\r\nafter\r\n",
	   "with -i a lone dot is content");
	IN("To: a\n\n..x\n.y\n. \n", 0, "To: a\r\n(blank)|..x\r\n.y\r\n. \r\n",
	   "lines starting with dots kept (stuffing is the wire's)");
	IN("To: a\n.\n", 0, "To: a\r\n|", "lone dot in the header section");
	IN("hello world\nTo: x\n", 0, "|hello world\r\nTo: x\r\n",
	   "a first line that is no field starts the body");
	IN("To: a\n folded\nnot a field\n", 0, "To: a\r\n folded\r\n|not a field\r\n",
	   "continuation kept, a non-field line ends the header section");
	IN(" indented\n", 0, "| indented\r\n", "a continuation with nothing before is body");
	IN("From alice@example.org Mon Jan  1 00:00:00 2024\nTo: a\n\nFrom me\n", 0,
	   "To: a\r\n(blank)|From me\r\n", "a first mbox From_ line dropped, a later one kept");
	IN("From: a@x\nTo: b\n\n", 0, "From: a@x\r\nTo: b\r\n(blank)|", "From: is a field");
	IN("Fromage\n\n", 0, "|Fromage\r\n\r\n", "not From_ either");
	IN("To: a\n\n", 0, "To: a\r\n(blank)|", "empty body");
	IN("Name: a\0b\n\nb\0dy\n", 0, "Name: a\\0b\r\n(blank)|b\\0dy\r\n",
	   "NUL passes through, in a header and in the body");
	IN("To: 0123456789012345678901234567890123456789012345678901234567890123456789\n",
	   0, "ERR 1", "header section over its bound");
	char big[1200];
	memset(big, 'x', sizeof(big));
	big[0] = '\n';
	is_str(input(big, sizeof(big), 0, 100), "ERR 2", "content over size_max");
}

int main(void)
{
	addresses();
	headers();
	normalise();
	return done_testing();
}
