/*
 * queue_op.c - the queue's mutations.  Each is built on the caller's
 * thread (encoding and copying done there, off the writer's critical path)
 * and applied inside a write transaction by queue__op_apply, whether that
 * transaction is a group commit or a single synchronous one.
 *
 * Invariant kept here: a recipient that is PENDING or DEFERRED, of a
 * message not HELD, has exactly one entry in `due` and one in `dest`, at
 * queue__sched_time (its claim's end while claimed, else next_attempt);
 * any other recipient has none.
 *
 * A recipient update reads and writes that recipient's record (and the
 * envelope for the HELD flag), never the message's other recipients.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "queue_int.h"
#include "queue_codec.h"

#define SMALL_OP_BYTES 256

static struct queue_op *op_alloc(enum queue_op_kind kind)
{
	struct queue_op *op = calloc(1, sizeof(*op));
	if (op) {
		op->kind = kind;
		op->bytes = SMALL_OP_BYTES;
	}
	return op;
}

static struct queue_op *op_new(enum queue_op_kind kind, const char *id)
{
	if (!queue_id_valid(id))
		return NULL;
	struct queue_op *op = op_alloc(kind);
	if (op)
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
	op->bytes = b.len + size;
	b = (struct qbuf){ 0 };
	op->u.submit.rcpt = calloc(m->nrcpt, sizeof(*op->u.submit.rcpt));
	op->u.submit.addr = calloc(m->nrcpt, sizeof(*op->u.submit.addr));
	if (!op->u.submit.rcpt || !op->u.submit.addr)
		goto fail;
	op->u.submit.nrcpt = m->nrcpt;
	for (uint32_t i = 0; i < m->nrcpt; i++) {
		struct queue_rcpt r = {
			.addr = m->rcpt[i].addr, .orcpt = m->rcpt[i].orcpt,
			.notify = m->rcpt[i].notify,
			.state = QUEUE_RCPT_PENDING, .next_attempt = due_at,
		};
		if (queue__rcpt_encode(&b, &r) ||
		    !(op->u.submit.addr[i] = strdup(r.addr ? r.addr : "")))
			goto fail;
		op->u.submit.rcpt[i].p = b.p;
		op->u.submit.rcpt[i].len = b.len;
		op->bytes += b.len;
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

/* Copy a string into the op's backing store. */
static const char *keep(char **s, const char *src)
{
	if (!src)
		return NULL;
	char *d = strcpy(*s, src);
	*s += strlen(src) + 1;
	return d;
}

static size_t slen(const char *s)
{
	return s ? strlen(s) + 1 : 0;
}

