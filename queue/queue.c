/*
 * queue.c - open and close the LMDB environment, create the schema, map
 * LMDB errors to the library's codes.
 *
 * Directory entries are data too: a new queue_dir, its tmp/ and LMDB's
 * data.mdb and lock.mdb exist for sure after a crash only once the
 * directories holding them are fsynced, so a writable open fsyncs
 * queue_dir (and its parent when it made queue_dir) before it returns.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "queue_int.h"
#include "queue_codec.h"

#define DEFAULT_MAP_SIZE ((size_t)8 << 30)

const char *queue_strerror(int err)
{
	switch (err) {
	case QUEUE_OK: return "ok";
	case QUEUE_ENOENT: return "no such message";
	case QUEUE_ENOSPC: return "insufficient system storage";
	case QUEUE_EIO: return "queue I/O error";
	case QUEUE_ECORRUPT: return "corrupt queue record";
	case QUEUE_EINVAL: return "invalid argument";
	case QUEUE_ENOMEM: return "out of memory";
	case QUEUE_EEXIST: return "queue id exists";
	case QUEUE_ESTOPPED: return "queue writer stopped";
	case QUEUE_EFATAL: return "queue environment unusable";
	default: return "unknown queue error";
	}
}

int queue__err(int rc)
{
	switch (rc) {
	case 0: return 0;
	case MDB_NOTFOUND: return QUEUE_ENOENT;
	case MDB_KEYEXIST: return QUEUE_EEXIST;
	case MDB_MAP_FULL:
	case ENOSPC:
	case EDQUOT: return QUEUE_ENOSPC;
	case ENOMEM: return QUEUE_ENOMEM;
	case MDB_CORRUPTED:
	case MDB_PAGE_NOTFOUND:
	case MDB_BAD_VALSIZE: return QUEUE_ECORRUPT;
	default: return QUEUE_EIO;
	}
}

/* Errors after which the environment cannot be trusted: LMDB's own
 * verdicts, and an I/O error from a commit, which means the fsync failed
 * and the kernel may have dropped the pages it could not write. */
static int is_fatal(int rc, int commit)
{
	switch (rc) {
	case MDB_PANIC:
	case MDB_CORRUPTED:
	case MDB_VERSION_MISMATCH:
	case MDB_INVALID:
		return 1;
	case EIO:
		return commit;
	default:
		return 0;
	}
}

int queue__fail(struct queue *q, int rc, int commit)
{
	if (!is_fatal(rc, commit))
		return queue__err(rc);
	int none = 0;
	__atomic_compare_exchange_n(&q->fatal, &none, rc, 0, __ATOMIC_SEQ_CST,
				    __ATOMIC_SEQ_CST);
	return QUEUE_EFATAL;
}

int queue__broken(struct queue *q)
{
	return __atomic_load_n(&q->fatal, __ATOMIC_SEQ_CST) != 0;
}

static void put_be32(uint8_t *p, uint32_t v)
{
	p[0] = v >> 24;
	p[1] = v >> 16;
	p[2] = v >> 8;
	p[3] = v;
}

void queue__rcpt_key(uint8_t key[QUEUE_RCPT_KEY_LEN], const char *id,
		     uint32_t idx)
{
	memcpy(key, id, QUEUE_ID_LEN);
	put_be32(key + QUEUE_ID_LEN, idx);
}

void queue__due_key(uint8_t key[QUEUE_DUE_KEY_LEN], int64_t when,
		    const char *id, uint32_t idx)
{
	uint64_t w = when < 0 ? 0 : (uint64_t)when;
	put_be32(key, (uint32_t)(w >> 32));
	put_be32(key + 4, (uint32_t)w);
	memcpy(key + 8, id, QUEUE_ID_LEN);
	put_be32(key + 8 + QUEUE_ID_LEN, idx);
}

