/*
 * queue_spool.c - a message body on its way in.
 *
 * Bytes stay in memory up to QUEUE_SPOOL_MEM_MAX and move to an anonymous
 * file under queue_dir/tmp beyond that, so a receiving session holds a
 * bounded buffer whatever the message size.  The file is unlinked from
 * birth (O_TMPFILE, or create-then-unlink), so a crash leaves nothing to
 * clean up, and no directory needs an fsync for it.  After the spill,
 * writes are gathered in a 64 KiB buffer, so a message of short lines
 * costs a write(2) per 64 KiB, not per line.  The writer thread copies the
 * spool into body chunks inside the commit (the file part with pread, the
 * unwritten tail from memory); page-cache writes here are not fsync'd:
 * durability comes from the LMDB commit alone.
 *
 * A write(2) to a slow or busy disk can take as long as the disk wants,
 * so a spool used on an event loop (queue_spool_async) never makes one on
 * the calling thread: the file is created and each full buffer written in
 * libuv's thread pool, one job at a time, while the next buffer fills.
 * The caller stops feeding while a job is in flight and the next buffer
 * is full too (queue_spool_busy), which bounds the memory, and it submits
 * only once no job is in flight (queue_spool_pending); the spool's ready
 * callback tells it when to go on.  A spool freed with a job in flight is
 * freed by the job's completion.
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
				  * spill, the bytes not yet in the file */
	size_t memlen, memcap;
	int fd;                  /* -1 while in memory */
	uint64_t flushed;        /* bytes in the file */
	uint64_t size;
	int err;                 /* sticky write error */
	/* Asynchronous mode (loop != NULL). */
	uv_loop_t *loop;
	queue_spool_ready_fn *ready;
	void *ready_arg;
	uv_work_t work;
	int inflight;            /* a job runs in the pool */
	int freed;               /* queue_spool_free came during the job */
	uint8_t *wbuf;           /* the job's buffer (a write) or NULL (the
				  * file's creation) */
	size_t wlen, wcap;
	int wrc;                 /* the job's result */
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

#define SPILL_BUF (64u * 1024u)

static void job_run(uv_work_t *w)
{
	struct queue_spool *s = w->data;
	s->wrc = s->wbuf ? write_all(s->fd, s->wbuf, s->wlen) : spill_open(s);
}

static void job_done(uv_work_t *w, int status);

/* Start the next file job if one is due: create the file once the
 * memory bound is passed, then write each full buffer. */
static void job_next(struct queue_spool *s)
{
	if (s->inflight || s->err)
		return;
	if (s->fd < 0) {
		if (s->memlen <= QUEUE_SPOOL_MEM_MAX)
			return;
		s->wbuf = NULL;
	} else {
		if (s->memlen < SPILL_BUF)
			return;
		/* Swap buffers: the job writes this one while the caller
		 * fills the other. */
		uint8_t *p = s->mem;
		size_t cap = s->memcap;
		s->mem = s->wbuf;
		s->memcap = s->wcap;
		s->wbuf = p;
		s->wcap = cap;
		s->wlen = s->memlen;
		s->memlen = 0;
	}
	s->work.data = s;
	if (uv_queue_work(s->loop, &s->work, job_run, job_done)) {
		s->err = QUEUE_EIO;
		return;
	}
	s->inflight = 1;
}

static void spool_release(struct queue_spool *s)
{
	if (s->fd >= 0)
		close(s->fd);
	free(s->mem);
	free(s->wbuf);
	free(s);
}

static void job_done(uv_work_t *w, int status)
{
	struct queue_spool *s = w->data;
	s->inflight = 0;
	if (s->freed) {
		spool_release(s);
		return;
	}
	if (status || s->wrc) {
		if (!s->err)
			s->err = s->wrc ? s->wrc : QUEUE_EIO;
	} else if (s->wbuf) {
		s->flushed += s->wlen;
		s->wlen = 0;
	}
	job_next(s);
	if (s->ready)
		s->ready(s->ready_arg);
}

int queue_spool_async(struct queue_spool *s, uv_loop_t *loop,
		      queue_spool_ready_fn *ready, void *arg)
{
	if (s->size || s->loop)
		return QUEUE_EINVAL;
	s->loop = loop;
	s->ready = ready;
	s->ready_arg = arg;
	return 0;
}

int queue_spool_busy(const struct queue_spool *s)
{
	return s->inflight && s->memlen >= SPILL_BUF;
}

int queue_spool_pending(const struct queue_spool *s)
{
	return s->inflight;
}

int queue_spool_write(struct queue_spool *s, const void *buf, size_t len)
{
	if (s->err)
		return s->err;
	if (s->loop) {
		int rc = append_mem(s, buf, len);
		if (rc)
			return rc;
		s->size += len;
		job_next(s);
		return s->err;
	}
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
	if (s->inflight)
		return QUEUE_EINVAL;     /* the caller waits for ready */
	return s->err;
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
	uint8_t *p = buf;
	/* The tail past the file is in memory. */
	if (off + len > s->flushed) {
		uint64_t from = off > s->flushed ? off : s->flushed;
		size_t n = (size_t)(off + len - from);
		memcpy(p + (from - off), s->mem + (from - s->flushed), n);
		len -= n;
	}
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
	if (s->inflight)
		s->freed = 1;            /* job_done frees it */
	else
		spool_release(s);
}
