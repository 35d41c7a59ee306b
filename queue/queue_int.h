/*
 * queue_int.h - internals shared by the queue library's modules.  Not
 * installed, not included outside queue/.
 */
#ifndef RELAYD_QUEUE_INT_H
#define RELAYD_QUEUE_INT_H

#include <lmdb.h>
#include <pthread.h>
#include "queue.h"

#define QUEUE_SCHEMA_VERSION 2
#define QUEUE_RECORD_VERSION 1
/* Recipient records are version 2 since schema 2; version 1 still decodes
 * (the migration reads it). */
#define QUEUE_RCPT_VERSION 2
/* Body chunk size: large values become LMDB overflow pages, which must be
 * contiguous; 64 KiB keeps them cheap to allocate. */
#define QUEUE_CHUNK_SIZE (64u * 1024u)
/* What a spool keeps in memory before it spills to a file. */
#define QUEUE_SPOOL_MEM_MAX (128u * 1024u)

#define QUEUE_RCPT_KEY_LEN (QUEUE_ID_LEN + 4)
#define QUEUE_DUE_KEY_LEN (8 + QUEUE_ID_LEN + 4)
/* dest key: destination, NUL, then a due key. */
#define QUEUE_DEST_KEY_MAX (QUEUE_DEST_MAX + 1 + QUEUE_DUE_KEY_LEN)

struct queue_writer;

struct queue {
	MDB_env *env;
	MDB_dbi msg, body, rcpt, due, meta;
	MDB_dbi hist, dest, dstate, ddue;
	char *dir;
	unsigned flags;
	pthread_mutex_t id_lock;     /* guards last_id */
	uint64_t last_id;            /* counter value, slot bits included */
	unsigned id_slot;
	int id_slot_fd;              /* holds the slot's lock; -1 read-only */
	uint64_t instance;           /* claim owner tag of this handle */
	int sole;                    /* others' claims are void (queue_claims_void) */
	size_t batch_max_ops, batch_max_bytes;
	struct queue_writer *writer;
	int fatal;                   /* first fatal LMDB/errno code; atomic */
};

struct queue_read {
	struct queue *q;
	MDB_txn *txn;
};

/* LMDB status to QUEUE_E*. */
int queue__err(int mdb_rc);
/* Map a failed transaction's code, and remember it when it leaves the
 * environment unusable (then QUEUE_EFATAL).  commit: rc came from
 * mdb_txn_commit. */
int queue__fail(struct queue *q, int rc, int commit);
/* 1 once a fatal error was seen: write nothing more. */
int queue__broken(struct queue *q);
/* Tests: keep the writer from taking batches while hold is set, so that
 * what is submitted meanwhile makes one batch, whatever the timing. */
void queue__writer_hold(struct queue *q, int hold);
/* Take an id slot and seed the id counter from the high-water mark and
 * the largest stored id. */
int queue__id_init(struct queue *q);
void queue__id_fini(struct queue *q);
/* Raise meta's id high-water mark to id (inside the committing txn). */
int queue__id_commit(struct queue *q, MDB_txn *txn, const char *id);
/* The counter value of an id; -1 when invalid. */
int queue__id_decode(const char *s, uint64_t *v);
/* Create or check (and migrate) the schema (queue_schema.c). */
int queue__schema_open(struct queue *q);
/* meta counters (u64). */
int queue__meta_get(struct queue *q, MDB_txn *txn, const char *name,
		    uint64_t *v);
int queue__meta_put(struct queue *q, MDB_txn *txn, const char *name,
		    uint64_t v);
/* Load a message with its recipients inside txn (queue_read.c). */
int queue__load_msg(struct queue *q, MDB_txn *txn, const char *id,
		    struct queue_msg *m);
/* The envelope only (no recipients). */
int queue__load_env(struct queue *q, MDB_txn *txn, const char *id,
		    struct queue_msg *m);
/* One recipient record. */
int queue__load_rcpt(struct queue *q, MDB_txn *txn, const char *id,
		     uint32_t idx, struct queue_rcpt *r);

/* The scheduling indexes (queue_index.c): `due`, `dest`, `dstate`,
 * `ddue`.  A recipient is indexed at one time - its claim's end while it
 * has a claim, its next attempt otherwise - when it is live and its
 * message not held. */
