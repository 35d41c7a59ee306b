/*
 * queue_read.c - read-only snapshots: messages, recipients, body chunks,
 * the due index.  A snapshot pins old pages, so callers keep it short.
 */
#include <stdlib.h>
#include <string.h>
#include "queue_int.h"
#include "queue_codec.h"

int queue_read_begin(struct queue *q, struct queue_read **rp)
{
	struct queue_read *r = calloc(1, sizeof(*r));
	if (!r)
		return QUEUE_ENOMEM;
	int rc = mdb_txn_begin(q->env, NULL, MDB_RDONLY, &r->txn);
	/* A full table may be full of dead readers' slots. */
	if (rc == MDB_READERS_FULL && queue_reader_check(q, NULL) == 0)
		rc = mdb_txn_begin(q->env, NULL, MDB_RDONLY, &r->txn);
	if (rc) {
		free(r);
		return queue__err(rc);
	}
	r->q = q;
	*rp = r;
	return 0;
}

void queue_read_end(struct queue_read *r)
{
	if (!r)
		return;
	mdb_txn_abort(r->txn);
	free(r);
}

/* Load the recipients of m (whose nrcpt is set) with cursor c on the rcpt
 * DBI: one seek, then neighbours, since a message's recipients are
 * adjacent keys. */
static int load_rcpts(MDB_cursor *c, struct queue_msg *m)
{
	if (m->nrcpt == 0 || m->nrcpt > (1u << 20))
		return m->nrcpt ? QUEUE_ECORRUPT : 0;
	m->rcpt = calloc(m->nrcpt, sizeof(*m->rcpt));
	if (!m->rcpt)
		return QUEUE_ENOMEM;
	for (uint32_t i = 0; i < m->nrcpt; i++) {
		uint8_t key[QUEUE_RCPT_KEY_LEN];
		queue__rcpt_key(key, m->id.s, i);
		MDB_val k = { sizeof(key), key }, v;
		int rc = mdb_cursor_get(c, &k, &v, i ? MDB_NEXT : MDB_SET_RANGE);
		if (rc == 0 && (k.mv_size != sizeof(key) ||
				memcmp(k.mv_data, key, sizeof(key))))
			rc = MDB_NOTFOUND;
		if (rc)
			return rc == MDB_NOTFOUND ? QUEUE_ECORRUPT : queue__err(rc);
		if ((rc = queue__rcpt_decode(v.mv_data, v.mv_size, &m->rcpt[i])))
			return rc;
	}
	return 0;
}

int queue__load_env(struct queue *q, MDB_txn *txn, const char *id,
		    struct queue_msg *m)
{
	memset(m, 0, sizeof(*m));
	if (!queue_id_valid(id))
		return QUEUE_EINVAL;
	MDB_val k = { QUEUE_ID_LEN, (void *)id }, v;
	int rc = mdb_get(txn, q->msg, &k, &v);
	if (rc)
		return queue__err(rc);
	if ((rc = queue__msg_decode(v.mv_data, v.mv_size, m)))
		return rc;
	memcpy(m->id.s, id, QUEUE_ID_LEN + 1);
	return 0;
}

int queue__load_rcpt(struct queue *q, MDB_txn *txn, const char *id,
		     uint32_t idx, struct queue_rcpt *r)
{
	uint8_t key[QUEUE_RCPT_KEY_LEN];
	queue__rcpt_key(key, id, idx);
	MDB_val k = { sizeof(key), key }, v;
	memset(r, 0, sizeof(*r));
	int rc = mdb_get(txn, q->rcpt, &k, &v);
	if (rc)
		return rc == MDB_NOTFOUND ? QUEUE_ECORRUPT : queue__err(rc);
	return queue__rcpt_decode(v.mv_data, v.mv_size, r);
}

static int load_with(struct queue *q, MDB_txn *txn, MDB_cursor *c,
		     const char *id, struct queue_msg *m)
{
	int rc = queue__load_env(q, txn, id, m);
	if (rc)
		return rc;
	if ((rc = load_rcpts(c, m)))
		queue_msg_clear(m);
	return rc;
}

/* Load message id (envelope and recipients) within txn. */
int queue__load_msg(struct queue *q, MDB_txn *txn, const char *id,
		    struct queue_msg *m)
{
	MDB_cursor *c;
	memset(m, 0, sizeof(*m));
	int rc = mdb_cursor_open(txn, q->rcpt, &c);
	if (rc)
		return queue__err(rc);
	rc = load_with(q, txn, c, id, m);
	mdb_cursor_close(c);
	return rc;
}

int queue_msg_get(struct queue_read *r, const char *id, struct queue_msg *m)
{
	return queue__load_msg(r->q, r->txn, id, m);
}

