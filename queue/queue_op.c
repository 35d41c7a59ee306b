/*
 * queue_op.c - the queue's mutations.  Each is built on the caller's
 * thread (encoding done there, off the writer's critical path) and applied
 * inside a write transaction by queue__op_apply, whether that transaction
 * is a group commit or a single synchronous one.
 *
 * Invariant kept here: a recipient has exactly one `due` entry, keyed by
 * its next_attempt, when it is PENDING or DEFERRED and its message is not
 * HELD; otherwise none.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "queue_int.h"
#include "queue_codec.h"

static struct queue_op *op_new(enum queue_op_kind kind, const char *id)
{
	if (!queue_id_valid(id))
		return NULL;
	struct queue_op *op = calloc(1, sizeof(*op));
	if (!op)
		return NULL;
	op->kind = kind;
	memcpy(op->id, id, QUEUE_ID_LEN + 1);
	return op;
}

struct queue_op *queue_op_submit(const struct queue_msg *m,
				 struct queue_spool *body, int64_t due_at)
{
	struct queue_op *op = op_new(QOP_SUBMIT, m->id.s);
	struct qbuf b = { 0 };
	if (!op || m->nrcpt == 0)
		goto fail;
	struct queue_msg env = *m;
	if (queue__spool_flush(body))
		goto fail;
	uint64_t size = queue_spool_size(body);
	env.size = size;
	env.nchunks = (uint32_t)((size + QUEUE_CHUNK_SIZE - 1) / QUEUE_CHUNK_SIZE);
	if (queue__msg_encode(&b, &env))
		goto fail;
	op->u.submit.env.p = b.p;
	op->u.submit.env.len = b.len;
	b = (struct qbuf){ 0 };
	op->u.submit.rcpt = calloc(m->nrcpt, sizeof(*op->u.submit.rcpt));
	if (!op->u.submit.rcpt)
		goto fail;
	op->u.submit.nrcpt = m->nrcpt;
	for (uint32_t i = 0; i < m->nrcpt; i++) {
		struct queue_rcpt r = {
			.addr = m->rcpt[i].addr, .orcpt = m->rcpt[i].orcpt,
			.notify = m->rcpt[i].notify,
			.state = QUEUE_RCPT_PENDING, .next_attempt = due_at,
		};
		if (queue__rcpt_encode(&b, &r))
			goto fail;
		op->u.submit.rcpt[i].p = b.p;
		op->u.submit.rcpt[i].len = b.len;
		b = (struct qbuf){ 0 };
	}
	op->u.submit.body = body;
	op->u.submit.due_at = due_at;
	return op;
fail:
	qbuf_free(&b);
	if (op)
		op->u.submit.body = body;
	queue_op_free(op);
	if (!op)
		queue_spool_free(body);
	return NULL;
}

struct queue_op *queue_op_rcpt_update(const char *id,
				      const struct queue_rcpt_update *u,
				      size_t n)
{
	struct queue_op *op = op_new(QOP_RCPT_UPDATE, id);
	if (!op)
		return NULL;
	size_t slen = 0;
	for (size_t i = 0; i < n; i++)
		slen += (u[i].dsn ? strlen(u[i].dsn) + 1 : 0) +
			(u[i].reason ? strlen(u[i].reason) + 1 : 0);
	op->u.update.u = calloc(n ? n : 1, sizeof(*u));
	op->u.update.strings = malloc(slen ? slen : 1);
	if (!op->u.update.u || !op->u.update.strings) {
		queue_op_free(op);
		return NULL;
	}
	char *s = op->u.update.strings;
	for (size_t i = 0; i < n; i++) {
		struct queue_rcpt_update *d = &op->u.update.u[i];
		*d = u[i];
		if (u[i].dsn) {
			d->dsn = strcpy(s, u[i].dsn);
			s += strlen(s) + 1;
		}
		if (u[i].reason) {
			d->reason = strcpy(s, u[i].reason);
			s += strlen(s) + 1;
		}
	}
	op->u.update.n = n;
	return op;
}

struct queue_op *queue_op_flags(const char *id, unsigned set, unsigned clear)
{
	struct queue_op *op = op_new(QOP_FLAGS, id);
	if (op) {
		op->u.flags.set = set;
		op->u.flags.clear = clear;
	}
	return op;
}

struct queue_op *queue_op_admin(const char *id, enum queue_admin_action a)
{
	struct queue_op *op = op_new(QOP_ADMIN, id);
	if (op)
		op->u.admin = a;
	return op;
}

struct queue_op *queue_op_remove(const char *id)
{
	return op_new(QOP_REMOVE, id);
}

void queue_op_free(struct queue_op *op)
{
	if (!op)
		return;
	switch (op->kind) {
	case QOP_SUBMIT:
		free(op->u.submit.env.p);
		for (uint32_t i = 0; op->u.submit.rcpt && i < op->u.submit.nrcpt; i++)
			free(op->u.submit.rcpt[i].p);
		free(op->u.submit.rcpt);
		queue_spool_free(op->u.submit.body);
		break;
	case QOP_RCPT_UPDATE:
		free(op->u.update.u);
		free(op->u.update.strings);
		break;
	default:
		break;
	}
	free(op);
}

/* ---- applying ---- */

