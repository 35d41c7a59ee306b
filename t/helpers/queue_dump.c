/*
 * queue_dump.c - print what the queue holds, for integration tests.
 *
 *   queue_dump DIR ID        the message body, byte for byte, on stdout
 *   queue_dump DIR ID -e     the envelope: sender=, size=, flags=, ret=,
 *                            envid=, client=NAME[ADDR], helo=, auth=, then
 *                            "rcpt=ADDR state=N notify=N orcpt=..." per
 *                            recipient (a NULL string prints as empty)
 *   queue_dump DIR -l        the queue ids, one per line, in arrival order
 *   queue_dump DIR -L        "running PID" when a daemon holds the queue's
 *                            lock, else "stopped"
 *   queue_dump DIR -D        the due index, what the scheduler will take:
 *                            "ID RCPT WHEN" per entry, earliest first
 *   queue_dump DIR ID -H     put the message on hold (the daemon must be
 *                            stopped: takes its lock, opens writable)
 *
 * Opens the queue read-only.  Exit 1 with a message on stderr when the
 * queue or the message is not there (or a read fails), 2 on bad usage.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "queue.h"

static const char *str(const char *s)
{
	return s ? s : "";
}

static int dump_body(struct queue_read *r, const struct queue_msg *m)
{
	uint64_t total = 0;
	for (uint32_t i = 0; i < m->nchunks; i++) {
		const void *data;
		size_t len;
		int rc = queue_body_chunk(r, m->id.s, i, &data, &len);
		if (rc) {
			fprintf(stderr, "queue_dump: %s: body chunk %" PRIu32 ": %s\n",
				m->id.s, i, queue_strerror(rc));
			return 1;
		}
		if (fwrite(data, 1, len, stdout) != len) {
			fprintf(stderr, "queue_dump: write: %s\n", strerror(errno));
			return 1;
		}
		total += len;
	}
	if (total != m->size) {
		fprintf(stderr, "queue_dump: %s: body has %" PRIu64 " bytes, size %"
			PRIu64 "\n", m->id.s, total, m->size);
		return 1;
	}
	return 0;
}

static int dump_envelope(const struct queue_msg *m)
{
	printf("sender=%s\n", str(m->sender));
	printf("size=%" PRIu64 "\n", m->size);
	printf("flags=%u\n", m->flags);
	printf("ret=%d\n", (int)m->ret);
	printf("envid=%s\n", str(m->envid));
	printf("client=%s[%s]\n", str(m->client_name), str(m->client_addr));
	printf("helo=%s\n", str(m->helo));
	printf("auth=%s\n", str(m->auth_user));
	for (uint32_t i = 0; i < m->nrcpt; i++)
		printf("rcpt=%s state=%d notify=%u orcpt=%s\n", str(m->rcpt[i].addr),
		       (int)m->rcpt[i].state, m->rcpt[i].notify,
		       str(m->rcpt[i].orcpt));
	if (fflush(stdout) || ferror(stdout)) {
		fprintf(stderr, "queue_dump: write: %s\n", strerror(errno));
		return 1;
	}
	return 0;
}

/* The ids, a page at a time: no snapshot is held while stdout drains. */
static int list_ids(struct queue *q)
{
	struct queue_msg page[256];
	char after[QUEUE_ID_LEN + 1] = "";
	size_t n;
	do {
		int rc = queue_list_page(q, after[0] ? after : NULL, page, 256, &n);
		if (rc)
			return rc;
		for (size_t i = 0; i < n; i++) {
			printf("%s\n", page[i].id.s);
			memcpy(after, page[i].id.s, sizeof(after));
			queue_msg_clear(&page[i]);
		}
	} while (n == 256);
	return 0;
}

