/*
 * test_queue_sched.c - what the scheduler, the bounces and the tools need
 * from the queue: atomic groups, claims and leases (across a SIGKILL),
 * destinations, attempt facts and history, body copies, listings under a
 * committing writer, ids from two processes and after the clock stepped
 * back, the daemon lock, group-readable snapshots, schema migration.
 * Real LMDB in a temporary directory.
 */
#include <grp.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <lmdb.h>
#include <uv.h>
#include "queue.h"
#include "t/tap.h"

static char dir[256];

static struct queue *open_q(void)
{
	struct queue *q = NULL;
	int rc = queue_open(&q, dir, 0, 0);
	if (rc)
		diag("open %s: %s", dir, queue_strerror(rc));
	return q;
}

static int run(struct queue *q, struct queue_op *op)
{
	if (!op)
		return QUEUE_ENOMEM;
	int rc = queue_sync_run(q, op);
	queue_op_free(op);
	return rc;
}

/* A message to the given addresses, due at `due`, body of len bytes. */
static struct queue_op *make(struct queue *q, queue_id *id, const char **to,
			     uint32_t n, size_t len, int64_t due)
{
	struct queue_msg m = { 0 };
	struct queue_rcpt r[16] = { 0 };
	queue_id_new(q, &m.id);
	*id = m.id;
	m.arrival = (int64_t)time(NULL) * 1000000;
	m.sender = "alice@example.org";
	m.client_name = "client.example";
	m.client_addr = "127.0.0.1";
	m.nrcpt = n;
	m.rcpt = r;
	for (uint32_t i = 0; i < n; i++)
		r[i].addr = (char *)to[i];
	struct queue_spool *sp;
	if (queue_spool_new(q, &sp))
		return NULL;
	for (size_t off = 0; off < len; off++) {
		char c = (char)('a' + off % 26);
		queue_spool_write(sp, &c, 1);
	}
	return queue_op_submit(&m, sp, due);
}

static int submit(struct queue *q, queue_id *id, const char **to, uint32_t n,
		  int64_t due)
{
	return run(q, make(q, id, to, n, 100, due));
}

static int get_msg(struct queue *q, const char *id, struct queue_msg *m)
{
	struct queue_read *r;
	if (queue_read_begin(q, &r))
		return -1;
	int rc = queue_msg_get(r, id, m);
	queue_read_end(r);
	return rc;
}

/* The due entries of (id, rcpt): count, and the time of the last one. */
static int due_of(struct queue *q, const char *id, uint32_t rcpt, int64_t *when)
{
	static struct queue_due d[4096];
	struct queue_read *r;
	size_t n;
	int c = 0;
	queue_read_begin(q, &r);
	queue_due_next(r, INT64_MAX, d, 4096, &n);
	queue_read_end(r);
	for (size_t i = 0; i < n; i++)
		if (!strcmp(d[i].id.s, id) && d[i].rcpt == rcpt) {
			c++;
			*when = d[i].when;
		}
	return c;
}

static uint64_t count(struct queue *q)
{
	struct queue_read *r;
	uint64_t n = 0;
	queue_read_begin(q, &r);
	queue_count(r, &n);
	queue_read_end(r);
	return n;
}

static void test_groups(struct queue *q)
{
	const char *to[] = { "a@one.example", "b@one.example" };
	queue_id id, bounce;
	int64_t w;
	submit(q, &id, to, 2, 100);
	uint64_t before = count(q);
	struct queue_rcpt_update fail0 = { .rcpt = 0, .state = QUEUE_RCPT_FAILED,
					   .dsn = "5.1.1", .reason = "550 no" };
	struct queue_rcpt_update bad = { .rcpt = 9, .state = QUEUE_RCPT_FAILED };
	const char *bto[] = { "alice@example.org" };
	struct queue_op *ops[4] = {
		queue_op_rcpt_update(id.s, &fail0, 1),
		make(q, &bounce, bto, 1, 3000, 100),
		queue_op_rcpt_update(id.s, &bad, 1),
	};
	is_int(run(q, queue_op_group(ops, 3)), QUEUE_EINVAL,
	       "a group with a failing op fails with its error");
	struct queue_msg m;
	is_int(get_msg(q, id.s, &m), 0, "original still there");
	is_int(m.rcpt[0].state, QUEUE_RCPT_PENDING, "failed group left rcpt 0 pending");
	is_int(m.rcpt[0].attempts, 0, "and counted no attempt");
	queue_msg_clear(&m);
	is_int(get_msg(q, bounce.s, &m), QUEUE_ENOENT, "failed group stored no bounce");
	is_int(count(q), before, "message count unchanged");
	is_int(due_of(q, id.s, 0, &w), 1, "rcpt 0 still due once");

	/* The bounce case: both recipients fail, the bounce is queued, the
	 * original goes, in one transaction. */
	struct queue_rcpt_update both[2] = { fail0, fail0 };
	both[1].rcpt = 1;
	ops[0] = queue_op_rcpt_update(id.s, both, 2);
	ops[1] = make(q, &bounce, bto, 1, 3000, 100);
	ops[2] = queue_op_remove_done(id.s);
	is_int(run(q, queue_op_group(ops, 3)), 0, "fail + bounce + remove_done group");
	is_int(get_msg(q, id.s, &m), QUEUE_ENOENT, "original removed");
	is_int(get_msg(q, bounce.s, &m), 0, "bounce stored");
	is_int(m.size, 3000, "bounce body stored");
	queue_msg_clear(&m);
	is_int(count(q), before, "one message out, one in");

	/* remove_done leaves a message with live recipients alone. */
	queue_id id2;
	submit(q, &id2, to, 2, 100);
	is_int(run(q, queue_op_remove_done(id2.s)), 0, "remove_done of a live message: ok");
	is_int(get_msg(q, id2.s, &m), 0, "but the message stays");
	queue_msg_clear(&m);
	run(q, queue_op_remove(id2.s));
	run(q, queue_op_remove(bounce.s));
	struct queue_op *nested[1] = { queue_op_group((struct queue_op *[]){
		queue_op_remove(id2.s) }, 1) };
	ok(queue_op_group(nested, 1) == NULL, "groups do not nest");
}

