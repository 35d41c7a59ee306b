/*
 * dsn_compose.c - the bytes of a delivery status notification (see
 * dsn_compose.h).
 *
 * Header fields we write are built from cleaned text only (clean_text):
 * no CR, LF or other control can reach them, so nothing from a remote
 * server or a client can end a field, start a part or forge a boundary.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "dsn_compose.h"
#include "text.h"

/* A growing buffer; the first failure sticks and later writes are no-ops. */
struct dbuf {
	char *p;
	size_t len, cap, max;
	int err;
};

static void db_put(struct dbuf *b, const void *s, size_t n)
{
	if (b->err || n == 0)
		return;
	if (n > b->max - b->len) {
		b->err = -1;
		return;
	}
	if (b->len + n > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		while (cap < b->len + n)
			cap *= 2;
		char *p = realloc(b->p, cap);
		if (!p) {
			b->err = -1;
			return;
		}
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
}

static void db_puts(struct dbuf *b, const char *s)
{
	db_put(b, s, strlen(s));
}

static void db_printf(struct dbuf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void db_printf(struct dbuf *b, const char *fmt, ...)
{
	char tmp[1024];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(tmp)) {
		b->err = -1;
		return;
	}
	db_put(b, tmp, (size_t)n);
}

/* ---- untrusted text ---- */

/* Longest piece of untrusted text one field carries (a reply is at most
 * a few hundred bytes after the client's own bound). */
#define CLEAN_IN_MAX 2000

/* Printable text from untrusted bytes into out (size >= 4 * n + 1):
 * CR, LF and TAB become spaces; in 7-bit mode every other byte outside
 * printable ASCII becomes \xHH; in UTF-8 mode well-formed UTF-8 stays
 * and the rest goes through text_escape. */
static size_t clean_text(char *out, size_t outlen, const char *in, int utf8)
{
	char tmp[CLEAN_IN_MAX + 1];
	size_t n = strnlen(in, CLEAN_IN_MAX), o = 0;
	for (size_t i = 0; i < n; i++)
		tmp[i] = (in[i] == '\r' || in[i] == '\n' || in[i] == '\t') ? ' ' : in[i];
	tmp[n] = '\0';
	if (utf8)
		return text_escape(out, outlen, tmp, n);
	for (size_t i = 0; i < n && o + 5 <= outlen; i++) {
		unsigned char c = (unsigned char)tmp[i];
		if (c >= 0x20 && c < 0x7f)
			out[o++] = (char)c;
		else
			o += (size_t)snprintf(out + o, outlen - o, "\\x%02X", c);
	}
	out[o] = '\0';
	return o;
}

/* Length of the piece at s that may not be split (one UTF-8 sequence). */
static size_t piece_len(const char *s)
{
	size_t n = 1;
	while (((unsigned char)s[n] & 0xc0) == 0x80)
		n++;
	return n;
}

/* Longest line a word may make before it is cut (RFC 5322 §2.1.1 allows
 * 998 octets): a long address or host name is kept whole, not broken at
 * the folding width, where unfolding would put a space inside it. */
#define HARD_WIDTH 990

/* Write words of cleaned text s, breaking lines before `width` columns
 * with `cont` (CRLF plus indentation); *col is the current column.  A
 * word too long for a line of its own is cut at HARD_WIDTH, between
 * UTF-8 sequences. */
static void put_wrapped(struct dbuf *b, const char *s, size_t *col,
			size_t width, const char *cont)
{
	size_t indent = strlen(cont) - 2;
	int any = 0;
	while (*s) {
		while (*s == ' ')
			s++;
		if (!*s)
			break;
		size_t w = strcspn(s, " ");
		if (*col > indent && *col + (any ? 1 : 0) + w > width) {
			db_puts(b, cont);
			*col = indent;
		} else if (any) {
			db_put(b, " ", 1);
			(*col)++;
		}
		any = 1;
		while (w > 0) {
			size_t limit = *col == indent ? HARD_WIDTH : width;
			size_t room = limit > *col ? limit - *col : 0, take = 0;
			while (take < w && take + piece_len(s + take) <= room &&
			       take + piece_len(s + take) <= w)
				take += piece_len(s + take);
			if (take == 0 && *col == indent)
				take = piece_len(s);
			if (take == 0) {
				db_puts(b, cont);
				*col = indent;
				continue;
			}
			db_put(b, s, take);
			*col += take;
			s += take;
			w -= take;
		}
	}
}

/* "Name: value" folded at 78 columns (RFC 5322 §2.2.3), value cleaned. */
static void put_field(struct dbuf *b, const char *name, const char *value, int utf8)
{
	char clean[4 * CLEAN_IN_MAX + 1];
	clean_text(clean, sizeof(clean), value, utf8);
	db_puts(b, name);
	db_puts(b, ": ");
	size_t col = strlen(name) + 2;
	put_wrapped(b, clean, &col, 78, "\r\n    ");
	db_puts(b, "\r\n");
}

/* RFC 6533 utf-8-addr-xtext / utf-8-addr-unitext: QCHAR as is, UTF-8 as
 * is in a global report, everything else \x{HEX}. */
static void put_utf8_addr(struct dbuf *b, const char *a, int utf8)
{
	const unsigned char *s = (const unsigned char *)a;
	size_t n = strnlen(a, CLEAN_IN_MAX), start = b->len;
	for (size_t i = 0; i < n;) {
		/* Not folded (a space would enter the address): an address
		 * this long is not one SMTP could carry, and is cut. */
		if (b->len - start > 900) {
			db_puts(b, "...");
			break;
		}
		uint32_t cp;
		size_t l = text_utf8_len(s + i, n - i, &cp);
		if (l == 0) {
			db_puts(b, "\\x{FFFD}");
			i++;
			continue;
		}
		if ((cp > 0x20 && cp < 0x7f && cp != '+' && cp != '=' && cp != '\\') ||
		    (utf8 && cp >= 0xa0))
			db_put(b, s + i, l);
		else
			db_printf(b, "\\x{%X}", cp);
		i += l;
	}
}

static int printable_ascii(const char *s)
{
	if (!*s)
		return 0;
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || (unsigned char)*s >= 0x7f)
			return 0;
	return 1;
}

