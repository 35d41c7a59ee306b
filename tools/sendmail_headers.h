/*
 * sendmail_headers.h - the header section of a message given to
 * relay-sendmail: which fields it has (so the missing From:, Date: and
 * Message-ID: can be added), the recipients of -t, and the removal of
 * Bcc:.
 *
 * The section is held whole in memory (relay-sendmail bounds it) as CRLF
 * lines without the empty line that ends it.  A field is its first line
 * and the continuation lines (starting with white space) after it.  The
 * input is untrusted; nothing here fails on any byte string.
 */
#ifndef RELAYD_SENDMAIL_HEADERS_H
#define RELAYD_SENDMAIL_HEADERS_H

#include <stddef.h>
#include "sendmail_addr.h"

struct sm_field {
	size_t start, len;       /* the whole field, its CRLFs included */
	size_t name_len;         /* the name, without white space before ':' */
	size_t value;            /* offset of the value (after ':') from start */
};

/* The next field at or after *pos; 0 at the end, 1 with *f set. */
int sm_hdr_next(const char *buf, size_t len, size_t *pos, struct sm_field *f);

/* 1 when the field's name is `name` (without case). */
int sm_hdr_is(const char *buf, const struct sm_field *f, const char *name);

struct sm_hdr_info {
	int from, date, msgid, sender;
};

void sm_hdr_info(const char *buf, size_t len, struct sm_hdr_info *info);

/* The recipients of -t: the addresses of To:, Cc: and Bcc:, or, when the
 * message has any Resent-To:, Resent-Cc: or Resent-Bcc:, of those alone
 * (a resent message goes to its new recipients, as sendmail does).  Bare
 * local parts are qualified with domain.  0, or -1 with *err naming the
 * problem (its field in *field). */
int sm_hdr_recipients(const char *buf, size_t len, const char *domain,
		      struct sm_addr_list *out, const char **err,
		      const char **field);

/* Remove every Bcc: and Resent-Bcc: field in place; the new length. */
size_t sm_hdr_strip_bcc(char *buf, size_t len);

#endif
