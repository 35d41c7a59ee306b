/*
 * queue_codec.h - the byte layout of queue records.  Every record starts
 * with a version byte; integers are little-endian in values and big-endian
 * in keys (so keys sort numerically).  Strings are a u32 length then the
 * bytes, with 0xffffffff meaning NULL.  Decoders check every length against
 * the record and reject embedded NULs: a damaged record is QUEUE_ECORRUPT,
 * never a crash.
 */
#ifndef RELAYD_QUEUE_CODEC_H
#define RELAYD_QUEUE_CODEC_H

#include <stddef.h>
#include <stdint.h>
#include "queue.h"

struct qbuf {
	uint8_t *p;
	size_t len, cap;
	int err;                 /* sticky: allocation failed */
};

void qbuf_u8(struct qbuf *b, uint8_t v);
void qbuf_u32(struct qbuf *b, uint32_t v);
void qbuf_u64(struct qbuf *b, uint64_t v);
void qbuf_str(struct qbuf *b, const char *s);
void qbuf_free(struct qbuf *b);

struct qrd {
	const uint8_t *p;
	size_t len, off;
	int err;                 /* sticky: ran past the end or bad string */
};

uint8_t qrd_u8(struct qrd *r);
uint32_t qrd_u32(struct qrd *r);
uint64_t qrd_u64(struct qrd *r);
/* Returns a malloc'd copy, or NULL for a NULL string (check r->err). */
char *qrd_str(struct qrd *r);

/* Envelope record (msg DBI): everything in struct queue_msg but the id,
 * the recipients and their states. */
int queue__msg_encode(struct qbuf *b, const struct queue_msg *m);
int queue__msg_decode(const void *p, size_t len, struct queue_msg *m);

/* Recipient record (rcpt DBI). */
int queue__rcpt_encode(struct qbuf *b, const struct queue_rcpt *r);
int queue__rcpt_decode(const void *p, size_t len, struct queue_rcpt *r);
void queue__rcpt_clear(struct queue_rcpt *r);

/* Attempt history (hist DBI): up to QUEUE_HIST_MAX attempts, oldest first.
 * Decoding fills a[0..*n) (a has QUEUE_HIST_MAX entries). */
int queue__hist_encode(struct qbuf *b, const struct queue_attempt *a, size_t n);
int queue__hist_decode(const void *p, size_t len, struct queue_attempt *a,
		       size_t *n);

/* Destination state (dstate DBI). */
#define QUEUE_NEVER INT64_MAX
struct queue_dstate {
	int64_t earliest;        /* QUEUE_NEVER when nothing is indexed */
	int64_t blocked_until;   /* 0: not blocked */
	uint64_t nrcpt;
};
int queue__dstate_encode(struct qbuf *b, const struct queue_dstate *d);
int queue__dstate_decode(const void *p, size_t len, struct queue_dstate *d);

#endif