static void test_claims(struct queue *q)
{
	const char *to[] = { "a@two.example", "b@two.example" };
	queue_id id;
	int64_t now = time(NULL), w = 0;
	submit(q, &id, to, 2, now);
	struct queue_due items[2] = { { .id = id, .rcpt = 0 }, { .id = id, .rcpt = 1 } };
	struct queue_op *op = queue_op_claim(items, 2, now, 60);
	size_t n;
	is_int(queue_sync_run(q, op), 0, "claim two recipients");
	const uint64_t *g = queue_op_claim_gens(op, &n);
	uint64_t gen0 = g[0], gen1 = g[1];
	ok(n == 2 && gen0 && gen1 && gen0 != gen1, "both granted, distinct generations");
	queue_op_free(op);
	is_int(due_of(q, id.s, 0, &w), 1, "claimed rcpt has one due entry");
	is_int(w, now + 60, "at the end of its lease");

	op = queue_op_claim(items, 2, now + 10, 60);
	queue_sync_run(q, op);
	g = queue_op_claim_gens(op, &n);
	ok(g[0] == 0 && g[1] == 0, "second claim (another pass) refused");
	queue_op_free(op);
	op = queue_op_claim(items, 1, now + 100, 60);
	queue_sync_run(q, op);
	ok(queue_op_claim_gens(op, &n)[0] == 0,
	   "our own claim holds past its lease (the delivery still runs)");
	queue_op_free(op);
	due_of(q, id.s, 0, &w);
	is_int(w, now + 160, "and is pushed out of the scheduler's way");
	is_int(run(q, queue_op_admin(id.s, QUEUE_ADMIN_FLUSH)), 0, "flush");
	is_int(run(q, queue_op_admin(id.s, QUEUE_ADMIN_REQUEUE)), 0, "requeue");
	due_of(q, id.s, 0, &w);
	is_int(w, now + 160, "flush and requeue leave an in-flight rcpt alone");

	struct queue_rcpt_update u = { .rcpt = 0, .state = QUEUE_RCPT_DEFERRED,
				       .next_attempt = now + 300, .claim = gen0 + 1000 };
	is_int(run(q, queue_op_rcpt_update(id.s, &u, 1)), QUEUE_ESTALE,
	       "result under a stale claim refused");
	u.claim = 0;
	is_int(run(q, queue_op_rcpt_update(id.s, &u, 1)), QUEUE_EBUSY,
	       "unclaimed update of an in-flight rcpt refused");
	u.claim = gen0;
	is_int(run(q, queue_op_rcpt_update(id.s, &u, 1)), 0, "result under the current claim applied");
	due_of(q, id.s, 0, &w);
	is_int(w, now + 300, "deferred rcpt due at its next attempt");
	is_int(run(q, queue_op_rcpt_update(id.s, &u, 1)), QUEUE_ESTALE,
	       "the same result again: its claim is spent");

	/* Release without an attempt. */
	op = queue_op_claim_release(&items[1], &gen1, 1, now + 5);
	is_int(queue_sync_run(q, op), 0, "release");
	g = queue_op_claim_gens(op, &n);
	ok(g[0] == gen1, "released under the current claim");
	queue_op_free(op);
	struct queue_msg m;
	get_msg(q, id.s, &m);
	is_int(m.rcpt[1].claim_gen, 0, "claim cleared");
	is_int(m.rcpt[1].attempts, 0, "a release is no attempt");
	queue_msg_clear(&m);
	due_of(q, id.s, 1, &w);
	is_int(w, now + 5, "released rcpt due when asked");

	/* Held messages are not claimed. */
	run(q, queue_op_admin(id.s, QUEUE_ADMIN_HOLD));
	op = queue_op_claim(items, 2, now + 400, 60);
	queue_sync_run(q, op);
	g = queue_op_claim_gens(op, &n);
	ok(!g[0] && !g[1], "held message: nothing claimed");
	queue_op_free(op);
	run(q, queue_op_remove(id.s));
}