/* "Name: rfc822; addr" for a printable ASCII address, else RFC 6533's
 * "utf-8; " form. */
static void put_addr_field(struct dbuf *b, const char *name, const char *addr, int utf8)
{
	if (printable_ascii(addr) && strlen(addr) < CLEAN_IN_MAX) {
		char v[CLEAN_IN_MAX + 16];
		snprintf(v, sizeof(v), "rfc822; %s", addr);
		put_field(b, name, v, 0);
		return;
	}
	db_puts(b, name);
	db_puts(b, ": utf-8; ");
	put_utf8_addr(b, addr, utf8);
	db_puts(b, "\r\n");
}

/* Value of an upper-case hex digit (xtext allows no other), or -1. */
static int hexval(char c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

int dsn_xtext_decode(const char *in, char *out, size_t outlen)
{
	size_t o = 0;
	for (const char *s = in; *s; s++) {
		unsigned c = (unsigned char)*s;
		if (c == '+') {
			int hi = hexval(s[1]), lo = hi < 0 ? -1 : hexval(s[2]);
			if (lo < 0)
				return -1;
			c = (unsigned)(hi << 4 | lo);
			s += 2;
		}
		if (c < 0x20 || c >= 0x7f || o + 1 >= outlen)
			return -1;
		out[o++] = (char)c;
	}
	if (outlen == 0)
		return -1;
	out[o] = '\0';
	return 0;
}

/* Original-Recipient from an ORCPT "addr-type;xtext" (RFC 3461 §6.3(d):
 * its value taken from the ORCPT): the type as given, the xtext decoded
 * when that gives printable ASCII, else kept encoded (a utf-8 type is
 * RFC 6533's own encoding and stays as it is); an ORCPT whose type is
 * not an atom is left out. */
static void put_orcpt(struct dbuf *b, const char *orcpt)
{
	const char *semi = strchr(orcpt, ';');
	if (!semi || semi == orcpt || semi - orcpt > 64)
		return;
	char type[65], dec[1024], v[1200];
	memcpy(type, orcpt, (size_t)(semi - orcpt));
	type[semi - orcpt] = '\0';
	for (char *t = type; *t; t++)
		if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-", *t))
			return;
	const char *x = semi + 1;
	if (strcmp(type, "utf-8") && strcmp(type, "UTF-8") &&
	    dsn_xtext_decode(x, dec, sizeof(dec)) == 0)
		x = dec;
	snprintf(v, sizeof(v), "%s;%s", type, x);
	put_field(b, "Original-Recipient", v, 0);
}

void dsn_date(char *buf, size_t len, int64_t t)
{
	static const char days[7][4] = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };
	static const char mons[12][4] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
					  "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
	struct tm tm;
	time_t tt = (time_t)t;
	if (!gmtime_r(&tt, &tm)) {
		snprintf(buf, len, "Thu, 1 Jan 1970 00:00:00 +0000");
		return;
	}
	snprintf(buf, len, "%s, %d %s %d %02d:%02d:%02d +0000", days[tm.tm_wday % 7],
		 tm.tm_mday, mons[tm.tm_mon % 12], tm.tm_year + 1900, tm.tm_hour,
		 tm.tm_min, tm.tm_sec);
}

