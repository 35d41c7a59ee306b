/*
 * queue-scale.c - the queue at scale: a million messages.
 *
 *   queue-scale [-n MESSAGES] [-D DESTINATIONS] [-B BLOCKED] [-u UPDATES]
 *               [-i INFLIGHT] [-s BODYSIZE] [-d DIR] [-k] [-q RELAYQ]
 *
 * Fills a fresh queue (default 1,000,000 messages of 1 KiB, one recipient
 * each, one in ten with three, spread over 5000 destinations, due over the
 * next hour and the past hour) through the group-commit writer with 512
 * submissions in flight, blocks some destinations (default 500), then
 * reports:
 *   fill       messages/s stored (durable, group commit)
 *   open       time to close and open the queue again
 *   first      time to find the earliest due destination (one ddue seek)
 *              and the earliest due recipient (one due seek)
 *   batch      mean time to take one destination's next batch (up to 50
 *              recipients due now) for the first 1000 due destinations,
 *              and how many of them were blocked ones (must be 0)
 *   updates    recipient updates/s through the writer: claims of those
 *              batches, then results (deferred with attempt facts and
 *              history), one recipient per op, INFLIGHT (1024) ops in
 *              flight; the target is 20,000/s
 *   listing    messages/s copied out page by page (queue_list_page) and
 *              printed mailq-style to /dev/null; target 200,000/s
 *   relayq     with -q RELAYQ (the built tools/relayq): the tool itself,
 *              output to /dev/null, timed as a process: the listing
 *              (messages/s, target 200,000/s), -s (target: under 3 s for
 *              a million messages) and -j
 * The directory (a fresh queue-scale.XXXXXX under DIR, default /var/tmp)
 * is removed afterwards unless -k.
 */
#include <errno.h>
#include <ftw.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>
#include "queue.h"

#define INFLIGHT 512
#define BATCH 50

struct bench {
	struct queue *q;
	uv_loop_t loop;
	uint64_t n, issued, done, failed;
	unsigned ndest;
	size_t bodylen;
	char *body;
	int64_t t0;
	int last_err;
	size_t upd_inflight;
};

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void fatal(const char *what, int rc)
{
	fprintf(stderr, "queue-scale: %s: %s\n", what,
		rc < 0 ? queue_strerror(rc) : strerror(rc));
	exit(1);
}

static void dest_name(char *out, size_t len, uint64_t d)
{
	snprintf(out, len, "d%05" PRIu64 ".example", d);
}

static struct queue_op *make_msg(struct bench *b, uint64_t i)
{
	struct queue_msg m = { 0 };
	struct queue_rcpt r[3] = { { 0 } };
	char addr[3][64], dom[32];
	struct queue_spool *sp;
	int rc;
	queue_id_new(b->q, &m.id);
	m.arrival = (int64_t)time(NULL) * 1000000;
	m.sender = "sender@example.org";
	m.client_name = "client.example.org";
	m.client_addr = "192.0.2.1";
	m.nrcpt = i % 10 == 0 ? 3 : 1;
	m.rcpt = r;
	for (uint32_t k = 0; k < m.nrcpt; k++) {
		dest_name(dom, sizeof(dom), (i * 7919 + k * 104729) % b->ndest);
		snprintf(addr[k], sizeof(addr[k]), "u%" PRIu64 "@%s", i, dom);
		r[k].addr = addr[k];
	}
	if ((rc = queue_spool_new(b->q, &sp)) ||
	    (rc = queue_spool_write(sp, b->body, b->bodylen)))
		fatal("spool", rc);
	/* Due between an hour ago and an hour from now. */
	int64_t due = b->t0 - 3600 + (int64_t)((i * 2654435761u) % 7200);
	struct queue_op *op = queue_op_submit(&m, sp, due);
	if (!op)
		fatal("queue_op_submit", QUEUE_ENOMEM);
	return op;
}

static void on_fill(void *arg, int status, const struct queue_op *op)
{
	struct bench *b = arg;
	b->done++;
	if (status) {
		b->failed++;
		b->last_err = status;
	}
	if (b->issued < b->n) {
		int rc = queue_writer_submit(b->q, make_msg(b, b->issued++), on_fill, b);
		if (rc)
			fatal("queue_writer_submit", rc);
	} else if (b->done == b->issued) {
		uv_stop(&b->loop);
	}
}

/* Submit ops from `ops` keeping `inflight` of them pending. */
struct feeder {
	struct bench *b;
	struct queue_op **ops;
	size_t n, next, done;
	uint64_t failed;
	int last_err;
};

