/*
 * queue-commit.c - durable submissions per second through the queue API.
 *
 *   queue-commit [-n MESSAGES] [-s BODYSIZE] [-d DIR] [-t SECONDS]
 *
 * Each run opens a fresh queue and stores messages the way the SMTP server
 * does after DATA: envelope, one recipient, its due entry and a body spool,
 * built with queue_op_submit.  Runs:
 *   - the raw fsync rate of the filesystem (4 KiB pwrite + fdatasync, 1 s),
 *     the ceiling for one-commit-per-message storage;
 *   - the group-commit writer (queue_writer_submit on a libuv loop) with 1,
 *     8 and 64 concurrent submitters, each submitting its next message only
 *     once the previous one is durable, as an SMTP session waits for its 250;
 *   - queue_sync_run from one thread, one commit per message, for contrast.
 * A run stops after MESSAGES messages (the sync run and the single
 * submitter after at most 2000) or SECONDS seconds (default 10), whichever
 * comes first.
 *
 * Defaults: 20000 messages of 5120 bytes in a fresh directory under /var/tmp
 * (not /tmp, which may be tmpfs where fsync is free), removed afterwards.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <ftw.h>
#include <uv.h>
#include "queue.h"

#define MAX_SUBMITTERS 64
#define SLOW_RUN_MAX 2000        /* messages for the runs bounded by fsync */

struct bench {
	struct queue *q;
	uv_loop_t *loop;
	const uint8_t *body;
	size_t bodylen;
	uint64_t target, issued, done, failed;
	double deadline;
	int last_err;
};

struct submitter {
	struct bench *b;
	struct queue_msg m;
	struct queue_rcpt rcpt;
	char sender[64], addr[64];
};

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void fatal(const char *what, int rc)
{
	fprintf(stderr, "queue-commit: %s: %s\n", what,
		rc < 0 ? queue_strerror(rc) : strerror(rc));
	exit(1);
}

/* dir/name into path, or die. */
static void join(char *path, size_t len, const char *dir, const char *name)
{
	if ((size_t)snprintf(path, len, "%s/%s", dir, name) >= len)
		fatal(dir, ENAMETOOLONG);
}

/* The op for one message of s, built as the SMTP server builds it. */
static struct queue_op *make_op(struct submitter *s)
{
	struct bench *b = s->b;
	struct queue_spool *sp;
	int rc;

	memset(&s->m, 0, sizeof(s->m));
	queue_id_new(b->q, &s->m.id);
	s->m.arrival = (int64_t)time(NULL) * 1000000;
	snprintf(s->sender, sizeof(s->sender), "sender@example.org");
	snprintf(s->addr, sizeof(s->addr), "rcpt-%s@example.net", s->m.id.s);
	s->m.sender = s->sender;
	s->m.client_name = "client.example.org";
	s->m.client_addr = "192.0.2.1";
	s->m.helo = "client.example.org";
	s->rcpt = (struct queue_rcpt){ .addr = s->addr };
	s->m.nrcpt = 1;
	s->m.rcpt = &s->rcpt;
	if ((rc = queue_spool_new(b->q, &sp)))
		fatal("queue_spool_new", rc);
	if ((rc = queue_spool_write(sp, b->body, b->bodylen)))
		fatal("queue_spool_write", rc);
	struct queue_op *op = queue_op_submit(&s->m, sp, (int64_t)time(NULL));
	if (!op)
		fatal("queue_op_submit", QUEUE_ENOMEM);
	return op;
}

static void on_done(void *arg, int status, const struct queue_op *op);

static void submit_next(struct submitter *s)
{
	struct bench *b = s->b;
	b->issued++;
	int rc = queue_writer_submit(b->q, make_op(s), on_done, s);
	if (rc)
		fatal("queue_writer_submit", rc);
}

static void on_done(void *arg, int status, const struct queue_op *op)
{
	struct submitter *s = arg;
	struct bench *b = s->b;
	b->done++;
	if (status) {
		b->failed++;
		b->last_err = status;
	}
	if (b->issued < b->target && now() < b->deadline)
		submit_next(s);
	else if (b->done == b->issued)
		uv_stop(b->loop);
}

/* A fresh queue directory for one run. */
static struct queue *open_run(const char *workdir, const char *name,
			      char *path, size_t pathlen)
{
	struct queue *q;
	join(path, pathlen, workdir, name);
	int rc = queue_open(&q, path, 0, 0);
	if (rc)
		fatal(path, rc);
	return q;
}

static int rm_entry(const char *path, const struct stat *st, int flag,
		    struct FTW *ftw)
{
	if (remove(path))
		fprintf(stderr, "queue-commit: remove %s: %s\n", path,
			strerror(errno));
	return 0;
}