static int dump_due(const char *dir)
{
	struct queue *q;
	struct queue_read *r;
	struct queue_due d[256];
	size_t n = 0;
	int rc = queue_open(&q, dir, 0, QUEUE_OPEN_RDONLY);
	if (!rc && !(rc = queue_read_begin(q, &r))) {
		rc = queue_due_next(r, INT64_MAX, d, 256, &n);
		queue_read_end(r);
	}
	if (!rc)
		queue_close(q);
	for (size_t i = 0; !rc && i < n; i++)
		printf("%s %" PRIu32 " %" PRId64 "\n", d[i].id.s, d[i].rcpt, d[i].when);
	if (rc)
		fprintf(stderr, "queue_dump: %s: %s\n", dir, queue_strerror(rc));
	return rc ? 1 : 0;
}

/* A tool's write: under the daemon lock, one durable transaction. */
static int hold(const char *dir, const char *id)
{
	struct queue_lock *l;
	struct queue *q;
	int rc = queue_lock_acquire(dir, &l);
	if (rc) {
		fprintf(stderr, "queue_dump: %s: %s\n", dir, queue_strerror(rc));
		return 1;
	}
	if (!(rc = queue_open(&q, dir, 0, 0))) {
		struct queue_op *op = queue_op_admin(id, QUEUE_ADMIN_HOLD);
		rc = op ? queue_sync_run(q, op) : QUEUE_ENOMEM;
		queue_op_free(op);
		queue_close(q);
	}
	queue_lock_release(l);
	if (rc)
		fprintf(stderr, "queue_dump: hold %s: %s\n", id, queue_strerror(rc));
	return rc ? 1 : 0;
}

static void usage(void)
{
	fprintf(stderr, "usage: queue_dump DIR ID [-e]\n"
		"       queue_dump DIR -l\n"
		"       queue_dump DIR -L\n"
		"       queue_dump DIR -D\n"
		"       queue_dump DIR ID -H\n");
	exit(2);
}

int main(int argc, char **argv)
{
	const char *dir, *id = NULL;
	int list = 0, envelope = 0, ret = 1;
	struct queue *q;
	struct queue_read *r;
	struct queue_msg m;

	if (argc < 3 || argc > 4)
		usage();
	dir = argv[1];
	if (argc == 3 && strcmp(argv[2], "-L") == 0) {
		long pid;
		int held = queue_lock_probe(dir, &pid);
		if (held < 0) {
			fprintf(stderr, "queue_dump: %s: %s\n", dir, queue_strerror(held));
			return 1;
		}
		if (held)
			printf("running %ld\n", pid);
		else
			printf("stopped\n");
		return 0;
	}
	if (argc == 3 && strcmp(argv[2], "-D") == 0)
		return dump_due(dir);
	if (argc == 4 && strcmp(argv[3], "-H") == 0)
		return hold(dir, argv[2]);
	for (int i = 2; i < argc; i++) {
		if (strcmp(argv[i], "-l") == 0)
			list = 1;
		else if (strcmp(argv[i], "-e") == 0)
			envelope = 1;
		else if (argv[i][0] != '-' && !id)
			id = argv[i];
		else
			usage();
	}
	if (list ? id || envelope : !id)
		usage();

	int rc = queue_open(&q, dir, 0, QUEUE_OPEN_RDONLY);
	if (rc) {
		fprintf(stderr, "queue_dump: %s: %s\n", dir,
			rc == QUEUE_ENOENT ? "no queue there" : queue_strerror(rc));
		return 1;
	}
	if ((rc = queue_read_begin(q, &r))) {
		fprintf(stderr, "queue_dump: %s: %s\n", dir, queue_strerror(rc));
		queue_close(q);
		return 1;
	}
	if (list) {
		queue_read_end(r);
		r = NULL;
		rc = list_ids(q);
		if (rc)
			fprintf(stderr, "queue_dump: %s: %s\n", dir, queue_strerror(rc));
		ret = rc || fflush(stdout) ? 1 : 0;
	} else if ((rc = queue_msg_get(r, id, &m))) {
		fprintf(stderr, "queue_dump: %s: %s\n", id,
			rc == QUEUE_ENOENT || rc == QUEUE_EINVAL ? "no such message"
								 : queue_strerror(rc));
	} else {
		ret = envelope ? dump_envelope(&m) : dump_body(r, &m);
		queue_msg_clear(&m);
	}
	queue_read_end(r);
	queue_close(q);
	return ret;
}
