/*
 * queue_writer.c - group commit.
 *
 * LMDB allows one writer, and a durable commit costs an fsync whatever it
 * holds, so one thread takes every op queued since its last commit, applies
 * them all in one transaction and commits once.  While it commits, new ops
 * pile up for the next batch: under load the batch grows and the fsync
 * cost is shared.  Completions go back to the loop thread through a
 * uv_async_t; callers never block.
 *
 * A batch is bounded in ops and in bytes (QUEUE_BATCH_MAX_*): a
 * transaction's dirty pages live in memory until the commit, and LMDB
 * refuses a transaction past its dirty-page limit (MDB_TXN_FULL), so
 * large messages finishing together commit in several batches.
 *
 * If a batch fails (map full, disk full, I/O error) it is aborted and its
 * ops are retried one transaction each, so one oversized message cannot
 * fail its neighbours.  An atomic group is one op: it is retried whole,
 * never split.  No network I/O ever happens in here.
 *
 * An error that leaves the environment unusable (queue__fail) is sticky:
 * every op from then on fails with QUEUE_EFATAL without touching LMDB,
 * and the owner hears of it once through its on_fatal callback.
 */
#include <stdlib.h>
#include <string.h>
#include "queue_int.h"

struct queue_writer {
	struct queue *q;
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct queue_op *pend, **pend_tail;   /* waiting for a batch */
	struct queue_op *done, **done_tail;   /* committed, not yet reported */
	int stopping;
	int held;                             /* queue__writer_hold (tests) */
	uv_async_t *async;                    /* freed in its close callback */
	queue_fatal_fn *on_fatal;             /* called once, on the loop */
	void *fatal_arg;
	struct queue_writer_stats stats;
};

static void append(struct queue_op ***tail, struct queue_op *list)
{
	**tail = list;
	while (**tail)
		*tail = &(**tail)->next;
}

/* Apply and commit a batch; 0 or a QUEUE_E* code.  After a fatal error
 * (queue__broken) nothing touches the environment again: queue_sync_run
 * fails each op with QUEUE_EFATAL. */
static int run_batch(struct queue *q, struct queue_op *batch)
{
	MDB_txn *txn;
	if (queue__broken(q))
		return QUEUE_EFATAL;
	int rc = mdb_txn_begin(q->env, NULL, 0, &txn);
	if (rc)
		return queue__fail(q, rc, 0);
	for (struct queue_op *op = batch; op; op = op->next) {
		if ((rc = queue__op_apply(q, txn, op))) {
			mdb_txn_abort(txn);
			return queue__fail(q, rc, 0);
		}
	}
	rc = mdb_txn_commit(txn);
	return rc ? queue__fail(q, rc, 1) : 0;
}

/* Detach the next batch from the pending list: at least one op, then
 * more while both bounds hold.  Called with w->mu held. */
static struct queue_op *take_batch(struct queue_writer *w, uint64_t *nops,
				   uint64_t *nbytes)
{
	struct queue_op *batch = w->pend, **tail = &w->pend;
	*nops = *nbytes = 0;
	while (*tail && (*nops == 0 ||
			 (*nops < w->q->batch_max_ops &&
			  *nbytes + (*tail)->bytes <= w->q->batch_max_bytes))) {
		*nbytes += (*tail)->bytes;
		(*nops)++;
		tail = &(*tail)->next;
	}
	w->pend = *tail;
	*tail = NULL;
	if (!w->pend)
		w->pend_tail = &w->pend;
	return batch;
}

static void *writer_main(void *arg)
{
	struct queue_writer *w = arg;
	for (;;) {
		uint64_t n, bytes;
		pthread_mutex_lock(&w->mu);
		while ((!w->pend || w->held) && !w->stopping)
			pthread_cond_wait(&w->cv, &w->mu);
		struct queue_op *batch = take_batch(w, &n, &bytes);
		int stop = w->stopping && !batch;
		pthread_mutex_unlock(&w->mu);
		if (stop)
			break;

		if (run_batch(w->q, batch) != 0) {
			/* Isolate the culprit: one transaction per op. */
			for (struct queue_op *op = batch; op; op = op->next) {
				struct queue_op *next = op->next;
				op->next = NULL;
				queue_sync_run(w->q, op);
				op->next = next;
			}
		}
		pthread_mutex_lock(&w->mu);
		append(&w->done_tail, batch);
		w->stats.batches++;
		w->stats.ops += n;
		if (n > w->stats.max_batch_ops)
			w->stats.max_batch_ops = n;
		if (bytes > w->stats.max_batch_bytes)
			w->stats.max_batch_bytes = bytes;
		pthread_mutex_unlock(&w->mu);
		uv_async_send(w->async);
	}
	return NULL;
}

