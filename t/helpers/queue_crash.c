/*
 * queue_crash.c - crash-consistency helper for t/integration/queue_crash.sh.
 *
 *   queue_crash child DIR ACKFILE SEED [COUNT]
 *	Open the queue in DIR and submit messages through the group-commit
 *	writer from 16 concurrent submitters, forever (or until COUNT have
 *	been acknowledged, then stop cleanly).  Each message whose completion
 *	reports success gets one line "ID LENGTH CRC32 NRCPT" appended to
 *	ACKFILE - the equivalent of the 250 after DATA.  The test kills this
 *	process with SIGKILL at a random moment.
 *
 *   queue_crash verify DIR ACKFILE
 *	Open the queue read-only and check that every acknowledged message is
 *	there and intact: envelope, recipients PENDING with their due entries,
 *	body chunks with the right length and CRC.  Every stored message,
 *	acknowledged or not, must also be whole (a commit is all or nothing):
 *	the generator seed and length in its ENVID let its body be rebuilt and
 *	compared, and the due index must hold exactly one entry per recipient.
 *	Prints "verified N messages" on stdout; exit 0 when all is well, 1
 *	otherwise, diagnostics on stderr.
 *
 * Bodies are pseudo-random bytes: mostly 1..20 KiB, one in 16 between
 * 128 KiB and 400 KiB (the spool spills to a file and the body spans several
 * 64 KiB chunks), one in 64 an edge size around the chunk and spill bounds
 * (including the empty body).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>
#include "queue.h"

#define NSUBMITTERS 16
#define MAXRCPT 3
#define CHUNK (64u * 1024u)          /* QUEUE_CHUNK_SIZE, an on-disk fact */
#define ENVID_PREFIX "crash-"

/* ---- CRC-32 (IEEE, reflected, as zlib's crc32) ----
 * Slicing-by-8: verify reads every stored body each round, so the byte-wise
 * loop would dominate the test's run time. */

static uint32_t crc_table[8][256];

static void crc32_init(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;
		for (int k = 0; k < 8; k++)
			c = c & 1 ? 0xedb88320u ^ (c >> 1) : c >> 1;
		crc_table[0][i] = c;
	}
	for (int t = 1; t < 8; t++)
		for (int i = 0; i < 256; i++)
			crc_table[t][i] = crc_table[t - 1][i] >> 8 ^
					  crc_table[0][crc_table[t - 1][i] & 0xff];
}

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static uint32_t crc32_update(uint32_t crc, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	crc = ~crc;
	for (; len >= 8; p += 8, len -= 8) {
		uint32_t a = le32(p) ^ crc, b = le32(p + 4);
		crc = crc_table[7][a & 0xff] ^ crc_table[6][a >> 8 & 0xff] ^
		      crc_table[5][a >> 16 & 0xff] ^ crc_table[4][a >> 24] ^
		      crc_table[3][b & 0xff] ^ crc_table[2][b >> 8 & 0xff] ^
		      crc_table[1][b >> 16 & 0xff] ^ crc_table[0][b >> 24];
	}
	while (len--)
		crc = crc_table[0][(crc ^ *p++) & 0xff] ^ crc >> 8;
	return ~crc;
}

/* ---- deterministic pseudo-random numbers and body content ---- */

