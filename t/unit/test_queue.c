/*
 * test_queue.c - the queue library through its synchronous path on a real
 * LMDB environment in a temporary directory.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "queue.h"
#include "t/tap.h"

static char dir[256];

static void rm_rf(const char *d)
{
	char cmd[600];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", d);
	if (system(cmd) != 0)
		diag("cleanup of %s failed", d);
}

/* Submit a message with n recipients and `len` bytes of body. */
static int submit(struct queue *q, queue_id *id, uint32_t n, size_t len,
		  int64_t due)
{
	struct queue_msg m = { 0 };
	struct queue_rcpt r[8] = { 0 };
	char addrs[8][32];
	queue_id_new(q, &m.id);
	*id = m.id;
	m.arrival = 1700000000000000LL;
	m.sender = "alice@example.org";
	m.envid = "env+2Did";
	m.client_name = "client.example";
	m.client_addr = "127.0.0.1";
	m.helo = "client.example";
	m.auth_user = "alice";
	m.ret = QUEUE_RET_HDRS;
	m.flags = QUEUE_F_8BITMIME;
	m.nrcpt = n;
	m.rcpt = r;
	for (uint32_t i = 0; i < n; i++) {
		snprintf(addrs[i], sizeof(addrs[i]), "rcpt%u@example.net", i);
		r[i].addr = addrs[i];
		r[i].notify = QUEUE_NOTIFY_FAILURE | QUEUE_NOTIFY_DELAY;
		r[i].orcpt = i == 0 ? "rfc822;rcpt0@example.net" : NULL;
	}
	struct queue_spool *sp;
	if (queue_spool_new(q, &sp))
		return -1;
	for (size_t off = 0; off < len;) {
		char buf[1000];
		size_t k = len - off < sizeof(buf) ? len - off : sizeof(buf);
		for (size_t j = 0; j < k; j++)
			buf[j] = (char)('a' + (off + j) % 26);
		if (queue_spool_write(sp, buf, k)) {
			queue_spool_free(sp);
			return -1;
		}
		off += k;
	}
	struct queue_op *op = queue_op_submit(&m, sp, due);
	if (!op)
		return QUEUE_ENOMEM;
	int rc = queue_sync_run(q, op);
	queue_op_free(op);
	return rc;
}

static int run(struct queue *q, struct queue_op *op)
{
	if (!op)
		return QUEUE_ENOMEM;
	int rc = queue_sync_run(q, op);
	queue_op_free(op);
	return rc;
}

/* Count due entries for id. */
static size_t due_for(struct queue *q, const char *id, int64_t *when)
{
	struct queue_read *r;
	static struct queue_due d[4096];
	size_t n, c = 0;
	if (queue_read_begin(q, &r))
		return 9999;
	queue_due_next(r, INT64_MAX, d, 4096, &n);
	for (size_t i = 0; i < n; i++)
		if (strcmp(d[i].id.s, id) == 0) {
			c++;
			if (when)
				*when = d[i].when;
		}
	queue_read_end(r);
	return c;
}

static int check_body(struct queue *q, const char *id, size_t len)
{
	struct queue_read *r;
	struct queue_msg m;
	int good = 1;
	if (queue_read_begin(q, &r))
		return 0;
	if (queue_msg_get(r, id, &m)) {
		queue_read_end(r);
		return 0;
	}
	size_t off = 0;
	for (uint32_t i = 0; i < m.nchunks && good; i++) {
		const void *p;
		size_t n;
		if (queue_body_chunk(r, id, i, &p, &n)) {
			good = 0;
			break;
		}
		for (size_t j = 0; j < n; j++)
			if (((const char *)p)[j] != (char)('a' + (off + j) % 26))
				good = 0;
		off += n;
	}
	good = good && off == len && m.size == len;
	queue_msg_clear(&m);
	queue_read_end(r);
	return good;
}

