/*
 * test_queue_writer.c - the group-commit writer: completions arrive on the
 * loop, batches share commits, a failing op does not fail its batch, stop
 * drains what is pending.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "queue.h"
#include "queue_int.h"
#include "t/tap.h"

struct submitter {
	struct queue *q;
	int left;
	int done, failed, enospc;
	size_t body;
	char ids[64][QUEUE_ID_LEN + 1];
};

static pthread_t loop_thread_id;
static int wrong_thread;

static struct queue_op *make(struct queue *q, size_t len, queue_id *id)
{
	struct queue_msg m = { 0 };
	struct queue_rcpt r = { .addr = "bob@example.net" };
	queue_id_new(q, &m.id);
	*id = m.id;
	m.sender = "alice@example.org";
	m.nrcpt = 1;
	m.rcpt = &r;
	struct queue_spool *sp;
	if (queue_spool_new(q, &sp))
		return NULL;
	char *buf = calloc(1, len ? len : 1);
	memset(buf, 'x', len);
	queue_spool_write(sp, buf, len);
	free(buf);
	return queue_op_submit(&m, sp, 1);
}

static void on_done(void *arg, int status, const struct queue_op *op);

static void next(struct submitter *s)
{
	if (s->left <= 0)
		return;
	s->left--;
	queue_id id;
	struct queue_op *op = make(s->q, s->body, &id);
	if (queue_writer_submit(s->q, op, on_done, s) != 0)
		s->failed++;
}

static void on_done(void *arg, int status, const struct queue_op *op)
{
	struct submitter *s = arg;
	if (!pthread_equal(pthread_self(), loop_thread_id))
		wrong_thread = 1;
	if (status == 0)
		s->done++;
	else if (status == QUEUE_ENOSPC)
		s->enospc++;
	else
		s->failed++;
	next(s);
}

/* The loop stays alive while the writer's async handle is open, so the
 * test drives it with UV_RUN_ONCE until every submitter is finished. */
static int all_done(struct submitter *s, int n, int per)
{
	for (int i = 0; i < n; i++)
		if (s[i].done + s[i].failed + s[i].enospc < per)
			return 0;
	return 1;
}

static void test_batches(const char *dir)
{
	uv_loop_t loop;
	struct queue *q;
	uv_loop_init(&loop);
	loop_thread_id = pthread_self();
	is_int(queue_open(&q, dir, 0, 0), 0, "open");
	is_int(queue_writer_start(q, &loop), 0, "writer starts");
	is_int(queue_writer_start(q, &loop), QUEUE_EINVAL, "second start refused");
	static struct submitter s[64];
	for (int i = 0; i < 64; i++) {
		s[i] = (struct submitter){ .q = q, .left = 40, .body = 5120 };
		next(&s[i]);
	}
	for (int spins = 0; spins < 100000 && !all_done(s, 64, 40); spins++)
		uv_run(&loop, UV_RUN_ONCE);
	int done = 0, failed = 0;
	for (int i = 0; i < 64; i++) {
		done += s[i].done;
		failed += s[i].failed + s[i].enospc;
	}
	is_int(done, 64 * 40, "64 submitters x 40 messages all committed");
	is_int(failed, 0, "no failures");
	ok(!wrong_thread, "completions ran on the loop thread");
	struct queue_writer_stats st;
	queue_writer_stats(q, &st);
	is_int(st.ops, 64 * 40, "writer counted every op");
	ok(st.batches < st.ops / 4, "group commit: %llu batches for %llu ops",
	   (unsigned long long)st.batches, (unsigned long long)st.ops);

	/* Ops pending at stop still complete. */
	static struct submitter late;
	late = (struct submitter){ .q = q, .left = 1, .body = 100 };
	next(&late);
	queue_writer_stop(q);
	is_int(late.done, 1, "op pending at stop was committed and reported");
	queue_id id;
	struct queue_op *op = make(q, 10, &id);
	is_int(queue_writer_submit(q, op, on_done, &late), QUEUE_ESTOPPED,
	       "submit after stop refused");
	uv_run(&loop, UV_RUN_NOWAIT);
	is_int(uv_loop_close(&loop), 0, "writer closed its handles");
	struct queue_read *r;
	uint64_t n;
	queue_read_begin(q, &r);
	queue_count(r, &n);
	queue_read_end(r);
	is_int(n, 64 * 40 + 1, "every acknowledged message is stored");
	queue_close(q);
}