/* Deliver completions on the loop thread. */
static void report_done(struct queue_writer *w)
{
	pthread_mutex_lock(&w->mu);
	struct queue_op *list = w->done;
	w->done = NULL;
	w->done_tail = &w->done;
	pthread_mutex_unlock(&w->mu);
	while (list) {
		struct queue_op *next = list->next;
		if (list->done)
			list->done(list->arg, list->status, list);
		queue_op_free(list);
		list = next;
	}
	if (w->on_fatal && queue__broken(w->q)) {
		queue_fatal_fn *fn = w->on_fatal;
		w->on_fatal = NULL;
		fn(w->fatal_arg, mdb_strerror(__atomic_load_n(&w->q->fatal, __ATOMIC_SEQ_CST)));
	}
}

static void on_async(uv_async_t *h)
{
	report_done(h->data);
}

int queue_writer_start(struct queue *q, uv_loop_t *loop)
{
	if (q->writer || (q->flags & QUEUE_OPEN_RDONLY))
		return QUEUE_EINVAL;
	struct queue_writer *w = calloc(1, sizeof(*w));
	if (!w || !(w->async = calloc(1, sizeof(*w->async)))) {
		free(w);
		return QUEUE_ENOMEM;
	}
	w->q = q;
	w->pend_tail = &w->pend;
	w->done_tail = &w->done;
	pthread_mutex_init(&w->mu, NULL);
	pthread_cond_init(&w->cv, NULL);
	if (uv_async_init(loop, w->async, on_async)) {
		free(w->async);
		free(w);
		return QUEUE_EIO;
	}
	w->async->data = w;
	if (pthread_create(&w->thread, NULL, writer_main, w)) {
		uv_close((uv_handle_t *)w->async, (uv_close_cb)free);
		free(w);
		return QUEUE_EIO;
	}
	q->writer = w;
	return 0;
}

int queue_writer_submit(struct queue *q, struct queue_op *op,
			queue_done_fn *done, void *arg)
{
	struct queue_writer *w = q->writer;
	if (!op)
		return QUEUE_ENOMEM;
	if (!w || w->stopping) {
		queue_op_free(op);
		return QUEUE_ESTOPPED;
	}
	op->done = done;
	op->arg = arg;
	op->next = NULL;
	pthread_mutex_lock(&w->mu);
	*w->pend_tail = op;
	w->pend_tail = &op->next;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
	return 0;
}

void queue_writer_stop(struct queue *q)
{
	struct queue_writer *w = q->writer;
	if (!w)
		return;
	pthread_mutex_lock(&w->mu);
	w->stopping = 1;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
	/* The thread drains every pending op before it exits, so this wait
	 * is bounded by one last commit. */
	pthread_join(w->thread, NULL);
	report_done(w);
	uv_close((uv_handle_t *)w->async, (uv_close_cb)free);
	pthread_mutex_destroy(&w->mu);
	pthread_cond_destroy(&w->cv);
	q->writer = NULL;
	free(w);
}

void queue__writer_hold(struct queue *q, int hold)
{
	struct queue_writer *w = q->writer;
	pthread_mutex_lock(&w->mu);
	w->held = hold;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
}

void queue_writer_on_fatal(struct queue *q, queue_fatal_fn *fn, void *arg)
{
	if (q->writer) {
		q->writer->on_fatal = fn;
		q->writer->fatal_arg = arg;
	}
}

void queue_writer_stats(struct queue *q, struct queue_writer_stats *st)
{
	struct queue_writer *w = q->writer;
	memset(st, 0, sizeof(*st));
	if (!w)
		return;
	pthread_mutex_lock(&w->mu);
	*st = w->stats;
	pthread_mutex_unlock(&w->mu);
}

void queue_writer_set_limits(struct queue *q, size_t max_ops, size_t max_bytes)
{
	struct queue_writer *w = q->writer;
	if (w)
		pthread_mutex_lock(&w->mu);
	if (max_ops)
		q->batch_max_ops = max_ops;
	if (max_bytes)
		q->batch_max_bytes = max_bytes;
	if (w)
		pthread_mutex_unlock(&w->mu);
}
