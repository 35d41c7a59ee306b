/*
 * sendmail_addr.h - RFC 5322 address lists as relay-sendmail meets them:
 * in To:/Cc:/Bcc: fields for -t, and in its command-line recipients and
 * -f sender (sendmail takes "Name <a@b>, c@d" there too).
 *
 * What comes out is the addr-spec of every mailbox in SMTP form
 * (RFC 5321 §4.1.2): comments, display names, folding white space and an
 * obsolete source route dropped; a local part that is not a dot-atom
 * re-quoted; a bare local part ("root") qualified with the given domain.
 * Groups ("undisclosed-recipients:;") contribute their members.
 *
 * The input is untrusted and may hold anything, NULs included; every
 * problem is a -1 with a static message, never a crash.  Nothing here
 * allocates except the list, which the caller frees with sm_addr_free.
 */
#ifndef RELAYD_SENDMAIL_ADDR_H
#define RELAYD_SENDMAIL_ADDR_H

#include <stddef.h>

/* Longest address put on an SMTP command (RFC 5321 §4.5.3.1.3: a path
 * is at most 256 octets with its angle brackets). */
#define SM_ADDR_MAX 254

struct sm_addr_list {
	char **v;        /* NUL-terminated addresses, owned by the list */
	size_t n, cap;
	size_t limit;    /* more than this many: an error (0: no limit) */
};

/* Parse the address list in s[0..len) and append its addresses to out.
 * `domain` qualifies a bare local part.  Returns 0, or -1 with *err set
 * (addresses parsed before the error may have been appended). */
int sm_addr_parse_list(const char *s, size_t len, const char *domain,
		       struct sm_addr_list *out, const char **err);

/* Append one address (copied).  0 or -1 (out of memory, over limit). */
int sm_addr_add(struct sm_addr_list *l, const char *addr, const char **err);

/* Drop repeated addresses (domain compared without case), keeping the
 * first of each in its order.  0 or -1 (out of memory). */
int sm_addr_dedup(struct sm_addr_list *l);

/* 1 when the address holds a byte outside ASCII (needs SMTPUTF8). */
int sm_addr_is_utf8(const char *addr);

void sm_addr_free(struct sm_addr_list *l);

#endif
