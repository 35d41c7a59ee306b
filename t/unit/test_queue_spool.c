/*
 * test_queue_spool.c - the body spool in its asynchronous mode
 * (queue_spool_async): file jobs in libuv's thread pool, the busy and
 * pending signals, submission of a body partly in the file and partly in
 * memory, and a spool freed while a job runs.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>
#include "queue.h"
#include "t/tap.h"

static char dir[256];
static int readies;

static void on_ready(void *arg)
{
	readies++;
}

static uint8_t pattern(size_t off)
{
	return (uint8_t)(off * 7 + off / 4096);
}

/* Run the loop until cond holds, for at most 2000 passes of 5 ms. */
#define RUN_UNTIL(loop, cond) do { \
	for (int i_ = 0; i_ < 2000 && !(cond); i_++) { \
		uv_run((loop), UV_RUN_NOWAIT); \
		usleep(5000); \
	} \
} while (0)

/* Feed len bytes in 1000-byte writes, pausing whenever the spool is busy,
 * as a session does.  Returns the number of pauses, -1 on error. */
static int feed(uv_loop_t *loop, struct queue_spool *sp, size_t len)
{
	int pauses = 0;
	for (size_t off = 0; off < len;) {
		uint8_t buf[1000];
		size_t k = len - off < sizeof(buf) ? len - off : sizeof(buf);
		for (size_t j = 0; j < k; j++)
			buf[j] = pattern(off + j);
		if (queue_spool_busy(sp)) {
			pauses++;
			RUN_UNTIL(loop, !queue_spool_busy(sp));
			if (queue_spool_busy(sp))
				return -1;
		}
		if (queue_spool_write(sp, buf, k))
			return -1;
		off += k;
	}
	return pauses;
}

static int body_matches(struct queue *q, const char *id, size_t len)
{
	struct queue_read *r;
	struct queue_msg m;
	int good = 1;
	size_t off = 0;
	if (queue_read_begin(q, &r))
		return 0;
	if (queue_msg_get(r, id, &m)) {
		queue_read_end(r);
		return 0;
	}
	for (uint32_t i = 0; i < m.nchunks && good; i++) {
		const uint8_t *p;
		size_t n;
		if (queue_body_chunk(r, id, i, (const void **)&p, &n))
			good = 0;
		for (size_t j = 0; good && j < n; j++)
			good = p[j] == pattern(off + j);
		off += n;
	}
	good = good && off == len && m.size == len;
	queue_msg_clear(&m);
	queue_read_end(r);
	return good;
}

static struct queue_op *op_for(struct queue *q, struct queue_msg *m,
			       struct queue_rcpt *rc, struct queue_spool *sp)
{
	memset(m, 0, sizeof(*m));
	memset(rc, 0, sizeof(*rc));
	queue_id_new(q, &m->id);
	m->sender = "alice@example.org";
	m->client_name = "client.example";
	m->client_addr = "127.0.0.1";
	rc->addr = "bob@example.net";
	m->nrcpt = 1;
	m->rcpt = rc;
	return queue_op_submit(m, sp, 100);
}

static void test_large(struct queue *q, uv_loop_t *loop, size_t len)
{
	struct queue_spool *sp;
	struct queue_msg m;
	struct queue_rcpt rc;
	readies = 0;
	is_int(queue_spool_new(q, &sp), 0, "new spool");
	is_int(queue_spool_async(sp, loop, on_ready, NULL), 0, "async mode");
	int pauses = feed(loop, sp, len);
	ok(pauses >= 0, "%zu bytes fed (%d pauses)", len, pauses);
	RUN_UNTIL(loop, !queue_spool_pending(sp));
	ok(!queue_spool_pending(sp), "no file job left");
	ok(len <= 128 * 1024 || readies > 0, "ready called after file jobs (%d)", readies);
	struct queue_op *op = op_for(q, &m, &rc, sp);
	ok(op != NULL, "submit op built");
	if (!op)
		return;
	is_int(queue_sync_run(q, op), 0, "committed");
	ok(body_matches(q, m.id.s, len), "%zu-byte body byte-exact", len);
	queue_op_free(op);
}

/* Submitting while a job is in flight is refused, not half read. */
static void test_pending_submit(struct queue *q, uv_loop_t *loop)
{
	struct queue_spool *sp;
	struct queue_msg m;
	struct queue_rcpt rc;
	queue_spool_new(q, &sp);
	queue_spool_async(sp, loop, on_ready, NULL);
	uint8_t buf[200 * 1024];
	memset(buf, 'x', sizeof(buf));
	is_int(queue_spool_write(sp, buf, sizeof(buf)), 0, "200 KiB written");
	ok(queue_spool_pending(sp), "past the memory bound: a file job runs");
	ok(queue_spool_busy(sp), "and the spool is busy");
	ok(op_for(q, &m, &rc, sp) == NULL, "submit refused while the job runs");
	/* The spool was consumed: freed at the end of its job. */
	uv_run(loop, UV_RUN_DEFAULT);
	ok(1, "job finished after the free");
}

/* Freed in the middle of a job: the job's end frees it. */
static void test_free_inflight(struct queue *q, uv_loop_t *loop)
{
	struct queue_spool *sp;
	queue_spool_new(q, &sp);
	queue_spool_async(sp, loop, on_ready, NULL);
	readies = 0;
	if (feed(loop, sp, 400 * 1024) < 0)
		ok(0, "feed");
	ok(queue_spool_pending(sp) || readies > 0, "file jobs ran");
	queue_spool_free(sp);
	int before = readies;
	uv_run(loop, UV_RUN_DEFAULT);
	is_int(readies, before, "no ready callback after the free");
}

int main(void)
{
	snprintf(dir, sizeof(dir), "/tmp/relayd-test-spool.XXXXXX");
	if (!mkdtemp(dir))
		return 1;
	uv_loop_t loop;
	uv_loop_init(&loop);
	struct queue *q;
	is_int(queue_open(&q, dir, 64u << 20, 0), 0, "open queue");
	test_large(q, &loop, 1000);
	test_large(q, &loop, 128 * 1024 + 1);
	test_large(q, &loop, 3 * 1024 * 1024 + 12345);
	test_pending_submit(q, &loop);
	test_free_inflight(q, &loop);
	queue_close(q);
	uv_run(&loop, UV_RUN_DEFAULT);
	ok(uv_loop_close(&loop) == 0, "loop closes: nothing left running");
	char cmd[300];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		diag("cleanup failed");
	return done_testing();
}