/* The child claims and is killed; the parent finds the work due again at
 * the lease's end, claims it anew, and the dead claim's result is stale. */
static void test_lease_crash(void)
{
	const char *to[] = { "c@three.example" };
	struct queue *q = open_q();
	queue_id id;
	int64_t now = time(NULL), w = 0;
	submit(q, &id, to, 1, now);
	queue_close(q);
	int fd[2];
	if (pipe(fd))
		return;
	pid_t pid = fork();
	if (pid == 0) {
		struct queue *cq = open_q();
		struct queue_due it = { .id = id, .rcpt = 0 };
		struct queue_op *op = queue_op_claim(&it, 1, now, 30);
		size_t n;
		uint64_t gen = 0;
		if (cq && op && queue_sync_run(cq, op) == 0)
			gen = queue_op_claim_gens(op, &n)[0];
		if (write(fd[1], &gen, sizeof(gen)) != sizeof(gen))
			_exit(1);
		pause();
		_exit(0);
	}
	uint64_t gen = 0;
	close(fd[1]);
	ok(read(fd[0], &gen, sizeof(gen)) == sizeof(gen) && gen, "child claimed");
	close(fd[0]);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	q = open_q();
	is_int(due_of(q, id.s, 0, &w), 1, "after SIGKILL the rcpt is indexed once");
	is_int(w, now + 30, "due again when the lease runs out");
	struct queue_due it = { .id = id, .rcpt = 0 }, first;
	struct queue_op *op = queue_op_claim(&it, 1, now + 10, 30);
	size_t n;
	queue_sync_run(q, op);
	ok(queue_op_claim_gens(op, &n)[0] == 0, "not claimable while the lease is live");
	queue_op_free(op);
	/* A tool holding the daemon lock (the daemon is down) requeues at
	 * once: the dead process's claim does not hold it up. */
	{
		struct queue *tool = open_q();
		int64_t w2 = 0;
		queue_claims_void(tool);
		is_int(run(tool, queue_op_admin(id.s, QUEUE_ADMIN_REQUEUE)), 0,
		       "tool requeues");
		due_of(tool, id.s, 0, &w2);
		ok(w2 <= time(NULL), "a dead daemon's claim is void for the lock holder");
		queue_close(tool);
	}
	struct queue_read *r;
	queue_read_begin(q, &r);
	is_int(queue_due_first(r, &first), 0, "due index has work");
	queue_read_end(r);
	op = queue_op_claim(&it, 1, now + 30, 30);
	queue_sync_run(q, op);
	uint64_t gen2 = queue_op_claim_gens(op, &n)[0];
	ok(gen2 > gen, "claimed again once the lease expired (gen %llu > %llu)",
	   (unsigned long long)gen2, (unsigned long long)gen);
	queue_op_free(op);
	struct queue_rcpt_update u = { .rcpt = 0, .state = QUEUE_RCPT_SENT, .claim = gen };
	is_int(run(q, queue_op_rcpt_update(id.s, &u, 1)), QUEUE_ESTALE,
	       "the dead delivery's result is refused");
	u.claim = gen2;
	is_int(run(q, queue_op_rcpt_update(id.s, &u, 1)), 0, "the new one's applies");
	run(q, queue_op_remove(id.s));
	queue_close(q);
}

/* For every destination, the index agrees with its count. */
static int dests_consistent(struct queue *q)
{
	static struct queue_dest d[256];
	static struct queue_due b[4096];
	struct queue_read *r;
	size_t n, k;
	int good = 1;
	queue_read_begin(q, &r);
	queue_dest_next(r, INT64_MAX, d, 256, &n);
	for (size_t i = 0; i < n; i++) {
		queue_dest_batch(r, d[i].name, INT64_MAX, b, 4096, &k);
		if (k != d[i].nrcpt || (k && b[0].when != d[i].earliest)) {
			diag("%s: %zu entries, count %llu", d[i].name, k,
			     (unsigned long long)d[i].nrcpt);
			good = 0;
		}
		if (i && d[i].when < d[i - 1].when)
			good = 0;
	}
	queue_read_end(r);
	return good;
}