static void test_ids(struct queue *q)
{
	queue_id a, b;
	queue_id_new(q, &a);
	queue_id_new(q, &b);
	is_int(strlen(a.s), QUEUE_ID_LEN, "queue id has 12 characters");
	ok(strspn(a.s, "0123456789ABCDEFGHJKMNPQRSTVWXYZ") == QUEUE_ID_LEN,
	   "queue id is [0-9A-Z]");
	ok(strcmp(a.s, b.s) < 0, "ids increase: %s < %s", a.s, b.s);
	ok(queue_id_valid(a.s), "valid id accepted");
	ok(!queue_id_valid("0123456789A"), "short id rejected");
	ok(!queue_id_valid("0123456789AI"), "id with I rejected");
	ok(!queue_id_valid("../../etc/pw"), "path id rejected");
	ok(!queue_id_valid(NULL), "NULL id rejected");
	queue_id prev = b;
	int mono = 1;
	for (int i = 0; i < 10000; i++) {
		queue_id_new(q, &a);
		if (strcmp(prev.s, a.s) >= 0)
			mono = 0;
		prev = a;
	}
	ok(mono, "10000 ids in a row strictly increase");
}

static void test_submit_read(struct queue *q)
{
	queue_id id;
	is_int(submit(q, &id, 3, 5000, 100), 0, "submit 3 rcpts, 5000 bytes");
	struct queue_read *r;
	struct queue_msg m;
	queue_read_begin(q, &r);
	is_int(queue_msg_get(r, id.s, &m), 0, "message reads back");
	is_str(m.id.s, id.s, "id");
	is_str(m.sender, "alice@example.org", "sender");
	is_str(m.envid, "env+2Did", "envid");
	is_str(m.client_name, "client.example", "client name");
	is_str(m.client_addr, "127.0.0.1", "client addr");
	is_str(m.auth_user, "alice", "auth user");
	is_int(m.ret, QUEUE_RET_HDRS, "ret");
	is_int(m.flags, QUEUE_F_8BITMIME, "flags");
	is_int(m.arrival, 1700000000000000LL, "arrival");
	is_int(m.size, 5000, "size");
	is_int(m.nrcpt, 3, "nrcpt");
	is_str(m.rcpt[2].addr, "rcpt2@example.net", "rcpt 2 address");
	is_str(m.rcpt[0].orcpt, "rfc822;rcpt0@example.net", "orcpt");
	ok(m.rcpt[1].orcpt == NULL, "absent orcpt is NULL");
	is_int(m.rcpt[0].notify, QUEUE_NOTIFY_FAILURE | QUEUE_NOTIFY_DELAY, "notify");
	is_int(m.rcpt[0].state, QUEUE_RCPT_PENDING, "new rcpt pending");
	is_int(m.rcpt[0].next_attempt, 100, "due time stored");
	queue_msg_clear(&m);
	is_int(queue_msg_get(r, "000000000000", &m), QUEUE_ENOENT, "missing id: ENOENT");
	is_int(queue_msg_get(r, "bad", &m), QUEUE_EINVAL, "bad id: EINVAL");
	queue_read_end(r);
	ok(check_body(q, id.s, 5000), "body byte-exact");
	is_int(due_for(q, id.s, NULL), 3, "one due entry per recipient");

	queue_id big;
	is_int(submit(q, &big, 1, 1000000, 100), 0, "submit 1 MB (spilled) body");
	ok(check_body(q, big.s, 1000000), "1 MB body byte-exact over 16 chunks");
	/* An op applied again (its first commit reported an error after
	 * all) is the same message: success, not a clash. */
	{
		struct queue_msg m2 = { 0 };
		struct queue_rcpt r2 = { .addr = "x@example.net" };
		queue_id_new(q, &m2.id);
		m2.sender = "s@example.org";
		m2.nrcpt = 1;
		m2.rcpt = &r2;
		struct queue_spool *sp;
		queue_spool_new(q, &sp);
		queue_spool_write(sp, "hello\r\n", 7);
		struct queue_op *op = queue_op_submit(&m2, sp, 5);
		is_int(queue_sync_run(q, op), 0, "submit");
		is_int(queue_sync_run(q, op), 0, "the same op again: already stored, ok");
		queue_op_free(op);
		m2.sender = "other@example.org";
		queue_spool_new(q, &sp);
		op = queue_op_submit(&m2, sp, 5);
		is_int(queue_sync_run(q, op), QUEUE_EEXIST, "another envelope under that id: EEXIST");
		queue_op_free(op);
		run(q, queue_op_remove(m2.id.s));
	}

	queue_id empty;
	is_int(submit(q, &empty, 1, 0, 100), 0, "submit empty body");
	ok(check_body(q, empty.s, 0), "empty body reads back empty");
	is_int(run(q, queue_op_admin(big.s, QUEUE_ADMIN_DELETE)), 0, "delete big");
	is_int(run(q, queue_op_admin(empty.s, QUEUE_ADMIN_DELETE)), 0, "delete empty");
}