static void rm_tree(const char *path)
{
	nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void report(const char *label, uint64_t n, double secs,
		   const struct queue_writer_stats *st, uint64_t failed)
{
	printf("%s: %" PRIu64 " msgs in %.2f s = %.0f msgs/s", label, n, secs,
	       secs > 0 ? (double)n / secs : 0.0);
	if (st)
		printf(", %" PRIu64 " batches (%.1f msgs/batch)", st->batches,
		       st->batches ? (double)st->ops / (double)st->batches : 0.0);
	if (failed)
		printf(", %" PRIu64 " FAILED", failed);
	printf("\n");
	fflush(stdout);
}

/* n messages through the group-commit writer from `conc` submitters. */
static int run_writer(const char *workdir, const uint8_t *body, size_t bodylen,
		      uint64_t n, int conc, double maxsecs)
{
	static struct submitter subs[MAX_SUBMITTERS];
	struct bench b = { .body = body, .bodylen = bodylen, .target = n };
	struct queue_writer_stats st;
	uv_loop_t loop;
	char path[4096], name[32], label[64];
	int rc;

	snprintf(name, sizeof(name), "writer-%d", conc);
	b.q = open_run(workdir, name, path, sizeof(path));
	if ((rc = uv_loop_init(&loop)))
		fatal("uv_loop_init", -rc);
	b.loop = &loop;
	if ((rc = queue_writer_start(b.q, &loop)))
		fatal("queue_writer_start", rc);
	double t0 = now();
	b.deadline = t0 + maxsecs;
	for (int i = 0; i < conc && b.issued < b.target; i++) {
		subs[i].b = &b;
		submit_next(&subs[i]);
	}
	uv_run(&loop, UV_RUN_DEFAULT);
	double secs = now() - t0;
	queue_writer_stats(b.q, &st);
	queue_writer_stop(b.q);
	uv_run(&loop, UV_RUN_DEFAULT);
	uv_loop_close(&loop);
	queue_close(b.q);
	rm_tree(path);
	snprintf(label, sizeof(label), "writer submitters=%d", conc);
	report(label, b.done, secs, &st, b.failed);
	if (b.failed)
		fprintf(stderr, "queue-commit: last error: %s\n",
			queue_strerror(b.last_err));
	return b.failed ? 1 : 0;
}

/* n messages, one synchronous transaction (one commit) each. */
static int run_sync(const char *workdir, const uint8_t *body, size_t bodylen,
		    uint64_t n, double maxsecs)
{
	struct bench b = { .body = body, .bodylen = bodylen };
	struct submitter s = { .b = &b };
	char path[4096];
	uint64_t done = 0;

	b.q = open_run(workdir, "sync", path, sizeof(path));
	double t0 = now(), deadline = t0 + maxsecs;
	while (done < n && now() < deadline) {
		struct queue_op *op = make_op(&s);
		int rc = queue_sync_run(b.q, op);
		queue_op_free(op);
		if (rc) {
			b.failed++;
			b.last_err = rc;
		}
		done++;
	}
	double secs = now() - t0;
	queue_close(b.q);
	rm_tree(path);
	report("sync, one commit per message", done, secs, NULL, b.failed);
	if (b.failed)
		fprintf(stderr, "queue-commit: last error: %s\n",
			queue_strerror(b.last_err));
	return b.failed ? 1 : 0;
}

/* 4 KiB write + fdatasync in a loop for about a second. */
static void run_fsync(const char *workdir)
{
	char path[4096], buf[4096];
	uint64_t n = 0;

	join(path, sizeof(path), workdir, "fsync-test");
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		fatal(path, errno);
	memset(buf, 'x', sizeof(buf));
	/* Allocate first, so each sync flushes data only, as LMDB's
	 * in-place page writes mostly do. */
	if (pwrite(fd, buf, sizeof(buf), 0) != (ssize_t)sizeof(buf) || fsync(fd))
		fatal("fsync-test", errno);
	double t0 = now(), t;
	do {
		buf[0] = (char)n;
		if (pwrite(fd, buf, sizeof(buf), 0) != (ssize_t)sizeof(buf) ||
		    fdatasync(fd))
			fatal("fsync-test", errno);
		n++;
	} while ((t = now() - t0) < 1.0);
	close(fd);
	unlink(path);
	printf("fsync: %" PRIu64 " x (4 KiB pwrite + fdatasync) in %.2f s = %.0f fsyncs/s\n",
	       n, t, (double)n / t);
	fflush(stdout);
}

static void usage(void)
{
	fprintf(stderr, "usage: queue-commit [-n MESSAGES] [-s BODYSIZE] [-d DIR]"
		" [-t SECONDS]\n");
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
	uint64_t n = 20000, bodylen = 5120;
	double maxsecs = 10;
	const char *base = "/var/tmp";
	char workdir[4096];
	int opt, failed = 0;

	while ((opt = getopt(argc, argv, "n:s:d:t:")) != -1) {
		switch (opt) {
		case 'n': n = number(optarg); break;
		case 's': bodylen = number(optarg); break;
		case 'd': base = optarg; break;
		case 't': maxsecs = (double)number(optarg); break;
		default: usage();
		}
	}
	if (optind != argc || n == 0 || bodylen > (1u << 30))
		usage();
	if (mkdir(base, 0700) && errno != EEXIST)
		fatal(base, errno);
	join(workdir, sizeof(workdir), base, "queue-commit.XXXXXX");
	if (!mkdtemp(workdir))
		fatal(workdir, errno);

	/* A text-like body: 76-character lines. */
	uint8_t *body = malloc(bodylen ? bodylen : 1);
	if (!body)
		fatal("malloc", ENOMEM);
	for (uint64_t i = 0; i < bodylen; i++)
		body[i] = i % 78 == 77 ? '\n' : i % 78 == 76 ? '\r' :
			  (uint8_t)('a' + i * 7 % 26);

	printf("queue-commit: %" PRIu64 " messages of %" PRIu64 " bytes, 1 recipient,"
	       " in %s\n", n, bodylen, workdir);
	fflush(stdout);
	run_fsync(workdir);
	uint64_t slow = n < SLOW_RUN_MAX ? n : SLOW_RUN_MAX;
	static const int conc[] = { 1, 8, 64 };
	for (size_t i = 0; i < sizeof(conc) / sizeof(conc[0]); i++)
		failed |= run_writer(workdir, body, (size_t)bodylen,
				     conc[i] == 1 ? slow : n, conc[i], maxsecs);
	failed |= run_sync(workdir, body, (size_t)bodylen, slow, maxsecs);
	free(body);
	rm_tree(workdir);
	return failed;
}