int64_t queue__sched_time(const struct queue_rcpt *r);
int queue__sched_add(struct queue *q, MDB_txn *txn, const char *id,
		     uint32_t idx, const struct queue_rcpt *r);
int queue__sched_del(struct queue *q, MDB_txn *txn, const char *id,
		     uint32_t idx, const struct queue_rcpt *r);
int queue__dest_block(struct queue *q, MDB_txn *txn, const char *dest,
		      int64_t until);
/* Lift the block of the destination of address addr, if it has one. */
int queue__dest_unblock_of(struct queue *q, MDB_txn *txn, const char *addr);
int queue__dest_decode(const MDB_val *k, const MDB_val *v,
		       struct queue_dest *d);

/* Keys. */
void queue__rcpt_key(uint8_t key[QUEUE_RCPT_KEY_LEN], const char *id,
		     uint32_t idx);
void queue__due_key(uint8_t key[QUEUE_DUE_KEY_LEN], int64_t when,
		    const char *id, uint32_t idx);
/* Decode a due key (the tail of a dest key too); -1 when damaged. */
int queue__due_decode(const uint8_t *p, size_t len, struct queue_due *d);

/* Spool access for the writer: check on the caller's thread (in
 * queue_op_submit) that the spool is complete (no file job in flight, no
 * write error), then read from the writer thread: the file part with
 * pread, the rest from memory. */
int queue__spool_flush(struct queue_spool *sp);
int queue__spool_read(struct queue_spool *sp, uint64_t off, void *buf,
		      size_t len);

enum queue_op_kind {
	QOP_SUBMIT, QOP_RCPT_UPDATE, QOP_FLAGS, QOP_ADMIN, QOP_REMOVE,
	QOP_REMOVE_DONE, QOP_RCPT_FLAGS, QOP_GROUP, QOP_CLAIM, QOP_RELEASE,
	QOP_DEST_BLOCK,
};

/* A mutation, self-contained: everything it needs is copied or encoded at
 * creation on the caller's thread, so the writer thread only does puts. */
struct queue_op {
	enum queue_op_kind kind;
	char id[QUEUE_ID_LEN + 1];
	union {
		struct {
			struct qbuf_view { uint8_t *p; size_t len; } env;
			struct qbuf_view *rcpt;   /* encoded recipient records */
			char **addr;              /* their addresses, for the indexes */
			uint32_t nrcpt;
			struct queue_spool *body;
			int64_t due_at;
		} submit;
		struct {
			struct queue_rcpt_update *u;
			size_t n;
			char *strings;             /* backing store for dsn/reason */
		} update;
		struct { unsigned set, clear; uint32_t *rcpt; size_t n; } flags;
		enum queue_admin_action admin;
		struct { struct queue_op **ops; size_t n; } group;
		struct {
			struct queue_due *items;
			uint64_t *gens;
			size_t n;
			int64_t now, lease;   /* release: now is due_at */
		} claim;
		struct { char *name; int64_t until; } dest;
	} u;
	size_t bytes;                /* what it writes, for the batch bound */
	int status;
	queue_done_fn *done;
	void *arg;
	struct queue_op *next;       /* writer's lists */
};

/* Apply one op inside txn.  Logical outcomes (no such message) go to
 * op->status; the return value is non-zero only when the transaction
 * itself is broken (map full, I/O error) and must be aborted. */
int queue__op_apply(struct queue *q, MDB_txn *txn, struct queue_op *op);
/* The claim ops' appliers (queue_claim.c). */
int queue__apply_claim(struct queue *q, MDB_txn *txn, struct queue_op *op);
int queue__apply_release(struct queue *q, MDB_txn *txn, struct queue_op *op);
/* PENDING or DEFERRED: still to be delivered. */
static inline int queue__rcpt_live(const struct queue_rcpt *r)
{
	return r->state == QUEUE_RCPT_PENDING || r->state == QUEUE_RCPT_DEFERRED;
}
/* A claim is live: it holds the recipient against other deliveries. */
int queue__claim_live(const struct queue *q, const struct queue_rcpt *r,
		      int64_t now);
/* Write a recipient record. */
int queue__put_rcpt(struct queue *q, MDB_txn *txn, const char *id,
		    uint32_t idx, const struct queue_rcpt *r);

#endif