static void on_feed(void *arg, int status, const struct queue_op *op)
{
	struct feeder *f = arg;
	f->done++;
	if (status) {
		f->failed++;
		f->last_err = status;
	}
	if (f->next < f->n) {
		int rc = queue_writer_submit(f->b->q, f->ops[f->next++], on_feed, f);
		if (rc)
			fatal("queue_writer_submit", rc);
	} else if (f->done == f->n) {
		uv_stop(&f->b->loop);
	}
}

static void feed(struct bench *b, struct queue_op **ops, size_t n,
		 size_t inflight, struct feeder *f)
{
	*f = (struct feeder){ .b = b, .ops = ops, .n = n };
	for (; f->next < n && f->next < inflight; f->next++)
		if (queue_writer_submit(b->q, ops[f->next], on_feed, f))
			fatal("queue_writer_submit", QUEUE_ESTOPPED);
	if (n)
		uv_run(&b->loop, UV_RUN_DEFAULT);
}

static void fill(struct bench *b)
{
	double t0 = now();
	for (int i = 0; i < INFLIGHT && b->issued < b->n; i++)
		if (queue_writer_submit(b->q, make_msg(b, b->issued++), on_fill, b))
			fatal("queue_writer_submit", QUEUE_ESTOPPED);
	uv_run(&b->loop, UV_RUN_DEFAULT);
	double s = now() - t0;
	struct queue_writer_stats st;
	queue_writer_stats(b->q, &st);
	printf("fill: %" PRIu64 " msgs in %.1f s = %.0f msgs/s, %" PRIu64
	       " batches%s\n", b->done, s, (double)b->done / s, st.batches,
	       b->failed ? ", FAILURES" : "");
	if (b->failed)
		fatal("fill", b->last_err);
}

static void block(struct bench *b, unsigned nblock, char (*blocked)[32])
{
	struct queue_op **ops = calloc(nblock ? nblock : 1, sizeof(*ops));
	struct feeder f;
	for (unsigned i = 0; i < nblock; i++) {
		dest_name(blocked[i], 32, (uint64_t)i * (b->ndest / nblock));
		ops[i] = queue_op_dest_block(blocked[i], b->t0 + 86400);
	}
	feed(b, ops, nblock, b->upd_inflight, &f);
	free(ops);
	printf("blocked: %u destinations until tomorrow\n", nblock);
}

static void start(struct bench *b, const char *path)
{
	struct queue_open_opts o = { 0 };
	double t0 = now();
	int rc = queue_open_opts(&b->q, path, &o);
	if (rc)
		fatal(path, rc);
	printf("open: %.1f ms\n", (now() - t0) * 1e3);
	if ((rc = uv_loop_init(&b->loop)) || (rc = queue_writer_start(b->q, &b->loop)))
		fatal("writer", rc);
}

static void stop(struct bench *b)
{
	queue_writer_stop(b->q);
	uv_run(&b->loop, UV_RUN_DEFAULT);
	uv_loop_close(&b->loop);
	queue_close(b->q);
}

