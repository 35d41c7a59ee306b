/*
 * smtp_data.c - DATA/BDAT content stream (see smtp_data.h).
 */
#include <string.h>
#include <strings.h>
#include "smtp_data.h"

enum {
	ST_LS,      /* at the start of a line */
	ST_DOT,     /* DATA: the line started with '.' */
	ST_DOTCR,   /* DATA: ".\r" at the start of a line */
	ST_LSCR,    /* '\r' at the start of a line */
	ST_IN,      /* inside a line */
	ST_CR,      /* inside a line, after '\r' */
};

void smtp_data_init(struct smtp_data *d, enum smtp_data_mode mode,
		    uint64_t limit, smtp_data_emit_fn *emit,
		    smtp_data_headers_fn *end_headers, void *arg)
{
	memset(d, 0, sizeof(*d));
	d->mode = mode;
	d->limit = limit;
	d->emit = emit;
	d->end_headers = end_headers;
	d->arg = arg;
	d->state = ST_LS;
	d->in_headers = 1;
}

int smtp_data_emit(struct smtp_data *d, const void *buf, size_t len)
{
	if (!len || d->emit_failed || d->too_big || d->bare_eol)
		return 0;
	/* size never passes limit, so this cannot wrap whatever the limit. */
	if (len > d->limit - d->size) {
		d->too_big = 1;
		return 0;
	}
	d->size += len;
	for (size_t i = 0; i < len && !d->eightbit; i++)
		d->eightbit = ((const unsigned char *)buf)[i] > 127;
	if (d->emit(d->arg, buf, len)) {
		d->emit_failed = 1;
		return -1;
	}
	return 0;
}

static void end_headers(struct smtp_data *d)
{
	if (!d->in_headers)
		return;
	d->in_headers = 0;
	if (d->end_headers)
		d->end_headers(d->arg, d);
}

static int name_is(const char *head, size_t n, const char *name)
{
	size_t k = strlen(name);
	return n == k && strncasecmp(head, name, k) == 0;
}

/* Length of a field name at the start of p[0..n): printable characters
 * other than ':' (RFC 5322 §3.6.8), then optional white space before the
 * colon, which §4.5 (obsolete syntax) says receivers must accept.
 * Returns the name length, with *rest set past the white space; 0 when p
 * does not start like a field. */
static size_t field_name(const char *p, size_t n, size_t *rest)
{
	size_t i = 0;
	while (i < n && (unsigned char)p[i] > 32 && (unsigned char)p[i] < 127 &&
	       p[i] != ':')
		i++;
	size_t name = i;
	while (i < n && (p[i] == ' ' || p[i] == '\t'))
		i++;
	*rest = i;
	return name;
}

/* Decide what the buffered start of a header-section line is: a field
 * (counted), a continuation, or the first line of the body.  `full`: the
 * buffer filled before a colon; a name that long is still a name. */
static void head_decide(struct smtp_data *d, int full)
{
	int header = 0;
	size_t rest, name = field_name(d->head, d->head_len, &rest);
	if (d->head_len && (d->head[0] == ' ' || d->head[0] == '\t')) {
		header = 1;                   /* folded continuation */
	} else if (name && rest < d->head_len && d->head[rest] == ':') {
		header = 1;
		if (name_is(d->head, name, "Received"))
			d->received++;
		else if (name_is(d->head, name, "Message-ID"))
			d->have_msgid = 1;
		else if (name_is(d->head, name, "Date"))
			d->have_date = 1;
	} else if (full && name && rest == d->head_len) {
		header = 1;                   /* a very long field name */
	}
	if (!header) {
		/* A line that is no header field ends the header section;
		 * the empty line that must separate it is supplied. */
		end_headers(d);
		smtp_data_emit(d, "\r\n", 2);
	}
	smtp_data_emit(d, d->head, d->head_len);
	d->head_pending = 0;
	d->head_len = 0;
}

/* One content byte of a line (not CR/LF). */
static void line_byte(struct smtp_data *d, char c)
{
	if (d->head_pending) {
		d->head[d->head_len++] = c;
		if (c == ':' || (d->head_len == 1 && (c == ' ' || c == '\t')))
			head_decide(d, 0);
		else if (d->head_len == sizeof(d->head))
			head_decide(d, 1);
		return;
	}
	smtp_data_emit(d, &c, 1);
}

/* The first content byte of a line. */
static void line_start(struct smtp_data *d, char c)
{
	if (d->in_headers) {
		d->head_pending = 1;
		d->head_len = 0;
	}
	line_byte(d, c);
	d->state = ST_IN;
}

/* A line ended with CRLF (empty when at line start). */
static void line_end(struct smtp_data *d, int empty)
{
	if (d->in_headers && empty) {
		end_headers(d);
	} else if (d->head_pending) {
		head_decide(d, 0);
	}
	smtp_data_emit(d, "\r\n", 2);
	d->state = ST_LS;
}

static void bare(struct smtp_data *d)
{
	d->bare_eol = 1;
}

/* Emit a run of ordinary body bytes up to the next CR or LF. */
static size_t body_run(struct smtp_data *d, const char *p, size_t n)
{
	size_t i = 0;
	while (i < n && p[i] != '\r' && p[i] != '\n')
		i++;
	smtp_data_emit(d, p, i);
	return i;
}

/*
 * A bare LF never leaves the stream at a line start: only CR LF does.
 * Otherwise "\n.\r\n" would end the data here while the next hop, which
 * sees the same bytes, reads on: the SMTP smuggling gap.  And a CR is
 * always a possible start of CR LF, even right after a bare CR, so the
 * terminator is recognised exactly where "\r\n.\r\n" occurs.
 */
size_t smtp_data_feed(struct smtp_data *d, const char *buf, size_t len)
{
	size_t i = 0;
	while (i < len && !d->done) {
		char c = buf[i++];
		if (c == '\n' && d->state != ST_CR && d->state != ST_LSCR &&
		    d->state != ST_DOTCR) {
			bare(d);
			d->state = ST_IN;
			continue;
		}
		switch (d->state) {
		case ST_LS:
			if (c == '.' && d->mode == SMTP_DATA_DOT)
				d->state = ST_DOT;
			else if (c == '\r')
				d->state = ST_LSCR;
			else
				line_start(d, c);
			break;
		case ST_DOT:
			if (c == '\r')
				d->state = ST_DOTCR;
			else
				line_start(d, c);   /* the stuffed dot is dropped */
			break;
		case ST_DOTCR:
		case ST_LSCR:
		case ST_CR:
			if (c == '\n' && d->state == ST_DOTCR) {
				end_headers(d);
				d->done = 1;
			} else if (c == '\n') {
				line_end(d, d->state == ST_LSCR);
			} else {
				bare(d);
				d->state = c == '\r' ? ST_CR : ST_IN;
			}
			break;
		case ST_IN:
			if (c == '\r') {
				d->state = ST_CR;
			} else if (d->head_pending) {
				line_byte(d, c);
			} else {
				i--;
				i += body_run(d, buf + i, len - i);
			}
			break;
		}
	}
	return i;
}

void smtp_data_finish(struct smtp_data *d)
{
	if (d->state == ST_CR || d->state == ST_LSCR || d->state == ST_DOTCR)
		bare(d);
	else if (d->state == ST_IN || d->state == ST_DOT)
		line_end(d, 0);
	end_headers(d);
	d->done = 1;
}
