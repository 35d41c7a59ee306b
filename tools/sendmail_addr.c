/*
 * sendmail_addr.c - RFC 5322 address lists (see sendmail_addr.h).
 *
 * A small lexer (atoms, quoted strings, domain literals, specials, with
 * comments and white space skipped between tokens) and a parser over it
 * that looks ahead by rescanning: an address is scanned up to its first
 * '<', ':', ',' or ';' to learn whether it is a name-addr, a group or a
 * bare addr-spec, then read again as that.  Both passes are linear, so a
 * hostile header costs time in proportion to its length; comment nesting
 * is a counter, not recursion.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "sendmail_addr.h"

enum tok { T_END, T_ATOM, T_QSTR, T_DLIT, T_SPECIAL, T_ERR };

struct lex {
	const char *s;
	size_t len, pos;
	const char *err;
};

struct token {
	enum tok type;
	char c;                  /* T_SPECIAL: which */
	size_t start, len;       /* the token's bytes, quotes/brackets included */
};

static int is_special(unsigned char c)
{
	return c && strchr("()<>[]:;@\\,.\"", c) != NULL;
}

/* atext of RFC 5322 §3.2.3, plus UTF-8 bytes (RFC 6532). */
static int is_atext(unsigned char c)
{
	return c > 32 && c != 127 && !is_special(c);
}

static int is_ws(unsigned char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static int lex_fail(struct lex *x, const char *err)
{
	if (!x->err)
		x->err = err;
	return -1;
}

/* Skip white space and (nested) comments. */
static int skip_cfws(struct lex *x)
{
	while (x->pos < x->len) {
		unsigned char c = (unsigned char)x->s[x->pos];
		if (is_ws(c)) {
			x->pos++;
			continue;
		}
		if (c != '(')
			return 0;
		size_t depth = 0;
		do {
			if (x->pos >= x->len)
				return lex_fail(x, "unterminated comment");
			c = (unsigned char)x->s[x->pos++];
			if (c == '\\') {
				if (x->pos >= x->len)
					return lex_fail(x, "unterminated comment");
				x->pos++;
			} else if (c == '(') {
				depth++;
			} else if (c == ')') {
				depth--;
			}
		} while (depth);
	}
	return 0;
}

/* Scan a run delimited by `close` (quoted string, domain literal) whose
 * opening byte is at x->pos. */
static int scan_delimited(struct lex *x, char close, const char *err)
{
	x->pos++;
	while (x->pos < x->len) {
		char c = x->s[x->pos++];
		if (c == close)
			return 0;
		if (c == '\\') {
			if (x->pos >= x->len)
				break;
			x->pos++;
		} else if (close == ']' && c == '[') {
			break;
		}
	}
	return lex_fail(x, err);
}

static struct token lex_next(struct lex *x)
{
	struct token t = { .type = T_ERR };
	if (skip_cfws(x))
		return t;
	t.start = x->pos;
	if (x->pos >= x->len) {
		t.type = T_END;
		return t;
	}
	unsigned char c = (unsigned char)x->s[x->pos];
	if (c == '"') {
		if (scan_delimited(x, '"', "unterminated quoted string"))
			return t;
		t.type = T_QSTR;
	} else if (c == '[') {
		if (scan_delimited(x, ']', "unterminated domain literal"))
			return t;
		t.type = T_DLIT;
	} else if (c && strchr("<>@,;:.", c)) {
		x->pos++;
		t.type = T_SPECIAL;
		t.c = (char)c;
	} else if (is_atext(c)) {
		while (x->pos < x->len && is_atext((unsigned char)x->s[x->pos]))
			x->pos++;
		t.type = T_ATOM;
	} else {
		lex_fail(x, c == ')' ? "unbalanced ')'" :
			 c == ']' ? "unbalanced ']'" : "invalid character in address");
		return t;
	}
	t.len = x->pos - t.start;
	return t;
}

static struct token lex_peek(struct lex *x)
{
	size_t save = x->pos;
	struct token t = lex_next(x);
	if (t.type != T_ERR)
		x->pos = save;
	return t;
}

static int is_sp(struct token t, char c)
{
	return t.type == T_SPECIAL && t.c == c;
}

/* A bounded output buffer for one address. */
struct abuf {
	char b[SM_ADDR_MAX * 2 + 8];
	size_t n;
	int over;
};

static void put(struct abuf *a, const char *p, size_t n)
{
	if (n > sizeof(a->b) - 1 - a->n) {
		a->over = 1;
		return;
	}
	memcpy(a->b + a->n, p, n);
	a->n += n;
	a->b[a->n] = 0;
}

/* Append the content of a quoted string, unescaped and unfolded. */
static int put_qstr(struct lex *x, struct abuf *a, struct token t)
{
	for (size_t i = t.start + 1; i + 1 < t.start + t.len; i++) {
		unsigned char c = (unsigned char)x->s[i];
		if (c == '\\')
			c = (unsigned char)x->s[++i];
		else if (c == '\r' || c == '\n')
			continue;              /* folding */
		/* RFC 5321 qtextSMTP: no TAB either, unlike RFC 5322 */
		if (c < 32 || c == 127)
			return lex_fail(x, "control character in address");
		put(a, (const char *)&c, 1);
	}
	return 0;
}

static int is_dot_atom(const char *s, size_t n)
{
	if (!n || s[0] == '.' || s[n - 1] == '.')
		return 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '.' ? s[i + 1] == '.' : !is_atext((unsigned char)s[i]))
			return 0;
	}
	return 1;
}

