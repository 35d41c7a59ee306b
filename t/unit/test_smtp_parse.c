/*
 * test_smtp_parse.c - MAIL/RCPT argument grammar and ESMTP parameters.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "smtp_parse.h"
#include "queue.h"
#include "t/tap.h"

static const char *mail_reply(const char *arg, struct smtp_mail_args *m)
{
	const char *r = NULL;
	if (smtp_parse_mail(arg, m, &r) == 0)
		return "ok";
	return r;
}

static const char *rcpt_reply(const char *arg, int utf8, struct smtp_rcpt_args *r)
{
	const char *rep = NULL;
	if (smtp_parse_rcpt(arg, utf8, r, &rep) == 0)
		return "ok";
	return rep;
}

#define MAIL_OK(arg, name) is_str(mail_reply(arg, &m), "ok", name)
#define MAIL_CODE(arg, code, name) ok(strncmp(mail_reply(arg, &m), code, strlen(code)) == 0, \
	"%s -> %s (%s)", name, code, mail_reply(arg, &m))
#define RCPT_OK(arg, u, name) is_str(rcpt_reply(arg, u, &r), "ok", name)
#define RCPT_CODE(arg, u, code, name) ok(strncmp(rcpt_reply(arg, u, &r), code, strlen(code)) == 0, \
	"%s -> %s (%s)", name, code, rcpt_reply(arg, u, &r))

int main(void)
{
	struct smtp_mail_args m;
	struct smtp_rcpt_args r;

	MAIL_OK("FROM:<alice@example.org>", "plain MAIL");
	is_str(m.addr, "alice@example.org", "address without brackets");
	MAIL_OK("from:<>", "null sender, lower case");
	is_str(m.addr, "", "null sender is empty");
	MAIL_OK("FROM: <a@b.example>", "space after colon tolerated");
	MAIL_OK("FROM:a@b.example", "missing brackets tolerated");
	MAIL_OK("FROM:<@relay.example,@r2.example:a@b.example>", "source route dropped");
	is_str(m.addr, "a@b.example", "source route removed from the address");
	MAIL_OK("FROM:<\"john doe\"@example.org>", "quoted local part");
	MAIL_OK("FROM:<\"a>b\"@example.org>", "'>' inside quotes");
	MAIL_OK("FROM:<\"a\\\\\"@example.org>", "quoted local part ending in an escaped backslash");
	MAIL_CODE("FROM:<\"a\\\"@example.org>", "501", "escaped closing quote leaves the quote open");
	MAIL_OK("FROM:<a@[127.0.0.1]>", "address literal");
	MAIL_OK("FROM:<a@b.example> SIZE=1000 BODY=8BITMIME RET=HDRS ENVID=abc+2B1 AUTH=<>",
		"all parameters");
	is_int(m.size, 1000, "SIZE");
	is_int(m.body_8bit, 1, "BODY=8BITMIME");
	is_int(m.ret, QUEUE_RET_HDRS, "RET=HDRS");
	is_str(m.envid, "abc+2B1", "ENVID kept as xtext");
	MAIL_OK("FROM:<a@b.example> body=7bit ret=full", "case-insensitive keywords");
	is_int(m.ret, QUEUE_RET_FULL, "RET=FULL");
	MAIL_OK("FROM:<j\xc3\xb6rg@b.example> SMTPUTF8", "UTF-8 sender with SMTPUTF8");
	is_int(m.smtputf8, 1, "SMTPUTF8 flag");

	MAIL_CODE("FROM:<j\xc3\xb6rg@b.example>", "553 5.6.7", "UTF-8 sender without SMTPUTF8");
	MAIL_CODE("FROM:<j\xc3@b.example> SMTPUTF8", "501 5.1.7", "broken UTF-8");
	MAIL_CODE("FROM:<j\xe0\x80\x80@b.example> SMTPUTF8", "501 5.1.7", "overlong UTF-8");
	MAIL_CODE("FROM:<a@b.example", "501 5.5.4", "unclosed bracket");
	MAIL_CODE("FROM:@:", "501 5.5.4", "empty source route is not the null sender");
	MAIL_CODE("FROM:<@a.example:>", "501 5.5.4", "route to nothing is not the null sender");
	MAIL_CODE("TO:<a@b.example>", "501 5.5.4", "MAIL TO");
	MAIL_CODE("", "501 5.5.4", "no argument");
	MAIL_CODE("FROM:<a b@c.example>", "501 5.1.7", "space in address");
	MAIL_CODE("FROM:<a@b..example>", "501 5.1.7", "empty label");
	MAIL_CODE("FROM:<a@-b.example>", "501 5.1.7", "label starts with hyphen");
	MAIL_CODE("FROM:<.a@b.example>", "501 5.1.7", "leading dot");
	MAIL_CODE("FROM:<a@>", "501 5.1.7", "empty domain");
	MAIL_CODE("FROM:<@b.example>", "501", "empty local part");
	MAIL_CODE("FROM:<a\x01@b.example>", "501 5.1.7", "control character");
	MAIL_CODE("FROM:<a@b.example>x", "501 5.5.4", "junk after bracket");
	MAIL_CODE("FROM:<a@b.example> SIZE=abc", "501 5.5.4", "SIZE not a number");
	MAIL_CODE("FROM:<a@b.example> SIZE=99999999999999999999999", "501 5.5.4",
		  "SIZE of 23 digits: not RFC 1870's 1*20DIGIT");
	MAIL_CODE("FROM:<a@b.example> SIZE=000000000000000000001", "501 5.5.4", "SIZE of 21 digits");
	MAIL_OK("FROM:<a@b.example> SIZE=18446744073709551615", "SIZE=2^64-1");
	ok(m.size == UINT64_MAX, "... is UINT64_MAX");
	MAIL_OK("FROM:<a@b.example> SIZE=18446744073709551616", "SIZE=2^64 is well-formed");
	ok(m.size == UINT64_MAX, "... and saturates to UINT64_MAX (over any limit), not 0");
	MAIL_OK("FROM:<a@b.example> SIZE=99999999999999999999", "SIZE of 20 nines");
	ok(m.size == UINT64_MAX, "... saturates too");
	MAIL_OK("FROM:<a@b.example> SIZE=00000000000000000012", "SIZE of 20 digits with leading zeros");
	is_int(m.size, 12, "... is 12");
	MAIL_CODE("FROM:<a@b.example> BODY=BINARYMIME", "555 5.5.4", "BINARYMIME unsupported");
	MAIL_CODE("FROM:<a@b.example> RET=ALL", "501 5.5.4", "bad RET");
	MAIL_CODE("FROM:<a@b.example> ENVID=a=b", "501 5.5.4", "ENVID not xtext");
	MAIL_CODE("FROM:<a@b.example> ENVID=a+zz", "501 5.5.4", "ENVID bad hex escape");
	MAIL_CODE("FROM:<a@b.example> SIZE=1 SIZE=2", "501 5.5.4", "duplicate parameter");
	MAIL_CODE("FROM:<a@b.example> FOO=bar", "555 5.5.4", "unknown parameter");
	MAIL_CODE("FROM:<a@b.example> =x", "501 5.5.4", "empty keyword");
	char longaddr[400];
	memset(longaddr, 'a', sizeof(longaddr));
	memcpy(longaddr, "FROM:<", 6);
	memcpy(longaddr + 380, "@b.example>", 12);
	MAIL_CODE(longaddr, "501 5.1.7", "path over 256 octets: a bad address");
	memcpy(longaddr, "  TO:<", 6);
	RCPT_CODE(longaddr, 0, "501 5.1.3", "recipient path over 256 octets: a bad address");
	RCPT_CODE(longaddr + 2, 0, "501 5.1.3", "... without leading blanks");
	/* 256 octets is the most RFC 5321 §4.5.3.1.3 allows, and allowed. */
	char addr256[300] = "TO:<";
	memset(addr256 + 4, 'l', 64);
	addr256[68] = '@';
	for (int i = 69; i < 4 + 256; i++)
		addr256[i] = (i - 69) % 60 == 59 ? '.' : 'd';
	strcpy(addr256 + 4 + 256, "> NOTIFY=NEVER");
	RCPT_OK(addr256, 0, "recipient path of exactly 256 octets");
	is_int(strlen(r.addr), 256, "... kept whole");
	char longlabel[120] = "FROM:<a@";
	memset(longlabel + 8, 'b', 70);
	strcpy(longlabel + 78, ".example>");
	MAIL_CODE(longlabel, "501 5.1.7", "label over 63 octets");

	RCPT_OK("TO:<bob@example.net>", 0, "plain RCPT");
	RCPT_OK("TO:<bob@example.net> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;bob+40example.net", 0,
		"NOTIFY and ORCPT");
	is_int(r.notify, QUEUE_NOTIFY_SUCCESS | QUEUE_NOTIFY_FAILURE, "NOTIFY bits");
	is_str(r.orcpt, "rfc822;bob+40example.net", "ORCPT kept");
	RCPT_OK("TO:<bob@example.net> NOTIFY=NEVER", 0, "NOTIFY=NEVER");
	is_int(r.notify, QUEUE_NOTIFY_NEVER, "NEVER bit");
	RCPT_CODE("TO:<bob@example.net> NOTIFY=NEVER,SUCCESS", 0, "501 5.5.4", "NEVER with others");
	RCPT_CODE("TO:<bob@example.net> NOTIFY=SOMETIMES", 0, "501 5.5.4", "bad NOTIFY");
	RCPT_CODE("TO:<bob@example.net> NOTIFY=", 0, "501 5.5.4", "empty NOTIFY");
	RCPT_CODE("TO:<bob@example.net> ORCPT=bob@example.net", 0, "501 5.5.4", "ORCPT without type");
	RCPT_CODE("TO:<bob@example.net> SIZE=10", 0, "555 5.5.4", "MAIL parameter on RCPT");
	RCPT_CODE("TO:<>", 0, "501 5.1.3", "null recipient");
	RCPT_CODE("TO:<postmaster>", 0, "501 5.1.3", "recipient without domain");
	RCPT_CODE("TO:<b\xc3\xb6" "b@example.net>", 0, "553 5.6.7", "UTF-8 rcpt without SMTPUTF8");
	RCPT_OK("TO:<b\xc3\xb6" "b@\xc3\xa9xample.net>", 1, "UTF-8 rcpt with SMTPUTF8");
	RCPT_CODE("FROM:<bob@example.net>", 0, "501 5.5.4", "RCPT FROM");

	ok(!smtp_mailbox_valid("A@[\0]", 5, 0), "NUL inside an address literal refused");
	ok(!smtp_mailbox_valid("a\0b@example.org", 15, 0), "NUL inside a local part refused");
	ok(smtp_xtext_valid("abc+2B+3D", 9), "xtext with escapes");
	ok(!smtp_xtext_valid("abc+2", 5), "truncated escape");
	ok(!smtp_xtext_valid("a b", 3), "space not xtext");
	ok(!smtp_xtext_valid("ab+2b", 5), "lower-case hex not xtext");

	/* Random bytes never crash the parsers. */
	srand(11);
	int survived = 1;
	for (int i = 0; i < 50000; i++) {
		char buf[80];
		size_t n = (size_t)(rand() % 79);
		static const char alphabet[] = "FROM:TO<>@\". =;,+SIZEaZ\x80\xc3";
		for (size_t k = 0; k < n; k++)
			buf[k] = alphabet[rand() % (int)(sizeof(alphabet) - 1)];
		buf[n] = 0;
		const char *rep;
		if (smtp_parse_mail(buf, &m, &rep) && !rep)
			survived = 0;
		if (smtp_parse_rcpt(buf, i & 1, &r, &rep) && !rep)
			survived = 0;
	}
	ok(survived, "50000 random argument strings: every refusal has a reply");
	return done_testing();
}
