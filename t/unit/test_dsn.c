/*
 * test_dsn.c - dsn_compose: the report's structure, and that nothing a
 * client or a remote server controls can break out of the field or part
 * it is put in.  bounce_wanted: NOTIFY per RFC 3461.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "bounce/bounce.h"
#include "bounce/dsn_compose.h"
#include "t/tap.h"

struct mem {
	const char *p;
	size_t len;
};

static int read_mem(void *arg, uint64_t off, void *buf, size_t len, size_t *got)
{
	struct mem *m = arg;
	size_t n = off < m->len ? m->len - (size_t)off : 0;
	if (n > len)
		n = len;
	memcpy(buf, m->p + off, n);
	*got = n;
	return 0;
}

static int read_fail(void *arg, uint64_t off, void *buf, size_t len, size_t *got)
{
	(void)arg, (void)off, (void)buf, (void)len, (void)got;
	return -3;
}

static struct dsn_result res;

static const char *compose(struct dsn_report *r)
{
	dsn_result_free(&res);
	if (dsn_compose(r, &res))
		return NULL;
	/* A NUL-terminated copy for strstr. */
	char *s = malloc(res.len + 1);
	memcpy(s, res.data, res.len);
	s[res.len] = '\0';
	free(res.data);
	res.data = s;
	return s;
}

/* Every line ends in CRLF, none is longer than 998, no bare CR or LF. */
static int lines_ok(const char *s, size_t len, size_t maxline)
{
	size_t col = 0;
	for (size_t i = 0; i < len; i++) {
		if (s[i] == '\r') {
			if (i + 1 >= len || s[i + 1] != '\n')
				return 0;
			i++;
			col = 0;
		} else if (s[i] == '\n') {
			return 0;
		} else if (++col > maxline) {
			return 0;
		}
	}
	return col == 0;
}

