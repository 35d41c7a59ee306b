/*
 * sendmail_input.h - the message relay-sendmail reads from its standard
 * input, made into what SMTP carries.
 *
 * Line endings are normalised as the bytes arrive: LF, CR LF and any run
 * of CRs before an LF end a line; a CR followed by anything else ends a
 * line as well (relayd refuses a bare CR, and a lone CR is an old line
 * ending, not content); every line ends in CR LF, the last one included.
 * Without -i a line holding a single "." ends the input, as in sendmail;
 * with -i it is content.  Dot-stuffing is not done here: the content is
 * kept as it will be stored, and stuffed only on the wire.
 *
 * A first line "From ..." (an mbox separator) is dropped, as sendmail
 * does.
 *
 * The header section (up to its empty line, or to the first line that is
 * neither a field nor a continuation) is kept in memory, bounded by
 * head_max, because -t and the missing-header checks need it whole.  The
 * body goes to a spool: memory up to SM_SPOOL_MEM, then an unlinked
 * temporary file.  Reading everything before connecting means a slow
 * writer (a long cron job piping into sendmail) never meets relayd's idle
 * timeout, and MAIL FROM can carry SIZE= and BODY=8BITMIME, which are
 * known only at the end.
 */
#ifndef RELAYD_SENDMAIL_INPUT_H
#define RELAYD_SENDMAIL_INPUT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define SM_SPOOL_MEM (1024 * 1024)

/* The body: in memory, then (once it outgrows SM_SPOOL_MEM) in an
 * unlinked file with mem as its write buffer. */
struct sm_spool {
	char *mem;
	size_t len;              /* bytes in mem not yet in the file */
	int fd;                  /* -1 until spilled */
	uint64_t size;           /* every byte written */
	const char *tmpdir;
};

enum sm_input_status {
	SM_IN_OK,
	SM_IN_HEAD_TOO_BIG,      /* the header section outgrew head_max */
	SM_IN_TOO_BIG,           /* the content outgrew size_max */
	SM_IN_READ_ERROR,        /* errno set */
	SM_IN_SPOOL_ERROR,       /* errno set: memory or temporary file */
};

struct sm_input {
	/* set by the caller */
	int ignore_dots;         /* -i */
	size_t head_max;
	uint64_t size_max;       /* 0: no bound */
	const char *tmpdir;      /* NULL: $TMPDIR or /tmp */

	/* results */
	char *head;              /* the header section, CRLF lines */
	size_t head_len;
	int blank;               /* it ended with an empty line */
	int eightbit;            /* a byte >= 0x80 anywhere */
	struct sm_spool body;
	enum sm_input_status status;
	int done;                /* a lone "." (or an error) ended the input */

	/* internal */
	size_t head_cap, line_off;
	int in_body, head_state, line_start, pending_cr, pending_dot;
	int first_done;          /* the first line has ended */
};

/* Prepare in (its caller-set fields kept). */
void sm_input_init(struct sm_input *in);

/* Take n more bytes of input.  Returns 0 while more is wanted, 1 when the
 * input is complete (lone dot) or failed (in->status). */
int sm_input_feed(struct sm_input *in, const char *buf, size_t n);

/* The end of the input: finish the last line. */
void sm_input_end(struct sm_input *in);

/* Read fd to its end (or the lone dot) through sm_input_feed.  Returns
 * in->status. */
enum sm_input_status sm_input_read(struct sm_input *in, int fd);

/* Content bytes held: header section plus body. */
uint64_t sm_input_size(const struct sm_input *in);

/* Read the body back from its start: call with *off = 0, then again
 * until it returns 0.  Returns the byte count in *data (valid until the
 * next call), 0 at the end, -1 on a read error. */
ssize_t sm_spool_read(struct sm_spool *s, uint64_t *off, char *buf,
		      size_t bufsize, const char **data);

void sm_input_free(struct sm_input *in);

#endif
