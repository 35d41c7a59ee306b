/*
 * queue_dest.c - the scheduling indexes and their reads.
 *
 *   due     time + id + rcpt          every live recipient, time order
 *   dest    destination NUL time + id + rcpt
 *                                     the same entries, per destination
 *   dstate  destination -> earliest, blocked_until, count
 *   ddue    max(earliest, blocked_until) + destination
 *                                     destinations in the order they are due
 *
 * The scheduler reads the first `ddue` key to arm its one timer, then a
 * destination's next batch with one cursor on `dest`.  A blocked
 * destination is keyed at its end of block, so no pass reads it again
 * before then, and nothing here ever walks the whole queue.  Every change
 * costs a few B-tree operations: a destination's earliest time is found
 * again with one cursor seek when its earliest entry goes.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "queue_int.h"
#include "queue_codec.h"

void queue_dest_of(const char *addr, char out[QUEUE_DEST_MAX + 1])
{
	const char *at = addr ? strrchr(addr, '@') : NULL;
	const char *d = at ? at + 1 : "";
	size_t i;
	for (i = 0; d[i] && i < QUEUE_DEST_MAX; i++)
		out[i] = d[i] >= 'A' && d[i] <= 'Z' ? (char)(d[i] - 'A' + 'a') : d[i];
	out[i] = 0;
}

int64_t queue__sched_time(const struct queue_rcpt *r)
{
	return r->claim_gen ? r->claim_until : r->next_attempt;
}

static size_t dest_key(uint8_t *key, const char *name, int64_t when,
		       const char *id, uint32_t idx)
{
	size_t n = strlen(name);
	memcpy(key, name, n);
	key[n] = 0;
	queue__due_key(key + n + 1, when, id, idx);
	return n + 1 + QUEUE_DUE_KEY_LEN;
}

/* ddue keys start with the time, big-endian (negative times sort as 0,
 * as in due keys). */
static size_t ddue_key(uint8_t *key, int64_t when, const char *name)
{
	uint64_t w = when < 0 ? 0 : (uint64_t)when;
	size_t n = strlen(name);
	for (int i = 0; i < 8; i++)
		key[i] = (uint8_t)(w >> (56 - 8 * i));
	memcpy(key + 8, name, n);
	return 8 + n;
}

static int64_t ddue_time(const uint8_t *key)
{
	uint64_t w = 0;
	for (int i = 0; i < 8; i++)
		w = w << 8 | key[i];
	return (int64_t)w;
}

/* When a destination is due; QUEUE_NEVER when it has nothing. */
static int64_t dest_when(const struct queue_dstate *st)
{
	if (!st->nrcpt || st->earliest == QUEUE_NEVER)
		return QUEUE_NEVER;
	return st->earliest > st->blocked_until ? st->earliest : st->blocked_until;
}

static int dstate_get(struct queue *q, MDB_txn *txn, const char *name,
		      struct queue_dstate *st)
{
	MDB_val k = { strlen(name), (void *)name }, v;
	int rc = mdb_get(txn, q->dstate, &k, &v);
	if (rc == MDB_NOTFOUND || (rc == 0 && queue__dstate_decode(v.mv_data,
								   v.mv_size, st))) {
		/* A damaged state is rebuilt from scratch rather than trusted. */
		*st = (struct queue_dstate){ .earliest = QUEUE_NEVER };
		return 0;
	}
	return rc;
}

/* Store st, moving the destination's ddue key from `old` if it changed. */
static int dstate_put(struct queue *q, MDB_txn *txn, const char *name,
		      int64_t old, const struct queue_dstate *st)
{
	uint8_t key[8 + QUEUE_DEST_MAX];
	int64_t now = dest_when(st);
	MDB_val k, v;
	int rc = 0;
	if (old != now) {
		if (old != QUEUE_NEVER) {
			k = (MDB_val){ ddue_key(key, old, name), key };
			rc = mdb_del(txn, q->ddue, &k, NULL);
			if (rc == MDB_NOTFOUND)
				rc = 0;
		}
		if (!rc && now != QUEUE_NEVER) {
			static const uint8_t ver = QUEUE_RECORD_VERSION;
			k = (MDB_val){ ddue_key(key, now, name), key };
			v = (MDB_val){ 1, (void *)&ver };
			rc = mdb_put(txn, q->ddue, &k, &v, 0);
		}
		if (rc)
			return rc;
	}
	k = (MDB_val){ strlen(name), (void *)name };
	if (!st->nrcpt && st->blocked_until <= time(NULL)) {
		rc = mdb_del(txn, q->dstate, &k, NULL);
		return rc == MDB_NOTFOUND ? 0 : rc;
	}
	struct qbuf b = { 0 };
	if (queue__dstate_encode(&b, st)) {
		qbuf_free(&b);
		return ENOMEM;
	}
	v = (MDB_val){ b.len, b.p };
	rc = mdb_put(txn, q->dstate, &k, &v, 0);
	qbuf_free(&b);
	return rc;
}

