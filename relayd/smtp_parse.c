/*
 * smtp_parse.c - MAIL / RCPT argument grammar (see smtp_parse.h).
 *
 * Leniency follows Postfix where clients are known to stray: a space after
 * "FROM:" is allowed, and so is a missing pair of angle brackets around a
 * bare address.  Everything else that RFC 5321 forbids is refused.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "smtp_parse.h"
#include "queue.h"
#include "text.h"

#define R_SYNTAX_MAIL "501 5.5.4 Syntax: MAIL FROM:<address>"
#define R_SYNTAX_RCPT "501 5.5.4 Syntax: RCPT TO:<address>"
#define R_BAD_SENDER "501 5.1.7 Bad sender address syntax"
#define R_BAD_RCPT "501 5.1.3 Bad recipient address syntax"
#define R_UTF8_SENDER "553 5.6.7 Non-ASCII sender address requires SMTPUTF8"
#define R_UTF8_RCPT "553 5.6.7 Non-ASCII recipient address requires SMTPUTF8"
#define R_PARAM "555 5.5.4 Unsupported option"
#define R_PARAM_SYNTAX "501 5.5.4 Bad parameter syntax"
#define R_PARAM_DUP "501 5.5.4 Duplicate parameter"

/* Length of a well-formed UTF-8 sequence at p (at most n bytes), or 0. */
static size_t utf8_len(const unsigned char *p, size_t n)
{
	uint32_t cp;
	return text_utf8_len(p, n, &cp);
}

/* atext of RFC 5322 plus UTF-8 (RFC 6532) when allowed. */
static int atext(unsigned char c)
{
	return isalnum(c) || (c && strchr("!#$%&'*+-/=?^_`{|}~", c));
}

static int local_valid(const unsigned char *s, size_t n, int utf8)
{
	if (n == 0 || n > 64 * 4)
		return 0;
	if (s[0] == '"') {
		if (n < 2 || s[n - 1] != '"')
			return 0;
		for (size_t i = 1; i < n - 1; i++) {
			if (s[i] == '\\') {
				if (++i >= n - 1 || s[i] < 0x20 || s[i] > 0x7e)
					return 0;
			} else if (s[i] == '"' || s[i] < 0x20 || s[i] == 0x7f) {
				return 0;
			} else if (s[i] >= 0x80) {
				size_t k = utf8 ? utf8_len(s + i, n - 1 - i) : 0;
				if (!k)
					return 0;
				i += k - 1;
			}
		}
		return 1;
	}
	int prev_dot = 1;
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '.') {
			if (prev_dot)
				return 0;
			prev_dot = 1;
			continue;
		}
		prev_dot = 0;
		if (s[i] >= 0x80) {
			size_t k = utf8 ? utf8_len(s + i, n - i) : 0;
			if (!k)
				return 0;
			i += k - 1;
		} else if (!atext(s[i])) {
			return 0;
		}
	}
	return !prev_dot;
}

static int domain_valid(const unsigned char *s, size_t n, int utf8)
{
	if (n == 0 || n > 255)
		return 0;
	if (s[0] == '[') {
		/* Address literal: [IPv4] or [IPv6:...]; content checked for
		 * the characters only, the scheduler resolves nothing here. */
		if (s[n - 1] != ']' || n < 3)
			return 0;
		for (size_t i = 1; i < n - 1; i++)
			if (!isalnum(s[i]) && !(s[i] && strchr(".:-", s[i])))
				return 0;
		return 1;
	}
	size_t label = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '.') {
			if (label == 0 || s[i - 1] == '-')
				return 0;
			label = 0;
			continue;
		}
		if (s[i] >= 0x80) {
			size_t k = utf8 ? utf8_len(s + i, n - i) : 0;
			if (!k)
				return 0;
			i += k - 1;
		} else if (!isalnum(s[i]) && !(s[i] == '-' && label > 0)) {
			return 0;
		}
		if (++label > 63)
			return 0;
	}
	return label > 0 && s[n - 1] != '-';
}

int smtp_mailbox_valid(const char *str, size_t n, int utf8)
{
	const unsigned char *s = (const unsigned char *)str;
	/* The last '@' outside quotes separates local part and domain. */
	size_t at = n;
	int quoted = 0;
	for (size_t i = 0; i < n; i++) {
		if (quoted && s[i] == '\\')
			i++;                  /* quoted-pair: skip what it escapes */
		else if (s[i] == '"')
			quoted = !quoted;
		else if (s[i] == '@' && !quoted)
			at = i;
	}
	if (at == n || at == 0)
		return 0;
	return local_valid(s, at, utf8) && domain_valid(s + at + 1, n - at - 1, utf8);
}

int smtp_xtext_valid(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '+') {
			if (i + 2 >= len)
				return 0;
			if (!isxdigit((unsigned char)s[i + 1]) || !isxdigit((unsigned char)s[i + 2]) ||
			    islower((unsigned char)s[i + 1]) || islower((unsigned char)s[i + 2]))
				return 0;
			i += 2;
		} else if (c < 33 || c > 126 || c == '=') {
			return 0;
		}
	}
	return 1;
}

