/*
 * sendmail_smtp.c - one blocking SMTP connection (see sendmail_smtp.h).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <unistd.h>
#include "sendmail_smtp.h"

/* A multi-line reply longer than this is not from relayd. */
#define MAX_REPLY_LINES 100
#define MAX_LINE 2048

static int io_fail(struct sm_smtp *c, int err)
{
	c->err = err == EAGAIN || err == EWOULDBLOCK || err == EINPROGRESS ?
		 "timed out" : strerror(err);
	return -1;
}

void sm_smtp_timeout(struct sm_smtp *c, unsigned seconds)
{
	struct timeval tv = { .tv_sec = seconds };
	setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

int sm_smtp_connect(struct sm_smtp *c, const struct sockaddr *sa,
		    socklen_t salen, unsigned timeout)
{
	c->rlen = c->roff = c->wlen = 0;
	c->fd = socket(sa->sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c->fd < 0)
		return io_fail(c, errno);
	/* On Linux SO_SNDTIMEO bounds connect() as well. */
	sm_smtp_timeout(c, timeout);
	int rc;
	do
		rc = connect(c->fd, sa, salen);
	while (rc < 0 && errno == EINTR);
	if (rc < 0) {
		int e = errno;
		close(c->fd);
		c->fd = -1;
		return io_fail(c, e);
	}
	return 0;
}

static int flush(struct sm_smtp *c)
{
	size_t off = 0;
	while (off < c->wlen) {
		ssize_t w = send(c->fd, c->wbuf + off, c->wlen - off, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return io_fail(c, errno);
		off += (size_t)w;
	}
	c->wlen = 0;
	return 0;
}

static int put(struct sm_smtp *c, const char *p, size_t n)
{
	while (n) {
		if (c->wlen == sizeof(c->wbuf) && flush(c))
			return -1;
		size_t k = sizeof(c->wbuf) - c->wlen;
		if (k > n)
			k = n;
		memcpy(c->wbuf + c->wlen, p, k);
		c->wlen += k;
		p += k;
		n -= k;
	}
	return 0;
}

/* One reply line without its CRLF into line (NUL-terminated). */
static int read_line(struct sm_smtp *c, char *line, size_t size)
{
	size_t n = 0;
	for (;;) {
		if (c->roff == c->rlen) {
			ssize_t r = recv(c->fd, c->rbuf, sizeof(c->rbuf), 0);
			if (r < 0 && errno == EINTR)
				continue;
			if (r < 0)
				return io_fail(c, errno);
			if (r == 0) {
				c->err = "connection closed by relayd";
				return -1;
			}
			c->rlen = (size_t)r;
			c->roff = 0;
		}
		char ch = c->rbuf[c->roff++];
		if (ch == '\n')
			break;
		if (n + 1 >= size) {
			c->err = "reply line too long";
			return -1;
		}
		line[n++] = ch;
	}
	if (n && line[n - 1] == '\r')
		n--;
	line[n] = 0;
	return 0;
}

static void note_extension(struct sm_smtp *c, const char *kw)
{
	if (!strcasecmp(kw, "8BITMIME"))
		c->ext_8bitmime = 1;
	else if (!strcasecmp(kw, "SMTPUTF8"))
		c->ext_smtputf8 = 1;
	else if (!strcasecmp(kw, "DSN"))
		c->ext_dsn = 1;
	else if (!strncasecmp(kw, "SIZE", 4) && (!kw[4] || kw[4] == ' '))
		c->ext_size = 1;
}

/* Read a reply; with ehlo set, each line after the first is an
 * extension keyword. */
static int read_reply(struct sm_smtp *c, int ehlo)
{
	char line[MAX_LINE];
	size_t used = 0;
	c->reply[0] = 0;
	for (int i = 0; i < MAX_REPLY_LINES; i++) {
		if (read_line(c, line, sizeof(line)))
			return -1;
		if (c->verbose)
			fprintf(stderr, "<<< %s\n", line);
		if (strlen(line) < 3 || line[0] < '2' || line[0] > '5' ||
		    line[1] < '0' || line[1] > '9' || line[2] < '0' || line[2] > '9' ||
		    (line[3] && line[3] != ' ' && line[3] != '-')) {
			c->err = "malformed reply";
			return -1;
		}
		int code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
		if (i && code != c->code) {
			c->err = "malformed reply";
			return -1;
		}
		c->code = code;
		if (ehlo && i)
			note_extension(c, line + 4);
		int w = snprintf(c->reply + used, sizeof(c->reply) - used, "%s%s",
				 used ? " " : "", line);
		if (w > 0)
			used += (size_t)w < sizeof(c->reply) - used ? (size_t)w :
				sizeof(c->reply) - used - 1;
		if (line[3] != '-')
			return code;
	}
	c->err = "reply has too many lines";
	return -1;
}

int sm_smtp_reply(struct sm_smtp *c)
{
	return read_reply(c, 0);
}

static int vcmd(struct sm_smtp *c, int ehlo, const char *fmt, va_list ap)
{
	char line[MAX_LINE];
	int n = vsnprintf(line, sizeof(line) - 2, fmt, ap);
	if (n < 0 || (size_t)n >= sizeof(line) - 2) {
		c->err = "command too long";
		return -1;
	}
	if (c->verbose)
		fprintf(stderr, ">>> %s\n", line);
	memcpy(line + n, "\r\n", 2);
	if (put(c, line, (size_t)n + 2) || flush(c))
		return -1;
	return read_reply(c, ehlo);
}

int sm_smtp_cmd(struct sm_smtp *c, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int rc = vcmd(c, 0, fmt, ap);
	va_end(ap);
	return rc;
}

static int ehlo(struct sm_smtp *c, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int rc = vcmd(c, 1, fmt, ap);
	va_end(ap);
	return rc;
}

int sm_smtp_hello(struct sm_smtp *c, const char *name)
{
	c->ext_8bitmime = c->ext_smtputf8 = c->ext_dsn = c->ext_size = 0;
	int code = ehlo(c, "EHLO %s", name);
	if (code >= 500) {
		c->ext_8bitmime = c->ext_smtputf8 = c->ext_dsn = c->ext_size = 0;
		code = sm_smtp_cmd(c, "HELO %s", name);
	}
	c->at_line_start = 1;
	return code;
}

int sm_smtp_content(struct sm_smtp *c, const char *p, size_t n)
{
	while (n) {
		if (c->at_line_start && *p == '.' && put(c, ".", 1))
			return -1;
		const char *nl = memchr(p, '\n', n);
		size_t k = nl ? (size_t)(nl - p) + 1 : n;
		if (put(c, p, k))
			return -1;
		c->at_line_start = nl != NULL;
		p += k;
		n -= k;
	}
	return 0;
}

int sm_smtp_content_end(struct sm_smtp *c)
{
	if (!c->at_line_start && put(c, "\r\n", 2))
		return -1;
	c->at_line_start = 1;
	if (c->verbose)
		fprintf(stderr, ">>> .\n");
	return put(c, ".\r\n", 3) || flush(c) ? -1 : 0;
}

void sm_smtp_close(struct sm_smtp *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
}