static void test_dests(struct queue *q)
{
	const char *to1[] = { "x@Dest-A.example", "y@dest-b.example", "z@dest-a.example" };
	const char *to2[] = { "w@dest-b.example" };
	queue_id a, b;
	char name[QUEUE_DEST_MAX + 1];
	queue_dest_of("Someone@Example.ORG", name);
	is_str(name, "example.org", "destination is the lower-case domain");
	submit(q, &a, to1, 3, 1000);
	submit(q, &b, to2, 1, 900);
	struct queue_read *r;
	struct queue_dest d[8];
	struct queue_due e[8];
	size_t n;
	queue_read_begin(q, &r);
	queue_dest_next(r, 2000, d, 8, &n);
	is_int(n, 2, "two destinations due");
	is_str(d[0].name, "dest-b.example", "the earlier one first");
	is_int(d[0].when, 900, "due at its earliest recipient");
	is_int(d[0].nrcpt, 2, "with its two recipients");
	is_int(d[1].nrcpt, 2, "dest-a has two (case folded)");
	queue_dest_batch(r, "dest-a.example", 2000, e, 8, &n);
	ok(n == 2 && !strcmp(e[0].id.s, a.s) && e[0].rcpt == 0 && e[1].rcpt == 2,
	   "dest-a's batch: rcpts 0 and 2 of the message");
	queue_dest_batch(r, "dest-a.example", 999, e, 8, &n);
	is_int(n, 0, "nothing of dest-a due before 1000");
	queue_read_end(r);

	is_int(run(q, queue_op_dest_block("dest-b.example", 5000)), 0, "block dest-b");
	queue_read_begin(q, &r);
	queue_dest_next(r, 2000, d, 8, &n);
	ok(n == 1 && !strcmp(d[0].name, "dest-a.example"), "a blocked destination is not offered");
	queue_dest_next(r, 6000, d, 8, &n);
	ok(n == 2 && !strcmp(d[1].name, "dest-b.example") && d[1].when == 5000,
	   "it sorts at its end of block");
	queue_read_end(r);
	run(q, queue_op_dest_block("dest-a.example", 5000));
	is_int(run(q, queue_op_admin(b.s, QUEUE_ADMIN_FLUSH)), 0, "flush the dest-b message");
	queue_read_begin(q, &r);
	queue_dest_get(r, "dest-b.example", &d[0]);
	ok(d[0].blocked_until == 0 && d[0].when <= time(NULL),
	   "flush lifts the block of its recipients' destination");
	queue_dest_get(r, "dest-a.example", &d[0]);
	is_int(d[0].blocked_until, 5000, "and of no other destination");
	queue_read_end(r);
	ok(dests_consistent(q), "destination index consistent after the flush");
	run(q, queue_op_dest_block("dest-a.example", 0));

	struct queue_rcpt_update u = { .rcpt = 1, .state = QUEUE_RCPT_SENT };
	run(q, queue_op_rcpt_update(a.s, &u, 1));
	u.rcpt = 0;
	run(q, queue_op_rcpt_update(b.s, &u, 1));
	queue_read_begin(q, &r);
	is_int(queue_dest_get(r, "dest-b.example", &d[0]), QUEUE_ENOENT,
	       "a destination with nothing left is gone");
	queue_read_end(r);
	u = (struct queue_rcpt_update){ .rcpt = 0, .state = QUEUE_RCPT_DEFERRED,
					.next_attempt = 3000 };
	run(q, queue_op_rcpt_update(a.s, &u, 1));
	queue_read_begin(q, &r);
	queue_dest_get(r, "dest-a.example", &d[0]);
	is_int(d[0].earliest, 1000, "earliest found again after its entry moved");
	queue_read_end(r);
	run(q, queue_op_admin(a.s, QUEUE_ADMIN_HOLD));
	queue_read_begin(q, &r);
	is_int(queue_dest_get(r, "dest-a.example", &d[0]), QUEUE_ENOENT,
	       "held message: not indexed under its destination");
	queue_read_end(r);
	run(q, queue_op_admin(a.s, QUEUE_ADMIN_RELEASE));
	ok(dests_consistent(q), "destination index consistent after all that");
	run(q, queue_op_remove(a.s));
	run(q, queue_op_remove(b.s));
	ok(dests_consistent(q), "and after removal");
}

