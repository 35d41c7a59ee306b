/*
 * smtp_reply.c - multi-line SMTP reply reader (smtp_reply.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "smtp_reply.h"

void smtp_reply_init(struct smtp_reply_parser *p)
{
	memset(p, 0, sizeof(*p));
}

static int bad(struct smtp_reply_parser *p, const char *why)
{
	snprintf(p->error, sizeof(p->error), "%s", why);
	return SMTP_REPLY_BAD;
}

static int is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* Append text to the kept reply, sanitised, cut at the bound. */
static void keep(struct smtp_reply *r, const char *s, size_t n)
{
	if (r->nlines > 0 && r->text_len < sizeof(r->text) - 1)
		r->text[r->text_len++] = '\n';
	for (size_t i = 0; i < n && r->text_len < sizeof(r->text) - 1; i++) {
		unsigned char c = (unsigned char)s[i];
		r->text[r->text_len++] = c == '\t' ? ' ' : (c < 0x20 || c >= 0x7f) ? '?' : (char)c;
	}
	r->text[r->text_len] = 0;
}

/* "D.D{1,3}.D{1,3}" followed by a space or the end, its class that of
 * the reply code (RFC 3463 §2, RFC 2034 §4). */
static void take_enh(struct smtp_reply *r, const char *s, size_t n)
{
	size_t i = 0;

	if (n < 5 || s[0] != '0' + r->code / 100 || s[1] != '.')
		return;
	i = 2;
	for (int part = 0; part < 2; part++) {
		size_t start = i;
		while (i < n && is_digit(s[i]) && i - start < 4)
			i++;
		if (i == start || i - start > 3)
			return;
		if (part == 0) {
			if (i >= n || s[i] != '.')
				return;
			i++;
		}
	}
	if (i < n && s[i] != ' ')
		return;
	memcpy(r->enh, s, i);
	r->enh[i] = 0;
}

/* One line without its line end.  0, or SMTP_REPLY_BAD. */
static int line(struct smtp_reply_parser *p, const char *s, size_t n, int *last)
{
	struct smtp_reply *r = &p->reply;

	if (n < 3 || !is_digit(s[0]) || !is_digit(s[1]) || !is_digit(s[2]))
		return bad(p, "malformed reply: no reply code");
	if (n > 3 && s[3] != ' ' && s[3] != '-')
		return bad(p, "malformed reply: bad separator after the code");
	int code = (s[0] - '0') * 100 + (s[1] - '0') * 10 + (s[2] - '0');
	if (code < 200 || code > 599)
		return bad(p, "malformed reply: code out of range");
	if (p->in_reply && code != r->code)
		return bad(p, "malformed reply: lines with different codes");
	if (++p->in_reply > SMTP_REPLY_LINES_MAX)
		return bad(p, "malformed reply: too many lines");
	const char *text = n > 4 ? s + 4 : s + n;
	size_t tlen = n > 4 ? n - 4 : 0;
	if (r->nlines == 0) {
		r->code = code;
		take_enh(r, text, tlen);
	}
	keep(r, text, tlen);
	r->nlines++;
	*last = n == 3 || s[3] == ' ';
	return 0;
}

int smtp_reply_feed(struct smtp_reply_parser *p, const char *buf, size_t len,
		    size_t *used)
{
	size_t off = 0;

	*used = 0;
	if (!p->in_reply)
		memset(&p->reply, 0, sizeof(p->reply));
	while (off < len) {
		size_t room = len - off;
		size_t scan = room < SMTP_REPLY_LINE_MAX + 2 ? room : SMTP_REPLY_LINE_MAX + 2;
		const char *nl = memchr(buf + off, '\n', scan);
		if (!nl) {
			if (room > SMTP_REPLY_LINE_MAX + 1)
				return bad(p, "malformed reply: line too long");
			return SMTP_REPLY_MORE;
		}
		size_t n = (size_t)(nl - (buf + off));
		size_t content = n && buf[off + n - 1] == '\r' ? n - 1 : n;
		int last = 0;
		if (content > SMTP_REPLY_LINE_MAX)
			return bad(p, "malformed reply: line too long");
		if (line(p, buf + off, content, &last) < 0)
			return SMTP_REPLY_BAD;
		off += n + 1;
		*used = off;
		if (last) {
			p->in_reply = 0;
			return SMTP_REPLY_DONE;
		}
	}
	return SMTP_REPLY_MORE;
}

const char *smtp_reply_line(const struct smtp_reply *r, unsigned i, size_t *len)
{
	const char *s = r->text, *end = r->text + r->text_len;

	for (; i > 0; i--) {
		const char *nl = memchr(s, '\n', (size_t)(end - s));
		if (!nl)
			return NULL;
		s = nl + 1;
	}
	if (s > end || (s == end && r->nlines == 0))
		return NULL;
	const char *nl = memchr(s, '\n', (size_t)(end - s));
	*len = nl ? (size_t)(nl - s) : (size_t)(end - s);
	return s;
}

/* One EHLO line: "KEYWORD[ params]" (and the old "KEYWORD=params" that
 * some servers still send for AUTH and SIZE). */
static void ehlo_keyword(struct smtp_ehlo *e, const char *l, size_t n)
{
	char kw[32], arg[256];
	size_t k = 0, a = 0, i = 0;

	while (i < n && l[i] != ' ' && l[i] != '=' && k < sizeof(kw) - 1)
		kw[k++] = l[i++];
	kw[k] = 0;
	if (i < n && l[i] != ' ' && l[i] != '=')
		return;                  /* longer than any keyword we know */
	while (i < n && (l[i] == ' ' || l[i] == '='))
		i++;
	while (i < n && a < sizeof(arg) - 1)
		arg[a++] = l[i++];
	arg[a] = 0;
	if (!strcasecmp(kw, "PIPELINING")) {
		e->pipelining = 1;
	} else if (!strcasecmp(kw, "8BITMIME")) {
		e->eightbit = 1;
	} else if (!strcasecmp(kw, "SMTPUTF8")) {
		e->smtputf8 = 1;
	} else if (!strcasecmp(kw, "DSN")) {
		e->dsn = 1;
	} else if (!strcasecmp(kw, "STARTTLS")) {
		e->starttls = 1;
	} else if (!strcasecmp(kw, "SIZE")) {
		char *end;
		e->size = 1;
		e->size_limit = 0;
		if (arg[0] >= '0' && arg[0] <= '9') {
			unsigned long long v = strtoull(arg, &end, 10);
			if (*end == 0 || *end == ' ')
				e->size_limit = v;
		}
	} else if (!strcasecmp(kw, "AUTH")) {
		char *save = NULL;
		e->auth = 1;
		for (char *m = strtok_r(arg, " ", &save); m; m = strtok_r(NULL, " ", &save)) {
			if (!strcasecmp(m, "PLAIN"))
				e->auth_plain = 1;
			else if (!strcasecmp(m, "LOGIN"))
				e->auth_login = 1;
		}
	}
}

void smtp_reply_ehlo(const struct smtp_reply *r, struct smtp_ehlo *e)
{
	const char *l;
	size_t n;

	memset(e, 0, sizeof(*e));
	/* Line 0 is the server's name and greeting, never a keyword. */
	for (unsigned i = 1; (l = smtp_reply_line(r, i, &n)) != NULL; i++)
		ehlo_keyword(e, l, n);
}