/* ---- the parts ---- */

static const char *action_name(enum dsn_action a)
{
	switch (a) {
	case DSN_ACTION_FAILED: return "failed";
	case DSN_ACTION_DELAYED: return "delayed";
	case DSN_ACTION_DELIVERED: return "delivered";
	case DSN_ACTION_RELAYED: return "relayed";
	case DSN_ACTION_EXPANDED: return "expanded";
	}
	return "failed";
}

/* 1 when s is 1*3DIGIT followed by `end`; *next after it. */
static int digits(const char *s, char end, const char **next)
{
	size_t n = strspn(s, "0123456789");
	if (n < 1 || n > 3 || s[n] != end)
		return 0;
	*next = s + n + (end ? 1 : 0);
	return 1;
}

/* An RFC 3463 status of the right class for the action, or a default. */
static const char *status_of(const struct dsn_rcpt *rc)
{
	const char *s = rc->status, *p;
	char cls = rc->action == DSN_ACTION_FAILED ? '5' :
		   rc->action == DSN_ACTION_DELAYED ? '4' : '2';
	/* A failure may carry a 4.x.x: the last temporary error of a
	 * recipient that expired (4.4.7). */
	int ok_cls = s && (s[0] == cls || (cls == '5' && s[0] == '4'));
	if (ok_cls && s[1] == '.' && digits(s + 2, '.', &p) &&
	    digits(p, '\0', &p))
		return s;
	return cls == '5' ? "5.0.0" : cls == '4' ? "4.0.0" : "2.0.0";
}

/* A host name for Remote-MTA: letters, digits, dots, hyphens only. */
static int dns_name_ok(const char *h)
{
	size_t n = strlen(h);
	return n > 0 && n <= 253 && strspn(h, "abcdefghijklmnopqrstuvwxyz"
		"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-") == n;
}

static const char *intro(enum dsn_kind k)
{
	switch (k) {
	case DSN_KIND_FAILURE:
		return "Your message could not be delivered to the recipients listed "
		       "below. The mail system has given up on them and will not try "
		       "again; the reason each one failed is given with it.";
	case DSN_KIND_DELAY:
		return "Your message has not been delivered yet to the recipients "
		       "listed below. This is only a warning: the mail system keeps "
		       "trying until the time shown, and you need not send the message "
		       "again.";
	case DSN_KIND_SUCCESS:
		return "Your message was handed on to the mail systems of the "
		       "recipients listed below, as you asked to be told. Those systems "
		       "do not report deliveries themselves, so this is the last notice "
		       "you will get about these recipients.";
	}
	return "";
}

static void put_para(struct dbuf *b, const char *text, int utf8)
{
	char clean[4 * CLEAN_IN_MAX + 1];
	size_t col = 0;
	clean_text(clean, sizeof(clean), text, utf8);
	put_wrapped(b, clean, &col, 72, "\r\n");
	db_puts(b, "\r\n");
}