static uint64_t splitmix64(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* A byte stream that depends only on its seed, not on how it is read. */
struct gen {
	uint64_t state, word;
	int left;                /* bytes left in word */
};

static void gen_init(struct gen *g, uint64_t seed)
{
	g->state = seed;
	g->left = 0;
}

static void gen_bytes(struct gen *g, uint8_t *out, size_t n)
{
	while (n) {
		if (!g->left && n >= 8) {
			/* Whole word: the same bytes as the loop below. */
			uint64_t w = splitmix64(&g->state);
			for (int i = 0; i < 8; i++)
				out[i] = (uint8_t)(w >> 8 * i);
			out += 8;
			n -= 8;
			continue;
		}
		if (!g->left) {
			g->word = splitmix64(&g->state);
			g->left = 8;
		}
		*out++ = (uint8_t)g->word;
		g->word >>= 8;
		g->left--;
		n--;
	}
}

/* CRC of the first len bytes generated from seed. */
static uint32_t gen_crc(uint64_t seed, uint64_t len)
{
	static uint8_t buf[CHUNK];
	struct gen g;
	uint32_t crc = 0;
	gen_init(&g, seed);
	while (len) {
		size_t n = len > sizeof(buf) ? sizeof(buf) : (size_t)len;
		gen_bytes(&g, buf, n);
		crc = crc32_update(crc, buf, n);
		len -= n;
	}
	return crc;
}

static uint64_t pick_len(uint64_t *rng)
{
	static const uint64_t edges[] = {
		0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 2 * CHUNK, 2 * CHUNK + 1,
		3 * CHUNK, 400 * 1024,
	};
	uint64_t r = splitmix64(rng);
	if (r % 64 == 0)
		return edges[(r >> 8) % (sizeof(edges) / sizeof(edges[0]))];
	if (r % 16 == 1)
		return 128 * 1024 + 1 + (r >> 8) % (400 * 1024 - 128 * 1024);
	return 1 + (r >> 8) % (20 * 1024);
}

static int write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;
	while (len) {
		ssize_t n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* ---- child: submit until killed ---- */

struct child;

struct submitter {
	struct child *c;
	int busy;
	/* The envelope must outlive the op: it is only read at creation, but
	 * the API asks callers to keep it until completion. */
	struct queue_msg m;
	struct queue_rcpt rcpt[MAXRCPT];
	char sender[64], envid[64], addr[MAXRCPT][64], orcpt[MAXRCPT][80];
	uint64_t len;
	uint32_t crc;
};

struct child {
	struct queue *q;
	uv_loop_t *loop;
	int ackfd;
	uint64_t rng;
	uint64_t acked, limit;   /* limit 0: run forever */
	int stopping, busy;
	struct submitter sub[NSUBMITTERS];
};

static void die(const char *what, int rc)
{
	fprintf(stderr, "queue_crash: %s: %s\n", what,
		rc < 0 ? queue_strerror(rc) : strerror(rc));
	exit(3);
}

/* Fill a spool with len generated bytes in writes of random sizes, so the
 * spill to a file happens in the middle of a write as well as on one. */
static int fill_spool(struct child *c, struct queue_spool *sp, uint64_t seed,
		      uint64_t len, uint32_t *crc)
{
	static uint8_t buf[16384];
	struct gen g;
	gen_init(&g, seed);
	*crc = 0;
	while (len) {
		size_t n = 1 + splitmix64(&c->rng) % sizeof(buf);
		if (n > len)
			n = (size_t)len;
		gen_bytes(&g, buf, n);
		*crc = crc32_update(*crc, buf, n);
		int rc = queue_spool_write(sp, buf, n);
		if (rc)
			return rc;
		len -= n;
	}
	return 0;
}

static void on_done(void *arg, int status, const struct queue_op *op);

/* Build and submit the next message of s. */
static void submit_next(struct submitter *s)
{
	struct child *c = s->c;
	struct queue_msg *m = &s->m;
	struct timeval tv;
	uint64_t r = splitmix64(&c->rng), seed = splitmix64(&c->rng);

	memset(m, 0, sizeof(*m));
	queue_id_new(c->q, &m->id);
	gettimeofday(&tv, NULL);
	m->arrival = (int64_t)tv.tv_sec * 1000000 + tv.tv_usec;
	s->len = pick_len(&c->rng);
	snprintf(s->sender, sizeof(s->sender), "sender%u@example.org",
		 (unsigned)(r % 1000));
	m->sender = r % 10 == 0 ? "" : s->sender;
	snprintf(s->envid, sizeof(s->envid), ENVID_PREFIX "%016" PRIx64 "-%" PRIu64,
		 seed, s->len);
	m->envid = s->envid;
	m->ret = (enum queue_ret)((r >> 8) % 3);
	m->flags = (r >> 10) & 1 ? QUEUE_F_8BITMIME : 0;
	m->client_name = "client.example.org";
	m->client_addr = "192.0.2.1";
	m->helo = (r >> 11) & 1 ? "client.example.org" : NULL;
	m->auth_user = (r >> 12) & 1 ? "alice" : NULL;
	m->nrcpt = 1 + (uint32_t)((r >> 16) % MAXRCPT);
	m->rcpt = s->rcpt;
	for (uint32_t i = 0; i < m->nrcpt; i++) {
		struct queue_rcpt *rc = &s->rcpt[i];
		memset(rc, 0, sizeof(*rc));
		snprintf(s->addr[i], sizeof(s->addr[i]), "rcpt%u-%s@example.net",
			 i, m->id.s);
		rc->addr = s->addr[i];
		if ((r >> (20 + i)) & 1) {
			snprintf(s->orcpt[i], sizeof(s->orcpt[i]),
				 "rfc822;rcpt%u-%s@example.net", i, m->id.s);
			rc->orcpt = s->orcpt[i];
			rc->notify = QUEUE_NOTIFY_FAILURE | QUEUE_NOTIFY_DELAY;
		}
	}

	struct queue_spool *sp;
	int rc = queue_spool_new(c->q, &sp);
	if (rc)
		die("queue_spool_new", rc);
	if ((rc = fill_spool(c, sp, seed, s->len, &s->crc)))
		die("queue_spool_write", rc);
	if (queue_spool_size(sp) != s->len)
		die("queue_spool_size", QUEUE_EINVAL);
	struct queue_op *op = queue_op_submit(m, sp, (int64_t)time(NULL));
	if (!op)
		die("queue_op_submit", QUEUE_ENOMEM);
	if ((rc = queue_writer_submit(c->q, op, on_done, s)))
		die("queue_writer_submit", rc);
	s->busy = 1;
	c->busy++;
}

static void on_done(void *arg, int status, const struct queue_op *op)
{
	struct submitter *s = arg;
	struct child *c = s->c;
	char line[128];

	s->busy = 0;
	c->busy--;
	if (status != 0) {
		fprintf(stderr, "queue_crash: submit %s failed: %s\n", s->m.id.s,
			queue_strerror(status));
		exit(3);
	}
	int n = snprintf(line, sizeof(line), "%s %" PRIu64 " %08" PRIx32 " %" PRIu32 "\n",
			 s->m.id.s, s->len, s->crc, s->m.nrcpt);
	if (write_all(c->ackfd, line, (size_t)n))
		die("write ackfile", errno);
	c->acked++;
	if (c->limit && c->acked >= c->limit)
		c->stopping = 1;
	if (!c->stopping)
		submit_next(s);
	else if (!c->busy)
		uv_stop(c->loop);
}

static int run_child(const char *dir, const char *ackfile, const char *seed,
		     const char *count)
{
	static struct child c;
	uv_loop_t loop;
	int rc;

	c.rng = strtoull(seed, NULL, 0);
	c.limit = count ? strtoull(count, NULL, 0) : 0;
	if ((c.ackfd = open(ackfile, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644)) < 0)
		die(ackfile, errno);
	if ((rc = queue_open(&c.q, dir, 0, 0)))
		die("queue_open", rc);
	if ((rc = uv_loop_init(&loop)))
		die("uv_loop_init", -rc);
	c.loop = &loop;
	if ((rc = queue_writer_start(c.q, &loop)))
		die("queue_writer_start", rc);
	for (int i = 0; i < NSUBMITTERS; i++) {
		c.sub[i].c = &c;
		submit_next(&c.sub[i]);
	}
	uv_run(&loop, UV_RUN_DEFAULT);
	/* Only reached with a COUNT: stop cleanly (lets ASan check leaks). */
	queue_writer_stop(c.q);
	uv_run(&loop, UV_RUN_DEFAULT);
	if ((rc = uv_loop_close(&loop)))
		die("uv_loop_close", -rc);
	queue_close(c.q);
	close(c.ackfd);
	printf("acknowledged %" PRIu64 " messages\n", c.acked);
	return 0;
}

/* ---- verify ---- */

struct ack {
	queue_id id;
	uint64_t len;
	uint32_t crc, nrcpt;
};

struct verify {
	struct queue_read *r;
	struct queue_due *due;   /* sorted by (id, rcpt) */
	size_t ndue;
	const struct ack *acks;  /* sorted by id */
	size_t nacks;
	uint64_t stored, unacked, rcpts;
	unsigned errors;
};

static void fail(struct verify *v, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void fail(struct verify *v, const char *fmt, ...)
{
	va_list ap;
	if (++v->errors > 50)
		return;
	va_start(ap, fmt);
	fprintf(stderr, "queue_crash verify: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
}

/* Read the complete lines of ackfile; a missing file is empty.  Returns
 * the count, or -1 on a malformed line or read error. */
static long read_acks(const char *path, struct ack **out)
{
	FILE *f = fopen(path, "r");
	struct ack *a = NULL;
	size_t n = 0, cap = 0, lineno = 0;
	char *line = NULL;
	size_t lcap = 0;
	ssize_t len;

	*out = NULL;
	if (!f)
		return errno == ENOENT ? 0 : -1;
	while ((len = getline(&line, &lcap, f)) > 0) {
		lineno++;
		if (line[len - 1] != '\n')
			break;   /* the child died in mid-write: ignore */
		if (n == cap) {
			cap = cap ? cap * 2 : 1024;
			struct ack *na = realloc(a, cap * sizeof(*a));
			if (!na)
				goto bad;
			a = na;
		}
		char id[64];
		struct ack *k = &a[n];
		if (sscanf(line, "%63s %" SCNu64 " %" SCNx32 " %" SCNu32, id,
			   &k->len, &k->crc, &k->nrcpt) != 4 || !queue_id_valid(id)) {
			fprintf(stderr, "queue_crash verify: %s:%zu: malformed line\n",
				path, lineno);
			goto bad;
		}
		memcpy(k->id.s, id, sizeof(k->id.s));
		n++;
	}
	if (ferror(f))
		goto bad;
	free(line);
	fclose(f);
	*out = a;
	return (long)n;
bad:
	free(line);
	free(a);
	fclose(f);
	return -1;
}

static int due_cmp(const void *x, const void *y)
{
	const struct queue_due *a = x, *b = y;
	int c = strcmp(a->id.s, b->id.s);
	if (c)
		return c;
	return a->rcpt < b->rcpt ? -1 : a->rcpt > b->rcpt;
}

static int ack_cmp(const void *x, const void *y)
{
	const struct ack *a = x, *b = y;
	return strcmp(a->id.s, b->id.s);
}

/* Load the whole due index, sorted by (id, rcpt). */
static int load_due(struct verify *v, uint64_t nmsg)
{
	size_t max = (size_t)nmsg * MAXRCPT + 16, n;
	for (;;) {
		free(v->due);
		if (!(v->due = malloc(max * sizeof(*v->due))))
			return QUEUE_ENOMEM;
		int rc = queue_due_next(v->r, INT64_MAX, v->due, max, &n);
		if (rc)
			return rc;
		if (n < max)
			break;
		max *= 2;
	}
	v->ndue = n;
	qsort(v->due, n, sizeof(*v->due), due_cmp);
	for (size_t i = 1; i < n; i++)
		if (due_cmp(&v->due[i - 1], &v->due[i]) == 0)
			fail(v, "%s: recipient %" PRIu32 " has two due entries",
			     v->due[i].id.s, v->due[i].rcpt);
	return 0;
}

/* CRC and length of the stored body, checking the chunk layout. */
static int body_crc(struct verify *v, const struct queue_msg *m,
		    uint32_t *crc, uint64_t *len)
{
	*crc = 0;
	*len = 0;
	for (uint32_t i = 0; i < m->nchunks; i++) {
		const void *data;
		size_t n;
		int rc = queue_body_chunk(v->r, m->id.s, i, &data, &n);
		if (rc) {
			fail(v, "%s: body chunk %" PRIu32 "/%" PRIu32 ": %s", m->id.s,
			     i, m->nchunks, queue_strerror(rc));
			return -1;
		}
		if (i + 1 < m->nchunks ? n != CHUNK : (n == 0 || n > CHUNK)) {
			fail(v, "%s: body chunk %" PRIu32 "/%" PRIu32 " has %zu bytes",
			     m->id.s, i, m->nchunks, n);
			return -1;
		}
		*crc = crc32_update(*crc, data, n);
		*len += n;
	}
	const void *data;
	size_t n;
	if (queue_body_chunk(v->r, m->id.s, m->nchunks, &data, &n) != QUEUE_ENOENT) {
		fail(v, "%s: body chunk %" PRIu32 " beyond nchunks", m->id.s,
		     m->nchunks);
		return -1;
	}
	return 0;
}

/* Recipients PENDING, addressed as submitted, each with its due entry. */
static void check_rcpts(struct verify *v, const struct queue_msg *m)
{
	if (m->nrcpt < 1 || m->nrcpt > MAXRCPT)
		fail(v, "%s: %" PRIu32 " recipients", m->id.s, m->nrcpt);
	for (uint32_t i = 0; i < m->nrcpt; i++) {
		const struct queue_rcpt *r = &m->rcpt[i];
		char want[64];
		snprintf(want, sizeof(want), "rcpt%u-%s@example.net", i, m->id.s);
		if (strcmp(r->addr, want) != 0)
			fail(v, "%s: recipient %u is <%s>", m->id.s, i, r->addr);
		if (r->state != QUEUE_RCPT_PENDING || r->attempts != 0)
			fail(v, "%s: recipient %u in state %d after %" PRIu32
			     " attempts", m->id.s, i, (int)r->state, r->attempts);
		struct queue_due key = { .rcpt = i }, *d;
		key.id = m->id;
		d = bsearch(&key, v->due, v->ndue, sizeof(*v->due), due_cmp);
		if (!d)
			fail(v, "%s: recipient %u has no due entry", m->id.s, i);
		else if (d->when != r->next_attempt)
			fail(v, "%s: recipient %u due at %" PRId64 ", next attempt %"
			     PRId64, m->id.s, i, d->when, r->next_attempt);
	}
}

/* An acknowledged message must be there as the child described it; its
 * body is checked by check_stored, so that it is read only once. */
static void check_ack(struct verify *v, const struct ack *a)
{
	struct queue_msg m;
	int rc = queue_msg_get(v->r, a->id.s, &m);
	if (rc) {
		fail(v, "%s: acknowledged but %s", a->id.s,
		     rc == QUEUE_ENOENT ? "missing" : queue_strerror(rc));
		return;
	}
	if (m.size != a->len)
		fail(v, "%s: size %" PRIu64 ", acknowledged %" PRIu64, a->id.s,
		     m.size, a->len);
	if (m.nrcpt != a->nrcpt)
		fail(v, "%s: %" PRIu32 " recipients, acknowledged %" PRIu32,
		     a->id.s, m.nrcpt, a->nrcpt);
	check_rcpts(v, &m);
	queue_msg_clear(&m);
}

/* Every stored message must be whole, acknowledged or not: a commit is all
 * or nothing.  Its body must match the acknowledged CRC, or for a message
 * committed but not yet acknowledged when the child died, the content
 * regenerated from the seed in its envid. */
static int check_stored(const struct queue_msg *m, void *arg)
{
	struct verify *v = arg;
	uint64_t seed, len, got_len;
	uint32_t crc;

	v->stored++;
	v->rcpts += m->nrcpt;
	if (!m->envid || sscanf(m->envid, ENVID_PREFIX "%" SCNx64 "-%" SCNu64,
				&seed, &len) != 2) {
		fail(v, "%s: unexpected envid %s", m->id.s,
		     m->envid ? m->envid : "(null)");
		return 0;
	}
	if (m->size != len)
		fail(v, "%s: size %" PRIu64 ", generated %" PRIu64, m->id.s,
		     m->size, len);
	if (m->nchunks != (len + CHUNK - 1) / CHUNK)
		fail(v, "%s: %" PRIu32 " chunks for %" PRIu64 " bytes", m->id.s,
		     m->nchunks, len);
	struct ack key = { .id = m->id }, *a;
	a = bsearch(&key, v->acks, v->nacks, sizeof(*v->acks), ack_cmp);
	if (!a) {
		v->unacked++;
		check_rcpts(v, m);
	}
	if (body_crc(v, m, &crc, &got_len))
		return 0;
	if (got_len != m->size)
		fail(v, "%s: body has %" PRIu64 " bytes, size %" PRIu64, m->id.s,
		     got_len, m->size);
	else if (a && (got_len != a->len || crc != a->crc))
		fail(v, "%s: body %" PRIu64 " bytes crc %08" PRIx32
		     ", acknowledged %" PRIu64 " bytes crc %08" PRIx32,
		     m->id.s, got_len, crc, a->len, a->crc);
	else if (!a && crc != gen_crc(seed, len))
		fail(v, "%s: body differs from what was submitted", m->id.s);
	return 0;
}

static int run_verify(const char *dir, const char *ackfile)
{
	struct verify v = { 0 };
	struct queue *q = NULL;
	struct ack *acks;
	uint64_t nmsg;
	long nack = read_acks(ackfile, &acks);
	int rc;

	if (nack < 0) {
		fprintf(stderr, "queue_crash verify: cannot read %s\n", ackfile);
		return 1;
	}
	rc = queue_open(&q, dir, 0, QUEUE_OPEN_RDONLY);
	if (rc == QUEUE_ENOENT && nack == 0) {
		/* Killed before the environment was ever created. */
		printf("verified 0 messages\n");
		return 0;
	}
	if (rc) {
		fprintf(stderr, "queue_crash verify: open %s: %s\n", dir,
			queue_strerror(rc));
		free(acks);
		return 1;
	}
	if ((rc = queue_read_begin(q, &v.r)) || (rc = queue_count(v.r, &nmsg)) ||
	    (rc = load_due(&v, nmsg)))
		goto ioerr;

	qsort(acks, (size_t)nack, sizeof(*acks), ack_cmp);
	v.acks = acks;
	v.nacks = (size_t)nack;
	for (long i = 0; i < nack; i++) {
		if (i && ack_cmp(&acks[i - 1], &acks[i]) == 0)
			fail(&v, "%s: acknowledged twice", acks[i].id.s);
		check_ack(&v, &acks[i]);
	}
	if ((rc = queue_msg_iter(v.r, NULL, check_stored, &v)))
		goto ioerr;
	if (v.stored != nmsg)
		fail(&v, "iterated %" PRIu64 " messages, count says %" PRIu64,
		     v.stored, nmsg);
	if (v.ndue != v.rcpts)
		fail(&v, "%zu due entries for %" PRIu64 " recipients", v.ndue,
		     v.rcpts);
	fprintf(stderr, "queue_crash verify: %" PRIu64 " messages stored (%" PRIu64
		" not acknowledged), %zu due entries, %ld acknowledged\n",
		v.stored, v.unacked, v.ndue, nack);
	if (v.errors > 50)
		fprintf(stderr, "queue_crash verify: ... %u errors in all\n",
			v.errors);
	queue_read_end(v.r);
	queue_close(q);
	free(v.due);
	free(acks);
	if (v.errors)
		return 1;
	printf("verified %ld messages\n", nack);
	return 0;
ioerr:
	fprintf(stderr, "queue_crash verify: %s\n", queue_strerror(rc));
	queue_read_end(v.r);
	queue_close(q);
	free(v.due);
	free(acks);
	return 1;
}

static void usage(void)
{
	fprintf(stderr, "usage: queue_crash child DIR ACKFILE SEED [COUNT]\n"
		"       queue_crash verify DIR ACKFILE\n");
	exit(2);
}

int main(int argc, char **argv)
{
	crc32_init();
	if (argc >= 5 && argc <= 6 && strcmp(argv[1], "child") == 0)
		return run_child(argv[2], argv[3], argv[4], argc == 6 ? argv[5] : NULL);
	if (argc == 4 && strcmp(argv[1], "verify") == 0)
		return run_verify(argv[2], argv[3]);
	usage();
	return 2;
}