static int put(MDB_txn *txn, MDB_dbi dbi, const void *k, size_t klen,
	       const void *v, size_t vlen, unsigned flags)
{
	MDB_val kv = { klen, (void *)k }, vv = { vlen, (void *)v };
	return mdb_put(txn, dbi, &kv, &vv, flags);
}

static int del(MDB_txn *txn, MDB_dbi dbi, const void *k, size_t klen)
{
	MDB_val kv = { klen, (void *)k };
	int rc = mdb_del(txn, dbi, &kv, NULL);
	return rc == MDB_NOTFOUND ? 0 : rc;
}

static int due_put(struct queue *q, MDB_txn *txn, int64_t when,
		   const char *id, uint32_t idx)
{
	static const uint8_t ver = QUEUE_RECORD_VERSION;
	uint8_t key[QUEUE_DUE_KEY_LEN];
	queue__due_key(key, when, id, idx);
	return put(txn, q->due, key, sizeof(key), &ver, 1, 0);
}

static int due_del(struct queue *q, MDB_txn *txn, int64_t when,
		   const char *id, uint32_t idx)
{
	uint8_t key[QUEUE_DUE_KEY_LEN];
	queue__due_key(key, when, id, idx);
	return del(txn, q->due, key, sizeof(key));
}

static int live(const struct queue_rcpt *r)
{
	return r->state == QUEUE_RCPT_PENDING || r->state == QUEUE_RCPT_DEFERRED;
}

static int apply_submit(struct queue *q, MDB_txn *txn, struct queue_op *op)
{
	int rc = put(txn, q->msg, op->id, QUEUE_ID_LEN, op->u.submit.env.p,
		     op->u.submit.env.len, MDB_NOOVERWRITE);
	if (rc == MDB_KEYEXIST) {
		/* The same envelope under the same id: an earlier attempt of
		 * this very op committed although its commit reported an
		 * error (an fsync error after the data landed), so the
		 * message is stored.  Anything else is a real clash. */
		MDB_val k = { QUEUE_ID_LEN, op->id }, v;
		int same = mdb_get(txn, q->msg, &k, &v) == 0 &&
			   v.mv_size == op->u.submit.env.len &&
			   memcmp(v.mv_data, op->u.submit.env.p, v.mv_size) == 0;
		op->status = same ? 0 : QUEUE_EEXIST;
		return 0;
	}
	if (rc)
		return rc;
	for (uint32_t i = 0; i < op->u.submit.nrcpt; i++) {
		uint8_t key[QUEUE_RCPT_KEY_LEN];
		queue__rcpt_key(key, op->id, i);
		if ((rc = put(txn, q->rcpt, key, sizeof(key), op->u.submit.rcpt[i].p,
			      op->u.submit.rcpt[i].len, 0)) ||
		    (rc = due_put(q, txn, op->u.submit.due_at, op->id, i)))
			return rc;
	}
	/* Copy the spool into chunks straight into LMDB's pages (MDB_RESERVE):
	 * one copy, no intermediate buffer. */
	uint64_t size = queue_spool_size(op->u.submit.body), off = 0;
	for (uint32_t idx = 0; off < size; idx++) {
		size_t n = size - off > QUEUE_CHUNK_SIZE ? QUEUE_CHUNK_SIZE : size - off;
		uint8_t key[QUEUE_RCPT_KEY_LEN];
		queue__rcpt_key(key, op->id, idx);
		MDB_val kv = { sizeof(key), key }, vv = { n + 1, NULL };
		if ((rc = mdb_put(txn, q->body, &kv, &vv, MDB_RESERVE)))
			return rc;
		uint8_t *dst = vv.mv_data;
		dst[0] = QUEUE_RECORD_VERSION;
		int qrc = queue__spool_read(op->u.submit.body, off, dst + 1, n);
		if (qrc)
			return qrc == QUEUE_ENOSPC ? ENOSPC : EIO;
		off += n;
	}
	return 0;
}

