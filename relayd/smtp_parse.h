/*
 * smtp_parse.h - the grammar of MAIL FROM / RCPT TO (RFC 5321 §4.1.2) and
 * their ESMTP parameters: SIZE (RFC 1870), BODY (RFC 6152), SMTPUTF8
 * (RFC 6531), RET / ENVID / NOTIFY / ORCPT (RFC 3461), AUTH (RFC 4954).
 *
 * Pure functions over one command line: no I/O, no allocation kept beyond
 * the caller's buffers, so they are unit-tested and fuzzed in isolation.
 * Each failure carries the complete reply to send ("501 5.1.7 ...").
 */
#ifndef RELAYD_SMTP_PARSE_H
#define RELAYD_SMTP_PARSE_H

#include <stddef.h>
#include <stdint.h>

#define SMTP_PATH_MAX 256      /* RFC 5321 §4.5.3.1.3: 256 octets */
#define SMTP_XTEXT_MAX 512

struct smtp_mail_args {
	char addr[SMTP_PATH_MAX + 1];    /* "" for the null sender */
	uint64_t size;                   /* SIZE=, 0 when absent */
	int body_8bit;                   /* BODY=8BITMIME */
	int smtputf8;                    /* SMTPUTF8 */
	int ret;                         /* 0, 1 HDRS, 2 FULL (queue_ret) */
	char envid[SMTP_XTEXT_MAX + 1];  /* "" when absent */
};

struct smtp_rcpt_args {
	char addr[SMTP_PATH_MAX + 1];
	unsigned notify;                 /* QUEUE_NOTIFY_* bits, 0 absent */
	char orcpt[SMTP_XTEXT_MAX + 1];  /* "type;xtext", "" when absent */
};

/* `arg` is the text after "MAIL" (e.g. " FROM:<a@b> SIZE=10").
 * Returns 0, or -1 with *reply set to a static reply line (no CRLF).
 * utf8_ok says whether SMTPUTF8 was offered (always, here). */
int smtp_parse_mail(const char *arg, struct smtp_mail_args *out,
		    const char **reply);
/* smtputf8: the transaction's MAIL carried SMTPUTF8, so UTF-8 is allowed
 * in the address. */
int smtp_parse_rcpt(const char *arg, int smtputf8, struct smtp_rcpt_args *out,
		    const char **reply);

/* 1 when s is valid RFC 3461 xtext. */
int smtp_xtext_valid(const char *s, size_t len);

/* 1 when the mailbox (without <>) is acceptable: local@domain, dot-atom or
 * quoted local part, domain name or address literal; UTF-8 only when
 * utf8 is set (and then it must be well-formed). */
int smtp_mailbox_valid(const char *s, size_t len, int utf8);

#endif