/* Create the DBIs and the schema record, or check the schema version. */
static int open_schema(struct queue *q)
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
	rc = mdb_get(txn, q->meta, &k, &v);
	if (rc == MDB_NOTFOUND && !ro) {
		uint8_t rec[5] = { QUEUE_RECORD_VERSION, QUEUE_SCHEMA_VERSION };
		v.mv_size = sizeof(rec);
		v.mv_data = rec;
		if ((rc = mdb_put(txn, q->meta, &k, &v, 0)))
			goto fail;
	} else if (rc) {
		goto fail;
	} else {
		struct qrd r = { .p = v.mv_data, .len = v.mv_size };
		uint8_t ver = qrd_u8(&r);
		uint32_t schema = qrd_u32(&r);
		if (r.err || ver != QUEUE_RECORD_VERSION ||
		    schema != QUEUE_SCHEMA_VERSION) {
			mdb_txn_abort(txn);
			return QUEUE_ECORRUPT;
		}
	}
	return queue__err(mdb_txn_commit(txn));
fail:
	mdb_txn_abort(txn);
	return queue__err(rc);
}

/* fsync a directory, so the entries made in it survive a crash. */
static int sync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return QUEUE_EIO;
	int rc = fsync(fd) ? QUEUE_EIO : 0;
	close(fd);
	return rc;
}

static int sync_parent(const char *dir)
{
	char *copy = strdup(dir);
	if (!copy)
		return QUEUE_ENOMEM;
	int rc = sync_dir(dirname(copy));
	free(copy);
	return rc;
}

int queue_open(struct queue **qp, const char *dir, size_t map_size,
	       unsigned flags)
{
	struct queue *q = calloc(1, sizeof(*q));
	int rc, made = 0;
	*qp = NULL;
	if (!q)
		return QUEUE_ENOMEM;
	q->flags = flags;
	pthread_mutex_init(&q->id_lock, NULL);
	if (!(q->dir = strdup(dir))) {
		rc = QUEUE_ENOMEM;
		goto fail;
	}
	if (!(flags & QUEUE_OPEN_RDONLY)) {
		char tmp[4096];
		made = mkdir(dir, 0700) == 0;
		if ((!made && errno != EEXIST) ||
		    (size_t)snprintf(tmp, sizeof(tmp), "%s/tmp", dir) >= sizeof(tmp) ||
		    (mkdir(tmp, 0700) && errno != EEXIST)) {
			rc = QUEUE_EIO;
			goto fail;
		}
		if (made && (rc = sync_parent(dir)))
			goto fail;
	}
	if ((rc = mdb_env_create(&q->env)) ||
	    (rc = mdb_env_set_maxdbs(q->env, 8)) ||
	    (rc = mdb_env_set_mapsize(q->env, map_size ? map_size : DEFAULT_MAP_SIZE)) ||
	    (rc = mdb_env_set_maxreaders(q->env, 256))) {
		rc = queue__err(rc);
		goto fail;
	}
	/* NOTLS: read snapshots are taken on the loop thread and in worker
	 * threads alike; a reader slot must not be tied to a thread. */
	unsigned ef = MDB_NOTLS | (flags & QUEUE_OPEN_RDONLY ? MDB_RDONLY : 0);
	if ((rc = mdb_env_open(q->env, dir, ef, 0600))) {
		rc = rc == ENOENT ? QUEUE_ENOENT : queue__err(rc);
		goto fail;
	}
	if (!(flags & QUEUE_OPEN_RDONLY) && (rc = sync_dir(dir)))
		goto fail;
	queue_reader_check(q, NULL);
	if ((rc = open_schema(q)))
		goto fail;
	if ((rc = queue__id_init(q)))
		goto fail;
	*qp = q;
	return 0;
fail:
	queue_close(q);
	return rc;
}

int queue_reader_check(struct queue *q, int *cleared)
{
	int dead = 0;
	int rc = mdb_reader_check(q->env, &dead);
	if (cleared)
		*cleared = dead;
	return queue__err(rc);
}

void queue_close(struct queue *q)
{
	if (!q)
		return;
	if (q->env)
		mdb_env_close(q->env);
	pthread_mutex_destroy(&q->id_lock);
	free(q->dir);
	free(q);
}