static int put_rcpt(struct queue *q, MDB_txn *txn, const char *id,
		    uint32_t idx, const struct queue_rcpt *r)
{
	struct qbuf b = { 0 };
	uint8_t key[QUEUE_RCPT_KEY_LEN];
	if (queue__rcpt_encode(&b, r)) {
		qbuf_free(&b);
		return ENOMEM;
	}
	queue__rcpt_key(key, id, idx);
	int rc = put(txn, q->rcpt, key, sizeof(key), b.p, b.len, 0);
	qbuf_free(&b);
	return rc;
}

static int put_msg(struct queue *q, MDB_txn *txn, const struct queue_msg *m)
{
	struct qbuf b = { 0 };
	if (queue__msg_encode(&b, m)) {
		qbuf_free(&b);
		return ENOMEM;
	}
	int rc = put(txn, q->msg, m->id.s, QUEUE_ID_LEN, b.p, b.len, 0);
	qbuf_free(&b);
	return rc;
}

/* Map a load failure: logical ones become the op's status. */
static int load(struct queue *q, MDB_txn *txn, struct queue_op *op,
		struct queue_msg *m)
{
	int rc = queue__load_msg(q, txn, op->id, m);
	if (rc == QUEUE_ENOENT || rc == QUEUE_ECORRUPT || rc == QUEUE_EINVAL) {
		op->status = rc;
		return 1;
	}
	if (rc) {
		op->status = rc;
		return -1;
	}
	return 0;
}

static int apply_update(struct queue *q, MDB_txn *txn, struct queue_op *op)
{
	struct queue_msg m;
	int lr = load(q, txn, op, &m);
	if (lr)
		return lr < 0 ? EIO : 0;
	int held = m.flags & QUEUE_F_HELD, rc = 0;
	for (size_t i = 0; i < op->u.update.n && !rc; i++) {
		const struct queue_rcpt_update *u = &op->u.update.u[i];
		if (u->rcpt >= m.nrcpt || !live(&m.rcpt[u->rcpt]) ||
		    u->state < QUEUE_RCPT_DEFERRED || u->state > QUEUE_RCPT_FAILED) {
			op->status = QUEUE_EINVAL;
			continue;
		}
		/* Work on m.rcpt itself, so a second update of the same
		 * recipient in this op sees the first one's due key. */
		struct queue_rcpt *r = &m.rcpt[u->rcpt];
		if (!held)
			rc = due_del(q, txn, r->next_attempt, op->id, u->rcpt);
		struct queue_rcpt nr = *r;
		nr.state = u->state;
		nr.attempts++;
		nr.dsn = (char *)u->dsn;
		nr.reason = (char *)u->reason;
		if (u->state == QUEUE_RCPT_DEFERRED) {
			nr.next_attempt = u->next_attempt;
			if (!rc && !held)
				rc = due_put(q, txn, nr.next_attempt, op->id, u->rcpt);
		}
		if (!rc)
			rc = put_rcpt(q, txn, op->id, u->rcpt, &nr);
		r->state = nr.state;
		r->attempts = nr.attempts;
		r->next_attempt = nr.next_attempt;
	}
	queue_msg_clear(&m);
	return rc;
}

static int apply_flags(struct queue *q, MDB_txn *txn, struct queue_op *op)
{
	struct queue_msg m;
	int lr = load(q, txn, op, &m);
	if (lr)
		return lr < 0 ? EIO : 0;
	/* HELD changes the due invariant: only admin hold/release touch it. */
	m.flags = (m.flags | (op->u.flags.set & ~QUEUE_F_HELD)) &
		  ~(op->u.flags.clear & ~QUEUE_F_HELD);
	int rc = put_msg(q, txn, &m);
	queue_msg_clear(&m);
	return rc;
}

