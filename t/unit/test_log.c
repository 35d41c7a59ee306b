/*
 * test_log.c - the log line formats of DESIGN §6, captured through the
 * test sink.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <stdlib.h>
#include "log.h"
#include "maillog.h"
#include "t/tap.h"

static char last[4096];

static void sink(const char *line, void *arg)
{
	snprintf(last, sizeof(last), "%s", line);
}

/* Expect `want` with "PID" standing for our pid. */
static void expect(const char *want, const char *name)
{
	char buf[4096], pid[16];
	snprintf(pid, sizeof(pid), "%d", (int)getpid());
	const char *p = strstr(want, "PID");
	if (p)
		snprintf(buf, sizeof(buf), "%.*s%s%s", (int)(p - want), want, pid, p + 3);
	else
		snprintf(buf, sizeof(buf), "%s", want);
	is_str(last, buf, name);
}

int main(void)
{
	log_open("relayd", LOG_FLAG_NOSYSLOG);
	log_set_sink(sink, NULL);

	maillog_connect("client.example", "192.0.2.1");
	expect("relayd/smtpd[PID]: connect from client.example[192.0.2.1]", "connect");
	maillog_client("0ABC123DEF45", "unknown", "127.0.0.1", NULL, NULL);
	expect("relayd/smtpd[PID]: 0ABC123DEF45: client=unknown[127.0.0.1]", "client=");
	maillog_client("0ABC123DEF45", "h", "::1", "PLAIN", "alice");
	expect("relayd/smtpd[PID]: 0ABC123DEF45: client=h[::1], sasl_method=PLAIN, sasl_username=alice",
	       "client= with sasl");
	maillog_queued("0ABC123DEF45", "a@b.example", 5120, 3);
	expect("relayd/qmgr[PID]: 0ABC123DEF45: from=<a@b.example>, size=5120, nrcpt=3 (queue active)",
	       "queue active");
	maillog_queued("0ABC123DEF45", "", 10, 1);
	expect("relayd/qmgr[PID]: 0ABC123DEF45: from=<>, size=10, nrcpt=1 (queue active)",
	       "null sender");
	struct maillog_delivery d = {
		.id = "0ABC123DEF45", .rcpt = "r@x.example", .relay_host = "mx.x.example",
		.relay_ip = "127.0.0.2", .relay_port = 25, .delay = 1.27,
		.delays = { 0.01, 0, 0.25, 1.01 }, .dsn = "2.0.0", .status = "sent",
		.reason = "250 2.0.0 Ok: queued as ABC",
	};
	maillog_delivery(&d);
	expect("relayd/smtp[PID]: 0ABC123DEF45: to=<r@x.example>, relay=mx.x.example[127.0.0.2]:25, "
	       "delay=1.3, delays=0.01/0/0.25/1, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as ABC)",
	       "delivery sent");
	d.relay_host = NULL;
	d.delay = 3600;
	d.dsn = "4.4.3";
	d.status = "deferred";
	d.reason = "Host or domain name not found";
	maillog_delivery(&d);
	expect("relayd/smtp[PID]: 0ABC123DEF45: to=<r@x.example>, relay=none, delay=3600, "
	       "delays=0.01/0/0.25/1, dsn=4.4.3, status=deferred (Host or domain name not found)",
	       "delivery deferred, no relay");
	maillog_bounce("0ABC123DEF45", "non-delivery", "0ABC123DEF46");
	expect("relayd/bounce[PID]: 0ABC123DEF45: sender non-delivery notification: 0ABC123DEF46",
	       "bounce");
	maillog_removed("0ABC123DEF45");
	expect("relayd/qmgr[PID]: 0ABC123DEF45: removed", "removed");
	struct maillog_cmd_count c[] = {
		{ "ehlo", 1, 1 }, { "mail", 1, 1 }, { "rcpt", 1, 1 }, { "data", 1, 1 },
		{ "bdat", 0, 0 }, { "quit", 1, 1 },
	};
	maillog_disconnect("h", "127.0.0.1", c, 6);
	expect("relayd/smtpd[PID]: disconnect from h[127.0.0.1] ehlo=1 mail=1 rcpt=1 data=1 quit=1 commands=5",
	       "disconnect");
	c[2].ok = 1;
	c[2].total = 3;
	maillog_disconnect("h", "127.0.0.1", c, 6);
	expect("relayd/smtpd[PID]: disconnect from h[127.0.0.1] ehlo=1 mail=1 rcpt=1/3 data=1 quit=1 commands=5/7",
	       "disconnect with failed commands");

	/* Hostile text in the arguments: every record and every diagnostic
	 * comes out escaped, UTF-8 that means something stays readable. */
	d.rcpt = "j\xc3\xb6rg\xe2\x80\xae" "fdp.exe@x.example";
	d.reason = "550 no\r\nrelayd/smtp[1]: forged\x1b]0;title\x07 \xc2\x9b" "2J";
	maillog_delivery(&d);
	expect("relayd/smtp[PID]: 0ABC123DEF45: to=<j\xc3\xb6rg\\u202Efdp.exe@x.example>, relay=none, "
	       "delay=3600, delays=0.01/0/0.25/1, dsn=4.4.3, status=deferred "
	       "(550 no\\x0D\\x0Arelayd/smtp[1]: forged\\x1B]0;title\\x07 \\u009B2J)",
	       "delivery: bidi in the address, CR LF, OSC and C1 in the reason escaped");
	maillog_queued("0ABC123DEF45", "\xe2\x81\xa6" "evil\xe2\x81\xa9@x.example", 1, 1);
	expect("relayd/qmgr[PID]: 0ABC123DEF45: from=<\\u2066evil\\u2069@x.example>, size=1, nrcpt=1 "
	       "(queue active)", "queued: isolates in the sender escaped");
	maillog_client("0ABC123DEF45", "unknown", "127.0.0.1", "PLAIN", "r\xc3\xa9mi\x1b[2J\xff");
	expect("relayd/smtpd[PID]: 0ABC123DEF45: client=unknown[127.0.0.1], sasl_method=PLAIN, "
	       "sasl_username=r\xc3\xa9mi\\x1B[2J\\xFF", "client=: the user name escaped");
	log_info(LOG_SVC_SMTPD, "helo=<%s>", "a\x1b[8mb\x00hidden");
	expect("relayd/smtpd[PID]: helo=<a\\x1B[8mb>", "diagnostics escaped too (a NUL ends the C string)");
	char many[1500];
	memset(many, 0x1b, sizeof(many) - 1);
	many[sizeof(many) - 1] = 0;
	log_info(LOG_SVC_SMTPD, "x=%s", many);
	ok(strlen(last) < 2400 && !strchr(last, 0x1b) && strstr(last, "x=\\x1B\\x1B"),
	   "1499 ESC bytes: escaped, the line cut, bounded");

	log_warn(LOG_SVC_MASTER, "disk %s", "full");
	expect("relayd/master[PID]: warning: disk full", "warning prefix");
	log_open("mta", LOG_FLAG_NOSYSLOG);
	log_info(LOG_SVC_SMTPD, "x");
	expect("mta/smtpd[PID]: x", "syslog_name changes the tag");
	log_open("relayd", LOG_FLAG_NOSYSLOG | LOG_FLAG_JSON);
	log_info(LOG_SVC_QMGR, "a \"quoted\"\nline");
	ok(strstr(last, "\"ident\":\"relayd/qmgr\"") && strstr(last, "\"service\":\"qmgr\""),
	   "json: ident (the syslog tag) and service fields (%s)", last);
	/* The newline is escaped before JSON sees it, like in every format;
	 * jansson escapes the quotes and that backslash. */
	ok(strstr(last, "\"message\":\"a \\\"quoted\\\"\\\\x0Aline\"") != NULL,
	   "json: message escaped by relayd, then by jansson (%s)", last);
	maillog_queued("0ABC123DEF45", "a@b.example", 5120, 3);
	ok(strstr(last, "\"queue_id\":\"0ABC123DEF45\"") && strstr(last, "\"from\":\"a@b.example\"") &&
	   strstr(last, "\"size\":5120") && strstr(last, "\"nrcpt\":3"),
	   "json: queue_id, from, size, nrcpt of a queue record (%s)", last);
	struct maillog_delivery dl = {
		.id = "0ABC123DEF45", .rcpt = "b@c.example", .relay_host = "mx.c.example",
		.relay_ip = "192.0.2.9", .relay_port = 25, .delay = 1.5,
		.delays = { 0.1, 0.2, 0.3, 0.9 }, .dsn = "4.4.1", .status = "deferred",
		.reason = "connect to mx.c.example[192.0.2.9]:25: Connection refused, try later",
	};
	maillog_delivery(&dl);
	ok(strstr(last, "\"to\":\"b@c.example\"") &&
	   strstr(last, "\"relay\":\"mx.c.example[192.0.2.9]:25\"") &&
	   strstr(last, "\"dsn\":\"4.4.1\"") && strstr(last, "\"status\":\"deferred\"") &&
	   strstr(last, "\"delay\":1.5") &&
	   strstr(last, "\"reason\":\"connect to mx.c.example[192.0.2.9]:25: Connection refused, try later\""),
	   "json: to, relay, delay, dsn, status and the whole reason of a delivery record (%s)", last);
	maillog_connect("client.example", "192.0.2.1");
	ok(strstr(last, "\"client\":\"client.example[192.0.2.1]\""), "json: client of connect (%s)", last);
	log_info(LOG_SVC_SMTPD, "0ABC123DEF45: from=<evil\">, to=<x>, bogus=1");
	ok(strstr(last, "\"from\":\"evil\\\"\"") && !strstr(last, "bogus\":"),
	   "json: quotes in a value escaped, unknown keys not made fields (%s)", last);
	char big[5000];
	memset(big, 'A', sizeof(big) - 1);
	big[sizeof(big) - 1] = 0;
	log_open("relayd", LOG_FLAG_NOSYSLOG);
	log_info(LOG_SVC_SMTPD, "%s", big);
	ok(strlen(last) < 2400 && strncmp(last, "relayd/smtpd[", 13) == 0,
	   "overlong message truncated, not overflowed");

	/* The syslog datagram: facility mail, RFC 3164 layout. */
	char dir[] = "/tmp/relayd-test-log.XXXXXX", path[100];
	if (mkdtemp(dir)) {
		snprintf(path, sizeof(path), "%s/log", dir);
		int fd = socket(AF_UNIX, SOCK_DGRAM, 0);
		struct sockaddr_un sun = { .sun_family = AF_UNIX };
		snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
		ok(fd >= 0 && bind(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0,
		   "fake syslogd socket");
		log_set_sink(NULL, NULL);
		log_set_syslog_path(path);
		log_open("relayd", 0);
		maillog_removed("0ABC123DEF45");
		char dgram[1024] = "";
		ssize_t n = recv(fd, dgram, sizeof(dgram) - 1, MSG_DONTWAIT);
		dgram[n > 0 ? n : 0] = 0;
		char want[128];
		snprintf(want, sizeof(want), " relayd/qmgr[%d]: 0ABC123DEF45: removed", (int)getpid());
		ok(strncmp(dgram, "<22>", 4) == 0, "syslog priority is mail.info (<22>): %s", dgram);
		ok(n > 20 && strcmp(dgram + 19, want) == 0, "syslog line: timestamp, tag[pid]: text");
		log_warn(LOG_SVC_SMTPD, "w");
		n = recv(fd, dgram, sizeof(dgram) - 1, MSG_DONTWAIT);
		dgram[n > 0 ? n : 0] = 0;
		ok(strncmp(dgram, "<20>", 4) == 0, "warning is mail.warning (<20>)");
		close(fd);
		unlink(path);
		rmdir(dir);
		log_set_sink(sink, NULL);
	}

	char buf[16];
	maillog_fmt_delay(buf, sizeof(buf), 0.001);
	is_str(buf, "0", "delay < 5 ms is 0");
	maillog_fmt_delay(buf, sizeof(buf), 0.034);
	is_str(buf, "0.03", "sub-second delay: two decimals");
	maillog_fmt_delay(buf, sizeof(buf), 0.5);
	is_str(buf, "0.5", "trailing zero trimmed");
	maillog_fmt_delay(buf, sizeof(buf), 12.6);
	is_str(buf, "13", "over 10 s whole seconds");
	return done_testing();
}