/* The earliest time indexed under name, QUEUE_NEVER if none. */
static int dest_earliest(struct queue *q, MDB_txn *txn, const char *name,
			 int64_t *when)
{
	uint8_t key[QUEUE_DEST_KEY_MAX];
	size_t n = strlen(name);
	MDB_cursor *c;
	MDB_val k = { n + 1, key }, v;
	struct queue_due d;
	memcpy(key, name, n + 1);
	*when = QUEUE_NEVER;
	int rc = mdb_cursor_open(txn, q->dest, &c);
	if (rc)
		return rc;
	rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
	if (rc == 0 && k.mv_size > n + 1 && memcmp(k.mv_data, key, n + 1) == 0 &&
	    queue__due_decode((uint8_t *)k.mv_data + n + 1, k.mv_size - n - 1, &d) == 0)
		*when = d.when;
	mdb_cursor_close(c);
	return rc == MDB_NOTFOUND ? 0 : rc;
}

static int due_change(struct queue *q, MDB_txn *txn, const char *id,
		      uint32_t idx, int64_t when, int add)
{
	static const uint8_t ver = QUEUE_RECORD_VERSION;
	uint8_t key[QUEUE_DUE_KEY_LEN];
	queue__due_key(key, when, id, idx);
	MDB_val k = { sizeof(key), key }, v = { 1, (void *)&ver };
	int rc = add ? mdb_put(txn, q->due, &k, &v, 0) : mdb_del(txn, q->due, &k, NULL);
	return rc == MDB_NOTFOUND ? 0 : rc;
}

int queue__sched_add(struct queue *q, MDB_txn *txn, const char *id,
		     uint32_t idx, const struct queue_rcpt *r)
{
	static const uint8_t ver = QUEUE_RECORD_VERSION;
	char name[QUEUE_DEST_MAX + 1];
	uint8_t key[QUEUE_DEST_KEY_MAX];
	struct queue_dstate st;
	int64_t when = queue__sched_time(r);
	int rc = due_change(q, txn, id, idx, when, 1);
	if (rc)
		return rc;
	queue_dest_of(r->addr, name);
	MDB_val k = { dest_key(key, name, when, id, idx), key }, v = { 1, (void *)&ver };
	if ((rc = mdb_put(txn, q->dest, &k, &v, MDB_NOOVERWRITE)))
		return rc == MDB_KEYEXIST ? 0 : rc;
	if ((rc = dstate_get(q, txn, name, &st)))
		return rc;
	int64_t old = dest_when(&st);
	st.nrcpt++;
	if (when < st.earliest)
		st.earliest = when;
	return dstate_put(q, txn, name, old, &st);
}

int queue__sched_del(struct queue *q, MDB_txn *txn, const char *id,
		     uint32_t idx, const struct queue_rcpt *r)
{
	char name[QUEUE_DEST_MAX + 1];
	uint8_t key[QUEUE_DEST_KEY_MAX];
	struct queue_dstate st;
	int64_t when = queue__sched_time(r);
	int rc = due_change(q, txn, id, idx, when, 0);
	if (rc)
		return rc;
	queue_dest_of(r->addr, name);
	MDB_val k = { dest_key(key, name, when, id, idx), key };
	if ((rc = mdb_del(txn, q->dest, &k, NULL)))
		return rc == MDB_NOTFOUND ? 0 : rc;
	if ((rc = dstate_get(q, txn, name, &st)))
		return rc;
	int64_t old = dest_when(&st);
	if (st.nrcpt)
		st.nrcpt--;
	if (!st.nrcpt)
		st.earliest = QUEUE_NEVER;
	else if (when <= st.earliest && (rc = dest_earliest(q, txn, name, &st.earliest)))
		return rc;
	return dstate_put(q, txn, name, old, &st);
}