static void test_facts(struct queue *q)
{
	const char *to[] = { "h@four.example" };
	queue_id id;
	char longreply[2000];
	memset(longreply, 'r', sizeof(longreply) - 1);
	longreply[sizeof(longreply) - 1] = 0;
	submit(q, &id, to, 1, 100);
	for (int i = 1; i <= 12; i++) {
		char host[32];
		snprintf(host, sizeof(host), "mx%d.four.example", i);
		struct queue_rcpt_update u = {
			.rcpt = 0, .state = QUEUE_RCPT_DEFERRED, .next_attempt = 100 + i,
			.when = 1000 + i, .dsn = "4.2.0",
			.reason = i == 12 ? longreply : "451 try later",
			.diag_type = "smtp", .hop_host = host, .hop_ip = "127.0.0.1",
			.hop_port = 2525, .flags_set = i == 5 ? QUEUE_RF_WARNED : 0,
		};
		if (run(q, queue_op_rcpt_update(id.s, &u, 1)))
			break;
	}
	struct queue_msg m;
	get_msg(q, id.s, &m);
	struct queue_rcpt *r = &m.rcpt[0];
	is_int(r->attempts, 12, "12 attempts counted");
	is_int(r->first_attempt, 1001, "first attempt time");
	is_int(r->last_attempt, 1012, "last attempt time");
	is_int(r->next_attempt, 112, "next attempt time");
	is_str(r->hop_host, "mx12.four.example", "last next hop host");
	is_str(r->hop_ip, "127.0.0.1", "last next hop ip");
	is_int(r->hop_port, 2525, "last next hop port");
	is_str(r->diag_type, "smtp", "diagnostic type");
	is_int(r->flags, QUEUE_RF_WARNED, "warned flag kept");
	queue_msg_clear(&m);
	struct queue_read *rd;
	struct queue_attempt h[QUEUE_HIST_MAX];
	size_t n;
	queue_read_begin(q, &rd);
	is_int(queue_rcpt_history(rd, id.s, 0, h, QUEUE_HIST_MAX, &n), 0, "history");
	queue_read_end(rd);
	is_int(n, QUEUE_HIST_MAX, "bounded to the last 10 attempts");
	is_int(h[0].when, 1003, "oldest kept is the third");
	is_str(h[0].hop_host, "mx3.four.example", "with its next hop");
	is_int(strlen(h[9].reply), QUEUE_HIST_REPLY_MAX, "long reply cut in the history");
	queue_attempt_clear(h, n);
	uint32_t idx = 0;
	run(q, queue_op_rcpt_flags(id.s, &idx, 1, QUEUE_RF_RELAYED, QUEUE_RF_WARNED));
	get_msg(q, id.s, &m);
	is_int(m.rcpt[0].flags, QUEUE_RF_RELAYED, "rcpt flags set and cleared");
	queue_msg_clear(&m);
	struct queue_rcpt_update x = { .rcpt = 0, .state = QUEUE_RCPT_FAILED,
				       .no_attempt = 1, .dsn = "4.4.7" };
	run(q, queue_op_rcpt_update(id.s, &x, 1));
	get_msg(q, id.s, &m);
	is_int(m.rcpt[0].attempts, 12, "expiry counts no attempt");
	queue_msg_clear(&m);
	run(q, queue_op_remove(id.s));
}

static void test_body_copy(struct queue *q)
{
	const char *to[] = { "b@five.example" };
	queue_id id;
	size_t len = 200000, got;
	run(q, make(q, &id, to, 1, len, 1));
	static char buf[7000];
	int good = 1;
	size_t total = 0;
	for (uint64_t off = 0; off < len + 10; off += sizeof(buf)) {
		if (queue_body_copy(q, id.s, off, buf, sizeof(buf), &got)) {
			good = 0;
			break;
		}
		for (size_t j = 0; j < got; j++)
			if (buf[j] != (char)('a' + (off + j) % 26))
				good = 0;
		total += got;
		if (got < sizeof(buf))
			break;
	}
	ok(good, "body copied out byte-exact in 7000-byte pieces");
	is_int(total, len, "the whole body and no more");
	run(q, queue_op_remove(id.s));
	is_int(queue_body_copy(q, id.s, 0, buf, 10, &got), QUEUE_ENOENT,
	       "no body copy of a removed message");
	run(q, make(q, &id, to, 1, 0, 1));
	is_int(queue_body_copy(q, id.s, 0, buf, 10, &got), 0, "empty body copies");
	is_int(got, 0, "as nothing");
	run(q, queue_op_remove(id.s));
}

struct churn {
	struct queue *q;
	queue_id *ids;
	int n, stop, rounds, next;
	uv_loop_t loop;
};

/* Move both recipients of a message together, one op each time. */
static void churn_next(struct churn *c);

static void churn_done(void *arg, int status, const struct queue_op *op)
{
	struct churn *c = arg;
	__atomic_store_n(&c->rounds, c->rounds + 1, __ATOMIC_RELAXED);
	if (!__atomic_load_n(&c->stop, __ATOMIC_ACQUIRE) && c->next < 100000)
		churn_next(c);
}

static void churn_next(struct churn *c)
{
	int round = c->next++;
	struct queue_rcpt_update u[2] = {
		{ .rcpt = 0, .state = QUEUE_RCPT_DEFERRED, .next_attempt = round },
		{ .rcpt = 1, .state = QUEUE_RCPT_DEFERRED, .next_attempt = round },
	};
	queue_writer_submit(c->q, queue_op_rcpt_update(c->ids[round % c->n].s, u, 2),
			    churn_done, c);
}

/* The group-commit writer, on a loop of its own, committing updates
 * four at a time until told to stop. */
static void *churn_main(void *arg)
{
	struct churn *c = arg;
	uv_loop_init(&c->loop);
	if (queue_writer_start(c->q, &c->loop))
		return NULL;
	for (int i = 0; i < 4; i++)
		churn_next(c);
	while (!__atomic_load_n(&c->stop, __ATOMIC_ACQUIRE))
		uv_run(&c->loop, UV_RUN_ONCE);
	queue_writer_stop(c->q);
	uv_run(&c->loop, UV_RUN_DEFAULT);
	uv_loop_close(&c->loop);
	return NULL;
}