static void test_updates(struct queue *q)
{
	queue_id id;
	int64_t when = 0;
	submit(q, &id, 2, 100, 100);
	struct queue_rcpt_update u[2] = {
		{ .rcpt = 0, .state = QUEUE_RCPT_DEFERRED, .next_attempt = 500,
		  .dsn = "4.4.1", .reason = "connection refused" },
		{ .rcpt = 1, .state = QUEUE_RCPT_SENT, .dsn = "2.0.0",
		  .reason = "250 ok" },
	};
	is_int(run(q, queue_op_rcpt_update(id.s, u, 2)), 0, "defer one, send one");
	is_int(due_for(q, id.s, &when), 1, "only the deferred rcpt is due");
	is_int(when, 500, "at its new time");
	struct queue_read *r;
	struct queue_msg m;
	queue_read_begin(q, &r);
	queue_msg_get(r, id.s, &m);
	is_int(m.rcpt[0].state, QUEUE_RCPT_DEFERRED, "rcpt 0 deferred");
	is_str(m.rcpt[0].dsn, "4.4.1", "deferred dsn");
	is_str(m.rcpt[0].reason, "connection refused", "deferred reason");
	is_int(m.rcpt[0].attempts, 1, "attempt counted");
	is_int(m.rcpt[1].state, QUEUE_RCPT_SENT, "rcpt 1 sent");
	queue_msg_clear(&m);
	queue_read_end(r);

	is_int(run(q, queue_op_rcpt_update(id.s, &u[1], 1)), QUEUE_EINVAL,
	       "updating a terminal rcpt is refused");
	struct queue_rcpt_update bad = { .rcpt = 7, .state = QUEUE_RCPT_FAILED };
	is_int(run(q, queue_op_rcpt_update(id.s, &bad, 1)), QUEUE_EINVAL,
	       "out-of-range rcpt refused");
	struct queue_rcpt_update badstate = { .rcpt = 0, .state = 7 };
	is_int(run(q, queue_op_rcpt_update(id.s, &badstate, 1)), QUEUE_EINVAL,
	       "out-of-range state refused");
	struct queue_read *rr;
	struct queue_msg mm;
	queue_read_begin(q, &rr);
	is_int(queue_msg_get(rr, id.s, &mm), 0, "message still loads after a refused state");
	queue_msg_clear(&mm);
	queue_read_end(rr);

	/* The same recipient twice in one op: deferred, then sent, leaves
	 * no due entry behind. */
	queue_id id2;
	submit(q, &id2, 1, 10, 100);
	struct queue_rcpt_update twice[2] = {
		{ .rcpt = 0, .state = QUEUE_RCPT_DEFERRED, .next_attempt = 777 },
		{ .rcpt = 0, .state = QUEUE_RCPT_SENT },
	};
	is_int(run(q, queue_op_rcpt_update(id2.s, twice, 2)), 0, "one rcpt updated twice in one op");
	is_int(due_for(q, id2.s, NULL), 0, "no due entry left for a sent recipient");
	is_int(run(q, queue_op_remove(id2.s)), 0, "remove it");

	/* hold / release / flush / requeue keep the due invariant. */
	is_int(run(q, queue_op_admin(id.s, QUEUE_ADMIN_HOLD)), 0, "hold");
	is_int(due_for(q, id.s, NULL), 0, "held: nothing due");
	is_int(run(q, queue_op_rcpt_update(id.s, u, 1)), 0, "update while held");
	is_int(due_for(q, id.s, NULL), 0, "still nothing due while held");
	int64_t before = time(NULL);
	is_int(run(q, queue_op_admin(id.s, QUEUE_ADMIN_RELEASE)), 0, "release");
	is_int(due_for(q, id.s, &when), 1, "released: deferred rcpt due again");
	ok(when >= before && when <= before + 2, "due now after release");
	is_int(run(q, queue_op_rcpt_update(id.s, u, 1)), 0, "defer to 500 again");
	is_int(run(q, queue_op_admin(id.s, QUEUE_ADMIN_FLUSH)), 0, "flush");
	is_int(due_for(q, id.s, &when), 1, "flushed: one due entry");
	ok(when >= before, "flush makes it due now");
	is_int(run(q, queue_op_admin(id.s, QUEUE_ADMIN_HOLD)), 0, "hold again");
	is_int(run(q, queue_op_admin(id.s, QUEUE_ADMIN_REQUEUE)), 0, "requeue held");
	is_int(due_for(q, id.s, NULL), 1, "requeue releases and schedules");
	is_int(run(q, queue_op_flags(id.s, QUEUE_F_WARNED | QUEUE_F_HELD, 0)), 0,
	       "set WARNED flag");
	queue_read_begin(q, &r);
	queue_msg_get(r, id.s, &m);
	is_int(m.flags, QUEUE_F_8BITMIME | QUEUE_F_WARNED,
	       "WARNED set, HELD not settable through flags");
	queue_msg_clear(&m);
	queue_read_end(r);
	is_int(run(q, queue_op_remove(id.s)), 0, "remove");
	is_int(due_for(q, id.s, NULL), 0, "removed: nothing due");
	is_int(run(q, queue_op_remove(id.s)), QUEUE_ENOENT, "remove twice: ENOENT");
	is_int(run(q, queue_op_admin(id.s, QUEUE_ADMIN_HOLD)), QUEUE_ENOENT,
	       "admin on missing message: ENOENT");
}