int queue__dest_block(struct queue *q, MDB_txn *txn, const char *name,
		      int64_t until)
{
	struct queue_dstate st;
	int rc = dstate_get(q, txn, name, &st);
	if (rc)
		return rc;
	int64_t old = dest_when(&st);
	st.blocked_until = until < 0 ? 0 : until;
	return dstate_put(q, txn, name, old, &st);
}

int queue__dest_unblock_of(struct queue *q, MDB_txn *txn, const char *addr)
{
	char name[QUEUE_DEST_MAX + 1];
	struct queue_dstate st;
	queue_dest_of(addr, name);
	int rc = dstate_get(q, txn, name, &st);
	if (rc || !st.blocked_until)
		return rc;
	int64_t old = dest_when(&st);
	st.blocked_until = 0;
	return dstate_put(q, txn, name, old, &st);
}

/* ---- reads ---- */

static void fill_dest(struct queue_dest *d, const char *name, size_t n,
		      const struct queue_dstate *st)
{
	memcpy(d->name, name, n);
	d->name[n] = 0;
	d->when = dest_when(st);
	d->earliest = st->earliest;
	d->blocked_until = st->blocked_until;
	d->nrcpt = st->nrcpt;
}

int queue_dest_get(struct queue_read *r, const char *dest, struct queue_dest *out)
{
	size_t n = strlen(dest);
	if (n > QUEUE_DEST_MAX)
		return QUEUE_EINVAL;
	MDB_val k = { n, (void *)dest }, v;
	struct queue_dstate st;
	int rc = mdb_get(r->txn, r->q->dstate, &k, &v);
	if (rc)
		return queue__err(rc);
	if (queue__dstate_decode(v.mv_data, v.mv_size, &st))
		return QUEUE_ECORRUPT;
	fill_dest(out, dest, n, &st);
	return 0;
}

int queue_dest_next(struct queue_read *r, int64_t until, struct queue_dest *out,
		    size_t max, size_t *n)
{
	MDB_cursor *c;
	MDB_val k, v;
	*n = 0;
	int rc = mdb_cursor_open(r->txn, r->q->ddue, &c);
	if (rc)
		return queue__err(rc);
	for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0 && *n < max;
	     rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		char name[QUEUE_DEST_MAX + 1];
		if (k.mv_size < 8 || k.mv_size > 8 + QUEUE_DEST_MAX) {
			rc = MDB_CORRUPTED;
			break;
		}
		if (ddue_time(k.mv_data) > until)
			break;
		memcpy(name, (uint8_t *)k.mv_data + 8, k.mv_size - 8);
		name[k.mv_size - 8] = 0;
		int qrc = queue_dest_get(r, name, &out[*n]);
		if (qrc) {
			mdb_cursor_close(c);
			return qrc == QUEUE_ENOENT ? QUEUE_ECORRUPT : qrc;
		}
		(*n)++;
	}
	mdb_cursor_close(c);
	return rc && rc != MDB_NOTFOUND ? queue__err(rc) : 0;
}

int queue_dest_batch(struct queue_read *r, const char *dest, int64_t until,
		     struct queue_due *out, size_t max, size_t *n)
{
	uint8_t key[QUEUE_DEST_KEY_MAX];
	size_t len = strlen(dest);
	MDB_cursor *c;
	*n = 0;
	if (len > QUEUE_DEST_MAX)
		return QUEUE_EINVAL;
	memcpy(key, dest, len + 1);
	MDB_val k = { len + 1, key }, v;
	int rc = mdb_cursor_open(r->txn, r->q->dest, &c);
	if (rc)
		return queue__err(rc);
	for (rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE); rc == 0 && *n < max;
	     rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		struct queue_due d;
		if (k.mv_size <= len + 1 || memcmp(k.mv_data, key, len + 1))
			break;
		if (queue__due_decode((uint8_t *)k.mv_data + len + 1,
				      k.mv_size - len - 1, &d)) {
			rc = MDB_CORRUPTED;
			break;
		}
		if (d.when > until)
			break;
		out[(*n)++] = d;
	}
	mdb_cursor_close(c);
	return rc && rc != MDB_NOTFOUND ? queue__err(rc) : 0;
}
