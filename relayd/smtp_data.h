/*
 * smtp_data.h - the message content stream of DATA and BDAT.
 *
 * Bytes from the client go in; the stored message comes out through the
 * emit callback.  Along the way this module
 *  - ends DATA only at <CRLF>.<CRLF> and removes dot-stuffing (RFC 5321
 *    §4.5.2); BDAT content (raw mode) has no terminator and no stuffing;
 *  - flags any bare CR or bare LF (SMTP smuggling): the session rejects
 *    the message, and since the terminator is still only <CRLF>.<CRLF>,
 *    nothing after a bare LF can become a command;
 *  - watches the header section: counts Received: fields (loop guard) and
 *    notes Message-ID: and Date:, calling end_headers exactly once where
 *    the header section ends, so missing fields are added there
 *    (RFC 6409 §8) without buffering the message;
 *  - notes whether any stored octet is over 127, whatever BODY= said.
 * Long lines are kept whole (RFC 5321 §4.5.3.1.6 allows accepting them).
 * Memory use is this struct: constant whatever the input.
 */
#ifndef RELAYD_SMTP_DATA_H
#define RELAYD_SMTP_DATA_H

#include <stddef.h>
#include <stdint.h>

enum smtp_data_mode { SMTP_DATA_DOT, SMTP_DATA_RAW };

struct smtp_data;
/* Receives stored bytes; returns 0 or non-zero to stop emitting (the
 * stream is still consumed to its end). */
typedef int smtp_data_emit_fn(void *arg, const void *buf, size_t len);
/* Called once where the header section ends; may emit. */
typedef int smtp_data_headers_fn(void *arg, struct smtp_data *d);

#define SMTP_DATA_HEAD_MAX 128

struct smtp_data {
	enum smtp_data_mode mode;
	smtp_data_emit_fn *emit;
	smtp_data_headers_fn *end_headers;
	void *arg;
	uint64_t limit;          /* stop emitting beyond this many bytes */

	/* Results. */
	uint64_t size;           /* bytes emitted */
	unsigned received;       /* Received: fields seen */
	int have_msgid, have_date;
	int bare_eol;            /* a bare CR or LF was seen */
	int eightbit;            /* an octet over 127 was emitted */
	int too_big;             /* limit exceeded */
	int emit_failed;         /* emit returned non-zero */
	int done;                /* DATA terminator seen / raw stream ended */

	/* Private state. */
	int state;
	int in_headers;
	int head_pending;        /* buffering a line's start in head[] */
	size_t head_len;
	char head[SMTP_DATA_HEAD_MAX];
};

void smtp_data_init(struct smtp_data *d, enum smtp_data_mode mode,
		    uint64_t limit, smtp_data_emit_fn *emit,
		    smtp_data_headers_fn *end_headers, void *arg);

/* Consume up to len bytes; returns how many were used.  In DOT mode it
 * stops right after the terminator (d->done set), leaving the rest, which
 * is pipelined commands, to the caller. */
size_t smtp_data_feed(struct smtp_data *d, const char *buf, size_t len);

/* Raw mode: the last chunk has been fed.  Completes the header section
 * and a final line without CRLF. */
void smtp_data_finish(struct smtp_data *d);

/* Emit through the stream's callback (for end_headers). */
int smtp_data_emit(struct smtp_data *d, const void *buf, size_t len);

#endif
