/*
 * queue_id.c - queue ids: a 60-bit counter shown as 12 base-32 digits.
 *
 * The counter is the arrival time in microseconds, bumped by one whenever
 * the clock has not moved (or stepped back) since the last id, so ids are
 * unique and sort in arrival order.  On open the counter starts after the
 * largest id stored, which keeps it increasing across restarts.
 */
#include <string.h>
#include <sys/time.h>
#include "queue_int.h"

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

static int decode(const char *s, uint64_t *v)
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
	return s && strlen(s) == QUEUE_ID_LEN && decode(s, &v) == 0;
}

int queue__id_init(struct queue *q)
{
	MDB_txn *txn;
	MDB_cursor *c;
	MDB_val k, v;
	int rc = mdb_txn_begin(q->env, NULL, MDB_RDONLY, &txn);
	if (rc)
		return queue__err(rc);
	if ((rc = mdb_cursor_open(txn, q->msg, &c))) {
		mdb_txn_abort(txn);
		return queue__err(rc);
	}
	rc = mdb_cursor_get(c, &k, &v, MDB_LAST);
	if (rc == 0 && k.mv_size == QUEUE_ID_LEN) {
		char s[QUEUE_ID_LEN + 1];
		memcpy(s, k.mv_data, QUEUE_ID_LEN);
		s[QUEUE_ID_LEN] = 0;
		uint64_t last;
		if (decode(s, &last) == 0)
			q->last_id = last;
	}
	mdb_cursor_close(c);
	mdb_txn_abort(txn);
	return 0;
}

void queue_id_new(struct queue *q, queue_id *out)
{
	struct timeval tv;
	gettimeofday(&tv, NULL);
	uint64_t now = (uint64_t)tv.tv_sec * 1000000u + (uint64_t)tv.tv_usec;
	pthread_mutex_lock(&q->id_lock);
	if (now <= q->last_id)
		now = q->last_id + 1;
	q->last_id = now;
	pthread_mutex_unlock(&q->id_lock);
	encode(now, out);
}