static int delete_msg(struct queue *q, MDB_txn *txn, const struct queue_msg *m)
{
	int rc = del(txn, q->msg, m->id.s, QUEUE_ID_LEN);
	for (uint32_t i = 0; !rc && i < m->nrcpt; i++) {
		uint8_t key[QUEUE_RCPT_KEY_LEN];
		queue__rcpt_key(key, m->id.s, i);
		rc = del(txn, q->rcpt, key, sizeof(key));
		if (!rc && live(&m->rcpt[i]) && !(m->flags & QUEUE_F_HELD))
			rc = due_del(q, txn, m->rcpt[i].next_attempt, m->id.s, i);
	}
	for (uint32_t i = 0; !rc && i < m->nchunks; i++) {
		uint8_t key[QUEUE_RCPT_KEY_LEN];
		queue__rcpt_key(key, m->id.s, i);
		rc = del(txn, q->body, key, sizeof(key));
	}
	return rc;
}

/* Make every live recipient (all of them, or only deferred ones) due at
 * `now`, and set the HELD flag to `hold`. */
static int reschedule(struct queue *q, MDB_txn *txn, struct queue_msg *m,
		      int hold, int deferred_only)
{
	int was_held = m->flags & QUEUE_F_HELD, rc = 0;
	int64_t now = time(NULL);
	for (uint32_t i = 0; !rc && i < m->nrcpt; i++) {
		struct queue_rcpt *r = &m->rcpt[i];
		if (!live(r))
			continue;
		if (!was_held)
			rc = due_del(q, txn, r->next_attempt, m->id.s, i);
		if (!rc && !hold && (!deferred_only || r->state == QUEUE_RCPT_DEFERRED ||
				     was_held))
			r->next_attempt = now;
		if (!rc && !hold)
			rc = due_put(q, txn, r->next_attempt, m->id.s, i);
		if (!rc)
			rc = put_rcpt(q, txn, m->id.s, i, r);
	}
	m->flags = hold ? m->flags | QUEUE_F_HELD : m->flags & ~QUEUE_F_HELD;
	return rc ? rc : put_msg(q, txn, m);
}

static int apply_admin(struct queue *q, MDB_txn *txn, struct queue_op *op)
{
	struct queue_msg m;
	int lr = load(q, txn, op, &m);
	if (lr)
		return lr < 0 ? EIO : 0;
	int held = m.flags & QUEUE_F_HELD, rc = 0;
	switch (op->u.admin) {
	case QUEUE_ADMIN_HOLD:
		if (!held)
			rc = reschedule(q, txn, &m, 1, 0);
		break;
	case QUEUE_ADMIN_RELEASE:
		if (held)
			rc = reschedule(q, txn, &m, 0, 0);
		break;
	case QUEUE_ADMIN_REQUEUE:
		rc = reschedule(q, txn, &m, 0, 0);
		break;
	case QUEUE_ADMIN_FLUSH:
		if (!held)
			rc = reschedule(q, txn, &m, 0, 1);
		break;
	case QUEUE_ADMIN_DELETE:
		rc = delete_msg(q, txn, &m);
		break;
	}
	queue_msg_clear(&m);
	return rc;
}

int queue__op_apply(struct queue *q, MDB_txn *txn, struct queue_op *op)
{
	struct queue_msg m;
	int rc = 0;
	op->status = 0;
	switch (op->kind) {
	case QOP_SUBMIT:
		rc = apply_submit(q, txn, op);
		break;
	case QOP_RCPT_UPDATE:
		rc = apply_update(q, txn, op);
		break;
	case QOP_FLAGS:
		rc = apply_flags(q, txn, op);
		break;
	case QOP_ADMIN:
		rc = apply_admin(q, txn, op);
		break;
	case QOP_REMOVE:
		if (load(q, txn, op, &m) == 0) {
			rc = delete_msg(q, txn, &m);
			queue_msg_clear(&m);
		}
		break;
	}
	return rc;
}

int queue_sync_run(struct queue *q, struct queue_op *op)
{
	MDB_txn *txn;
	if (queue__broken(q))
		return op->status = QUEUE_EFATAL;
	int rc = mdb_txn_begin(q->env, NULL, 0, &txn);
	/* op->status may still say 0 from an aborted batch: it must be set on
	 * every failure, or the caller hears "stored" for a lost message. */
	if (rc)
		return op->status = queue__fail(q, rc, 0);
	if ((rc = queue__op_apply(q, txn, op))) {
		mdb_txn_abort(txn);
		return op->status = queue__fail(q, rc, 0);
	}
	if ((rc = mdb_txn_commit(txn)))
		return op->status = queue__fail(q, rc, 1);
	return op->status;
}
