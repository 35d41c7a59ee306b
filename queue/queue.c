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
#include <time.h>
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
	case QUEUE_ESTALE: return "claim no longer current";
	case QUEUE_EBUSY: return "queue busy";
	case QUEUE_ESCHEMA: return "queue written by another version of relayd";
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
	struct queue_open_opts o = { .map_size = map_size, .flags = flags };
	return queue_open_opts(qp, dir, &o);
}

/* A tag for the claims this handle takes: unique enough among the
 * handles that ever open one queue. */
static uint64_t new_instance(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return ((uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec) ^
	       (uint64_t)getpid() << 40;
}

/* Any user in the daemon's group reads the queue: data.mdb readable,
 * lock.mdb writable (a reader registers its snapshot there). */
static void share_with_group(const char *dir)
{
	char p[4096];
	if ((size_t)snprintf(p, sizeof(p), "%s/data.mdb", dir) < sizeof(p))
		chmod(p, 0640);
	if ((size_t)snprintf(p, sizeof(p), "%s/lock.mdb", dir) < sizeof(p))
		chmod(p, 0660);
}

int queue_open_opts(struct queue **qp, const char *dir,
		    const struct queue_open_opts *o)
{
	struct queue *q = calloc(1, sizeof(*q));
	unsigned flags = o->flags;
	size_t map_size = o->map_size;
	int rc, made = 0;
	*qp = NULL;
	if (!q)
		return QUEUE_ENOMEM;
	q->flags = flags;
	q->id_slot_fd = -1;
	q->instance = new_instance();
	q->batch_max_ops = QUEUE_BATCH_MAX_OPS;
	q->batch_max_bytes = QUEUE_BATCH_MAX_BYTES;
	pthread_mutex_init(&q->id_lock, NULL);
	if (!(q->dir = strdup(dir))) {
		rc = QUEUE_ENOMEM;
		goto fail;
	}
	if (!(flags & QUEUE_OPEN_RDONLY)) {
		char tmp[4096];
		made = mkdir(dir, 0750) == 0;
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
	    (rc = mdb_env_set_maxdbs(q->env, 16)) ||
	    (rc = mdb_env_set_mapsize(q->env, map_size ? map_size : DEFAULT_MAP_SIZE)) ||
	    (rc = mdb_env_set_maxreaders(q->env, o->max_readers ? o->max_readers
							   : QUEUE_READERS_DEFAULT))) {
		rc = queue__err(rc);
		goto fail;
	}
	/* NOTLS: read snapshots are taken on the loop thread and in worker
	 * threads alike; a reader slot must not be tied to a thread. */
	unsigned ef = MDB_NOTLS | (flags & QUEUE_OPEN_RDONLY ? MDB_RDONLY : 0);
	if ((rc = mdb_env_open(q->env, dir, ef, 0640))) {
		rc = rc == ENOENT ? QUEUE_ENOENT : queue__err(rc);
		goto fail;
	}
	if (!(flags & QUEUE_OPEN_RDONLY) && (rc = sync_dir(dir)))
		goto fail;
	if (!(flags & QUEUE_OPEN_RDONLY))
		share_with_group(dir);
	queue_reader_check(q, NULL);
	if ((rc = queue__schema_open(q)))
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

int queue_env_info(struct queue *q, struct queue_env_info *out)
{
	MDB_envinfo info;
	MDB_stat st;
	int rc;

	if (!q || !out)
		return QUEUE_EINVAL;
	if ((rc = mdb_env_info(q->env, &info)) || (rc = mdb_env_stat(q->env, &st)))
		return queue__err(rc);
	out->map_size = info.me_mapsize;
	out->last_page = info.me_last_pgno;
	out->page_size = st.ms_psize;
	return 0;
}

void queue_close(struct queue *q)
{
	if (!q)
		return;
	queue__id_fini(q);
	if (q->env)
		mdb_env_close(q->env);
	pthread_mutex_destroy(&q->id_lock);
	free(q->dir);
	free(q);
}