static int count_cb(const struct queue_msg *m, void *arg)
{
	(*(int *)arg)++;
	return 0;
}

static int stop_cb(const struct queue_msg *m, void *arg)
{
	return 42;
}

static void test_iter_due(struct queue *q)
{
	queue_id ids[5];
	for (int i = 0; i < 5; i++)
		submit(q, &ids[i], 1, 10, 1000 - i);
	struct queue_read *r;
	queue_read_begin(q, &r);
	int n = 0;
	is_int(queue_msg_iter(r, NULL, count_cb, &n), 0, "iterate all");
	ok(n >= 6, "iterated every message (%d)", n);
	n = 0;
	queue_msg_iter(r, ids[2].s, count_cb, &n);
	is_int(n, 2, "iterate after id: only the two later messages");
	is_int(queue_msg_iter(r, NULL, stop_cb, NULL), 42, "callback stops iteration");
	struct queue_due d[10];
	size_t k;
	queue_due_next(r, 998, d, 10, &k);
	ok(k >= 3, "entries due by 998: %zu", k);
	int sorted = 1;
	for (size_t i = 1; i < k; i++)
		if (d[i].when < d[i - 1].when)
			sorted = 0;
	ok(sorted, "due entries in time order");
	struct queue_due first;
	is_int(queue_due_first(r, &first), 0, "earliest due exists");
	uint64_t cnt;
	is_int(queue_count(r, &cnt), 0, "count");
	ok(cnt >= 6, "count %llu", (unsigned long long)cnt);
	queue_read_end(r);
}

static void test_map_full(void)
{
	char d2[300];
	snprintf(d2, sizeof(d2), "%s/small", dir);
	struct queue *q;
	is_int(queue_open(&q, d2, 1 << 20, 0), 0, "open with a 1 MiB map");
	queue_id id;
	int rc = 0, i;
	for (i = 0; i < 100 && rc == 0; i++)
		rc = submit(q, &id, 1, 200000, 1);
	is_int(rc, QUEUE_ENOSPC, "map full is QUEUE_ENOSPC");
	is_int(submit(q, &id, 1, 100, 1), 0, "small message still fits: env usable");
	struct queue_read *r;
	is_int(queue_read_begin(q, &r), 0, "reads work after map full");
	queue_read_end(r);
	queue_close(q);
	is_int(queue_open(&q, d2, 1 << 20, 0), 0, "reopens after map full");
	queue_close(q);
}

/* The map's figures: the size asked for, a page size, and a last page
 * that grows as messages are stored and stays inside the map. */