/* Take batches from the first due destinations; claim, then defer them. */
static void batches_and_updates(struct bench *b, unsigned nblock,
				char (*blocked)[32], uint64_t maxupd)
{
	enum { NDEST = 1000 };
	static struct queue_dest d[NDEST];
	static struct queue_due due[NDEST][BATCH];
	static size_t nd[NDEST];
	struct queue_read *r;
	size_t n, total = 0;
	int64_t t = (int64_t)time(NULL);
	double t0 = now();
	if (queue_read_begin(b->q, &r))
		fatal("read", QUEUE_EIO);
	struct queue_dest first;
	struct queue_due fd;
	size_t one;
	queue_dest_next(r, INT64_MAX, &first, 1, &one);
	queue_due_first(r, &fd);
	queue_read_end(r);
	printf("first: earliest destination %s and recipient found in %.3f ms\n",
	       one ? first.name : "(none)", (now() - t0) * 1e3);

	t0 = now();
	if (queue_read_begin(b->q, &r) || queue_dest_next(r, t, d, NDEST, &n))
		fatal("dest_next", QUEUE_EIO);
	for (size_t i = 0; i < n; i++) {
		queue_dest_batch(r, d[i].name, t, due[i], BATCH, &nd[i]);
		total += nd[i];
	}
	queue_read_end(r);
	double s = now() - t0;
	unsigned hits = 0;
	for (size_t i = 0; i < n; i++)
		for (unsigned k = 0; k < nblock; k++)
			hits += !strcmp(d[i].name, blocked[k]);
	printf("batch: %zu destinations due, %zu recipients, %.1f us per destination's "
	       "batch (incl. the dest_next scan); blocked destinations offered: %u\n",
	       n, total, s * 1e6 / (double)(n ? n : 1), hits);

	/* Claims: one op per (destination, message) as the scheduler will. */
	size_t nops = 0, cap = total + 1, nclaimed = 0;
	struct queue_op **ops = calloc(cap, sizeof(*ops));
	for (size_t i = 0; i < n && nops < cap; i++)
		for (size_t k = 0; k < nd[i] && nops < cap && nops < maxupd; k++)
			ops[nops++] = queue_op_claim(&due[i][k], 1, t, 600);
	struct queue_op **claims = calloc(cap, sizeof(*ops));
	memcpy(claims, ops, nops * sizeof(*ops));
	/* Keep the ops alive past completion to read the generations: the
	 * writer frees them, so read them in a second pass of sync reads. */
	struct feeder f;
	t0 = now();
	uint64_t *gens = calloc(cap, sizeof(*gens));
	struct queue_due *items = calloc(cap, sizeof(*items));
	size_t ni = 0;
	for (size_t i = 0; i < n; i++)
		for (size_t k = 0; k < nd[i] && ni < nops; k++)
			items[ni++] = due[i][k];
	feed(b, ops, nops, b->upd_inflight, &f);
	s = now() - t0;
	printf("updates: %zu claims in %.2f s = %.0f recipient updates/s%s\n", nops, s,
	       (double)nops / s, f.failed ? " (FAILURES)" : "");
	free(claims);
	/* Read back the generations granted. */
	if (queue_read_begin(b->q, &r))
		fatal("read", QUEUE_EIO);
	for (size_t i = 0; i < ni; i++) {
		struct queue_msg m;
		if (queue_msg_get(r, items[i].id.s, &m) == 0) {
			gens[i] = m.rcpt[items[i].rcpt].claim_gen;
			nclaimed += gens[i] != 0;
			queue_msg_clear(&m);
		}
	}
	queue_read_end(r);
	/* Results: deferred, with the attempt's facts. */
	for (size_t i = 0; i < ni; i++) {
		struct queue_rcpt_update u = {
			.rcpt = items[i].rcpt, .state = QUEUE_RCPT_DEFERRED,
			.next_attempt = t + 1800, .claim = gens[i], .dsn = "4.2.0",
			.reason = "451 4.2.0 try again later", .diag_type = "smtp",
			.hop_host = "mx.example.net", .hop_ip = "192.0.2.25",
			.hop_port = 25,
		};
		ops[i] = queue_op_rcpt_update(items[i].id.s, &u, 1);
	}
	t0 = now();
	feed(b, ops, ni, b->upd_inflight, &f);
	s = now() - t0;
	printf("updates: %zu results (%zu under a claim) in %.2f s = %.0f recipient "
	       "updates/s%s\n", ni, nclaimed, s, (double)ni / s,
	       f.failed ? " (FAILURES)" : "");
	free(ops);
	free(gens);
	free(items);
}

static void listing(struct bench *b)
{
	enum { PAGE = 1000 };
	static struct queue_msg page[PAGE];
	char after[QUEUE_ID_LEN + 1] = "";
	size_t n;
	uint64_t total = 0;
	FILE *out = fopen("/dev/null", "w");
	if (!out)
		fatal("/dev/null", errno);
	double t0 = now();
	do {
		int rc = queue_list_page(b->q, after[0] ? after : NULL, page, PAGE, &n);
		if (rc)
			fatal("queue_list_page", rc);
		for (size_t i = 0; i < n; i++) {
			struct queue_msg *m = &page[i];
			fprintf(out, "%-12s %8" PRIu64 " %" PRId64 " %s\n", m->id.s,
				m->size, m->arrival / 1000000, m->sender);
			for (uint32_t k = 0; k < m->nrcpt; k++)
				fprintf(out, "  (%s)\n  %s\n",
					m->rcpt[k].reason ? m->rcpt[k].reason : "",
					m->rcpt[k].addr);
			memcpy(after, m->id.s, sizeof(after));
			queue_msg_clear(m);
		}
		total += n;
	} while (n == PAGE);
	double s = now() - t0;
	fclose(out);
	printf("listing: %" PRIu64 " msgs in %.2f s = %.0f msgs/s\n", total, s,
	       (double)total / s);
}

