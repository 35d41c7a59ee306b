/*
 * relayq_shape.c - "relayq -s": where the queue is stuck, in the shape
 * of Postfix's qshape.  One row per destination domain (as the scheduler
 * indexes it: the recipient's domain in lower case), counting recipients
 * still to be delivered by the age of their message, in buckets that
 * double from 5 minutes (0-5, 5-10, 10-20, ... 640-1280, over 1280);
 * busiest destination first.  Then messages, recipients and Kbytes per
 * queue name (incoming, active, deferred, hold).
 *
 * One walk, one hash table of destinations: a million messages over a
 * few thousand domains in well under the 3 s the issue asks for.
 */
#include <stdlib.h>
#include <string.h>
#include "relayq.h"
#include "text.h"

#define NBUCKETS 10
static const char *const bucket_names[NBUCKETS + 1] = {
	"T", "5", "10", "20", "40", "80", "160", "320", "640", "1280", "1280+",
};

struct row {
	char *name;                 /* NULL: an empty slot */
	uint64_t n[NBUCKETS + 1];   /* total, then per bucket */
};

struct shape {
	struct row *rows;
	size_t cap, used;           /* open addressing, cap a power of two */
	struct row total;
	uint64_t msgs[QSEL_NSTATES], rcpts[QSEL_NSTATES], bytes[QSEL_NSTATES];
	int64_t now;
	int oom;
};

static uint64_t hash(const char *s)
{
	uint64_t h = 1469598103934665603ull;
	while (*s)
		h = (h ^ (unsigned char)*s++) * 1099511628211ull;
	return h;
}

static int grow(struct shape *sh)
{
	size_t cap = sh->cap ? sh->cap * 2 : 1024;
	struct row *rows = calloc(cap, sizeof(*rows));
	if (!rows)
		return -1;
	for (size_t i = 0; i < sh->cap; i++) {
		if (!sh->rows[i].name)
			continue;
		size_t j = hash(sh->rows[i].name) & (cap - 1);
		while (rows[j].name)
			j = (j + 1) & (cap - 1);
		rows[j] = sh->rows[i];
	}
	free(sh->rows);
	sh->rows = rows;
	sh->cap = cap;
	return 0;
}

static struct row *row_of(struct shape *sh, const char *name)
{
	if (sh->used * 2 >= sh->cap && grow(sh))
		return NULL;
	size_t j = hash(name) & (sh->cap - 1);
	while (sh->rows[j].name) {
		if (!strcmp(sh->rows[j].name, name))
			return &sh->rows[j];
		j = (j + 1) & (sh->cap - 1);
	}
	if (!(sh->rows[j].name = strdup(name)))
		return NULL;
	sh->used++;
	return &sh->rows[j];
}

/* 1 + the bucket of an age in seconds. */
static int bucket(int64_t age)
{
	int64_t limit = 5 * 60;
	for (int b = 1; b < NBUCKETS; b++, limit *= 2)
		if (age < limit)
			return b;
	return NBUCKETS;
}

static int shape_msg(const struct queue_msg *m, void *arg)
{
	struct shape *sh = arg;
	enum qsel_state st = qsel_state_of(m, sh->now);
	int b = bucket(sh->now - m->arrival / 1000000);
	char dest[QUEUE_DEST_MAX + 1];
	sh->msgs[st]++;
	sh->bytes[st] += m->size;
	for (uint32_t i = 0; i < m->nrcpt; i++) {
		if (!qsel_rcpt_live(&m->rcpt[i]))
			continue;
		queue_dest_of(m->rcpt[i].addr, dest);
		struct row *r = row_of(sh, dest);
		if (!r) {
			sh->oom = 1;
			return 1;
		}
		r->n[0]++;
		r->n[b]++;
		sh->total.n[0]++;
		sh->total.n[b]++;
		sh->rcpts[st]++;
	}
	return 0;
}

static int by_total(const void *a, const void *b)
{
	const struct row *x = a, *y = b;
	if (x->n[0] != y->n[0])
		return x->n[0] < y->n[0] ? 1 : -1;
	return strcmp(x->name, y->name);
}

static int digits(uint64_t v)
{
	int d = 1;
	while (v >= 10) {
		v /= 10;
		d++;
	}
	return d;
}

static void print_table(struct shape *sh, FILE *out)
{
	int w[NBUCKETS + 1], namew = 5;
	char esc[4 * QUEUE_DEST_MAX + 1];
	size_t k = 0;
	for (size_t i = 0; i < sh->cap; i++)      /* compact, then sort */
		if (sh->rows[i].name)
			sh->rows[k++] = sh->rows[i];
	for (size_t i = k; i < sh->cap; i++)      /* each name once */
		sh->rows[i].name = NULL;
	if (k)      /* no table at all for an empty queue */
		qsort(sh->rows, k, sizeof(*sh->rows), by_total);
	for (int c = 0; c <= NBUCKETS; c++) {
		w[c] = (int)strlen(bucket_names[c]);
		if (digits(sh->total.n[c]) > w[c])
			w[c] = digits(sh->total.n[c]);
	}
	for (size_t i = 0; i < k; i++) {
		int l = (int)text_escape(esc, sizeof(esc), sh->rows[i].name,
					 strlen(sh->rows[i].name));
		if (l > namew)
			namew = l;
	}
	fprintf(out, "%*s", namew, "");
	for (int c = 0; c <= NBUCKETS; c++)
		fprintf(out, " %*s", w[c], bucket_names[c]);
	fputc('\n', out);
	sh->total.name = "TOTAL";
	for (size_t i = 0; i <= k; i++) {
		const struct row *r = i ? &sh->rows[i - 1] : &sh->total;
		text_escape(esc, sizeof(esc), r->name, strlen(r->name));
		fprintf(out, "%*s", namew, esc);
		for (int c = 0; c <= NBUCKETS; c++)
			fprintf(out, " %*llu", w[c], (unsigned long long)r->n[c]);
		fputc('\n', out);
	}
	sh->used = k;
}

static void print_states(const struct shape *sh, FILE *out)
{
	uint64_t m = 0, r = 0, b = 0;
	fprintf(out, "\n%-8s %10s %10s %10s\n", "state", "messages", "recipients",
		"Kbytes");
	for (int s = 0; s < QSEL_NSTATES; s++) {
		fprintf(out, "%-8s %10llu %10llu %10llu\n", qsel_state_name(s),
			(unsigned long long)sh->msgs[s], (unsigned long long)sh->rcpts[s],
			(unsigned long long)sh->bytes[s] / 1024);
		m += sh->msgs[s];
		r += sh->rcpts[s];
		b += sh->bytes[s];
	}
	fprintf(out, "%-8s %10llu %10llu %10llu\n", "total", (unsigned long long)m,
		(unsigned long long)r, (unsigned long long)b / 1024);
}

int relayq_shape(struct queue *q, FILE *out, int64_t now)
{
	struct shape sh = { .now = now };
	int rc = qsel_walk(q, RELAYQ_PAGE, shape_msg, &sh);
	if (sh.oom) {
		fprintf(stderr, "relayq: out of memory\n");
		rc = -1;
	} else if (!rc) {
		print_table(&sh, out);
		print_states(&sh, out);
		rc = relayq_finish(0, out);
	} else {
		rc = relayq_finish(rc, out);
	}
	for (size_t i = 0; i < sh.cap; i++)
		free(sh.rows[i].name);
	free(sh.rows);
	return rc;
}
