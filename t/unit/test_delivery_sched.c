/*
 * test_delivery_sched.c - the scheduler's small parts: the retry backoff
 * and lifetimes, the tls_policy file, throttle detection and the
 * adaptive pace of a destination.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>
#include "t/tap.h"
#include "config.h"
#include "delivery/dest.h"
#include "delivery/retry.h"
#include "delivery/tls_policy.h"

static void load(struct config *c, const char *text)
{
	memset(c, 0, sizeof(*c));
	if (config_load_buffer(c, "t.conf", text, strlen(text), NULL) != 0)
		ok(0, "config loads: %s", text);
}

static void test_retry(void)
{
	struct config c;
	load(&c, "retry_min = 100s\nretry_max = 1000s\nqueue_lifetime = 1h\nbounce_lifetime = 10m\n");
	int in_range = 1, capped = 1, spread = 0;
	int64_t first = -1;
	for (int i = 0; i < 200; i++) {
		int64_t d0 = retry_next(&c, 0, 1000) - 1000;
		int64_t d2 = retry_next(&c, 2, 1000) - 1000;
		int64_t d9 = retry_next(&c, 9, 1000) - 1000;
		in_range &= d0 >= 90 && d0 <= 110 && d2 >= 360 && d2 <= 440;
		capped &= d9 >= 900 && d9 <= 1000;
		if (first < 0)
			first = d0;
		spread |= d0 != first;
	}
	ok(in_range, "retry_min * 2^n within +-10%%");
	ok(capped, "capped at retry_max, never over it");
	ok(spread, "jitter: not every delay the same");
	is_int(retry_next(&c, 4000000000u, 0) <= 1000, 1, "a huge attempt count stays capped");

	struct queue_msg m;
	memset(&m, 0, sizeof(m));
	m.sender = "a@b";
	m.arrival = (int64_t)1000 * 1000000;
	ok(!retry_expired(&c, &m, 1000 + 3599), "not expired before queue_lifetime");
	ok(retry_expired(&c, &m, 1000 + 3600), "expired at queue_lifetime");
	m.sender = "";
	ok(retry_expired(&c, &m, 1000 + 600), "mail from <>: bounce_lifetime");
	config_free(&c);
}

static void test_policy(void)
{
	char path[] = "/tmp/relayd-tlspol-XXXXXX", err[256];
	int fd = mkstemp(path);
	const char *text = "# comment\nexample.com encrypt\n.example.com verify  # subdomains\n"
			   "Other.ORG none\n\n";
	ok(fd >= 0 && write(fd, text, strlen(text)) == (ssize_t)strlen(text), "policy written");
	close(fd);
	struct tls_policy *p;
	ok(tls_policy_load(&p, path, err, sizeof(err)) == 0, "policy loads");
	is_int(tls_policy_lookup(p, "example.com", TLS_LEVEL_MAY), TLS_LEVEL_ENCRYPT, "exact line");
	is_int(tls_policy_lookup(p, "mx.example.com", TLS_LEVEL_MAY), TLS_LEVEL_VERIFY, "subdomain line");
	is_int(tls_policy_lookup(p, "other.org", TLS_LEVEL_MAY), TLS_LEVEL_NONE, "case-insensitive");
	is_int(tls_policy_lookup(p, "xexample.com", TLS_LEVEL_MAY), TLS_LEVEL_MAY, "no partial label match");
	is_int(tls_policy_lookup(NULL, "example.com", TLS_LEVEL_MAY), TLS_LEVEL_MAY, "no policy: default");
	tls_policy_free(p);
	fd = open(path, O_WRONLY | O_TRUNC);
	const char *bad = "example.com encrypt\nexample.net sometimes\n";
	ok(fd >= 0 && write(fd, bad, strlen(bad)) == (ssize_t)strlen(bad), "bad policy written");
	close(fd);
	ok(tls_policy_load(&p, path, err, sizeof(err)) != 0 && strstr(err, ":2:"),
	   "a bad level is refused with its line (%s)", err);
	unlink(path);
	ok(tls_policy_load(&p, path, err, sizeof(err)) != 0, "a missing file is an error");
}

static void test_throttle(void)
{
	ok(dest_is_throttle(421, "4.7.0 Too many connections from your IP"), "421 too many");
	ok(dest_is_throttle(450, "4.7.1 Rate limit exceeded"), "450 rate limit");
	ok(dest_is_throttle(451, "Please try again later"), "451 try again later");
	ok(dest_is_throttle(421, "throttled: slow down"), "throttled");
	ok(dest_is_throttle(451, "4.7.1 rate: 10/min"), "the word rate");
	ok(!dest_is_throttle(450, "4.2.0 mailbox busy"), "450 mailbox busy is not throttling");
	ok(!dest_is_throttle(451, "4.3.0 local error: cannot generate id"), "'generate' is not 'rate'");
	ok(!dest_is_throttle(550, "5.7.1 too many recipients"), "a 5xx never is");
}

static void test_pace(void)
{
	struct config c;
	load(&c, "destination_concurrency = 8\n");
	struct dest_table *t = dest_table_new();
	struct dest *d = dest_get(t, "example.com", 1);
	uint64_t pu = UINT64_MAX;
	is_int(dest_room(d, &c, 0, 100, &pu), 8, "fresh destination: the configured concurrency");
	dest_slow_down(d, &c, "421 too many");
	is_int(d->limit, 4, "slowed: half the connections");
	is_int(d->gap_ms, 1000, "slowed: a 1 s gap");
	is_int(dest_room(d, &c, 0, 100, &pu), 1, "paced: one message at a time");
	dest_take_slot(d, &c, 0);
	is_int(dest_room(d, &c, 500, 100, &pu), 0, "paced: the next waits for the gap");
	is_int(pu, 1000, "... until the gap has passed");
	dest_slow_down(d, &c, "again");
	dest_slow_down(d, &c, "again");
	dest_slow_down(d, &c, "again");
	is_int(d->limit, 1, "never below one connection");
	for (int i = 0; i < 10; i++)
		dest_success(d, &c);
	is_int(d->limit, 2, "a run of successes: one more connection");
	ok(d->gap_ms < 8000, "... and a shorter gap");
	for (int i = 0; i < 200; i++)
		dest_success(d, &c);
	is_int(d->gap_ms, 0, "recovered: no gap");
	pu = UINT64_MAX;
	is_int(dest_room(d, &c, 0, 100, &pu), 8, "recovered: the configured concurrency");
	int64_t until;
	dest_conn_failed(d, &c, 100, &until);
	ok(until > 100 && d->blocked_until == until, "no hop reached: blocked as a whole");
	is_int(dest_room(d, &c, 0, 100, &pu), 0, "blocked: no room");
	dest_conn_ok(d);
	is_int(dest_room(d, &c, 0, 100, &pu), 8, "reached again: unblocked");
	config_free(&c);
	load(&c, "destination_rate = 30\n");
	is_int(dest_interval_ms(d, &c), 2000, "destination_rate 30/min: 2 s apart");
	dest_table_free(t);
	config_free(&c);
}

int main(void)
{
	test_retry();
	test_policy();
	test_throttle();
	test_pace();
	return done_testing();
}