/* In a small map, a batch mixing oversized and small messages: the big
 * ones get ENOSPC, the small ones still commit. */
static void test_isolation(const char *dir)
{
	uv_loop_t loop;
	struct queue *q;
	uv_loop_init(&loop);
	loop_thread_id = pthread_self();
	is_int(queue_open(&q, dir, 3 << 20, 0), 0, "open 3 MiB map");
	queue_writer_start(q, &loop);
	static struct submitter big[4], small[8];
	for (int i = 0; i < 4; i++) {
		big[i] = (struct submitter){ .q = q, .left = 3, .body = 900000 };
		next(&big[i]);
	}
	for (int i = 0; i < 8; i++) {
		small[i] = (struct submitter){ .q = q, .left = 5, .body = 1000 };
		next(&small[i]);
	}
	for (int spins = 0; spins < 100000 &&
	     !(all_done(big, 4, 3) && all_done(small, 8, 5)); spins++)
		uv_run(&loop, UV_RUN_ONCE);
	int sd = 0, be = 0, bd = 0;
	for (int i = 0; i < 8; i++)
		sd += small[i].done;
	for (int i = 0; i < 4; i++) {
		be += big[i].enospc;
		bd += big[i].done;
	}
	is_int(sd, 40, "every small message committed");
	ok(be > 0, "oversized messages got QUEUE_ENOSPC (%d of them, %d fit)", be, bd);
	queue_writer_stop(q);
	uv_run(&loop, UV_RUN_NOWAIT);
	uv_loop_close(&loop);
	queue_close(q);
}

/* Large messages finishing together are split into batches bounded in
 * bytes, many small ops into batches bounded in count. */
static void test_caps(const char *dir)
{
	uv_loop_t loop;
	struct queue *q;
	uv_loop_init(&loop);
	loop_thread_id = pthread_self();
	is_int(queue_open(&q, dir, 0, 0), 0, "open");
	queue_writer_set_limits(q, 8, 1 << 20);
	queue_writer_start(q, &loop);
	static struct submitter big[12], small[40];
	for (int i = 0; i < 12; i++) {
		big[i] = (struct submitter){ .q = q, .left = 1, .body = 300000 };
		next(&big[i]);
	}
	for (int spins = 0; spins < 100000 && !all_done(big, 12, 1); spins++)
		uv_run(&loop, UV_RUN_ONCE);
	struct queue_writer_stats st;
	queue_writer_stats(q, &st);
	int done = 0;
	for (int i = 0; i < 12; i++)
		done += big[i].done;
	is_int(done, 12, "twelve 300 KB messages committed");
	ok(st.max_batch_bytes <= 1 << 20, "no batch over 1 MiB (largest %llu bytes)",
	   (unsigned long long)st.max_batch_bytes);
	ok(st.batches >= 4, "so they took %llu commits", (unsigned long long)st.batches);
	for (int i = 0; i < 40; i++) {
		small[i] = (struct submitter){ .q = q, .left = 3, .body = 100 };
		next(&small[i]);
	}
	for (int spins = 0; spins < 100000 && !all_done(small, 40, 3); spins++)
		uv_run(&loop, UV_RUN_ONCE);
	queue_writer_stats(q, &st);
	ok(st.max_batch_ops <= 8, "no batch over 8 ops (largest %llu)",
	   (unsigned long long)st.max_batch_ops);
	queue_writer_stop(q);
	uv_run(&loop, UV_RUN_NOWAIT);
	uv_loop_close(&loop);
	queue_close(q);
}

