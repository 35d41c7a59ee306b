/*
 * queue_bounce.c - crash helper for t/integration/queue_bounce.sh: the
 * bounce group (fail the recipient + queue the bounce + remove the
 * original) under SIGKILL.
 *
 *   queue_bounce child DIR ACKFILE SEED
 *	Open the queue in DIR and, from 16 concurrent workers through the
 *	group-commit writer, forever: store an original message (envid
 *	"orig"), then bounce it as the bounce engine will - one atomic
 *	group failing its recipient, submitting a bounce (envid
 *	"bounce-of-ID") and removing the original when done.  Each group
 *	reported committed appends "ORIGID BOUNCEID" to ACKFILE.  Killed with
 *	SIGKILL at a random moment.
 *
 *   queue_bounce verify DIR ACKFILE
 *	Every original still stored has its recipient PENDING (a failed one
 *	would mean a bounce group split); every bounce's original is gone;
 *	no original has two bounces; every acknowledged bounce is stored and
 *	its original gone.  Prints "verified N messages" (N acknowledged
 *	bounces, the line t/integration/queue_crash.sh reads); exit 0 when
 *	all is well, 1 otherwise, diagnostics on stderr.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>
#include "queue.h"

#define NWORKERS 16
#define BOUNCE_PREFIX "bounce-of-"

struct child;

struct worker {
	struct child *c;
	queue_id orig, bounce;
	char envid[64];
};

struct child {
	struct queue *q;
	int ackfd;
	uint64_t rng;
	struct worker w[NWORKERS];
};

static void die(const char *what, int rc)
{
	fprintf(stderr, "queue_bounce: %s: %s\n", what, queue_strerror(rc));
	exit(3);
}

static struct queue_op *message(struct queue *q, queue_id *id, const char *sender,
				const char *envid, const char *rcpt, size_t len)
{
	struct queue_msg m = { .sender = (char *)sender, .envid = (char *)envid,
			       .client_name = "localhost", .client_addr = "127.0.0.1",
			       .nrcpt = 1 };
	struct queue_rcpt r = { .addr = (char *)rcpt };
	struct queue_spool *sp;
	char buf[512];
	queue_id_new(q, &m.id);
	*id = m.id;
	m.rcpt = &r;
	if (queue_spool_new(q, &sp))
		die("spool", QUEUE_ENOMEM);
	memset(buf, 'b', sizeof(buf));
	for (size_t off = 0; off < len; off += sizeof(buf))
		queue_spool_write(sp, buf, len - off < sizeof(buf) ? len - off : sizeof(buf));
	struct queue_op *op = queue_op_submit(&m, sp, (int64_t)time(NULL));
	if (!op)
		die("submit", QUEUE_ENOMEM);
	return op;
}

static void on_stored(void *arg, int status, const struct queue_op *op);

static void store_next(struct worker *w)
{
	struct queue_op *op = message(w->c->q, &w->orig, "sender@example.org", "orig",
				      "rcpt@example.net", 1000);
	int rc = queue_writer_submit(w->c->q, op, on_stored, w);
	if (rc)
		die("writer", rc);
}

static void on_bounced(void *arg, int status, const struct queue_op *op)
{
	struct worker *w = arg;
	char line[64];
	if (status)
		die("bounce group", status);
	int n = snprintf(line, sizeof(line), "%s %s\n", w->orig.s, w->bounce.s);
	if (write(w->c->ackfd, line, (size_t)n) != n)
		die("ackfile", QUEUE_EIO);
	store_next(w);
}

static void on_stored(void *arg, int status, const struct queue_op *op)
{
	struct worker *w = arg;
	if (status)
		die("store", status);
	struct queue_rcpt_update u = { .rcpt = 0, .state = QUEUE_RCPT_FAILED,
				       .dsn = "5.1.1", .reason = "550 5.1.1 no such user" };
	snprintf(w->envid, sizeof(w->envid), BOUNCE_PREFIX "%s", w->orig.s);
	struct queue_op *g[3] = {
		queue_op_rcpt_update(w->orig.s, &u, 1),
		message(w->c->q, &w->bounce, "", w->envid, "sender@example.org",
			2000 + (size_t)(w->c->rng++ % 30000)),
		queue_op_remove_done(w->orig.s),
	};
	int rc = queue_writer_submit(w->c->q, queue_op_group(g, 3), on_bounced, w);
	if (rc)
		die("writer", rc);
}

static int run_child(const char *dir, const char *ackfile, const char *seed)
{
	static struct child c;
	uv_loop_t loop;
	int rc;
	c.rng = strtoull(seed, NULL, 0);
	if ((c.ackfd = open(ackfile, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644)) < 0)
		die(ackfile, QUEUE_EIO);
	if ((rc = queue_open(&c.q, dir, 0, 0)))
		die("queue_open", rc);
	uv_loop_init(&loop);
	if ((rc = queue_writer_start(c.q, &loop)))
		die("queue_writer_start", rc);
	for (int i = 0; i < NWORKERS; i++) {
		c.w[i].c = &c;
		store_next(&c.w[i]);
	}
	uv_run(&loop, UV_RUN_DEFAULT);
	return 1;
}

/* ---- verify ---- */

