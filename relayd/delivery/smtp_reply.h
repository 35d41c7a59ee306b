/*
 * smtp_reply.h - the delivery client's reply reader: multi-line SMTP
 * replies (RFC 5321 §4.2) from a next hop, which is hostile input.
 *
 * Bounded: a line may be SMTP_REPLY_LINE_MAX octets (RFC 5321 allows 512;
 * real servers exceed it, so there is slack), a reply SMTP_REPLY_LINES_MAX
 * lines; the text kept for reports is cut at SMTP_REPLY_TEXT_MAX.  Every
 * violation (a longer line, no digits, a code outside 2xx-5xx, lines with
 * different codes, a bad separator) is reported as SMTP_REPLY_BAD with a
 * reason; nothing aborts.  Kept text has its control and 8-bit octets
 * replaced by '?', so it is safe to log and to quote in a bounce.
 *
 * A line ends at LF, with or without the CR before it (servers that send
 * bare LF exist and their replies are unambiguous).
 *
 * Memory: the parser is a plain struct the caller embeds; nothing is
 * allocated.
 */
#ifndef RELAYD_DELIVERY_SMTP_REPLY_H
#define RELAYD_DELIVERY_SMTP_REPLY_H

#include <stddef.h>
#include <stdint.h>

#define SMTP_REPLY_LINE_MAX 2048
#define SMTP_REPLY_LINES_MAX 128
#define SMTP_REPLY_TEXT_MAX 2048

struct smtp_reply {
	int code;                        /* 200..599 */
	char enh[16];                    /* RFC 3463 "5.1.1" of the first
					  * line, matching the code's class;
					  * "" when absent */
	unsigned nlines;
	/* The text of each line (after "NNN-" / "NNN "), joined with '\n',
	 * NUL-terminated, sanitised, cut at SMTP_REPLY_TEXT_MAX - 1. */
	char text[SMTP_REPLY_TEXT_MAX];
	size_t text_len;
};

struct smtp_reply_parser {
	struct smtp_reply reply;         /* valid after SMTP_REPLY_DONE */
	int in_reply;                    /* continuation lines seen */
	char error[96];                  /* why, after SMTP_REPLY_BAD */
};

enum { SMTP_REPLY_BAD = -1, SMTP_REPLY_MORE = 0, SMTP_REPLY_DONE = 1 };

void smtp_reply_init(struct smtp_reply_parser *p);

/*
 * smtp_reply_feed - consume whole lines of buf[0..len) into the reply
 * being read; *used says how many octets.  SMTP_REPLY_DONE: p->reply holds
 * a complete reply (the next call starts a new one; the rest of buf is
 * for it).  SMTP_REPLY_MORE: every complete line was used, the reply
 * needs more input.  SMTP_REPLY_BAD: malformed, p->error says why; the
 * session cannot go on.
 */
int smtp_reply_feed(struct smtp_reply_parser *p, const char *buf, size_t len,
		    size_t *used);

/* Line i (0-based) of r's text, its length in *len; NULL past the end
 * (or past what was kept). */
const char *smtp_reply_line(const struct smtp_reply *r, unsigned i, size_t *len);

/* What an EHLO reply offers, of the extensions the client uses. */
struct smtp_ehlo {
	unsigned pipelining : 1, size : 1, eightbit : 1, smtputf8 : 1, dsn : 1,
		 starttls : 1, auth : 1, auth_plain : 1, auth_login : 1;
	uint64_t size_limit;             /* SIZE's number; 0: none given */
};

/* Read the keywords of a 2xx EHLO reply (lines after the first; case
 * does not matter; unknown keywords and bad SIZE numbers are ignored). */
void smtp_reply_ehlo(const struct smtp_reply *r, struct smtp_ehlo *e);

#endif
