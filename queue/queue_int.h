/*
 * queue_int.h - internals shared by the queue library's modules.  Not
 * installed, not included outside queue/.
 */
#ifndef RELAYD_QUEUE_INT_H
#define RELAYD_QUEUE_INT_H

#include <lmdb.h>
#include <pthread.h>
#include "queue.h"

#define QUEUE_SCHEMA_VERSION 1
#define QUEUE_RECORD_VERSION 1
/* Body chunk size: large values become LMDB overflow pages, which must be
 * contiguous; 64 KiB keeps them cheap to allocate. */
#define QUEUE_CHUNK_SIZE (64u * 1024u)
/* What a spool keeps in memory before it spills to a file. */
#define QUEUE_SPOOL_MEM_MAX (128u * 1024u)

#define QUEUE_RCPT_KEY_LEN (QUEUE_ID_LEN + 4)
#define QUEUE_DUE_KEY_LEN (8 + QUEUE_ID_LEN + 4)

struct queue_writer;

struct queue {
	MDB_env *env;
	MDB_dbi msg, body, rcpt, due, meta;
	char *dir;
	unsigned flags;
	pthread_mutex_t id_lock;     /* guards last_id */
	uint64_t last_id;
	struct queue_writer *writer;
	int fatal;                   /* first fatal LMDB/errno code; atomic */
};

/* LMDB status to QUEUE_E*. */
int queue__err(int mdb_rc);
/* Map a failed transaction's code, and remember it when it leaves the
 * environment unusable (then QUEUE_EFATAL).  commit: rc came from
 * mdb_txn_commit. */
int queue__fail(struct queue *q, int rc, int commit);
/* 1 once a fatal error was seen: write nothing more. */
int queue__broken(struct queue *q);
/* Seed the id counter from the largest stored id. */
int queue__id_init(struct queue *q);
/* Load a message with its recipients inside txn (queue_read.c). */
int queue__load_msg(struct queue *q, MDB_txn *txn, const char *id,
		    struct queue_msg *m);

/* Keys. */
void queue__rcpt_key(uint8_t key[QUEUE_RCPT_KEY_LEN], const char *id,
		     uint32_t idx);
void queue__due_key(uint8_t key[QUEUE_DUE_KEY_LEN], int64_t when,
		    const char *id, uint32_t idx);

/* Spool access for the writer: check on the caller's thread (in
 * queue_op_submit) that the spool is complete (no file job in flight, no
 * write error), then read from the writer thread: the file part with
 * pread, the rest from memory. */
int queue__spool_flush(struct queue_spool *sp);
int queue__spool_read(struct queue_spool *sp, uint64_t off, void *buf,
		      size_t len);

enum queue_op_kind {
	QOP_SUBMIT, QOP_RCPT_UPDATE, QOP_FLAGS, QOP_ADMIN, QOP_REMOVE,
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
			uint32_t nrcpt;
			struct queue_spool *body;
			int64_t due_at;
		} submit;
		struct {
			struct queue_rcpt_update *u;
			size_t n;
			char *strings;             /* backing store for dsn/reason */
		} update;
		struct { unsigned set, clear; } flags;
		enum queue_admin_action admin;
	} u;
	int status;
	queue_done_fn *done;
	void *arg;
	struct queue_op *next;       /* writer's lists */
};

/* Apply one op inside txn.  Logical outcomes (no such message) go to
 * op->status; the return value is non-zero only when the transaction
 * itself is broken (map full, I/O error) and must be aborted. */
int queue__op_apply(struct queue *q, MDB_txn *txn, struct queue_op *op);

#endif
