/*
 * queue_spool.c - a message body on its way in.
 *
 * Bytes stay in memory up to QUEUE_SPOOL_MEM_MAX and move to an anonymous
 * file under queue_dir/tmp beyond that, so a receiving session holds a
 * bounded buffer whatever the message size.  The file is unlinked from
 * birth (O_TMPFILE, or create-then-unlink), so a crash leaves nothing to
 * clean up.  After the spill, writes are gathered in a 64 KiB buffer, so
 * a message of short lines costs a write(2) per 64 KiB, not per line.
 * The writer thread copies the spool into body chunks inside the commit;
 * page-cache writes here are not fsync'd: durability comes from the LMDB
 * commit alone.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "queue_int.h"

struct queue_spool {
	struct queue *q;
	uint8_t *mem;            /* the body while in memory; after the
				  * spill, a write buffer for the file */
	size_t memlen, memcap;
	int fd;                  /* -1 while in memory */
	uint64_t flushed;        /* bytes in the file */
	uint64_t size;
	int err;                 /* sticky write error */
};

int queue_spool_new(struct queue *q, struct queue_spool **sp)
{
	struct queue_spool *s = calloc(1, sizeof(*s));
	if (!s)
		return QUEUE_ENOMEM;
	s->q = q;
	s->fd = -1;
	*sp = s;
	return 0;
}

static int spill_open(struct queue_spool *s)
{
	char path[4096];
	if ((size_t)snprintf(path, sizeof(path), "%s/tmp", s->q->dir) >= sizeof(path))
		return QUEUE_EINVAL;
#ifdef O_TMPFILE
	s->fd = open(path, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (s->fd >= 0)
		return 0;
#endif
	static const char tmpl[] = "/spool.XXXXXX";
	if (strlen(path) + sizeof(tmpl) > sizeof(path))
		return QUEUE_EINVAL;
	strcat(path, tmpl);
	s->fd = mkostemp(path, O_CLOEXEC);
	if (s->fd < 0)
		return errno == ENOSPC || errno == EDQUOT ? QUEUE_ENOSPC : QUEUE_EIO;
	unlink(path);
	return 0;
}

static int write_all(int fd, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	while (len) {
		ssize_t n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return errno == ENOSPC || errno == EDQUOT ? QUEUE_ENOSPC : QUEUE_EIO;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

#define SPILL_BUF (64u * 1024u)

static int append_mem(struct queue_spool *s, const void *buf, size_t len)
{
	if (s->memcap - s->memlen < len) {
		size_t cap = s->memcap ? s->memcap : 8192;
		while (cap - s->memlen < len)
			cap *= 2;
		uint8_t *p = realloc(s->mem, cap);
		if (!p)
			return s->err = QUEUE_ENOMEM;
		s->mem = p;
		s->memcap = cap;
	}
	memcpy(s->mem + s->memlen, buf, len);
	s->memlen += len;
	return 0;
}

/* Write the buffer to the file. */
static int spill_flush(struct queue_spool *s)
{
	if (s->fd < 0 || s->memlen == 0)
		return s->err;
	int rc = write_all(s->fd, s->mem, s->memlen);
	if (rc)
		return s->err = rc;
	s->flushed += s->memlen;
	s->memlen = 0;
	return 0;
}

int queue_spool_write(struct queue_spool *s, const void *buf, size_t len)
{
	if (s->err)
		return s->err;
	if (s->fd < 0 && s->memlen + len > QUEUE_SPOOL_MEM_MAX) {
		int rc = spill_open(s);
		if (rc)
			return s->err = rc;
		s->flushed = 0;
	}
	if (s->fd >= 0 && s->memlen + len > SPILL_BUF) {
		int rc = spill_flush(s);
		if (rc)
			return rc;
		if (len >= SPILL_BUF) {
			if ((rc = write_all(s->fd, buf, len)))
				return s->err = rc;
			s->flushed += len;
			s->size += len;
			return 0;
		}
	}
	int rc = append_mem(s, buf, len);
	if (!rc)
		s->size += len;
	return rc;
}

int queue__spool_flush(struct queue_spool *s)
{
	return spill_flush(s);
}

uint64_t queue_spool_size(const struct queue_spool *s)
{
	return s->size;
}

int queue__spool_read(struct queue_spool *s, uint64_t off, void *buf,
		      size_t len)
{
	if (s->err)
		return s->err;
	if (off > s->size || s->size - off < len)
		return QUEUE_EINVAL;
	if (s->fd < 0) {
		memcpy(buf, s->mem + off, len);
		return 0;
	}
	if (s->memlen)
		return QUEUE_EINVAL;     /* queue_op_submit flushes first */
	uint8_t *p = buf;
	while (len) {
		ssize_t n = pread(s->fd, p, len, (off_t)off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return QUEUE_EIO;
		p += n;
		off += (uint64_t)n;
		len -= (size_t)n;
	}
	return 0;
}

void queue_spool_free(struct queue_spool *s)
{
	if (!s)
		return;
	if (s->fd >= 0)
		close(s->fd);
	free(s->mem);
	free(s);
}
