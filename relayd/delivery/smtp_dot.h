/*
 * smtp_dot.h - message content as it goes on the wire after DATA
 * (RFC 5321 §4.5.2): a '.' that starts a line is doubled, every line
 * ends in CRLF (a bare CR or LF in stored content becomes CRLF, so
 * nothing relayd sends can be read as an SMTP smuggling terminator), and
 * the content ends with <CRLF>.<CRLF>.  Works chunk by chunk with two
 * bits of state; nothing is allocated.
 */
#ifndef RELAYD_DELIVERY_SMTP_DOT_H
#define RELAYD_DELIVERY_SMTP_DOT_H

#include <stddef.h>

struct smtp_dot {
	int bol;                 /* the next octet starts a line */
	int cr;                  /* the last octet was a CR, its LF not seen */
};

/* Room smtp_dot_encode may need for len input octets. */
#define SMTP_DOT_ROOM(len) (2 * (len) + 1)

void smtp_dot_init(struct smtp_dot *d);
/* Encode src[0..len) into dst (SMTP_DOT_ROOM(len) octets); returns the
 * count written. */
size_t smtp_dot_encode(struct smtp_dot *d, const char *src, size_t len, char *dst);
/* The end: a CRLF when the content did not end with one, then ".\r\n",
 * into dst (5 octets); returns the count. */
size_t smtp_dot_finish(struct smtp_dot *d, char *dst);

#endif