static int seek_after(MDB_cursor *c, const char *after, MDB_val *k, MDB_val *v);

int queue_msg_iter(struct queue_read *r, const char *after,
		   queue_iter_fn *fn, void *arg)
{
	MDB_cursor *c, *rcur;
	MDB_val k, v;
	int rc = mdb_cursor_open(r->txn, r->q->msg, &c);
	if (rc)
		return queue__err(rc);
	if ((rc = mdb_cursor_open(r->txn, r->q->rcpt, &rcur))) {
		mdb_cursor_close(c);
		return queue__err(rc);
	}
	int ret = 0;
	for (rc = seek_after(c, after, &k, &v); rc == 0;
	     rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		struct queue_msg m;
		if (k.mv_size != QUEUE_ID_LEN) {
			ret = QUEUE_ECORRUPT;
			break;
		}
		char id[QUEUE_ID_LEN + 1];
		memcpy(id, k.mv_data, QUEUE_ID_LEN);
		id[QUEUE_ID_LEN] = 0;
		if ((ret = load_with(r->q, r->txn, rcur, id, &m)))
			break;
		ret = fn(&m, arg);
		queue_msg_clear(&m);
		if (ret)
			break;
	}
	if (rc && rc != MDB_NOTFOUND && !ret)
		ret = queue__err(rc);
	mdb_cursor_close(rcur);
	mdb_cursor_close(c);
	return ret;
}

int queue_body_chunk(struct queue_read *r, const char *id, uint32_t idx,
		     const void **data, size_t *len)
{
	uint8_t key[QUEUE_RCPT_KEY_LEN];
	if (!queue_id_valid(id))
		return QUEUE_EINVAL;
	queue__rcpt_key(key, id, idx);
	MDB_val k = { sizeof(key), key }, v;
	int rc = mdb_get(r->txn, r->q->body, &k, &v);
	if (rc)
		return queue__err(rc);
	const uint8_t *p = v.mv_data;
	if (v.mv_size < 1 || p[0] != QUEUE_RECORD_VERSION)
		return QUEUE_ECORRUPT;
	*data = p + 1;
	*len = v.mv_size - 1;
	return 0;
}

int queue_count(struct queue_read *r, uint64_t *n)
{
	MDB_stat st;
	int rc = mdb_stat(r->txn, r->q->msg, &st);
	if (rc)
		return queue__err(rc);
	*n = st.ms_entries;
	return 0;
}

int queue_counts(struct queue *q, struct queue_counts *out)
{
	struct queue_read *r;
	int rc = queue_read_begin(q, &r);
	if (rc)
		return rc;
	const MDB_dbi dbi[3] = { q->msg, q->rcpt, q->due };
	uint64_t *const n[3] = { &out->messages, &out->recipients, &out->scheduled };
	MDB_stat st;
	for (int i = 0; i < 3 && rc == 0; i++)
		if ((rc = mdb_stat(r->txn, dbi[i], &st)) == 0)
			*n[i] = st.ms_entries;
	queue_read_end(r);
	return rc ? queue__err(rc) : 0;
}

static uint32_t get_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}

int queue__due_decode(const uint8_t *p, size_t len, struct queue_due *d)
{
	if (len != QUEUE_DUE_KEY_LEN)
		return -1;
	d->when = (int64_t)((uint64_t)get_be32(p) << 32 | get_be32(p + 4));
	memcpy(d->id.s, p + 8, QUEUE_ID_LEN);
	d->id.s[QUEUE_ID_LEN] = 0;
	d->rcpt = get_be32(p + 8 + QUEUE_ID_LEN);
	return 0;
}

int queue_due_next(struct queue_read *r, int64_t until, struct queue_due *out,
		   size_t max, size_t *n)
{
	MDB_cursor *c;
	MDB_val k, v;
	*n = 0;
	int rc = mdb_cursor_open(r->txn, r->q->due, &c);
	if (rc)
		return queue__err(rc);
	for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0 && *n < max;
	     rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		struct queue_due d;
		if (queue__due_decode(k.mv_data, k.mv_size, &d)) {
			mdb_cursor_close(c);
			return QUEUE_ECORRUPT;
		}
		if (d.when > until)
			break;
		out[(*n)++] = d;
	}
	mdb_cursor_close(c);
	return rc && rc != MDB_NOTFOUND ? queue__err(rc) : 0;
}

int queue_due_first(struct queue_read *r, struct queue_due *out)
{
	size_t n;
	int rc = queue_due_next(r, INT64_MAX, out, 1, &n);
	if (rc)
		return rc;
	return n ? 0 : QUEUE_ENOENT;
}