static void put_text_part(struct dbuf *b, const struct dsn_report *r, int headers_only)
{
	char line[CLEAN_IN_MAX + 256], d[64];
	dsn_date(d, sizeof(d), r->arrival);
	snprintf(line, sizeof(line), "This is the mail system at %s.", r->hostname);
	put_para(b, line, 0);
	db_puts(b, "\r\n");
	put_para(b, intro(r->kind), 0);
	db_puts(b, "\r\n");
	snprintf(line, sizeof(line), "The message was received on %s with queue id %s.",
		 d, r->queue_id);
	put_para(b, line, 0);
	for (size_t i = 0; i < r->nrcpt; i++) {
		const struct dsn_rcpt *rc = &r->rcpt[i];
		db_puts(b, "\r\n");
		snprintf(line, sizeof(line), "<%.*s>: %s", CLEAN_IN_MAX - 16, rc->addr,
			 action_name(rc->action));
		put_para(b, line, r->utf8);
		if (rc->reply && rc->reply[0]) {
			char clean[4 * CLEAN_IN_MAX + 1];
			size_t col = 4;
			if (rc->diag_type && rc->remote_mta && dns_name_ok(rc->remote_mta))
				snprintf(line, sizeof(line), "host %s said: %.*s", rc->remote_mta,
					 CLEAN_IN_MAX - 300, rc->reply);
			else
				snprintf(line, sizeof(line), "%.*s", CLEAN_IN_MAX - 300, rc->reply);
			clean_text(clean, sizeof(clean), line, r->utf8);
			db_puts(b, "    ");
			put_wrapped(b, clean, &col, 72, "\r\n    ");
			db_puts(b, "\r\n");
		}
		if (rc->action == DSN_ACTION_DELAYED && rc->will_retry_until) {
			dsn_date(d, sizeof(d), rc->will_retry_until);
			snprintf(line, sizeof(line), "    Retried until %s.", d);
			db_puts(b, line);
			db_puts(b, "\r\n");
		}
	}
	if (headers_only && r->ret_full && r->kind == DSN_KIND_FAILURE) {
		db_puts(b, "\r\n");
		put_para(b, "The message was too large to be returned whole; only its "
			 "headers are attached.", 0);
	}
}

static void put_status_part(struct dbuf *b, const struct dsn_report *r)
{
	char v[CLEAN_IN_MAX + 64], d[64];
	snprintf(v, sizeof(v), "dns; %s", r->hostname);
	put_field(b, "Reporting-MTA", v, 0);
	if (r->envid) {
		char dec[512];
		put_field(b, "Original-Envelope-Id",
			  dsn_xtext_decode(r->envid, dec, sizeof(dec)) == 0 ? dec : r->envid, 0);
	}
	dsn_date(d, sizeof(d), r->arrival);
	put_field(b, "Arrival-Date", d, 0);
	for (size_t i = 0; i < r->nrcpt; i++) {
		const struct dsn_rcpt *rc = &r->rcpt[i];
		db_puts(b, "\r\n");
		if (rc->orcpt)
			put_orcpt(b, rc->orcpt);
		put_addr_field(b, "Final-Recipient", rc->addr, r->utf8);
		put_field(b, "Action", action_name(rc->action), 0);
		put_field(b, "Status", status_of(rc), 0);
		if (rc->remote_mta && dns_name_ok(rc->remote_mta)) {
			snprintf(v, sizeof(v), "dns; %s", rc->remote_mta);
			put_field(b, "Remote-MTA", v, 0);
		}
		if (rc->reply && rc->reply[0]) {
			const char *t = rc->diag_type && !strcmp(rc->diag_type, "smtp") ?
					"smtp" : "X-Relayd";
			snprintf(v, sizeof(v), "%s; %.*s", t, CLEAN_IN_MAX - 16, rc->reply);
			put_field(b, "Diagnostic-Code", v, r->utf8);
		}
		if (rc->last_attempt) {
			dsn_date(d, sizeof(d), rc->last_attempt);
			put_field(b, "Last-Attempt-Date", d, 0);
		}
		if (rc->action == DSN_ACTION_DELAYED && rc->will_retry_until) {
			dsn_date(d, sizeof(d), rc->will_retry_until);
			put_field(b, "Will-Retry-Until", d, 0);
		}
	}
}

/* ---- the original ---- */

/* Read the original: all of it when `full`, else its header section (up
 * to DSN_HEADERS_MAX, cut after the last whole line).  The result always
 * ends in CRLF unless empty. */
