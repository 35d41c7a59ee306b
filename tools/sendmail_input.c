/*
 * sendmail_input.c - standard input to SMTP content (see sendmail_input.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "sendmail_input.h"

/* Where the current line of the header section stands. */
enum { HS_START, HS_NAME, HS_WS, HS_FIELD, HS_NOT, HS_SKIP };

void sm_input_init(struct sm_input *in)
{
	in->head = NULL;
	in->head_len = in->head_cap = in->line_off = 0;
	in->blank = in->eightbit = in->done = in->in_body = 0;
	in->status = SM_IN_OK;
	in->head_state = HS_START;
	in->line_start = 1;
	in->pending_cr = in->pending_dot = in->first_done = 0;
	memset(&in->body, 0, sizeof(in->body));
	in->body.fd = -1;
	in->body.tmpdir = in->tmpdir;
}

static int fail(struct sm_input *in, enum sm_input_status st)
{
	if (in->status == SM_IN_OK)
		in->status = st;
	in->done = 1;
	return -1;
}

static int write_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static int spool_open(struct sm_spool *s)
{
	const char *dir = s->tmpdir ? s->tmpdir : getenv("TMPDIR");
	if (!dir || !*dir)
		dir = "/tmp";
	s->fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (s->fd >= 0)
		return 0;
	/* A file system without O_TMPFILE: a named file, unlinked at once. */
	char path[4096];
	if (snprintf(path, sizeof(path), "%s/relay-sendmail.XXXXXX", dir) >=
	    (int)sizeof(path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	s->fd = mkostemp(path, O_CLOEXEC);
	if (s->fd < 0)
		return -1;
	unlink(path);
	return 0;
}

static int spool_flush(struct sm_spool *s)
{
	if (s->fd < 0 || !s->len)
		return 0;
	if (write_all(s->fd, s->mem, s->len))
		return -1;
	s->len = 0;
	return 0;
}

static int spool_write(struct sm_spool *s, const char *p, size_t n)
{
	if (!s->mem && !(s->mem = malloc(SM_SPOOL_MEM)))
		return -1;
	while (n) {
		if (s->len == SM_SPOOL_MEM) {
			if ((s->fd < 0 && spool_open(s)) || spool_flush(s))
				return -1;
		}
		size_t k = SM_SPOOL_MEM - s->len;
		if (k > n)
			k = n;
		memcpy(s->mem + s->len, p, k);
		s->len += k;
		s->size += k;
		p += k;
		n -= k;
	}
	return 0;
}

uint64_t sm_input_size(const struct sm_input *in)
{
	return in->head_len + in->body.size;
}

/* Room for n more content bytes under size_max? */
static int room(struct sm_input *in, size_t n)
{
	if (in->size_max && sm_input_size(in) + n > in->size_max)
		return fail(in, SM_IN_TOO_BIG);
	return 0;
}

static int head_put(struct sm_input *in, const char *p, size_t n)
{
	if (!n)
		return 0;
	if (n > in->head_max - in->head_len)
		return fail(in, SM_IN_HEAD_TOO_BIG);
	if (in->head_len + n > in->head_cap) {
		size_t cap = in->head_cap ? in->head_cap : 4096;
		while (cap < in->head_len + n)
			cap *= 2;
		if (cap > in->head_max)
			cap = in->head_max;
		char *h = realloc(in->head, cap);
		if (!h)
			return fail(in, SM_IN_SPOOL_ERROR);
		in->head = h;
		in->head_cap = cap;
	}
	memcpy(in->head + in->head_len, p, n);
	in->head_len += n;
	return 0;
}

static int body_put(struct sm_input *in, const char *p, size_t n)
{
	if (spool_write(&in->body, p, n))
		return fail(in, SM_IN_SPOOL_ERROR);
	return 0;
}

/* The current line is no header field: it and the rest are the body. */
static int to_body(struct sm_input *in)
{
	in->in_body = 1;
	size_t n = in->head_len - in->line_off;
	in->head_len = in->line_off;
	return n ? body_put(in, in->head + in->line_off, n) : 0;
}

static int head_next_state(int st, unsigned char c, int have_field)
{
	int wsp = c == ' ' || c == '\t';
	int name = c > 32 && c < 127 && c != ':';
	switch (st) {
	case HS_START:
		return wsp ? (have_field ? HS_FIELD : HS_NOT) : name ? HS_NAME : HS_NOT;
	case HS_NAME:
		return name ? HS_NAME : wsp ? HS_WS : c == ':' ? HS_FIELD : HS_NOT;
	case HS_WS:
		return wsp ? HS_WS : c == ':' ? HS_FIELD : HS_NOT;
	default:
		return HS_FIELD;
	}
}

/* Is the first line, up to p[i], the "From " of an mbox file?  Such a
 * line is no header field and was never part of the message: sendmail
 * drops it. */
static int mbox_from(const struct sm_input *in, const char *p, size_t i)
{
	char b[5];
	if (in->line_off || in->first_done || in->head_len + i != sizeof(b))
		return 0;
	if (in->head_len)
		memcpy(b, in->head, in->head_len);
	memcpy(b + in->head_len, p, i);
	return !memcmp(b, "From ", sizeof(b));
}

/* n content bytes (no CR or LF) of the current line. */
static int put_bytes(struct sm_input *in, const char *p, size_t n)
{
	if (!in->in_body && in->head_state == HS_SKIP)
		return 0;
	if (room(in, n))
		return -1;
	for (size_t i = 0; i < n && !in->eightbit; i++)
		if ((unsigned char)p[i] >= 0x80)
			in->eightbit = 1;
	if (in->in_body)
		return body_put(in, p, n);
	for (size_t i = 0; i < n; i++) {
		if (in->head_state != HS_FIELD) {
			in->head_state = head_next_state(in->head_state,
							 (unsigned char)p[i],
							 in->line_off > 0);
			if (in->head_state == HS_NOT && mbox_from(in, p, i)) {
				in->head_state = HS_SKIP;
				in->head_len = 0;
				return 0;
			}
			if (in->head_state == HS_NOT) {
				if (head_put(in, p, i) || to_body(in))
					return -1;
				return body_put(in, p + i, n - i);
			}
		}
	}
	return head_put(in, p, n);
}

static int line_end(struct sm_input *in)
{
	if (in->pending_dot) {
		in->pending_dot = 0;
		if (!in->ignore_dots) {
			in->done = 1;
			return 0;
		}
		if (put_bytes(in, ".", 1))
			return -1;
	}
	in->line_start = 1;
	int first = !in->first_done;
	in->first_done = 1;
	if (!in->in_body) {
		if (in->head_state == HS_SKIP && first) {
			in->head_state = HS_START;
			return 0;
		}
		if (in->head_state == HS_START) {
			/* the empty line: not kept, the sender writes it */
			in->blank = 1;
			in->in_body = 1;
			return 0;
		}
		if (in->head_state != HS_FIELD && to_body(in))
			return -1;
	}
	if (room(in, 2))
		return -1;
	if (in->in_body)
		return body_put(in, "\r\n", 2);
	in->head_state = HS_START;
	if (head_put(in, "\r\n", 2))
		return -1;
	in->line_off = in->head_len;
	return 0;
}

int sm_input_feed(struct sm_input *in, const char *buf, size_t n)
{
	size_t i = 0;
	while (i < n && !in->done) {
		char c = buf[i];
		if (in->pending_cr) {
			if (c == '\r') {
				i++;
				continue;
			}
			in->pending_cr = 0;
			if (line_end(in))
				break;
			if (c == '\n')
				i++;
			continue;
		}
		if (c == '\r') {
			in->pending_cr = 1;
			i++;
			continue;
		}
		if (c == '\n') {
			line_end(in);
			i++;
			continue;
		}
		if (in->line_start && c == '.' && !in->pending_dot) {
			in->pending_dot = 1;
			in->line_start = 0;
			i++;
			continue;
		}
		if (in->pending_dot) {
			in->pending_dot = 0;
			if (put_bytes(in, ".", 1))
				break;
		}
		in->line_start = 0;
		size_t k = i;
		while (k < n && buf[k] != '\r' && buf[k] != '\n')
			k++;
		if (put_bytes(in, buf + i, k - i))
			break;
		i = k;
	}
	return in->done;
}

void sm_input_end(struct sm_input *in)
{
	if (!in->done && (in->pending_cr || in->pending_dot || !in->line_start)) {
		in->pending_cr = 0;
		line_end(in);
	}
	in->done = 1;
	if (in->status == SM_IN_OK && spool_flush(&in->body))
		fail(in, SM_IN_SPOOL_ERROR);
}

enum sm_input_status sm_input_read(struct sm_input *in, int fd)
{
	char buf[65536];
	for (;;) {
		ssize_t r = read(fd, buf, sizeof(buf));
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			fail(in, SM_IN_READ_ERROR);
			break;
		}
		if (r == 0 || sm_input_feed(in, buf, (size_t)r))
			break;
	}
	sm_input_end(in);
	return in->status;
}

ssize_t sm_spool_read(struct sm_spool *s, uint64_t *off, char *buf,
		      size_t bufsize, const char **data)
{
	if (*off >= s->size)
		return 0;
	if (s->fd < 0) {
		*data = s->mem + *off;
		size_t n = (size_t)(s->size - *off);
		*off += n;
		return (ssize_t)n;
	}
	ssize_t r;
	do
		r = pread(s->fd, buf, bufsize, (off_t)*off);
	while (r < 0 && errno == EINTR);
	if (r < 0)
		return -1;
	if (r == 0) {
		errno = EIO;           /* the file is shorter than written */
		return -1;
	}
	*off += (uint64_t)r;
	*data = buf;
	return r;
}

void sm_input_free(struct sm_input *in)
{
	free(in->head);
	free(in->body.mem);
	if (in->body.fd >= 0)
		close(in->body.fd);
	in->head = in->body.mem = NULL;
	in->body.fd = -1;
}