static int rm_entry(const char *path, const struct stat *st, int flag,
		    struct FTW *ftw)
{
	remove(path);
	return 0;
}

/* Run relayq (flag NULL: the listing) on the queue in dir, output to
 * /dev/null; seconds taken, or -1. */
static double time_relayq(const char *relayq, const char *conf, const char *flag)
{
	double t0 = now();
	pid_t pid = fork();
	if (pid == 0) {
		int fd = open("/dev/null", O_WRONLY);
		if (fd < 0 || dup2(fd, 1) < 0)
			_exit(127);
		execl(relayq, relayq, "-f", conf, flag, (char *)NULL);
		_exit(127);
	}
	int st;
	if (pid < 0 || waitpid(pid, &st, 0) != pid || !WIFEXITED(st) ||
	    WEXITSTATUS(st) != 0)
		return -1;
	return now() - t0;
}

static void relayq_bench(const struct bench *b, const char *relayq,
			 const char *work, const char *qdir)
{
	char conf[4200];
	snprintf(conf, sizeof(conf), "%s/relayd.conf", work);
	FILE *f = fopen(conf, "w");
	if (!f || fprintf(f, "queue_dir = %s\n", qdir) < 0 || fclose(f))
		fatal(conf, errno);
	static const char *const flags[] = { NULL, "-s", "-j" };
	static const char *const names[] = { "listing", "-s", "-j" };
	for (int i = 0; i < 3; i++) {
		double dt = time_relayq(relayq, conf, flags[i]);
		if (dt < 0)
			printf("relayq %-8s failed\n", names[i]);
		else
			printf("relayq %-8s %.2f s, %.0f messages/s\n", names[i], dt,
			       (double)b->n / dt);
	}
}

static void usage(void)
{
	fprintf(stderr, "usage: queue-scale [-n MESSAGES] [-D DESTINATIONS] [-B BLOCKED]"
		" [-u UPDATES] [-i INFLIGHT] [-s BODYSIZE] [-d DIR] [-k] [-q RELAYQ]\n");
	exit(2);
}

static uint64_t number(const char *s)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || end == s || *end)
		usage();
	return v;
}

int main(int argc, char **argv)
{
	struct bench b = { .n = 1000000, .ndest = 5000, .bodylen = 1024,
			   .upd_inflight = 1024 };
	uint64_t nblock = 500, maxupd = 50000;
	const char *base = "/var/tmp", *relayq = NULL;
	char work[4096], path[4200];
	int opt, keep = 0;
	while ((opt = getopt(argc, argv, "n:D:B:u:i:s:d:kq:")) != -1) {
		switch (opt) {
		case 'n': b.n = number(optarg); break;
		case 'D': b.ndest = (unsigned)number(optarg); break;
		case 'B': nblock = number(optarg); break;
		case 'u': maxupd = number(optarg); break;
		case 'i': b.upd_inflight = (size_t)number(optarg); break;
		case 's': b.bodylen = (size_t)number(optarg); break;
		case 'd': base = optarg; break;
		case 'k': keep = 1; break;
		case 'q': relayq = optarg; break;
		default: usage();
		}
	}
	if (optind != argc || !b.n || !b.ndest || nblock > b.ndest || !b.upd_inflight ||
	    b.ndest > 99999 || b.bodylen > (1u << 24))
		usage();
	snprintf(work, sizeof(work), "%s/queue-scale.XXXXXX", base);
	if (!mkdtemp(work))
		fatal(work, errno);
	snprintf(path, sizeof(path), "%s/q", work);
	b.body = malloc(b.bodylen + 1);
	for (size_t i = 0; i < b.bodylen; i++)
		b.body[i] = i % 78 == 77 ? '\n' : i % 78 == 76 ? '\r' : (char)('a' + i % 26);
	b.t0 = (int64_t)time(NULL);
	printf("queue-scale: %" PRIu64 " messages of %zu bytes, %u destinations, %"
	       PRIu64 " blocked, in %s\n", b.n, b.bodylen, b.ndest, nblock, path);
	fflush(stdout);
	char (*blocked)[32] = calloc(nblock ? nblock : 1, 32);
	start(&b, path);
	fill(&b);
	block(&b, (unsigned)nblock, blocked);
	stop(&b);
	start(&b, path);
	batches_and_updates(&b, (unsigned)nblock, blocked, maxupd);
	listing(&b);
	stop(&b);
	if (relayq)
		relayq_bench(&b, relayq, work, path);
	free(blocked);
	free(b.body);
	if (!keep)
		nftw(work, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	return 0;
}