int queue_rcpt_history(struct queue_read *r, const char *id, uint32_t idx,
		       struct queue_attempt *out, size_t max, size_t *n)
{
	struct queue_attempt h[QUEUE_HIST_MAX];
	uint8_t key[QUEUE_RCPT_KEY_LEN];
	size_t k;
	*n = 0;
	if (!queue_id_valid(id))
		return QUEUE_EINVAL;
	queue__rcpt_key(key, id, idx);
	MDB_val kv = { sizeof(key), key }, v;
	int rc = mdb_get(r->txn, r->q->hist, &kv, &v);
	if (rc)
		return rc == MDB_NOTFOUND ? 0 : queue__err(rc);
	if ((rc = queue__hist_decode(v.mv_data, v.mv_size, h, &k)))
		return rc;
	/* Keep the newest max of them. */
	size_t skip = k > max ? k - max : 0;
	queue_attempt_clear(h, skip);
	memcpy(out, h + skip, (k - skip) * sizeof(*h));
	*n = k - skip;
	return 0;
}

int queue_body_copy(struct queue *q, const char *id, uint64_t off, void *buf,
		    size_t len, size_t *got)
{
	struct queue_read *r;
	uint8_t *dst = buf;
	*got = 0;
	if (!queue_id_valid(id))
		return QUEUE_EINVAL;
	int rc = queue_read_begin(q, &r);
	if (rc)
		return rc;
	while (*got < len) {
		const void *data;
		size_t n;
		uint64_t at = off + *got;
		rc = queue_body_chunk(r, id, (uint32_t)(at / QUEUE_CHUNK_SIZE),
				      &data, &n);
		if (rc == QUEUE_ENOENT) {
			/* Past the last chunk: the end, if the message is there. */
			MDB_val k = { QUEUE_ID_LEN, (void *)id }, v;
			rc = queue__err(mdb_get(r->txn, q->msg, &k, &v));
			break;
		}
		if (rc)
			break;
		size_t in = (size_t)(at % QUEUE_CHUNK_SIZE);
		if (in >= n)
			break;
		size_t take = n - in < len - *got ? n - in : len - *got;
		memcpy(dst + *got, (const uint8_t *)data + in, take);
		*got += take;
	}
	queue_read_end(r);
	return rc;
}

/* Position c after `after` (or at the start). */
static int seek_after(MDB_cursor *c, const char *after, MDB_val *k, MDB_val *v)
{
	if (!after)
		return mdb_cursor_get(c, k, v, MDB_FIRST);
	k->mv_size = strlen(after);
	k->mv_data = (void *)after;
	int rc = mdb_cursor_get(c, k, v, MDB_SET_RANGE);
	if (rc == 0 && k->mv_size == strlen(after) &&
	    memcmp(k->mv_data, after, k->mv_size) == 0)
		rc = mdb_cursor_get(c, k, v, MDB_NEXT);
	return rc;
}

int queue_list_page(struct queue *q, const char *after, struct queue_msg *out,
		    size_t max, size_t *n)
{
	struct queue_read *r;
	MDB_cursor *c = NULL, *rc_cur = NULL;
	MDB_val k, v;
	*n = 0;
	int rc = queue_read_begin(q, &r);
	if (rc)
		return rc;
	if ((rc = mdb_cursor_open(r->txn, q->msg, &c)) ||
	    (rc = mdb_cursor_open(r->txn, q->rcpt, &rc_cur)))
		goto done;
	for (rc = seek_after(c, after, &k, &v); rc == 0 && *n < max;
	     rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		struct queue_msg *m = &out[*n];
		if (k.mv_size != QUEUE_ID_LEN) {
			rc = MDB_CORRUPTED;
			break;
		}
		int qrc = queue__msg_decode(v.mv_data, v.mv_size, m);
		if (!qrc) {
			memcpy(m->id.s, k.mv_data, QUEUE_ID_LEN);
			m->id.s[QUEUE_ID_LEN] = 0;
			if ((qrc = load_rcpts(rc_cur, m)))
				queue_msg_clear(m);
		}
		if (qrc) {
			for (size_t i = 0; i < *n; i++)
				queue_msg_clear(&out[i]);
			*n = 0;
			mdb_cursor_close(c);
			mdb_cursor_close(rc_cur);
			queue_read_end(r);
			return qrc;
		}
		(*n)++;
	}
done:
	if (c)
		mdb_cursor_close(c);
	if (rc_cur)
		mdb_cursor_close(rc_cur);
	queue_read_end(r);
	return rc && rc != MDB_NOTFOUND ? queue__err(rc) : 0;
}