static int has_8bit(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] >= 0x80)
			return 1;
	return 0;
}

/* Split "FROM:<path> params" after the keyword: finds the path, copies the
 * mailbox without brackets (and without an RFC 5321 source route) into
 * out, and returns a pointer to the parameters, or NULL. */
static const char *take_path(const char *p, const char *kw, char *out,
			     size_t outlen, size_t *addrlen)
{
	size_t kl = strlen(kw);
	while (*p == ' ')
		p++;
	if (strncasecmp(p, kw, kl) != 0)
		return NULL;
	p += kl;
	while (*p == ' ')
		p++;
	const char *start, *end;
	if (*p == '<') {
		start = ++p;
		/* '>' inside a quoted local part does not end the path. */
		int quoted = 0;
		for (; *p && (quoted || *p != '>'); p++) {
			if (*p == '\\' && quoted && p[1])
				p++;
			else if (*p == '"')
				quoted = !quoted;
		}
		if (*p != '>')
			return NULL;
		end = p++;
	} else {
		start = p;
		while (*p && *p != ' ')
			p++;
		end = p;
		if (end == start)
			return NULL;
	}
	if (*p && *p != ' ')
		return NULL;
	/* Source route "@a,@b:user@d": ignore the route (RFC 5321 §4.1.2). */
	if (start < end && *start == '@') {
		const char *colon = memchr(start, ':', (size_t)(end - start));
		/* A route must lead somewhere: "<@a:>" is not the null
		 * sender. */
		if (!colon || colon + 1 == end)
			return NULL;
		start = colon + 1;
	}
	/* A path longer than RFC 5321 allows is a bad address, not a bad
	 * command: *addrlen says so, out stays empty. */
	size_t n = (size_t)(end - start);
	*addrlen = n;
	out[0] = 0;
	if (n >= outlen)
		return p;
	memcpy(out, start, n);
	out[n] = 0;
	return p;
}

/* Iterate "KEY[=VALUE]" words.  Returns 1 with key/value set, 0 at the
 * end, -1 on a syntax error. */
static int next_param(const char **pp, char *key, size_t klen, char *val,
		      size_t vlen, int *has_val)
{
	const char *p = *pp;
	while (*p == ' ')
		p++;
	if (!*p)
		return 0;
	const char *w = p;
	while (*p && *p != ' ')
		p++;
	const char *eq = memchr(w, '=', (size_t)(p - w));
	const char *kend = eq ? eq : p;
	size_t kn = (size_t)(kend - w);
	if (kn == 0 || kn >= klen)
		return -1;
	for (size_t i = 0; i < kn; i++)
		if (!isalnum((unsigned char)w[i]) && w[i] != '-')
			return -1;
	memcpy(key, w, kn);
	key[kn] = 0;
	*has_val = eq != NULL;
	if (eq) {
		size_t vn = (size_t)(p - eq - 1);
		if (vn == 0 || vn >= vlen)
			return -1;
		memcpy(val, eq + 1, vn);
		val[vn] = 0;
	}
	*pp = p;
	return 1;
}

/* RFC 1870's size-value, 1*20DIGIT.  Twenty digits can exceed 2^64:
 * such a value saturates to UINT64_MAX, which is over any limit and so
 * gets its 552 rather than a syntax error. */
static int parse_size(const char *s, uint64_t *out)
{
	uint64_t v = 0;
	if (!*s || strlen(s) > 20)
		return -1;
	for (; *s; s++) {
		if (!isdigit((unsigned char)*s))
			return -1;
		unsigned d = (unsigned)(*s - '0');
		v = v > (UINT64_MAX - d) / 10 ? UINT64_MAX : v * 10 + d;
	}
	*out = v;
	return 0;
}