struct queue_op *queue_op_rcpt_update(const char *id,
				      const struct queue_rcpt_update *u,
				      size_t n)
{
	struct queue_op *op = op_new(QOP_RCPT_UPDATE, id);
	if (!op)
		return NULL;
	size_t len = 0;
	for (size_t i = 0; i < n; i++)
		len += slen(u[i].dsn) + slen(u[i].reason) + slen(u[i].diag_type) +
		       slen(u[i].hop_host) + slen(u[i].hop_ip);
	op->u.update.u = calloc(n ? n : 1, sizeof(*u));
	op->u.update.strings = malloc(len ? len : 1);
	if (!op->u.update.u || !op->u.update.strings) {
		queue_op_free(op);
		return NULL;
	}
	char *s = op->u.update.strings;
	for (size_t i = 0; i < n; i++) {
		struct queue_rcpt_update *d = &op->u.update.u[i];
		*d = u[i];
		d->dsn = keep(&s, u[i].dsn);
		d->reason = keep(&s, u[i].reason);
		d->diag_type = keep(&s, u[i].diag_type);
		d->hop_host = keep(&s, u[i].hop_host);
		d->hop_ip = keep(&s, u[i].hop_ip);
	}
	op->u.update.n = n;
	op->bytes = SMALL_OP_BYTES * (n ? n : 1) + len;
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

struct queue_op *queue_op_rcpt_flags(const char *id, const uint32_t *rcpt,
				     size_t n, unsigned set, unsigned clear)
{
	struct queue_op *op = op_new(QOP_RCPT_FLAGS, id);
	if (!op)
		return NULL;
	if (!(op->u.flags.rcpt = malloc((n ? n : 1) * sizeof(*rcpt)))) {
		free(op);
		return NULL;
	}
	memcpy(op->u.flags.rcpt, rcpt, n * sizeof(*rcpt));
	op->u.flags.n = n;
	op->u.flags.set = set;
	op->u.flags.clear = clear;
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

struct queue_op *queue_op_remove_done(const char *id)
{
	return op_new(QOP_REMOVE_DONE, id);
}

struct queue_op *queue_op_group(struct queue_op **ops, size_t n)
{
	struct queue_op *op = op_alloc(QOP_GROUP);
	int bad = !op || !n;
	for (size_t i = 0; i < n; i++)
		bad |= !ops[i] || ops[i]->kind == QOP_GROUP;
	if (!bad && !(op->u.group.ops = malloc(n * sizeof(*ops))))
		bad = 1;
	if (bad) {
		for (size_t i = 0; i < n; i++)
			queue_op_free(ops[i]);
		free(op);
		return NULL;
	}
	memcpy(op->u.group.ops, ops, n * sizeof(*ops));
	op->u.group.n = n;
	op->bytes = 0;
	for (size_t i = 0; i < n; i++)
		op->bytes += ops[i]->bytes;
	return op;
}

struct queue_op *queue_op_dest_block(const char *dest, int64_t until)
{
	if (!dest || strlen(dest) > QUEUE_DEST_MAX)
		return NULL;
	struct queue_op *op = op_alloc(QOP_DEST_BLOCK);
	if (op && !(op->u.dest.name = strdup(dest))) {
		free(op);
		return NULL;
	}
	if (op)
		op->u.dest.until = until;
	return op;
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
		for (uint32_t i = 0; op->u.submit.addr && i < op->u.submit.nrcpt; i++)
			free(op->u.submit.addr[i]);
		free(op->u.submit.rcpt);
		free(op->u.submit.addr);
		queue_spool_free(op->u.submit.body);
		break;
	case QOP_RCPT_UPDATE:
		free(op->u.update.u);
		free(op->u.update.strings);
		break;
	case QOP_RCPT_FLAGS:
		free(op->u.flags.rcpt);
		break;
	case QOP_GROUP:
		for (size_t i = 0; i < op->u.group.n; i++)
			queue_op_free(op->u.group.ops[i]);
		free(op->u.group.ops);
		break;
	case QOP_CLAIM:
	case QOP_RELEASE:
		free(op->u.claim.items);
		free(op->u.claim.gens);
		break;
	case QOP_DEST_BLOCK:
		free(op->u.dest.name);
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

int queue__claim_live(const struct queue *q, const struct queue_rcpt *r,
		      int64_t now)
{
	if (!r->claim_gen)
		return 0;
	if (r->claim_owner == q->instance)
		return 1;
	return !__atomic_load_n(&q->sole, __ATOMIC_RELAXED) && r->claim_until > now;
}

void queue_claims_void(struct queue *q)
{
	__atomic_store_n(&q->sole, 1, __ATOMIC_RELAXED);
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
	if (rc || (rc = queue__id_commit(q, txn, op->id)))
		return rc;
	for (uint32_t i = 0; i < op->u.submit.nrcpt; i++) {
		uint8_t key[QUEUE_RCPT_KEY_LEN];
		struct queue_rcpt r = { .addr = op->u.submit.addr[i],
					.next_attempt = op->u.submit.due_at };
		queue__rcpt_key(key, op->id, i);
		if ((rc = put(txn, q->rcpt, key, sizeof(key), op->u.submit.rcpt[i].p,
			      op->u.submit.rcpt[i].len, 0)) ||
		    (rc = queue__sched_add(q, txn, op->id, i, &r)))
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

int queue__put_rcpt(struct queue *q, MDB_txn *txn, const char *id,
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

/* A load's logical failure becomes the op's status (1); a broken
 * transaction is -1. */
static int logical(struct queue_op *op, int rc)
{
	if (!rc)
		return 0;
	op->status = rc;
	return rc == QUEUE_ENOENT || rc == QUEUE_ECORRUPT || rc == QUEUE_EINVAL ? 1 : -1;
}

static int load(struct queue *q, MDB_txn *txn, struct queue_op *op,
		struct queue_msg *m)
{
	return logical(op, queue__load_msg(q, txn, op->id, m));
}

/* Append an attempt to the recipient's history, dropping the oldest. */
static int hist_append(struct queue *q, MDB_txn *txn, const char *id,
		       uint32_t idx, const struct queue_attempt *at)
{
	struct queue_attempt h[QUEUE_HIST_MAX + 1];
	uint8_t key[QUEUE_RCPT_KEY_LEN];
	size_t n = 0;
	queue__rcpt_key(key, id, idx);
	MDB_val k = { sizeof(key), key }, v;
	int rc = mdb_get(txn, q->hist, &k, &v);
	if (rc == 0 && queue__hist_decode(v.mv_data, v.mv_size, h, &n))
		n = 0;   /* damaged history: start again */
	else if (rc && rc != MDB_NOTFOUND)
		return rc;
	if (n == QUEUE_HIST_MAX) {
		queue_attempt_clear(h, 1);
		memmove(h, h + 1, (QUEUE_HIST_MAX - 1) * sizeof(*h));
		n--;
	}
	h[n] = *at;
	struct qbuf b = { 0 };
	rc = queue__hist_encode(&b, h, n + 1) ? ENOMEM : 0;
	queue_attempt_clear(h, n);
	if (!rc) {
		v = (MDB_val){ b.len, b.p };
		rc = mdb_put(txn, q->hist, &k, &v, 0);
	}
	qbuf_free(&b);
	return rc;
}

static int record_attempt(struct queue *q, MDB_txn *txn, const char *id,
			  const struct queue_rcpt_update *u, int64_t when)
{
	char reply[QUEUE_HIST_REPLY_MAX + 1] = "";
	if (u->reason) {
		size_t n = strlen(u->reason);
		n = n > QUEUE_HIST_REPLY_MAX ? QUEUE_HIST_REPLY_MAX : n;
		memcpy(reply, u->reason, n);
		reply[n] = 0;
	}
	struct queue_attempt at = {
		.when = when, .hop_host = (char *)u->hop_host,
		.hop_ip = (char *)u->hop_ip, .hop_port = u->hop_port,
		.dsn = (char *)u->dsn, .reply = u->reason ? reply : NULL,
	};
	return hist_append(q, txn, id, u->rcpt, &at);
}

/* Check an update against the recipient's state and claim. */
static int update_refused(struct queue *q, const struct queue_rcpt_update *u,
			  const struct queue_rcpt *r, int64_t now)
{
	if (!queue__rcpt_live(r) || u->state < QUEUE_RCPT_DEFERRED ||
	    u->state > QUEUE_RCPT_FAILED || u->hop_port > 65535)
		return QUEUE_EINVAL;
	if (u->claim)
		return u->claim == r->claim_gen ? 0 : QUEUE_ESTALE;
	return queue__claim_live(q, r, now) ? QUEUE_EBUSY : 0;
}

/* Apply one update to recipient record r (loaded), which it consumes. */
static int update_one(struct queue *q, MDB_txn *txn, const char *id, int held,
		      const struct queue_rcpt_update *u, struct queue_rcpt *r,
		      int64_t now)
{
	int rc = held ? 0 : queue__sched_del(q, txn, id, u->rcpt, r);
	int64_t when = u->when ? u->when : now;
	struct queue_rcpt nr = *r;
	nr.state = u->state;
	nr.dsn = (char *)u->dsn;
	nr.reason = (char *)u->reason;
	nr.flags |= u->flags_set;
	nr.claim_gen = 0;
	nr.claim_until = 0;
	nr.claim_owner = 0;
	if (u->diag_type)
		nr.diag_type = (char *)u->diag_type;
	if (u->hop_host || u->hop_ip) {
		nr.hop_host = (char *)u->hop_host;
		nr.hop_ip = (char *)u->hop_ip;
		nr.hop_port = u->hop_port;
	}
	if (!u->no_attempt) {
		nr.attempts++;
		if (!nr.first_attempt)
			nr.first_attempt = when;
		nr.last_attempt = when;
	}
	if (u->state == QUEUE_RCPT_DEFERRED) {
		nr.next_attempt = u->next_attempt;
		if (!rc && !held)
			rc = queue__sched_add(q, txn, id, u->rcpt, &nr);
	}
	if (!rc)
		rc = queue__put_rcpt(q, txn, id, u->rcpt, &nr);
	if (!rc && !u->no_attempt)
		rc = record_attempt(q, txn, id, u, when);
	queue__rcpt_clear(r);
	return rc;
}

static int apply_update(struct queue *q, MDB_txn *txn, struct queue_op *op)
{
	struct queue_msg m;
	int lr = logical(op, queue__load_env(q, txn, op->id, &m));
	if (lr)
		return lr < 0 ? EIO : 0;
	int held = m.flags & QUEUE_F_HELD, rc = 0;
	uint32_t nrcpt = m.nrcpt;
	int64_t now = time(NULL);
	queue_msg_clear(&m);
	for (size_t i = 0; i < op->u.update.n && !rc; i++) {
		const struct queue_rcpt_update *u = &op->u.update.u[i];
		struct queue_rcpt r;
		int refused = QUEUE_EINVAL;
		if (u->rcpt < nrcpt) {
			/* Read back within txn: a second update of the same
			 * recipient in this op sees the first one. */
			int qrc = queue__load_rcpt(q, txn, op->id, u->rcpt, &r);
			if (qrc)
				return logical(op, qrc) < 0 ? EIO : 0;
			refused = update_refused(q, u, &r, now);
			if (refused)
				queue__rcpt_clear(&r);
		}
		if (refused) {
			op->status = refused;
			continue;
		}
		rc = update_one(q, txn, op->id, held, u, &r, now);
	}
	return rc;
}

static int apply_rcpt_flags(struct queue *q, MDB_txn *txn, struct queue_op *op)
{
	struct queue_msg m;
	int lr = logical(op, queue__load_env(q, txn, op->id, &m));
	if (lr)
		return lr < 0 ? EIO : 0;
	uint32_t nrcpt = m.nrcpt;
	int rc = 0;
	queue_msg_clear(&m);
	for (size_t i = 0; i < op->u.flags.n && !rc; i++) {
		uint32_t idx = op->u.flags.rcpt[i];
		struct queue_rcpt r;
		if (idx >= nrcpt) {
			op->status = QUEUE_EINVAL;
			continue;
		}
		if ((lr = logical(op, queue__load_rcpt(q, txn, op->id, idx, &r))))
			return lr < 0 ? EIO : 0;
		r.flags = (r.flags | op->u.flags.set) & ~op->u.flags.clear;
		rc = queue__put_rcpt(q, txn, op->id, idx, &r);
		queue__rcpt_clear(&r);
	}
	return rc;
}

static int apply_flags(struct queue *q, MDB_txn *txn, struct queue_op *op)
{
	struct queue_msg m;
	int lr = logical(op, queue__load_env(q, txn, op->id, &m));
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
		if (!rc)
			rc = del(txn, q->hist, key, sizeof(key));
		if (!rc && queue__rcpt_live(&m->rcpt[i]) && !(m->flags & QUEUE_F_HELD))
			rc = queue__sched_del(q, txn, m->id.s, i, &m->rcpt[i]);
	}
	for (uint32_t i = 0; !rc && i < m->nchunks; i++) {
		uint8_t key[QUEUE_RCPT_KEY_LEN];
		queue__rcpt_key(key, m->id.s, i);
		rc = del(txn, q->body, key, sizeof(key));
	}
	return rc;
}

/* Set the HELD flag to `hold` and make live recipients (all of them, or
 * only deferred ones) due now.  A recipient whose claim is live is in
 * flight: its delivery decides, so its times stay as they are. */
static int reschedule(struct queue *q, MDB_txn *txn, struct queue_msg *m,
		      int hold, int deferred_only)
{
	int was_held = m->flags & QUEUE_F_HELD, rc = 0;
	int64_t now = time(NULL);
	for (uint32_t i = 0; !rc && i < m->nrcpt; i++) {
		struct queue_rcpt *r = &m->rcpt[i];
		if (!queue__rcpt_live(r))
			continue;
		if (!was_held)
			rc = queue__sched_del(q, txn, m->id.s, i, r);
		if (!queue__claim_live(q, r, now)) {
			r->claim_gen = 0;
			r->claim_until = 0;
			r->claim_owner = 0;
			if (!hold && (!deferred_only || r->state == QUEUE_RCPT_DEFERRED ||
				      was_held))
				r->next_attempt = now;
		}
		if (!rc && !hold)
			rc = queue__sched_add(q, txn, m->id.s, i, r);
		if (!rc)
			rc = queue__put_rcpt(q, txn, m->id.s, i, r);
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
		/* like postqueue -f: a dead destination is tried now too */
		for (uint32_t i = 0; !rc && !held && i < m.nrcpt; i++)
			if (queue__rcpt_live(&m.rcpt[i]))
				rc = queue__dest_unblock_of(q, txn, m.rcpt[i].addr);
		break;
	case QUEUE_ADMIN_DELETE:
		rc = delete_msg(q, txn, &m);
		break;
	}
	queue_msg_clear(&m);
	return rc;
}

static int apply_remove(struct queue *q, MDB_txn *txn, struct queue_op *op,
			int only_done)
{
	struct queue_msg m;
	int lr = load(q, txn, op, &m), rc = 0, busy = 0;
	if (lr)
		return lr < 0 ? EIO : 0;
	for (uint32_t i = 0; only_done && i < m.nrcpt; i++)
		busy |= queue__rcpt_live(&m.rcpt[i]);
	if (!busy)
		rc = delete_msg(q, txn, &m);
	queue_msg_clear(&m);
	return rc;
}

/* All or nothing, in a nested transaction: a sub-op's logical failure
 * (status) undoes the others as surely as a broken transaction does. */
static int apply_group(struct queue *q, MDB_txn *txn, struct queue_op *op)
{
	MDB_txn *child;
	int rc = mdb_txn_begin(q->env, txn, 0, &child);
	if (rc)
		return rc;
	for (size_t i = 0; i < op->u.group.n; i++) {
		struct queue_op *sub = op->u.group.ops[i];
		if ((rc = queue__op_apply(q, child, sub)) || sub->status) {
			mdb_txn_abort(child);
			op->status = rc ? queue__err(rc) : sub->status;
			return rc;
		}
	}
	return mdb_txn_commit(child);
}

int queue__op_apply(struct queue *q, MDB_txn *txn, struct queue_op *op)
{
	op->status = 0;
	switch (op->kind) {
	case QOP_SUBMIT:
		return apply_submit(q, txn, op);
	case QOP_RCPT_UPDATE:
		return apply_update(q, txn, op);
	case QOP_FLAGS:
		return apply_flags(q, txn, op);
	case QOP_RCPT_FLAGS:
		return apply_rcpt_flags(q, txn, op);
	case QOP_ADMIN:
		return apply_admin(q, txn, op);
	case QOP_REMOVE:
		return apply_remove(q, txn, op, 0);
	case QOP_REMOVE_DONE:
		return apply_remove(q, txn, op, 1);
	case QOP_GROUP:
		return apply_group(q, txn, op);
	case QOP_CLAIM:
		return queue__apply_claim(q, txn, op);
	case QOP_RELEASE:
		return queue__apply_release(q, txn, op);
	case QOP_DEST_BLOCK:
		return queue__dest_block(q, txn, op->u.dest.name, op->u.dest.until);
	}
	return EINVAL;
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
