/*
 * queue_id.c - queue ids: a 60-bit counter shown as 12 base-32 digits.
 *
 * The counter is the arrival time in microseconds shifted left by three
 * bits, and the low three bits are the allocating handle's id slot: each
 * writable handle (the daemon, a tool writing while it is down) holds one
 * of eight slots with an OFD lock on queue_dir/idslot.lock, so two
 * processes allocating in the same microsecond still differ.  Within a
 * handle the time part is bumped by one whenever the clock has not moved
 * (or stepped back) since the last id.  On open the counter starts after
 * the high-water mark in `meta` ("idhw", raised by every commit that
 * stores an id) and the largest stored id, so ids never repeat, even in a
 * queue emptied before the clock stepped back.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>
#include "queue_int.h"

#define SLOT_BITS 3

/* Digits in ASCII order, so byte order equals numeric order.  I, L, O and
 * U are left out as in Crockford's base 32: ids are read aloud and typed. */
static const char digits[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

static void encode(uint64_t v, queue_id *out)
{
	for (int i = QUEUE_ID_LEN - 1; i >= 0; i--) {
		out->s[i] = digits[v & 31];
		v >>= 5;
	}
	out->s[QUEUE_ID_LEN] = 0;
}

int queue__id_decode(const char *s, uint64_t *v)
{
	uint64_t x = 0;
	for (int i = 0; i < QUEUE_ID_LEN; i++) {
		const char *d = s[i] ? strchr(digits, s[i]) : NULL;
		if (!d)
			return -1;
		x = x << 5 | (uint64_t)(d - digits);
	}
	*v = x;
	return 0;
}

int queue_id_valid(const char *s)
{
	uint64_t v;
	return s && strlen(s) == QUEUE_ID_LEN && queue__id_decode(s, &v) == 0;
}

/* Take the first free id slot. */
static int take_slot(struct queue *q)
{
	char path[4096];
	if ((size_t)snprintf(path, sizeof(path), "%s/idslot.lock", q->dir) >=
	    sizeof(path))
		return QUEUE_EINVAL;
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0660);
	if (fd < 0)
		return errno == ENOENT ? QUEUE_ENOENT : QUEUE_EIO;
	for (unsigned s = 0; s < QUEUE_ID_SLOTS; s++) {
		struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET,
				    .l_start = s, .l_len = 1 };
		if (fcntl(fd, F_OFD_SETLK, &fl) == 0) {
			q->id_slot = s;
			q->id_slot_fd = fd;
			return 0;
		}
		if (errno != EAGAIN && errno != EACCES)
			break;
	}
	close(fd);
	return QUEUE_EBUSY;
}

void queue__id_fini(struct queue *q)
{
	if (q->id_slot_fd >= 0)
		close(q->id_slot_fd);
	q->id_slot_fd = -1;
}

int queue__id_init(struct queue *q)
{
	MDB_txn *txn;
	MDB_cursor *c;
	MDB_val k, v;
	uint64_t hw = 0, last = 0;
	if (!(q->flags & QUEUE_OPEN_RDONLY)) {
		int qrc = take_slot(q);
		if (qrc)
			return qrc;
	}
	int rc = mdb_txn_begin(q->env, NULL, MDB_RDONLY, &txn);
	if (rc)
		return queue__err(rc);
	if ((rc = queue__meta_get(q, txn, "idhw", &hw)) ||
	    (rc = mdb_cursor_open(txn, q->msg, &c))) {
		mdb_txn_abort(txn);
		return queue__err(rc);
	}
	rc = mdb_cursor_get(c, &k, &v, MDB_LAST);
	if (rc == 0 && k.mv_size == QUEUE_ID_LEN) {
		char s[QUEUE_ID_LEN + 1];
		memcpy(s, k.mv_data, QUEUE_ID_LEN);
		s[QUEUE_ID_LEN] = 0;
		queue__id_decode(s, &last);
	}
	mdb_cursor_close(c);
	mdb_txn_abort(txn);
	q->last_id = hw > last ? hw : last;
	return 0;
}

int queue__id_commit(struct queue *q, MDB_txn *txn, const char *id)
{
	uint64_t v, hw;
	int rc;
	if (queue__id_decode(id, &v))
		return 0;
	if ((rc = queue__meta_get(q, txn, "idhw", &hw)))
		return rc;
	return v > hw ? queue__meta_put(q, txn, "idhw", v) : 0;
}

void queue_id_new(struct queue *q, queue_id *out)
{
	struct timeval tv;
	gettimeofday(&tv, NULL);
	uint64_t us = (uint64_t)tv.tv_sec * 1000000u + (uint64_t)tv.tv_usec;
	pthread_mutex_lock(&q->id_lock);
	if (us <= q->last_id >> SLOT_BITS)
		us = (q->last_id >> SLOT_BITS) + 1;
	q->last_id = us << SLOT_BITS | q->id_slot;
	uint64_t v = q->last_id;
	pthread_mutex_unlock(&q->id_lock);
	encode(v, out);
}