int smtp_parse_mail(const char *arg, struct smtp_mail_args *m,
		    const char **reply)
{
	char key[32], val[SMTP_XTEXT_MAX + 1];
	size_t n;
	int has_val, rc, seen = 0;
	memset(m, 0, sizeof(*m));
	const char *p = take_path(arg, "FROM:", m->addr, sizeof(m->addr), &n);
	if (!p) {
		*reply = R_SYNTAX_MAIL;
		return -1;
	}
	while ((rc = next_param(&p, key, sizeof(key), val, sizeof(val), &has_val)) == 1) {
		int bit;
		if (!strcasecmp(key, "SIZE") && has_val) {
			bit = 1;
			if (parse_size(val, &m->size))
				goto syntax;
		} else if (!strcasecmp(key, "BODY") && has_val) {
			bit = 2;
			if (!strcasecmp(val, "8BITMIME"))
				m->body_8bit = 1;
			else if (strcasecmp(val, "7BIT"))
				goto unsupported;
		} else if (!strcasecmp(key, "SMTPUTF8") && !has_val) {
			bit = 4;
			m->smtputf8 = 1;
		} else if (!strcasecmp(key, "RET") && has_val) {
			bit = 8;
			if (!strcasecmp(val, "FULL"))
				m->ret = QUEUE_RET_FULL;
			else if (!strcasecmp(val, "HDRS"))
				m->ret = QUEUE_RET_HDRS;
			else
				goto syntax;
		} else if (!strcasecmp(key, "ENVID") && has_val) {
			bit = 16;
			if (strlen(val) > 100 || !smtp_xtext_valid(val, strlen(val)))
				goto syntax;
			strcpy(m->envid, val);
		} else if (!strcasecmp(key, "AUTH") && has_val) {
			/* RFC 4954 §5: accepted; the session's own login is
			 * what is recorded. */
			bit = 32;
			if (!smtp_xtext_valid(val, strlen(val)) && strcmp(val, "<>"))
				goto syntax;
		} else {
			goto unsupported;
		}
		if (seen & bit) {
			*reply = R_PARAM_DUP;
			return -1;
		}
		seen |= bit;
	}
	if (rc < 0)
		goto syntax;
	if (n > SMTP_PATH_MAX) {
		*reply = R_BAD_SENDER;
		return -1;
	}
	if (n > 0 && !smtp_mailbox_valid(m->addr, n, m->smtputf8)) {
		*reply = !m->smtputf8 && has_8bit(m->addr, n) ? R_UTF8_SENDER : R_BAD_SENDER;
		return -1;
	}
	return 0;
syntax:
	*reply = R_PARAM_SYNTAX;
	return -1;
unsupported:
	*reply = R_PARAM;
	return -1;
}

static int parse_notify(const char *v, unsigned *out)
{
	unsigned bits = 0;
	char buf[64];
	if (strlen(v) >= sizeof(buf))
		return -1;
	strcpy(buf, v);
	char *save, *tok = strtok_r(buf, ",", &save);
	for (; tok; tok = strtok_r(NULL, ",", &save)) {
		unsigned b;
		if (!strcasecmp(tok, "NEVER"))
			b = QUEUE_NOTIFY_NEVER;
		else if (!strcasecmp(tok, "SUCCESS"))
			b = QUEUE_NOTIFY_SUCCESS;
		else if (!strcasecmp(tok, "FAILURE"))
			b = QUEUE_NOTIFY_FAILURE;
		else if (!strcasecmp(tok, "DELAY"))
			b = QUEUE_NOTIFY_DELAY;
		else
			return -1;
		if (bits & b)
			return -1;
		bits |= b;
	}
	/* NEVER excludes everything else (RFC 3461 §4.1). */
	if (!bits || ((bits & QUEUE_NOTIFY_NEVER) && bits != QUEUE_NOTIFY_NEVER))
		return -1;
	*out = bits;
	return 0;
}

/* ORCPT=addr-type;xtext with an atom for the type (RFC 3461 §4.2). */
static int orcpt_valid(const char *v)
{
	const char *semi = strchr(v, ';');
	if (!semi || semi == v || !semi[1])
		return 0;
	for (const char *p = v; p < semi; p++)
		if (!isalnum((unsigned char)*p) && *p != '-')
			return 0;
	return smtp_xtext_valid(semi + 1, strlen(semi + 1));
}

int smtp_parse_rcpt(const char *arg, int smtputf8, struct smtp_rcpt_args *r,
		    const char **reply)
{
	char key[32], val[SMTP_XTEXT_MAX + 1];
	size_t n;
	int has_val, rc, seen = 0;
	memset(r, 0, sizeof(*r));
	const char *p = take_path(arg, "TO:", r->addr, sizeof(r->addr), &n);
	if (!p) {
		*reply = R_SYNTAX_RCPT;
		return -1;
	}
	while ((rc = next_param(&p, key, sizeof(key), val, sizeof(val), &has_val)) == 1) {
		int bit;
		if (!strcasecmp(key, "NOTIFY") && has_val) {
			bit = 1;
			if (parse_notify(val, &r->notify))
				goto syntax;
		} else if (!strcasecmp(key, "ORCPT") && has_val) {
			bit = 2;
			if (strlen(val) > 500 || !orcpt_valid(val))
				goto syntax;
			strcpy(r->orcpt, val);
		} else {
			*reply = R_PARAM;
			return -1;
		}
		if (seen & bit) {
			*reply = R_PARAM_DUP;
			return -1;
		}
		seen |= bit;
	}
	if (rc < 0)
		goto syntax;
	if (n > SMTP_PATH_MAX) {
		*reply = R_BAD_RCPT;
		return -1;
	}
	if (!smtp_mailbox_valid(r->addr, n, smtputf8)) {
		*reply = !smtputf8 && has_8bit(r->addr, n) ? R_UTF8_RCPT : R_BAD_RCPT;
		return -1;
	}
	return 0;
syntax:
	*reply = R_PARAM_SYNTAX;
	return -1;
}
