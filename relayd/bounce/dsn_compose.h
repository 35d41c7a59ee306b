/*
 * dsn_compose.h - the bytes of a delivery status notification
 * (RFC 3461/3464/6522, RFC 6533 for SMTPUTF8 originals).
 *
 * Pure: no queue, no loop, no logging.  Everything it is given that came
 * from a client or a remote server (addresses, ORCPT, ENVID, replies, host
 * names, the original's headers and body) is treated as hostile: what
 * goes into a header field of the report is escaped to printable text
 * (7-bit, or well-formed UTF-8 in an RFC 6533 report) and folded; what is
 * returned of the original goes into its own MIME part unchanged, under a
 * boundary checked not to occur in it.
 *
 * The report is multipart/report; report-type=delivery-status with three
 * parts: a text/plain explanation, message/delivery-status (or
 * message/global-delivery-status), and the original's headers
 * (text/rfc822-headers or message/global-headers) or, for a failure with
 * RET=FULL that fits under size_limit, the whole original
 * (message/rfc822 or message/global).  Lines end in CRLF.
 */
#ifndef RELAYD_BOUNCE_DSN_COMPOSE_H
#define RELAYD_BOUNCE_DSN_COMPOSE_H

#include <stddef.h>
#include <stdint.h>

enum dsn_kind { DSN_KIND_FAILURE, DSN_KIND_DELAY, DSN_KIND_SUCCESS };

enum dsn_action {
	DSN_ACTION_FAILED,
	DSN_ACTION_DELAYED,
	DSN_ACTION_DELIVERED,
	DSN_ACTION_RELAYED,
	DSN_ACTION_EXPANDED,
};

struct dsn_rcpt {
	const char *addr;          /* Final-Recipient, without <> */
	const char *orcpt;         /* "addr-type;xtext" from ORCPT, or NULL */
	enum dsn_action action;
	const char *status;        /* "5.1.1"; a malformed one is replaced */
	const char *remote_mta;    /* next hop's name, or NULL */
	const char *diag_type;     /* "smtp" when reply is the hop's words */
	const char *reply;         /* remote reply or local reason, or NULL */
	int64_t last_attempt;      /* unix seconds, 0: none */
	int64_t will_retry_until;  /* DSN_ACTION_DELAYED: unix seconds, 0: none */
};

/* Reads len bytes of the original from offset off into buf; *got is
 * less than len only at its end.  0 or a negative error. */
typedef int dsn_read_fn(void *arg, uint64_t off, void *buf, size_t len,
			size_t *got);

struct dsn_report {
	enum dsn_kind kind;
	const char *hostname;      /* Reporting-MTA, From, Message-ID */
	const char *queue_id;      /* the original's */
	const char *report_id;     /* the report's own queue id */
	const char *to;            /* the original's envelope sender */
	const char *envid;         /* ENVID (xtext), or NULL */
	int64_t arrival;           /* the original's, unix seconds */
	int64_t now;
	int ret_full;              /* RET=FULL (used for failures only) */
	int utf8;                  /* the original needed SMTPUTF8 */
	uint64_t orig_size;
	uint64_t size_limit;       /* message_size_limit: the report's bound */
	dsn_read_fn *read;         /* NULL: nothing of the original returned */
	void *read_arg;
	const struct dsn_rcpt *rcpt;
	size_t nrcpt;
};

struct dsn_result {
	char *data;                /* malloc'd, len bytes, CRLF lines */
	size_t len;
	int eightbit;              /* holds 8-bit bytes: queue it 8BITMIME */
	int full;                  /* the whole original was returned */
};

/* Compose the report into *out (free it with dsn_result_free).  0, -1
 * when out of memory or over size_limit, or the reader's error. */
int dsn_compose(const struct dsn_report *r, struct dsn_result *out);
void dsn_result_free(struct dsn_result *res);

/* Headers part of the original is read up to this many bytes. */
#define DSN_HEADERS_MAX (256u * 1024u)
/* Room kept under size_limit for the report's own parts. */
#define DSN_OVERHEAD_MAX (64u * 1024u)

/* RFC 5322 date of t in UTC into buf (>= 32 bytes). */
void dsn_date(char *buf, size_t len, int64_t t);

/* Decode xtext (RFC 3461 §4) into out; -1 when malformed or the result
 * does not fit or is not printable ASCII. */
int dsn_xtext_decode(const char *in, char *out, size_t outlen);

#endif