static void test_listing(struct queue *q)
{
	enum { N = 300 };
	static queue_id ids[N];
	const char *to[] = { "l1@six.example", "l2@six.example" };
	uint64_t base = count(q);
	for (int i = 0; i < N; i++)
		submit(q, &ids[i], to, 2, 1);
	struct churn c = { .q = q, .ids = ids, .n = N };
	pthread_t t;
	pthread_create(&t, NULL, churn_main, &c);
	int consistent = 1, ordered = 1, passes = 0;
	uint64_t seen = 0;
	time_t t0 = time(NULL);
	for (; passes < 20 || (__atomic_load_n(&c.rounds, __ATOMIC_RELAXED) < 200 &&
			       time(NULL) - t0 < 10); passes++) {
		struct queue_msg page[37];
		char after[QUEUE_ID_LEN + 1] = "";
		size_t n;
		seen = 0;
		do {
			if (queue_list_page(q, after[0] ? after : NULL, page, 37, &n))
				break;
			for (size_t i = 0; i < n; i++) {
				if (after[0] && strcmp(page[i].id.s, after) <= 0)
					ordered = 0;
				if (page[i].nrcpt == 2 &&
				    (page[i].rcpt[0].attempts != page[i].rcpt[1].attempts ||
				     page[i].rcpt[0].next_attempt != page[i].rcpt[1].next_attempt))
					consistent = 0;
				memcpy(after, page[i].id.s, sizeof(after));
				queue_msg_clear(&page[i]);
			}
			seen += n;
		} while (n == 37);
	}
	__atomic_store_n(&c.stop, 1, __ATOMIC_RELEASE);
	pthread_join(t, NULL);
	ok(c.rounds > 0, "the writer committed %d updates meanwhile", c.rounds);
	ok(consistent, "every listed message is whole as of one commit");
	ok(ordered, "pages in id order, no message twice");
	is_int(seen, base + N, "every message listed");
	for (int i = 0; i < N; i++)
		run(q, queue_op_remove(ids[i].s));
}

/* A future id stored then removed: after reopening an empty queue, the
 * next id is still larger (the clock "stepped back"). */
static void test_id_highwater(void)
{
	struct queue *q = open_q();
	queue_id now, future;
	const char *to[] = { "f@seven.example" };
	queue_id_new(q, &now);
	future = now;
	/* Two digits up in the third place: some two weeks ahead. */
	future.s[3] = now.s[3] < 'W' ? (char)(now.s[3] + 2) : now.s[3];
	if (future.s[3] == ':' || future.s[3] == ';')
		future.s[3] = 'A';
	struct queue_msg m = { .id = future, .sender = "", .nrcpt = 1 };
	struct queue_rcpt r = { .addr = (char *)to[0] };
	m.rcpt = &r;
	struct queue_spool *sp;
	queue_spool_new(q, &sp);
	is_int(run(q, queue_op_submit(&m, sp, 1)), 0, "store a message with a future id");
	is_int(run(q, queue_op_remove(future.s)), 0, "remove it: the queue is empty");
	is_int(count(q), 0, "empty");
	queue_close(q);
	q = open_q();
	queue_id next;
	queue_id_new(q, &next);
	ok(strcmp(next.s, future.s) > 0, "next id %s after the removed %s", next.s, future.s);
	queue_close(q);
}

/* Two processes (a daemon and a tool) allocate ids at the same time. */
static void test_id_two_procs(void)
{
	enum { N = 20000 };
	int go[2], out[2][2];
	pid_t pid[2];
	if (pipe(go) || pipe(out[0]) || pipe(out[1]))
		return;
	for (int p = 0; p < 2; p++) {
		if ((pid[p] = fork()) == 0) {
			struct queue *q = open_q();
			char c;
			close(go[1]);
			if (!q || read(go[0], &c, 1) != 1)
				_exit(1);
			static queue_id ids[N];
			for (int i = 0; i < N; i++)
				queue_id_new(q, &ids[i]);
			const char *to[] = { "p@eight.example" };
			queue_id sid;
			int rc = submit(q, &sid, to, 1, 1);
			for (int i = 0; i < N; i++)
				if (write(out[p][1], ids[i].s, QUEUE_ID_LEN) != QUEUE_ID_LEN)
					_exit(1);
			queue_close(q);
			_exit(rc ? 1 : 0);
		}
		close(out[p][1]);
	}
	close(go[0]);
	if (write(go[1], "gg", 2) != 2)
		diag("go");
	close(go[1]);
	static char all[2 * N][QUEUE_ID_LEN + 1];
	size_t k = 0;
	for (int p = 0; p < 2; p++) {
		char id[QUEUE_ID_LEN];
		while (k < 2 * N && read(out[p][0], id, QUEUE_ID_LEN) == QUEUE_ID_LEN) {
			memcpy(all[k], id, QUEUE_ID_LEN);
			all[k++][QUEUE_ID_LEN] = 0;
		}
		close(out[p][0]);
	}
	int st0, st1;
	waitpid(pid[0], &st0, 0);
	waitpid(pid[1], &st1, 0);
	ok(st0 == 0 && st1 == 0, "both processes opened the queue and stored a message");
	is_int(k, 2 * N, "40000 ids allocated");
	qsort(all, k, sizeof(all[0]), (int (*)(const void *, const void *))strcmp);
	size_t dups = 0;
	for (size_t i = 1; i < k; i++)
		dups += !strcmp(all[i - 1], all[i]);
	is_int(dups, 0, "no id allocated twice by the two processes");
	struct queue *q = open_q();
	struct queue_msg page[8];
	size_t n;
	queue_list_page(q, NULL, page, 8, &n);
	for (size_t i = 0; i < n; i++) {
		run(q, queue_op_remove(page[i].id.s));
		queue_msg_clear(&page[i]);
	}
	queue_close(q);
}

