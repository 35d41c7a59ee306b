/*
 * auth_queue.c - bounded, fair password checks (auth_queue.h).
 *
 * Waiting checks are grouped in flows, one per client and class; a flow
 * exists while it has checks waiting and then sits in its class's ring.
 * A turn takes the first flow of a ring, starts its oldest check and
 * puts the flow back at the end of the ring: round robin over clients,
 * first come first served within one.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <openssl/crypto.h>
#include "auth.h"
#include "auth_queue.h"

#define FLOW_BUCKETS 256
#define SUSPECT_SHARE 4          /* suspects get one turn in this many */
#define DEFAULT_WAITING 1024
#define DEFAULT_PER_CLIENT 8
#define DEFAULT_POOL 4           /* libuv's thread pool without UV_THREADPOOL_SIZE */

struct req {
	uv_work_t work;
	struct auth_queue *q;
	struct req *next;            /* the flow's FIFO */
	struct auth_db *db;
	char *user, *pass;
	int ok;
	auth_verify_cb *cb;
	void *arg;
};

struct flow {
	struct flow *hnext;          /* bucket chain */
	struct flow *rnext;          /* its class's ring */
	unsigned char key[16];
	int suspect;
	struct req *head, *tail;
	size_t n;
};

struct ring {
	struct flow *head, *tail;
};

struct auth_queue {
	uv_loop_t *loop;
	unsigned max_inflight, inflight;
	size_t max_waiting, max_per_client, waiting;
	struct flow *b[FLOW_BUCKETS];
	struct ring ring[2];         /* [0] clean clients, [1] suspects */
	unsigned turns;              /* clean turns since the last suspect one */
	int closing;
};

/* Leave one pool thread to file-system and other work. */
static unsigned default_inflight(void)
{
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	const char *env = getenv("UV_THREADPOOL_SIZE");
	long pool = env && atol(env) > 0 ? atol(env) : DEFAULT_POOL;
	long n = cpus > 0 ? cpus : 1;
	if (n > pool - 1)
		n = pool - 1;
	return n < 1 ? 1 : (unsigned)n;
}

struct auth_queue *auth_queue_new(uv_loop_t *loop, unsigned max_inflight,
				  size_t max_waiting, size_t max_per_client)
{
	struct auth_queue *q = calloc(1, sizeof(*q));
	if (!q)
		return NULL;
	q->loop = loop;
	q->max_inflight = max_inflight ? max_inflight : default_inflight();
	q->max_waiting = max_waiting ? max_waiting : DEFAULT_WAITING;
	q->max_per_client = max_per_client ? max_per_client : DEFAULT_PER_CLIENT;
	return q;
}

void auth_queue_free(struct auth_queue *q)
{
	if (!q)
		return;
	q->closing = 1;
	if (!q->inflight && !q->waiting)
		free(q);
}

void auth_queue_stats(const struct auth_queue *q, unsigned *inflight,
		      size_t *waiting)
{
	*inflight = q->inflight;
	*waiting = q->waiting;
}

static struct flow **bucket(struct auth_queue *q, const unsigned char key[16])
{
	uint32_t h = 2166136261u;
	for (int i = 0; i < 16; i++)
		h = (h ^ key[i]) * 16777619u;
	return &q->b[(h ^ (h >> 16)) % FLOW_BUCKETS];
}

static struct flow *flow_get(struct auth_queue *q, const unsigned char key[16],
			     int suspect)
{
	struct flow **b = bucket(q, key), *f;
	for (f = *b; f; f = f->hnext)
		if (f->suspect == suspect && memcmp(f->key, key, 16) == 0)
			return f;
	if (!(f = calloc(1, sizeof(*f))))
		return NULL;
	memcpy(f->key, key, 16);
	f->suspect = suspect;
	f->hnext = *b;
	*b = f;
	struct ring *r = &q->ring[suspect];
	if (r->tail)
		r->tail->rnext = f;
	else
		r->head = f;
	r->tail = f;
	return f;
}

static void req_free(struct req *r)
{
	if (r->pass) {
		OPENSSL_cleanse(r->pass, strlen(r->pass));
		free(r->pass);
	}
	free(r->user);
	auth_db_unref(r->db);
	free(r);
}

static void check_work(uv_work_t *w)
{
	struct req *r = w->data;
	r->ok = auth_check(r->db, r->user, r->pass);
}

static void dispatch(struct auth_queue *q);

static void check_done(uv_work_t *w, int status)
{
	struct req *r = w->data;
	struct auth_queue *q = r->q;
	q->inflight--;
	dispatch(q);
	r->cb(r->arg, status == 0 && r->ok);
	req_free(r);
	if (q->closing && !q->inflight && !q->waiting)
		free(q);
}

/* Take the next check of the ring's first flow; the flow goes to the end
 * of the ring, or away when it has no more. */
static struct req *take(struct auth_queue *q, struct ring *ring)
{
	struct flow *f = ring->head;
	struct req *r = f->head;
	f->head = r->next;
	if (!f->head)
		f->tail = NULL;
	f->n--;
	q->waiting--;
	ring->head = f->rnext;
	if (!ring->head)
		ring->tail = NULL;
	f->rnext = NULL;
	if (f->n) {
		if (ring->tail)
			ring->tail->rnext = f;
		else
			ring->head = f;
		ring->tail = f;
	} else {
		struct flow **pp = bucket(q, f->key);
		while (*pp != f)
			pp = &(*pp)->hnext;
		*pp = f->hnext;
		free(f);
	}
	return r;
}

static void dispatch(struct auth_queue *q)
{
	while (q->inflight < q->max_inflight && q->waiting) {
		int cls = 0;
		if (q->ring[1].head && (!q->ring[0].head || q->turns >= SUSPECT_SHARE - 1))
			cls = 1;
		q->turns = cls ? 0 : q->turns + 1;
		struct req *r = take(q, &q->ring[cls]);
		q->inflight++;
		if (uv_queue_work(q->loop, &r->work, check_work, check_done))
			check_done(&r->work, -1);   /* cannot happen with valid arguments */
	}
}

int auth_queue_check(struct auth_queue *q, struct auth_db *db,
		     const unsigned char client[16], int suspect,
		     const char *user, const char *pass,
		     auth_verify_cb *cb, void *arg)
{
	suspect = !!suspect;
	if (q->waiting >= q->max_waiting && q->inflight >= q->max_inflight)
		return AUTH_QUEUE_BUSY;
	struct req *r = calloc(1, sizeof(*r));
	if (!r)
		return -1;
	r->q = q;
	r->work.data = r;
	r->cb = cb;
	r->arg = arg;
	r->user = strdup(user);
	r->pass = strdup(pass);
	if (!r->user || !r->pass) {
		req_free(r);
		return -1;
	}
	r->db = db;
	auth_db_ref(db);
	struct flow *f = flow_get(q, client, suspect);
	if (!f) {
		req_free(r);
		return -1;
	}
	if (f->n >= q->max_per_client) {
		req_free(r);
		return AUTH_QUEUE_BUSY;
	}
	if (f->tail)
		f->tail->next = r;
	else
		f->head = r;
	f->tail = r;
	f->n++;
	q->waiting++;
	dispatch(q);
	return 0;
}