struct seen {
	char orig[QUEUE_ID_LEN + 1];
	char bounce[QUEUE_ID_LEN + 1];
};

static unsigned errors;

static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void fail(const char *fmt, ...)
{
	va_list ap;
	if (++errors > 30)
		return;
	va_start(ap, fmt);
	fprintf(stderr, "queue_bounce verify: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
}

static int cmp_orig(const void *a, const void *b)
{
	return strcmp(((const struct seen *)a)->orig, ((const struct seen *)b)->orig);
}

static int run_verify(const char *dir, const char *ackfile)
{
	struct queue *q;
	struct seen *b = NULL, *origs = NULL;
	size_t nb = 0, no = 0, cap = 0, ocap = 0;
	int rc = queue_open(&q, dir, 0, QUEUE_OPEN_RDONLY);
	if (rc == QUEUE_ENOENT) {
		printf("verified 0 messages\n");
		return 0;
	}
	if (rc)
		die("open", rc);
	struct queue_msg page[256];
	char after[QUEUE_ID_LEN + 1] = "";
	size_t n;
	do {
		if ((rc = queue_list_page(q, after[0] ? after : NULL, page, 256, &n)))
			die("list", rc);
		for (size_t i = 0; i < n; i++) {
			struct queue_msg *m = &page[i];
			memcpy(after, m->id.s, sizeof(after));
			if (m->envid && !strncmp(m->envid, BOUNCE_PREFIX, strlen(BOUNCE_PREFIX))) {
				if (nb == cap && !(b = realloc(b, (cap = cap * 2 + 64) * sizeof(*b))))
					die("memory", QUEUE_ENOMEM);
				snprintf(b[nb].orig, sizeof(b[nb].orig), "%s",
					 m->envid + strlen(BOUNCE_PREFIX));
				memcpy(b[nb++].bounce, m->id.s, sizeof(m->id.s));
			} else {
				if (m->nrcpt != 1 || m->rcpt[0].state != QUEUE_RCPT_PENDING)
					fail("%s: original with a failed recipient left behind",
					     m->id.s);
				if (no == ocap &&
				    !(origs = realloc(origs, (ocap = ocap * 2 + 64) * sizeof(*origs))))
					die("memory", QUEUE_ENOMEM);
				memcpy(origs[no++].orig, m->id.s, sizeof(m->id.s));
			}
			queue_msg_clear(m);
		}
	} while (n == 256);
	qsort(b, nb, sizeof(*b), cmp_orig);
	qsort(origs, no, sizeof(*origs), cmp_orig);
	for (size_t i = 0; i < nb; i++) {
		if (i && !strcmp(b[i - 1].orig, b[i].orig))
			fail("%s: bounced twice", b[i].orig);
		if (bsearch(&b[i], origs, no, sizeof(*origs), cmp_orig))
			fail("%s: bounced but still queued", b[i].orig);
	}
	FILE *f = fopen(ackfile, "r");
	char line[128];
	size_t nack = 0;
	while (f && fgets(line, sizeof(line), f)) {
		struct seen k;
		if (!strchr(line, '\n') || sscanf(line, "%12s %12s", k.orig, k.bounce) != 2)
			continue;
		nack++;
		struct seen *hit = bsearch(&k, b, nb, sizeof(*b), cmp_orig);
		if (!hit || strcmp(hit->bounce, k.bounce))
			fail("%s: acknowledged bounce %s missing", k.orig, k.bounce);
	}
	if (f)
		fclose(f);
	queue_close(q);
	free(b);
	free(origs);
	fprintf(stderr, "queue_bounce verify: %zu bounces, %zu originals, %zu acknowledged\n",
		nb, no, nack);
	if (errors)
		return 1;
	printf("verified %zu messages\n", nack);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 5 && !strcmp(argv[1], "child"))
		return run_child(argv[2], argv[3], argv[4]);
	if (argc == 4 && !strcmp(argv[1], "verify"))
		return run_verify(argv[2], argv[3]);
	fprintf(stderr, "usage: queue_bounce child DIR ACKFILE SEED\n"
		"       queue_bounce verify DIR ACKFILE\n");
	return 2;
}