static void test_lock(void)
{
	struct queue_lock *l, *l2;
	long pid;
	is_int(queue_lock_probe(dir, &pid), 0, "nobody holds the lock");
	is_int(queue_lock_acquire(dir, &l), 0, "daemon takes the lock");
	is_int(queue_lock_acquire(dir, &l2), QUEUE_EBUSY, "a second taker is refused");
	is_int(queue_lock_probe(dir, &pid), 1, "a tool sees the daemon");
	is_int(pid, getpid(), "and its pid");
	queue_lock_release(l);
	is_int(queue_lock_probe(dir, &pid), 0, "released");
	pid_t c = fork();
	if (c == 0) {
		if (queue_lock_acquire(dir, &l))
			_exit(1);
		pause();
		_exit(0);
	}
	/* The pid is written just after the lock is taken: wait for both. */
	int held = 0;
	for (int i = 0; i < 500 && !held; i++) {
		held = queue_lock_probe(dir, &pid) == 1 && pid == c;
		if (!held)
			usleep(10000);
	}
	ok(held && pid == c, "a child daemon holds it");
	kill(c, SIGKILL);
	waitpid(c, NULL, 0);
	is_int(queue_lock_probe(dir, &pid), 0, "a killed daemon leaves no lock");
}

/* A member of the daemon's group (not the owner) reads a snapshot. */
static void test_group_read(void)
{
	struct stat st;
	char p[400];
	snprintf(p, sizeof(p), "%s/data.mdb", dir);
	ok(stat(p, &st) == 0 && (st.st_mode & 0777) == 0640, "data.mdb is 0640");
	snprintf(p, sizeof(p), "%s/lock.mdb", dir);
	ok(stat(p, &st) == 0 && (st.st_mode & 0777) == 0660, "lock.mdb is 0660");
	struct group *gr = getgrnam("relayd");
	if (geteuid() != 0 || !gr) {
		ok(1, "# SKIP not root or no relayd group");
		return;
	}
	gid_t g = gr->gr_gid;
	char cmd[600];
	snprintf(cmd, sizeof(cmd), "chgrp -R %u '%s' && chmod 0750 '%s'", (unsigned)g, dir, dir);
	if (system(cmd) != 0)
		diag("chgrp failed");
	pid_t c = fork();
	if (c == 0) {
		struct queue *q;
		if (setgroups(1, &g) || setgid(65534) || setuid(65534))
			_exit(2);
		if (queue_open(&q, dir, 0, QUEUE_OPEN_RDONLY))
			_exit(3);
		struct queue_msg page[4];
		size_t n;
		int rc = queue_list_page(q, NULL, page, 4, &n);
		for (size_t i = 0; i < n; i++)
			queue_msg_clear(&page[i]);
		queue_close(q);
		_exit(rc ? 4 : 0);
	}
	int stt;
	waitpid(c, &stt, 0);
	is_int(WIFEXITED(stt) ? WEXITSTATUS(stt) : 99, 0,
	       "an unprivileged member of group relayd lists the queue read-only");
}

/* ---- migration from schema 1 ---- */

/* Turn the queue in d into what relayd wrote before schema 2: version 1
 * recipient records, no new DBIs, schema 1. */
static int downgrade(const char *d)
{
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi rcpt, meta, x;
	MDB_cursor *c;
	MDB_val k, v;
	if (mdb_env_create(&env) || mdb_env_set_maxdbs(env, 16) ||
	    mdb_env_open(env, d, 0, 0600) || mdb_txn_begin(env, NULL, 0, &txn))
		return -1;
	const char *gone[] = { "hist", "dest", "dstate", "ddue" };
	for (int i = 0; i < 4; i++)
		if (mdb_dbi_open(txn, gone[i], 0, &x) || mdb_drop(txn, x, 1))
			return -1;
	if (mdb_dbi_open(txn, "rcpt", 0, &rcpt) || mdb_dbi_open(txn, "meta", 0, &meta) ||
	    mdb_cursor_open(txn, rcpt, &c))
		return -1;
	/* Collect, then rewrite: a put under a live cursor may move it. */
	static uint8_t keys[64][16], vals[64][4096];
	static size_t vlen[64];
	int nk = 0;
	int rc = mdb_cursor_get(c, &k, &v, MDB_FIRST);
	for (; rc == 0 && nk < 64; rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		/* Version 2 starts with the whole version 1 layout: cut it. */
		const uint8_t *s = v.mv_data;
		size_t off = 1 + 1 + 4 + 8 + 4;
		for (int i = 0; i < 4; i++) {
			uint32_t l = s[off] | s[off + 1] << 8 | s[off + 2] << 16 |
				     (uint32_t)s[off + 3] << 24;
			off += 4 + (l == 0xffffffffu ? 0 : l);
		}
		memcpy(keys[nk], k.mv_data, 16);
		memcpy(vals[nk], s, off);
		vals[nk][0] = 1;
		vlen[nk++] = off;
	}
	mdb_cursor_close(c);
	for (int i = 0; i < nk; i++) {
		MDB_val nk_ = { 16, keys[i] }, nv = { vlen[i], vals[i] };
		if (mdb_put(txn, rcpt, &nk_, &nv, 0))
			return -1;
	}
	uint8_t rec[5] = { 1, 1, 0, 0, 0 };   /* version 1, schema 1 (LE) */
	k = (MDB_val){ 6, "schema" };
	v = (MDB_val){ 5, rec };
	if (mdb_put(txn, meta, &k, &v, 0) || mdb_txn_commit(txn))
		return -1;
	mdb_env_close(env);
	return 0;
}