static void test_env_info(void)
{
	char d2[300];
	snprintf(d2, sizeof(d2), "%s/info", dir);
	struct queue *q;
	struct queue_env_info a, b;
	queue_id id;
	is_int(queue_open(&q, d2, 4 << 20, 0), 0, "open with a 4 MiB map");
	is_int(queue_env_info(q, &a), 0, "queue_env_info");
	is_int((int)a.map_size, 4 << 20, "map_size is the size asked for");
	ok(a.page_size >= 512 && (a.page_size & (a.page_size - 1)) == 0,
	   "page_size is a power of two");
	is_int(submit(q, &id, 1, 1 << 20, 1), 0, "store a 1 MiB message");
	is_int(queue_env_info(q, &b), 0, "queue_env_info again");
	ok((b.last_page - a.last_page) * b.page_size >= 1 << 20,
	   "last_page grew by at least the message");
	ok((b.last_page + 1) * b.page_size <= b.map_size, "the used pages fit in the map");
	is_int(queue_env_info(NULL, &b), QUEUE_EINVAL, "NULL queue: QUEUE_EINVAL");
	queue_close(q);
}

/* The three entry counts against a queue whose states are known: 3
 * messages of 2 recipients, one held, one recipient sent, one deferred. */
static void test_counts(void)
{
	char d2[300];
	snprintf(d2, sizeof(d2), "%s/counts", dir);
	struct queue *q;
	struct queue_counts c = { 9, 9, 9 };
	queue_id id[3];
	is_int(queue_open(&q, d2, 0, 0), 0, "open an empty queue");
	is_int(queue_counts(q, &c), 0, "queue_counts on an empty queue");
	ok(c.messages == 0 && c.recipients == 0 && c.scheduled == 0, "empty: 0, 0, 0");
	for (int i = 0; i < 3; i++)
		is_int(submit(q, &id[i], 2, 100, 100), 0, "store a message of 2 rcpts");
	is_int(run(q, queue_op_admin(id[0].s, QUEUE_ADMIN_HOLD)), 0, "hold message 0");
	struct queue_rcpt_update u[2] = {
		{ .rcpt = 0, .state = QUEUE_RCPT_SENT, .dsn = "2.0.0" },
		{ .rcpt = 1, .state = QUEUE_RCPT_DEFERRED, .next_attempt = 500 },
	};
	is_int(run(q, queue_op_rcpt_update(id[1].s, u, 2)), 0,
	       "message 1: one sent, one deferred");
	is_int(queue_counts(q, &c), 0, "queue_counts");
	is_int((int)c.messages, 3, "messages: 3");
	is_int((int)c.recipients, 6, "recipients: 6, whatever their state");
	is_int((int)c.scheduled, 3, "scheduled: 3 (not the held 2, not the sent 1)");
	is_int(run(q, queue_op_remove(id[2].s)), 0, "remove message 2");
	is_int(run(q, queue_op_admin(id[0].s, QUEUE_ADMIN_RELEASE)), 0, "release message 0");
	is_int(queue_counts(q, &c), 0, "queue_counts again");
	ok(c.messages == 2 && c.recipients == 4 && c.scheduled == 3,
	   "after remove and release: 2, 4, 3 (got %llu, %llu, %llu)",
	   (unsigned long long)c.messages, (unsigned long long)c.recipients,
	   (unsigned long long)c.scheduled);
	queue_close(q);
}

static void test_reopen_ids(void)
{
	struct queue *q;
	queue_id a, b;
	queue_open(&q, dir, 0, 0);
	submit(q, &a, 1, 10, 1);
	queue_close(q);
	queue_open(&q, dir, 0, 0);
	queue_id_new(q, &b);
	ok(strcmp(a.s, b.s) < 0, "ids keep increasing across reopen");
	queue_close(q);
	is_int(queue_open(&q, dir, 0, QUEUE_OPEN_RDONLY), 0, "read-only open");
	struct queue_read *r;
	struct queue_msg m;
	queue_read_begin(q, &r);
	is_int(queue_msg_get(r, a.s, &m), 0, "read-only sees messages");
	queue_msg_clear(&m);
	queue_read_end(r);
	queue_close(q);
	is_int(queue_open(&q, "/nonexistent/relayd-q", 0, QUEUE_OPEN_RDONLY),
	       QUEUE_ENOENT, "read-only open of missing dir: ENOENT");
}

int main(void)
{
	snprintf(dir, sizeof(dir), "/tmp/relayd-test-queue.XXXXXX");
	if (!mkdtemp(dir))
		return 1;
	struct queue *q;
	is_int(queue_open(&q, dir, 0, 0), 0, "open queue");
	test_ids(q);
	test_submit_read(q);
	test_updates(q);
	test_iter_due(q);
	queue_close(q);
	test_map_full();
	test_env_info();
	test_counts();
	test_reopen_ids();
	rm_rf(dir);
	return done_testing();
}
