/*
 * sendmail_smtp.h - the SMTP client side of relay-sendmail: one blocking
 * connection to relayd's own listener on loopback.
 *
 * Blocking I/O is right for a command-line tool; every wait is bounded
 * (SO_RCVTIMEO / SO_SNDTIMEO, set per step with sm_smtp_timeout), so a
 * daemon that stops answering ends in a timeout, never a hang.  Replies
 * are untrusted too: lines and line counts are bounded.
 */
#ifndef RELAYD_SENDMAIL_SMTP_H
#define RELAYD_SENDMAIL_SMTP_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define SM_REPLY_MAX 1024

struct sm_smtp {
	int fd;
	int verbose;             /* show the dialogue on stderr (-v) */
	const char *err;         /* why the last call failed (I/O) */
	int code;                /* the last reply's code */
	char reply[SM_REPLY_MAX];  /* its lines, joined with " " */

	/* what EHLO offered */
	int ext_8bitmime, ext_smtputf8, ext_dsn, ext_size;

	char rbuf[4096];
	size_t rlen, roff;
	char wbuf[65536];
	size_t wlen;
	int at_line_start;       /* for dot-stuffing content */
};

/* Connect within `timeout` seconds.  0, or -1 with c->err. */
int sm_smtp_connect(struct sm_smtp *c, const struct sockaddr *sa,
		    socklen_t salen, unsigned timeout);

/* Bound every later read and write to `seconds`. */
void sm_smtp_timeout(struct sm_smtp *c, unsigned seconds);

/* Read one reply.  Its code (c->code, text in c->reply), or -1 on an
 * I/O error, timeout or malformed reply (c->err). */
int sm_smtp_reply(struct sm_smtp *c);

/* Send one command line (CRLF added) and read the reply: the code or -1. */
int sm_smtp_cmd(struct sm_smtp *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* EHLO, falling back to HELO on a 5xx; records the extensions.  The
 * final code or -1. */
int sm_smtp_hello(struct sm_smtp *c, const char *name);

/* Message content (CRLF lines), dot-stuffed on the way.  0 or -1. */
int sm_smtp_content(struct sm_smtp *c, const char *p, size_t n);

/* End the content (".") and flush: 0 or -1. */
int sm_smtp_content_end(struct sm_smtp *c);

void sm_smtp_close(struct sm_smtp *c);

#endif