/* local-part: word *("." word), decoded into a, then re-quoted into out
 * when it is not a dot-atom. */
static int parse_local(struct lex *x, struct abuf *out)
{
	struct abuf a = { .n = 0 };
	for (;;) {
		struct token t = lex_next(x);
		if (t.type == T_ATOM)
			put(&a, x->s + t.start, t.len);
		else if (t.type == T_QSTR) {
			if (put_qstr(x, &a, t))
				return -1;
		} else
			return lex_fail(x, "missing local part");
		if (!is_sp(lex_peek(x), '.'))
			break;
		lex_next(x);
		put(&a, ".", 1);
	}
	if (a.over)
		return lex_fail(x, "address too long");
	if (is_dot_atom(a.b, a.n)) {
		put(out, a.b, a.n);
		return 0;
	}
	put(out, "\"", 1);
	for (size_t i = 0; i < a.n; i++) {
		if (a.b[i] == '"' || a.b[i] == '\\')
			put(out, "\\", 1);
		put(out, a.b + i, 1);
	}
	put(out, "\"", 1);
	return 0;
}

/* domain: dot-atom or domain literal (its folding white space dropped). */
static int parse_domain(struct lex *x, struct abuf *out)
{
	struct token t = lex_next(x);
	if (t.type == T_DLIT) {
		for (size_t i = t.start; i < t.start + t.len; i++) {
			unsigned char c = (unsigned char)x->s[i];
			if (is_ws(c))
				continue;
			if (c < 32 || c == 127)
				return lex_fail(x, "control character in address");
			/* RFC 5321 dcontent: no quoted pairs in an address literal */
			if (c == '\\')
				return lex_fail(x, "backslash in a domain literal");
			put(out, (const char *)&c, 1);
		}
		return 0;
	}
	for (;;) {
		if (t.type != T_ATOM)
			return lex_fail(x, "missing domain");
		put(out, x->s + t.start, t.len);
		if (!is_sp(lex_peek(x), '.'))
			return 0;
		lex_next(x);
		put(out, ".", 1);
		t = lex_next(x);
	}
}

static int add_spec(struct lex *x, const struct abuf *a, struct sm_addr_list *out)
{
	if (a->over || a->n > SM_ADDR_MAX)
		return lex_fail(x, "address too long");
	const char *err = NULL;
	if (sm_addr_add(out, a->b, &err))
		return lex_fail(x, err);
	return 0;
}

static int parse_addr_spec(struct lex *x, const char *domain,
			   struct sm_addr_list *out)
{
	struct abuf a = { .n = 0 };
	if (parse_local(x, &a))
		return -1;
	put(&a, "@", 1);
	if (is_sp(lex_peek(x), '@')) {
		lex_next(x);
		if (parse_domain(x, &a))
			return -1;
	} else if (domain && *domain) {
		put(&a, domain, strlen(domain));
	} else {
		return lex_fail(x, "address has no domain");
	}
	return add_spec(x, &a, out);
}

/* "<" [obs-route] addr-spec ">", the '<' already read. */
static int parse_angle(struct lex *x, const char *domain, struct sm_addr_list *out)
{
	struct token t = lex_peek(x);
	if (is_sp(t, '>'))
		return lex_fail(x, "empty address <>");
	if (is_sp(t, '@')) {
		/* obs-route "@a,@b:" - where it went is not ours to follow */
		do {
			t = lex_next(x);
			if (t.type == T_END || t.type == T_ERR || is_sp(t, '>'))
				return lex_fail(x, "bad source route");
		} while (!is_sp(t, ':'));
	}
	if (parse_addr_spec(x, domain, out))
		return -1;
	if (!is_sp(lex_next(x), '>'))
		return lex_fail(x, "missing '>'");
	return 0;
}

static int parse_address(struct lex *x, const char *domain,
			 struct sm_addr_list *out, int in_group);