static int read_original(const struct dsn_report *r, int full, struct dbuf *o)
{
	char piece[16384];
	uint64_t off = 0;
	o->max = full ? (size_t)r->orig_size + 2 : DSN_HEADERS_MAX + 2;
	for (;;) {
		size_t got = 0, want = sizeof(piece);
		if (!full && off + want > DSN_HEADERS_MAX)
			want = DSN_HEADERS_MAX - (size_t)off;
		if (want == 0)
			break;
		int rc = r->read(r->read_arg, off, piece, want, &got);
		if (rc)
			return rc;
		db_put(o, piece, got);
		off += got;
		if (!full) {
			/* The blank line ending the headers (or none at all). */
			if (o->len >= 2 && memcmp(o->p, "\r\n", 2) == 0) {
				o->len = 0;
				break;
			}
			char *e = o->len >= 4 ? memmem(o->p, o->len, "\r\n\r\n", 4) : NULL;
			if (e) {
				o->len = (size_t)(e - o->p) + 2;
				break;
			}
		}
		if (got < want)
			break;
	}
	if (o->err)
		return -1;
	if (!full && o->len > 0) {
		/* No blank line within the bound: keep whole lines only. */
		size_t keep = o->len;
		while (keep >= 2 && memcmp(o->p + keep - 2, "\r\n", 2) != 0)
			keep--;
		o->len = keep >= 2 ? keep : 0;
	}
	return o->err;
}

/* The original as it may go into the report: every line ends in CRLF
 * (a bare CR or LF becomes one) and none is longer than 998 octets (a
 * longer one is broken, as a folded continuation while in the header
 * section).  The queue only holds what the SMTP server accepted, which
 * has this shape already; this keeps the report valid whatever is there. */
/* 1 when p already has that shape (what the SMTP server stores). */
static int well_formed(const char *p, size_t len)
{
	size_t col = 0;
	for (size_t i = 0; i < len; i++) {
		if (p[i] == '\r' && i + 1 < len && p[i + 1] == '\n') {
			i++;
			col = 0;
		} else if (p[i] == '\r' || p[i] == '\n' || ++col > 998) {
			return 0;
		}
	}
	return col == 0;
}

static int normalise(struct dbuf *o)
{
	if (well_formed(o->p, o->len))
		return 0;    /* no second copy of a large original */
	struct dbuf n = { .max = 2 * o->len + o->len / 998 * 3 + 4 };
	int in_head = 1;
	size_t col = 0;
	for (size_t i = 0; i < o->len; i++) {
		char c = o->p[i];
		if (c == '\r' || c == '\n') {
			if (c == '\r' && i + 1 < o->len && o->p[i + 1] == '\n')
				i++;
			if (col == 0)
				in_head = 0;
			db_put(&n, "\r\n", 2);
			col = 0;
			continue;
		}
		if (col >= 998) {
			db_put(&n, in_head ? "\r\n " : "\r\n", in_head ? 3 : 2);
			col = in_head ? 1 : 0;
		}
		db_put(&n, &c, 1);
		col++;
	}
	if (col > 0)
		db_put(&n, "\r\n", 2);
	free(o->p);
	*o = n;
	return n.err;
}

static int has_8bit(const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)p[i] >= 0x80)
			return 1;
	return 0;
}

/* A boundary found in none of the parts. */
static void pick_boundary(char *out, size_t len, const struct dsn_report *r,
			  const struct dbuf *parts, size_t nparts)
{
	for (unsigned n = 0;; n++) {
		/* RFC 2046 §5.1.1: at most 70 characters. */
		snprintf(out, len, "=_%.12s/%lld/%u", r->report_id, (long long)r->now, n);
		size_t bl = strlen(out), i;
		for (i = 0; i < nparts; i++)
			if (parts[i].len >= bl && memmem(parts[i].p, parts[i].len, out, bl))
				break;
		if (i == nparts)
			return;
	}
}

static const char *subject(enum dsn_kind k)
{
	return k == DSN_KIND_FAILURE ? "Undelivered Mail Returned to Sender" :
	       k == DSN_KIND_DELAY ? "Delayed Mail (still being retried)" :
				     "Successful Mail Delivery Report";
}

