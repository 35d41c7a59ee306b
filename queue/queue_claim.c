/*
 * queue_claim.c - claims on recipients handed to a delivery.
 *
 * A claim is written like any other mutation (through the group-commit
 * writer, so a scheduling pass costs a share of one fsync): it gives the
 * recipient a generation from meta's "claimgen" counter, which never goes
 * back, and a lease.  The recipient's index entries move to the lease's
 * end, so the scheduler does not see it while it is in flight, and sees it
 * again by itself if the daemon dies with the lease.  A result carries the
 * generation and is refused once another claim took the recipient
 * (queue_op.c, update_refused).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "queue_int.h"
#include "queue_codec.h"

static struct queue_op *claim_op(enum queue_op_kind kind,
				 const struct queue_due *items, size_t n)
{
	struct queue_op *op = calloc(1, sizeof(*op));
	if (!op)
		return NULL;
	op->kind = kind;
	op->u.claim.items = malloc((n ? n : 1) * sizeof(*items));
	op->u.claim.gens = calloc(n ? n : 1, sizeof(uint64_t));
	if (!op->u.claim.items || !op->u.claim.gens) {
		queue_op_free(op);
		return NULL;
	}
	for (size_t i = 0; i < n; i++) {
		if (!queue_id_valid(items[i].id.s)) {
			queue_op_free(op);
			return NULL;
		}
		op->u.claim.items[i] = items[i];
	}
	op->u.claim.n = n;
	op->bytes = 128 * (n ? n : 1);
	return op;
}

struct queue_op *queue_op_claim(const struct queue_due *items, size_t n,
				int64_t now, int64_t lease)
{
	/* A lease beyond a year is a bug; bounding it keeps now + lease sane. */
	if (lease <= 0 || lease > 366 * 86400 || now < 0 || now > INT64_MAX / 2)
		return NULL;
	struct queue_op *op = claim_op(QOP_CLAIM, items, n);
	if (op) {
		op->u.claim.now = now;
		op->u.claim.lease = lease;
	}
	return op;
}

const uint64_t *queue_op_claim_gens(const struct queue_op *op, size_t *n)
{
	if (!op || (op->kind != QOP_CLAIM && op->kind != QOP_RELEASE)) {
		*n = 0;
		return NULL;
	}
	*n = op->u.claim.n;
	return op->u.claim.gens;
}

struct queue_op *queue_op_claim_release(const struct queue_due *items,
					const uint64_t *gens, size_t n,
					int64_t due_at)
{
	struct queue_op *op = claim_op(QOP_RELEASE, items, n);
	if (op) {
		memcpy(op->u.claim.gens, gens, n * sizeof(*gens));
		op->u.claim.now = due_at;
	}
	return op;
}

/* Load item's recipient and whether its message is held.  1: nothing to
 * do here (gone, damaged, out of range), -1: broken transaction. */
static int load_item(struct queue *q, MDB_txn *txn, const struct queue_due *it,
		     struct queue_rcpt *r, int *held)
{
	struct queue_msg m;
	int rc = queue__load_env(q, txn, it->id.s, &m);
	if (rc)
		return rc == QUEUE_ENOENT || rc == QUEUE_ECORRUPT ? 1 : -1;
	*held = m.flags & QUEUE_F_HELD;
	uint32_t nrcpt = m.nrcpt;
	queue_msg_clear(&m);
	if (it->rcpt >= nrcpt)
		return 1;
	rc = queue__load_rcpt(q, txn, it->id.s, it->rcpt, r);
	if (rc)
		return rc == QUEUE_ENOENT || rc == QUEUE_ECORRUPT ? 1 : -1;
	return 0;
}

/* Move r's index entries from where they are to where r2 says. */
static int move(struct queue *q, MDB_txn *txn, const struct queue_due *it,
		int held, const struct queue_rcpt *r, const struct queue_rcpt *r2)
{
	int rc = 0;
	if (!held && (rc = queue__sched_del(q, txn, it->id.s, it->rcpt, r)))
		return rc;
	if (!held && (rc = queue__sched_add(q, txn, it->id.s, it->rcpt, r2)))
		return rc;
	return queue__put_rcpt(q, txn, it->id.s, it->rcpt, r2);
}

int queue__apply_claim(struct queue *q, MDB_txn *txn, struct queue_op *op)
{
	uint64_t gen;
	int64_t now = op->u.claim.now;
	int rc = queue__meta_get(q, txn, "claimgen", &gen), granted = 0;
	for (size_t i = 0; !rc && i < op->u.claim.n; i++) {
		const struct queue_due *it = &op->u.claim.items[i];
		struct queue_rcpt r;
		int held;
		op->u.claim.gens[i] = 0;
		int lr = load_item(q, txn, it, &r, &held);
		if (lr)
			return lr < 0 ? EIO : 0;
		if (!held && queue__rcpt_live(&r) && !queue__claim_live(q, &r, now)) {
			struct queue_rcpt r2 = r;
			r2.claim_gen = ++gen;
			r2.claim_until = now + op->u.claim.lease;
			r2.claim_owner = q->instance;
			if (!(rc = move(q, txn, it, held, &r, &r2))) {
				op->u.claim.gens[i] = gen;
				granted = 1;
			}
		} else if (!held && queue__rcpt_live(&r) && r.claim_until <= now) {
			/* Our own delivery outlived its lease: still ours, but
			 * pushed out of the scheduler's way for another lease. */
			struct queue_rcpt r2 = r;
			r2.claim_until = now + op->u.claim.lease;
			rc = move(q, txn, it, held, &r, &r2);
		}
		queue__rcpt_clear(&r);
	}
	if (!rc && granted)
		rc = queue__meta_put(q, txn, "claimgen", gen);
	return rc;
}

int queue__apply_release(struct queue *q, MDB_txn *txn, struct queue_op *op)
{
	int rc = 0;
	for (size_t i = 0; !rc && i < op->u.claim.n; i++) {
		const struct queue_due *it = &op->u.claim.items[i];
		struct queue_rcpt r;
		int held;
		int lr = load_item(q, txn, it, &r, &held);
		if (lr)
			return lr < 0 ? EIO : 0;
		if (queue__rcpt_live(&r) && r.claim_gen &&
		    r.claim_gen == op->u.claim.gens[i]) {
			struct queue_rcpt r2 = r;
			r2.claim_gen = 0;
			r2.claim_until = 0;
			r2.claim_owner = 0;
			r2.next_attempt = op->u.claim.now;
			rc = move(q, txn, it, held, &r, &r2);
		} else {
			op->u.claim.gens[i] = 0;
		}
		queue__rcpt_clear(&r);
	}
	return rc;
}