/* group: display-name ":" [mailbox-list] ";", the ':' already read. */
static int parse_group(struct lex *x, const char *domain, struct sm_addr_list *out)
{
	for (;;) {
		struct token t = lex_peek(x);
		if (t.type == T_ERR)
			return -1;
		if (t.type == T_END)
			return lex_fail(x, "unterminated group");
		if (is_sp(t, ';') || is_sp(t, ',')) {
			lex_next(x);
			if (t.c == ';')
				return 0;
			continue;
		}
		if (parse_address(x, domain, out, 1))
			return -1;
		t = lex_peek(x);
		if (!is_sp(t, ',') && !is_sp(t, ';'))
			return lex_fail(x, "expected ',' or ';' in group");
	}
}

static int parse_address(struct lex *x, const char *domain,
			 struct sm_addr_list *out, int in_group)
{
	size_t start = x->pos;
	struct token t;
	/* Look ahead for what kind of address this is. */
	for (;;) {
		t = lex_next(x);
		if (t.type == T_ERR)
			return -1;
		if (t.type == T_END || (t.type == T_SPECIAL && strchr("<:,;>", t.c)))
			break;
	}
	if (is_sp(t, '<'))
		return parse_angle(x, domain, out);   /* display name skipped */
	if (is_sp(t, ':')) {
		if (in_group)
			return lex_fail(x, "group inside a group");
		return parse_group(x, domain, out);
	}
	if (is_sp(t, '>'))
		return lex_fail(x, "unbalanced '>'");
	if (is_sp(t, ';') && !in_group)
		return lex_fail(x, "';' outside a group");
	x->pos = start;
	return parse_addr_spec(x, domain, out);
}

int sm_addr_parse_list(const char *s, size_t len, const char *domain,
		       struct sm_addr_list *out, const char **err)
{
	struct lex x = { .s = s, .len = len };
	for (;;) {
		struct token t = lex_peek(&x);
		if (t.type == T_END)
			return 0;
		if (t.type == T_ERR)
			break;
		if (is_sp(t, ',')) {
			lex_next(&x);
			continue;
		}
		if (parse_address(&x, domain, out, 0))
			break;
		t = lex_peek(&x);
		if (t.type != T_END && !is_sp(t, ',')) {
			lex_fail(&x, "expected ',' between addresses");
			break;
		}
	}
	*err = x.err ? x.err : "syntax error";
	return -1;
}

int sm_addr_add(struct sm_addr_list *l, const char *addr, const char **err)
{
	if (l->limit && l->n >= l->limit) {
		*err = "too many addresses";
		return -1;
	}
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 8;
		char **v = realloc(l->v, cap * sizeof(*v));
		if (!v) {
			*err = "out of memory";
			return -1;
		}
		l->v = v;
		l->cap = cap;
	}
	if (!(l->v[l->n] = strdup(addr))) {
		*err = "out of memory";
		return -1;
	}
	l->n++;
	return 0;
}

/* Order for finding repeats: local part exact, domain without case. */
static int addr_cmp(const char *a, const char *b)
{
	const char *da = strrchr(a, '@'), *db = strrchr(b, '@');
	size_t la = da ? (size_t)(da - a) : strlen(a);
	size_t lb = db ? (size_t)(db - b) : strlen(b);
	int c = memcmp(a, b, la < lb ? la : lb);
	if (c || la != lb)
		return c ? c : (la < lb ? -1 : 1);
	return strcasecmp(da ? da : "", db ? db : "");
}

static int idx_cmp(const void *pa, const void *pb, void *arg)
{
	const struct sm_addr_list *l = arg;
	size_t a = *(const size_t *)pa, b = *(const size_t *)pb;
	int c = addr_cmp(l->v[a], l->v[b]);
	return c ? c : (a < b ? -1 : a > b);
}

int sm_addr_dedup(struct sm_addr_list *l)
{
	if (l->n < 2)
		return 0;
	size_t *idx = malloc(l->n * sizeof(*idx));
	if (!idx)
		return -1;
	for (size_t i = 0; i < l->n; i++)
		idx[i] = i;
	qsort_r(idx, l->n, sizeof(*idx), idx_cmp, l);
	/* Within a run of equals the first index sorts first: it stays. */
	size_t keep = idx[0];
	for (size_t i = 1; i < l->n; i++) {
		if (!addr_cmp(l->v[keep], l->v[idx[i]])) {
			free(l->v[idx[i]]);
			l->v[idx[i]] = NULL;
		} else {
			keep = idx[i];
		}
	}
	free(idx);
	size_t n = 0;
	for (size_t i = 0; i < l->n; i++)
		if (l->v[i])
			l->v[n++] = l->v[i];
	l->n = n;
	return 0;
}

int sm_addr_is_utf8(const char *addr)
{
	for (; *addr; addr++)
		if ((unsigned char)*addr >= 0x80)
			return 1;
	return 0;
}

void sm_addr_free(struct sm_addr_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	l->v = NULL;
	l->n = l->cap = 0;
}