struct result {
	int done, status;
};

static void on_result(void *arg, int status, const struct queue_op *op)
{
	struct result *r = arg;
	r->done = 1;
	r->status = status;
}

/* A batch that fails (an oversized message in a small map) is retried one
 * op at a time: an atomic group in it is retried whole. */
static void test_group_retry(const char *dir)
{
	uv_loop_t loop;
	struct queue *q;
	uv_loop_init(&loop);
	loop_thread_id = pthread_self();
	is_int(queue_open(&q, dir, 3 << 20, 0), 0, "open 3 MiB map");
	queue_id orig, bounce, big, big2;
	struct queue_op *op = make(q, 100, &orig);
	is_int(queue_sync_run(q, op), 0, "original stored");
	queue_op_free(op);
	queue_writer_start(q, &loop);
	struct queue_rcpt_update fail = { .rcpt = 0, .state = QUEUE_RCPT_FAILED,
					  .dsn = "5.1.1", .reason = "550 unknown user" };
	struct queue_op *g[3] = {
		queue_op_rcpt_update(orig.s, &fail, 1),
		make(q, 2000, &bounce),
		queue_op_remove_done(orig.s),
	};
	struct result rfirst = { 0 }, rbig = { 0 }, rgroup = { 0 }, rbig2 = { 0 };
	queue_id first;
	/* Held, the writer lets the four pile up into one batch, which
	 * fails on the oversized message and is retried op by op. */
	queue__writer_hold(q, 1);
	queue_writer_submit(q, make(q, 1000000, &first), on_result, &rfirst);
	queue_writer_submit(q, make(q, 2500000, &big), on_result, &rbig);
	queue_writer_submit(q, queue_op_group(g, 3), on_result, &rgroup);
	/* A group too big for the map fails whole. */
	struct queue_op *g2[2] = { queue_op_remove(bounce.s), make(q, 2600000, &big2) };
	queue_writer_submit(q, queue_op_group(g2, 2), on_result, &rbig2);
	queue__writer_hold(q, 0);
	for (int spins = 0; spins < 100000 && !(rbig.done && rgroup.done && rbig2.done);
	     spins++)
		uv_run(&loop, UV_RUN_ONCE);
	is_int(rfirst.status, 0, "a 1 MB message committed");
	is_int(rbig.status, QUEUE_ENOSPC, "the oversized message fails alone");
	is_int(rgroup.status, 0, "the group in its batch commits whole");
	is_int(rbig2.status, QUEUE_ENOSPC, "a group that does not fit fails");
	struct queue_writer_stats st;
	queue_writer_stats(q, &st);
	ok(st.max_batch_ops >= 2, "ops shared a batch (largest %llu)",
	   (unsigned long long)st.max_batch_ops);
	queue_writer_stop(q);
	uv_run(&loop, UV_RUN_NOWAIT);
	uv_loop_close(&loop);
	struct queue_read *r;
	struct queue_msg m;
	queue_read_begin(q, &r);
	is_int(queue_msg_get(r, orig.s, &m), QUEUE_ENOENT, "original removed");
	is_int(queue_msg_get(r, bounce.s, &m), 0, "bounce stored, not removed by the failed group");
	queue_msg_clear(&m);
	queue_read_end(r);
	queue_close(q);
}

int main(void)
{
	char dir[] = "/tmp/relayd-test-writer.XXXXXX";
	if (!mkdtemp(dir))
		return 1;
	char d1[64], d2[64], d3[64], d4[64];
	snprintf(d1, sizeof(d1), "%s/a", dir);
	snprintf(d2, sizeof(d2), "%s/b", dir);
	snprintf(d3, sizeof(d3), "%s/c", dir);
	snprintf(d4, sizeof(d4), "%s/d", dir);
	test_batches(d1);
	test_isolation(d2);
	test_caps(d3);
	test_group_retry(d4);
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		diag("cleanup failed");
	return done_testing();
}