static void put_headers(struct dbuf *b, const struct dsn_report *r, const char *boundary,
			int eightbit)
{
	char v[CLEAN_IN_MAX + 300], d[64];
	snprintf(v, sizeof(v), "Mail Delivery System <MAILER-DAEMON@%s>", r->hostname);
	put_field(b, "From", v, 0);
	/* The sender as the envelope had it: an address we cannot write
	 * printably is left out of the header (the envelope still works). */
	if (printable_ascii(r->to) || r->utf8) {
		char clean[4 * CLEAN_IN_MAX + 1];
		clean_text(clean, sizeof(clean), r->to, r->utf8);
		snprintf(v, sizeof(v), "<%.*s>", CLEAN_IN_MAX, clean);
		put_field(b, "To", v, r->utf8);
	}
	put_field(b, "Subject", subject(r->kind), 0);
	dsn_date(d, sizeof(d), r->now);
	put_field(b, "Date", d, 0);
	snprintf(v, sizeof(v), "<%s.%s@%s>", r->report_id, r->queue_id, r->hostname);
	put_field(b, "Message-ID", v, 0);
	put_field(b, "Auto-Submitted", "auto-replied", 0);
	put_field(b, "MIME-Version", "1.0", 0);
	db_printf(b, "Content-Type: multipart/report; report-type=delivery-status;\r\n"
		  "    boundary=\"%s\"\r\n", boundary);
	if (eightbit)
		put_field(b, "Content-Transfer-Encoding", "8bit", 0);
	db_puts(b, "\r\nThis is a MIME-encapsulated delivery status notification.\r\n");
}

static void put_part_head(struct dbuf *b, const char *boundary, const char *desc,
			  const char *type, int eightbit)
{
	db_printf(b, "\r\n--%s\r\nContent-Description: %s\r\nContent-Type: %s\r\n",
		  boundary, desc, type);
	if (eightbit)
		db_puts(b, "Content-Transfer-Encoding: 8bit\r\n");
	db_puts(b, "\r\n");
}

int dsn_compose(const struct dsn_report *r, struct dsn_result *out)
{
	struct dbuf parts[3] = { { .max = 1u << 20 }, { .max = 1u << 20 }, { 0 } };
	struct dbuf b = { .max = r->size_limit ? (size_t)r->size_limit : SIZE_MAX };
	int rc = -1;
	memset(out, 0, sizeof(*out));
	int full = r->kind == DSN_KIND_FAILURE && r->ret_full && r->read &&
		   r->orig_size + DSN_OVERHEAD_MAX <= r->size_limit;
	put_text_part(&parts[0], r, !full);
	put_status_part(&parts[1], r);
	if (r->read && ((rc = read_original(r, full, &parts[2])) ||
			(rc = normalise(&parts[2]))))
		goto fail;
	rc = -1;
	if (parts[0].err || parts[1].err)
		goto fail;
	/* The sender goes into To:; keeping the boundary out of it too
	 * makes "nowhere but on its delimiter lines" hold for the whole
	 * report, not just the body. */
	char boundary[200];
	struct dbuf look[4] = { parts[0], parts[1], parts[2],
				{ .p = (char *)r->to, .len = strlen(r->to) } };
	pick_boundary(boundary, sizeof(boundary), r, look, 4);
	int text8 = has_8bit(parts[0].p, parts[0].len);
	int stat8 = has_8bit(parts[1].p, parts[1].len);
	int orig8 = has_8bit(parts[2].p, parts[2].len);
	put_headers(&b, r, boundary, text8 || stat8 || orig8);
	put_part_head(&b, boundary, "Notification", r->utf8 ? "text/plain; charset=utf-8" :
		      "text/plain; charset=us-ascii", text8);
	db_put(&b, parts[0].p, parts[0].len);
	put_part_head(&b, boundary, "Delivery report", r->utf8 ?
		      "message/global-delivery-status" : "message/delivery-status", stat8);
	db_put(&b, parts[1].p, parts[1].len);
	if (parts[2].len > 0) {
		const char *type = full ? (r->utf8 ? "message/global" : "message/rfc822") :
				   (r->utf8 ? "message/global-headers" : "text/rfc822-headers");
		put_part_head(&b, boundary, full ? "Undelivered Message" : "Message Headers",
			      type, orig8);
		db_put(&b, parts[2].p, parts[2].len);
	}
	db_printf(&b, "\r\n--%s--\r\n", boundary);
	if (b.err)
		goto fail;
	out->data = b.p;
	out->len = b.len;
	out->eightbit = text8 || stat8 || orig8 || has_8bit(b.p, b.len);
	out->full = full && parts[2].len > 0;
	b.p = NULL;
	rc = 0;
fail:
	for (size_t i = 0; i < 3; i++)
		free(parts[i].p);
	free(b.p);
	return rc;
}

void dsn_result_free(struct dsn_result *res)
{
	free(res->data);
	res->data = NULL;
	res->len = 0;
}