int main(void)
{
	static const char orig[] = "From: a@example.org\r\nSubject: test\r\n\r\n"
				   "body\r\n--=_0REPORT00001/1790003600/0\r\nmore\r\n";
	struct mem mo = { orig, sizeof(orig) - 1 };
	struct dsn_rcpt rc[2] = {
		{ .addr = "bob@example.com", .orcpt = "rfc822;bob+2Bx@example.com",
		  .action = DSN_ACTION_FAILED, .status = "5.1.1",
		  .remote_mta = "mx.example.com", .diag_type = "smtp",
		  .reply = "550 5.1.1 no such user\r\nX-Evil: injected\r\n\r\n--x",
		  .last_attempt = 1790003000 },
		{ .addr = "carol@example.com", .action = DSN_ACTION_FAILED,
		  .status = "4.4.7", .reply = "message expired" },
	};
	struct dsn_report r = {
		.kind = DSN_KIND_FAILURE, .hostname = "relay.example.net",
		.queue_id = "0ORIGINAL001", .report_id = "0REPORT00001",
		.to = "alice@example.org", .envid = "env+2Bid", .arrival = 1790000000,
		.now = 1790003600, .orig_size = mo.len, .size_limit = 36700160,
		.read = read_mem, .read_arg = &mo, .rcpt = rc, .nrcpt = 2,
	};
	const char *s = compose(&r);
	ok(s != NULL, "a failure report is composed");
	ok(lines_ok(res.data, res.len, 998), "CRLF lines only, none over 998");
	ok(strstr(s, "Subject: Undelivered Mail Returned to Sender\r\n") != NULL, "subject");
	ok(strstr(s, "From: Mail Delivery System <MAILER-DAEMON@relay.example.net>\r\n") != NULL,
	   "From: MAILER-DAEMON@hostname");
	ok(strstr(s, "Auto-Submitted: auto-replied\r\n") != NULL, "Auto-Submitted");
	ok(strstr(s, "report-type=delivery-status") != NULL, "multipart/report");
	ok(strstr(s, "\r\nX-Evil") == NULL, "a CRLF in a reply cannot start a field");
	ok(strstr(s, "\r\n--x") == NULL, "nor a boundary line");
	ok(strstr(s, "Original-Envelope-Id: env+id\r\n") != NULL, "ENVID decoded from xtext");
	ok(strstr(s, "Original-Recipient: rfc822;bob+x@example.com\r\n") != NULL,
	   "ORCPT decoded from xtext, type kept");
	ok(strstr(s, "Final-Recipient: rfc822; bob@example.com\r\nAction: failed\r\n"
		     "Status: 5.1.1\r\nRemote-MTA: dns; mx.example.com\r\n"
		     "Diagnostic-Code: smtp; 550 5.1.1 no such user") != NULL,
	   "per-recipient fields in order");
	ok(strstr(s, "Status: 4.4.7\r\n") != NULL, "an expired recipient keeps 4.4.7");
	ok(strstr(s, "Diagnostic-Code: X-Relayd; message expired\r\n") != NULL,
	   "a local reason is not presented as an SMTP reply");
	ok(strstr(s, "Content-Type: text/rfc822-headers\r\n\r\nFrom: a@example.org\r\n"
		     "Subject: test\r\n\r\n--") != NULL, "headers returned by default, not the body");
	ok(!res.eightbit && !res.full, "7-bit, headers only");
	ok(strstr(s, "Content-Transfer-Encoding") == NULL, "no 8bit encoding declared");

	/* RET=FULL: the whole original, unless it would exceed the limit. */
	r.ret_full = 1;
	s = compose(&r);
	ok(s && strstr(s, "Content-Type: message/rfc822\r\n\r\nFrom: a@example.org") &&
	   strstr(s, "\r\nmore\r\n") && res.full, "RET=FULL returns the whole original");
	ok(s && strstr(s, "boundary=\"=_0REPORT00001/1790003600/1\"") != NULL,
	   "a boundary that occurs in the original is not used");
	r.size_limit = DSN_OVERHEAD_MAX + 10;
	s = compose(&r);
	ok(s && strstr(s, "text/rfc822-headers") && !res.full &&
	   strstr(s, "too large to be returned"), "too large for RET=FULL: headers, said so");
	r.size_limit = 36700160;
	r.ret_full = 0;

	/* Statuses of the wrong class or shape are replaced. */
	rc[0].status = "2.0.0";
	rc[1].status = "5.1.1; DROP";
	s = compose(&r);
	ok(s && strstr(s, "Status: 5.0.0\r\nRemote-MTA") && !strstr(s, "DROP"),
	   "malformed or wrong-class status replaced");
	rc[0].status = "5.1.1";

	/* Non-ASCII from the wire: escaped in a 7-bit report. */
	rc[0].reply = "550 \xc3\x9cnknown \xff\x1b[31m";
	rc[0].addr = "b\xc3\xb8" "b@example.com";
	s = compose(&r);
	ok(s && !res.eightbit, "non-ASCII reply and address: still 7-bit");
	ok(s && strstr(s, "550 \\xC3\\x9Cnknown \\xFF\\x1B[31m"), "reply bytes escaped");
	ok(s && strstr(s, "Final-Recipient: utf-8; b\\x{F8}b@example.com\r\n"),
	   "non-ASCII address in RFC 6533 utf-8-addr-xtext form");

	/* SMTPUTF8 original: a global report, UTF-8 kept, controls escaped. */
	r.utf8 = 1;
	s = compose(&r);
	ok(s && strstr(s, "Content-Type: message/global-delivery-status\r\n"
		     "Content-Transfer-Encoding: 8bit\r\n"), "message/global-delivery-status");
	ok(s && strstr(s, "Content-Type: message/global-headers\r\n"), "message/global-headers");
	ok(s && strstr(s, "Final-Recipient: utf-8; b\xc3\xb8" "b@example.com\r\n"),
	   "UTF-8 address kept in a global report");
	ok(s && strstr(s, "550 \xc3\x9cnknown \\xFF\\x1B[31m"), "UTF-8 reply kept, the rest escaped");
	ok(s && res.eightbit, "8-bit report flagged");
	ok(lines_ok(res.data, res.len, 998), "global report: CRLF lines");
	r.utf8 = 0;
	rc[0].addr = "bob@example.com";

	/* Long replies are folded; a long word is kept whole up to the
	 * line limit, a longer one cut. */
	char longw[1500];
	for (size_t i = 0; i < sizeof(longw) - 1; i++)
		longw[i] = i % 9 == 8 ? ' ' : 'w';
	longw[sizeof(longw) - 1] = '\0';
	rc[0].reply = longw;
	s = compose(&r);
	ok(s && lines_ok(res.data, res.len, 78), "a long reply is folded at 78");
	memset(longw, 'x', sizeof(longw) - 1);
	s = compose(&r);
	ok(s && lines_ok(res.data, res.len, 998), "a 1,500-byte word does not make a long line");
	char longa[200];
	memset(longa, 'a', 150);
	strcpy(longa + 150, "@example.com");
	rc[0].addr = longa;
	rc[0].reply = "550 no";
	s = compose(&r);
	char want[300];
	snprintf(want, sizeof(want), "Final-Recipient: rfc822;\r\n    %s\r\n", longa);
	ok(s && strstr(s, want), "a long address is folded before, never inside");
	rc[0].addr = "\x97\x97\x97\x97\x97\x97\x97\x97\x97\x97\x97\x97\x97\x97\x97\x97"
		     "\x97\x97\x97\x97\x97\x97\x97\x97\x97\x97\x97\x97\x97\x97\x97\x97"
		     "\x97\x97\x97\x97\x97\x97\x97\x97\x97\x97\x97\x97\x97\x97\x97\x97"
		     "\x97\x97\x97\x97\x97\x97\x97\x97\x97\x97\x97\x97\x97\x97\x97\x97"
		     "\x97\x97\x97\x97\x97\x97\x97\x97\x97\x97\x97\x97\x97\x97\x97\x97"
		     "\x97\x97\x97\x97\x97\x97\x97\x97\x97\x97\x97\x97\x97\x97\x97\x97"
		     "\x97\x97\x97\x97\x97\x97\x97\x97\x97\x97\x97\x97\x97\x97\x97\x97"
		     "\x97\x97\x97\x97\x97\x97\x97\x97\x97\x97\x97\x97\x97\x97\x97\x97";
	s = compose(&r);
	ok(s && lines_ok(res.data, res.len, 998), "an unprintable address cannot make a long line");
	rc[0].addr = "bob@example.com";

	/* Delay warning and success notice. */
	r.kind = DSN_KIND_DELAY;
	rc[0].action = DSN_ACTION_DELAYED;
	rc[0].status = "4.4.1";
	rc[0].will_retry_until = 1790086400;
	r.nrcpt = 1;
	s = compose(&r);
	ok(s && strstr(s, "Subject: Delayed Mail (still being retried)\r\n") &&
	   strstr(s, "Action: delayed\r\nStatus: 4.4.1\r\n") &&
	   strstr(s, "Will-Retry-Until: Tue, 22 Sep 2026 14:13:20 +0000\r\n"),
	   "delay warning: Action delayed, Will-Retry-Until");
	r.kind = DSN_KIND_SUCCESS;
	r.ret_full = 1;
	rc[0].action = DSN_ACTION_RELAYED;
	rc[0].status = "2.0.0";
	s = compose(&r);
	ok(s && strstr(s, "Subject: Successful Mail Delivery Report\r\n") &&
	   strstr(s, "Action: relayed\r\nStatus: 2.0.0\r\n") && !res.full,
	   "success notice: relayed, headers only even with RET=FULL");
	ok(s && !strstr(s, "Will-Retry-Until"), "no Will-Retry-Until unless delayed");

	/* An original with bare line ends and over-long lines still makes
	 * a report of CRLF lines within 998 octets. */
	static char odd[4200];
	size_t ol = 0;
	ol += (size_t)sprintf(odd + ol, "Subject: ");
	memset(odd + ol, 's', 1200);
	ol += 1200;
	ol += (size_t)sprintf(odd + ol, "\nX-A: b\r\rX-B: c\r\n\r\nbody\n");
	memset(odd + ol, 'b', 2500);
	ol += 2500;
	struct mem mo2 = { odd, ol };
	r.kind = DSN_KIND_FAILURE;
	rc[0].action = DSN_ACTION_FAILED;
	rc[0].status = "5.1.1";
	r.read = read_mem;
	r.read_arg = &mo2;
	r.orig_size = ol;
	s = compose(&r);
	ok(s && res.full && lines_ok(res.data, res.len, 998),
	   "RET=FULL of an odd original: CRLF lines within 998");
	ok(s && strstr(s, "\r\nX-A: b\r\n\r\nX-B: c\r\n") && strstr(s, "ss\r\n sss"),
	   "bare CR/LF made CRLF, a long header line folded");
	r.ret_full = 0;
	s = compose(&r);
	ok(s && lines_ok(res.data, res.len, 998) && !res.full, "headers of it: same");
	r.read_arg = &mo;
	r.orig_size = mo.len;

	/* A read error is reported, not papered over. */
	r.read = read_fail;
	ok(compose(&r) == NULL, "a read error fails the report");

	/* Dates are RFC 5322, in UTC. */
	char d[64];
	dsn_date(d, sizeof(d), 0);
	is_str(d, "Thu, 1 Jan 1970 00:00:00 +0000", "the epoch");
	char x[64];
	ok(dsn_xtext_decode("a+2Bb+3Dc", x, sizeof(x)) == 0 && !strcmp(x, "a+b=c"), "xtext");
	ok(dsn_xtext_decode("a+0Db", x, sizeof(x)) < 0, "xtext decoding to a control refused");
	ok(dsn_xtext_decode("a+2", x, sizeof(x)) < 0, "truncated xtext refused");
	ok(dsn_xtext_decode("a+2b", x, sizeof(x)) < 0, "lower-case xtext hex refused");

	/* NOTIFY (RFC 3461 §4.1, §5.2.1-2). */
	ok(bounce_wanted(0, REPORT_ACTION_FAILED), "default: failures");
	ok(bounce_wanted(0, REPORT_ACTION_DELAYED), "default: delays");
	ok(!bounce_wanted(0, REPORT_ACTION_RELAYED), "default: no success notice");
	ok(!bounce_wanted(QUEUE_NOTIFY_NEVER, REPORT_ACTION_FAILED), "NEVER: nothing");
	ok(!bounce_wanted(QUEUE_NOTIFY_FAILURE, REPORT_ACTION_DELAYED), "FAILURE only: no delay");
	ok(bounce_wanted(QUEUE_NOTIFY_SUCCESS, REPORT_ACTION_RELAYED), "SUCCESS: relayed");
	ok(!bounce_wanted(QUEUE_NOTIFY_SUCCESS, REPORT_ACTION_DELIVERED),
	   "SUCCESS taken over by a DSN-capable hop: it reports, not us");
	ok(!bounce_wanted(QUEUE_NOTIFY_SUCCESS, REPORT_ACTION_FAILED), "SUCCESS only: no failure");

	dsn_result_free(&res);
	return done_testing();
}
