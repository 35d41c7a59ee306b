/*
 * queue_schema.c - the DBIs, the schema version in `meta`, the migration
 * from the previous schema, and meta's counters.
 *
 * Schema 1 (relayd before the scheduler) had no attempt facts, no claims
 * and no destination indexes.  A writable open migrates it in one
 * transaction: every recipient record is rewritten as version 2 and every
 * live recipient of a message not held is indexed under its destination;
 * a crash in the middle leaves schema 1 as it was.  A read-only open of a
 * schema 1 queue is refused (QUEUE_ESCHEMA): start the daemon once.
 * Any other version is refused whatever the mode.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "queue_int.h"
#include "queue_codec.h"

int queue__meta_get(struct queue *q, MDB_txn *txn, const char *name,
		    uint64_t *v)
{
	MDB_val k = { strlen(name), (void *)name }, d;
	*v = 0;
	int rc = mdb_get(txn, q->meta, &k, &d);
	if (rc)
		return rc == MDB_NOTFOUND ? 0 : rc;
	struct qrd r = { .p = d.mv_data, .len = d.mv_size };
	uint8_t ver = qrd_u8(&r);
	*v = qrd_u64(&r);
	/* A damaged counter reads as 0 and is overwritten by the next put:
	 * no reason to call the whole environment broken (MDB_CORRUPTED). */
	if (r.err || ver != QUEUE_RECORD_VERSION)
		*v = 0;
	return 0;
}

int queue__meta_put(struct queue *q, MDB_txn *txn, const char *name,
		    uint64_t v)
{
	uint8_t rec[9] = { QUEUE_RECORD_VERSION };
	for (int i = 0; i < 8; i++)
		rec[1 + i] = (uint8_t)(v >> 8 * i);
	MDB_val k = { strlen(name), (void *)name }, d = { sizeof(rec), rec };
	return mdb_put(txn, q->meta, &k, &d, 0);
}

static int put_schema(struct queue *q, MDB_txn *txn)
{
	uint8_t rec[5] = { QUEUE_RECORD_VERSION, QUEUE_SCHEMA_VERSION };
	MDB_val k = { 6, "schema" }, v = { sizeof(rec), rec };
	return mdb_put(txn, q->meta, &k, &v, 0);
}

/* Rewrite one message's recipients as version 2 and index them. */
static int migrate_msg(struct queue *q, MDB_txn *txn, const char *id)
{
	struct queue_msg m;
	int rc = queue__load_msg(q, txn, id, &m);
	if (rc)
		return rc == QUEUE_ENOMEM ? ENOMEM : MDB_CORRUPTED;
	for (uint32_t i = 0; !rc && i < m.nrcpt; i++) {
		struct queue_rcpt *r = &m.rcpt[i];
		rc = queue__put_rcpt(q, txn, id, i, r);
		if (!rc && queue__rcpt_live(r) && !(m.flags & QUEUE_F_HELD))
			rc = queue__sched_add(q, txn, id, i, r);
	}
	queue_msg_clear(&m);
	return rc;
}

static int migrate_1(struct queue *q, MDB_txn *txn)
{
	MDB_cursor *c;
	MDB_val k, v;
	uint64_t hw = 0;
	int rc = mdb_cursor_open(txn, q->msg, &c);
	if (rc)
		return rc;
	for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		char id[QUEUE_ID_LEN + 1];
		if (k.mv_size != QUEUE_ID_LEN) {
			rc = MDB_CORRUPTED;
			break;
		}
		memcpy(id, k.mv_data, QUEUE_ID_LEN);
		id[QUEUE_ID_LEN] = 0;
		/* Writes to other DBIs leave this cursor where it was. */
		if ((rc = migrate_msg(q, txn, id)))
			break;
		queue__id_decode(id, &hw);
	}
	mdb_cursor_close(c);
	if (rc != MDB_NOTFOUND)
		return rc ? rc : MDB_CORRUPTED;
	if ((rc = queue__meta_put(q, txn, "idhw", hw)))
		return rc;
	return put_schema(q, txn);
}

int queue__schema_open(struct queue *q)
{
	unsigned ro = q->flags & QUEUE_OPEN_RDONLY;
	unsigned cf = ro ? 0 : MDB_CREATE;
	MDB_txn *txn;
	int rc = mdb_txn_begin(q->env, NULL, ro ? MDB_RDONLY : 0, &txn);
	if (rc)
		return queue__err(rc);
	if ((rc = mdb_dbi_open(txn, "msg", cf, &q->msg)) ||
	    (rc = mdb_dbi_open(txn, "body", cf, &q->body)) ||
	    (rc = mdb_dbi_open(txn, "rcpt", cf, &q->rcpt)) ||
	    (rc = mdb_dbi_open(txn, "due", cf, &q->due)) ||
	    (rc = mdb_dbi_open(txn, "meta", cf, &q->meta)))
		goto fail;

	MDB_val k = { 6, "schema" }, v;
	uint32_t schema = QUEUE_SCHEMA_VERSION;
	rc = mdb_get(txn, q->meta, &k, &v);
	if (rc == MDB_NOTFOUND && !ro) {
		if ((rc = put_schema(q, txn)))
			goto fail;
	} else if (rc) {
		goto fail;
	} else {
		struct qrd r = { .p = v.mv_data, .len = v.mv_size };
		uint8_t ver = qrd_u8(&r);
		schema = qrd_u32(&r);
		if (r.err || ver != QUEUE_RECORD_VERSION) {
			mdb_txn_abort(txn);
			return QUEUE_ECORRUPT;
		}
		if (schema != QUEUE_SCHEMA_VERSION && (schema != 1 || ro)) {
			mdb_txn_abort(txn);
			return QUEUE_ESCHEMA;
		}
	}
	/* Schema 1 has none of these: a read-only open of it stopped above. */
	if ((rc = mdb_dbi_open(txn, "hist", cf, &q->hist)) ||
	    (rc = mdb_dbi_open(txn, "dest", cf, &q->dest)) ||
	    (rc = mdb_dbi_open(txn, "dstate", cf, &q->dstate)) ||
	    (rc = mdb_dbi_open(txn, "ddue", cf, &q->ddue)))
		goto fail;
	if (schema == 1 && (rc = migrate_1(q, txn)))
		goto fail;
	return queue__err(mdb_txn_commit(txn));
fail:
	mdb_txn_abort(txn);
	return queue__err(rc);
}