static void test_migration(void)
{
	char d[300];
	snprintf(d, sizeof(d), "%s/old", dir);
	struct queue *q;
	queue_open(&q, d, 0, 0);
	const char *to[] = { "m1@nine.example", "m2@ten.example" };
	queue_id a, b;
	submit(q, &a, to, 2, 50);
	submit(q, &b, to, 1, 60);
	struct queue_rcpt_update u = { .rcpt = 0, .state = QUEUE_RCPT_DEFERRED,
				       .next_attempt = 70, .dsn = "4.1.1", .reason = "later" };
	run(q, queue_op_rcpt_update(a.s, &u, 1));
	run(q, queue_op_admin(b.s, QUEUE_ADMIN_HOLD));
	queue_close(q);
	is_int(downgrade(d), 0, "queue rewritten as schema 1");
	is_int(queue_open(&q, d, 0, QUEUE_OPEN_RDONLY), QUEUE_ESCHEMA,
	       "read-only open of schema 1 refused");
	int orc = queue_open(&q, d, 0, 0);
	is_int(orc, 0, "writable open migrates");
	if (orc) {
		diag("%s", queue_strerror(orc));
		return;
	}
	struct queue_msg m;
	struct queue_read *r;
	struct queue_dest dd;
	queue_read_begin(q, &r);
	is_int(queue_msg_get(r, a.s, &m), 0, "migrated message reads");
	is_int(m.rcpt[0].state, QUEUE_RCPT_DEFERRED, "state kept");
	is_str(m.rcpt[0].reason, "later", "reason kept");
	is_int(m.rcpt[0].attempts, 1, "attempts kept");
	queue_msg_clear(&m);
	is_int(queue_dest_get(r, "nine.example", &dd), 0, "nine.example indexed");
	is_int(dd.earliest, 70, "at the deferred time");
	is_int(queue_dest_get(r, "ten.example", &dd), 0, "ten.example indexed");
	is_int(dd.nrcpt, 1, "held message's recipient not indexed");
	queue_read_end(r);
	queue_id n;
	queue_id_new(q, &n);
	ok(strcmp(n.s, b.s) > 0, "ids go on after the migrated ones");
	queue_close(q);
	is_int(queue_open(&q, d, 0, QUEUE_OPEN_RDONLY), 0, "read-only open after migration");
	queue_close(q);
}

/* A tool's change while the daemon is down is in the indexes the next
 * daemon reads. */
static void test_tool_change_seen(void)
{
	struct queue *q = open_q();
	const char *to[] = { "t@eleven.example" };
	queue_id id;
	submit(q, &id, to, 1, 4000000000LL);
	queue_close(q);
	struct queue *tool = open_q();
	int64_t now = time(NULL);
	is_int(run(tool, queue_op_admin(id.s, QUEUE_ADMIN_REQUEUE)), 0, "tool requeues");
	queue_close(tool);
	q = open_q();
	struct queue_read *r;
	struct queue_dest d[4];
	size_t n;
	queue_read_begin(q, &r);
	queue_dest_next(r, now + 5, d, 4, &n);
	queue_read_end(r);
	ok(n == 1 && !strcmp(d[0].name, "eleven.example"),
	   "the restarted daemon finds the destination due now");
	run(q, queue_op_remove(id.s));
	queue_close(q);
}

int main(void)
{
	snprintf(dir, sizeof(dir), "/tmp/relayd-test-sched.XXXXXX");
	if (!mkdtemp(dir))
		return 1;
	struct queue *q = open_q();
	if (!q)
		return 1;
	test_groups(q);
	test_claims(q);
	test_dests(q);
	test_facts(q);
	test_body_copy(q);
	test_listing(q);
	queue_close(q);
	test_lease_crash();
	test_id_highwater();
	test_id_two_procs();
	test_lock();
	test_tool_change_seen();
	test_group_read();
	test_migration();
	char cmd[300];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		diag("cleanup failed");
	return done_testing();
}
