/*
 * queue_inject.c - put a message into a stopped relayd's queue with
 * whatever bytes a test needs in its addresses and reasons (controls,
 * quotes, invalid UTF-8: what SMTP would refuse but a remote reply or an
 * old queue may hold), for t/integration/admin_*.py.
 *
 *   queue_inject DIR [-a AGE] [-r REASON] [-n NEXT] [-c LEASE] SENDER RCPT...
 *	-a AGE     arrived AGE seconds ago (default 0)
 *	-r REASON  every recipient tried once: deferred with REASON as the
 *	           reply (4.4.1, next hop mx.example.net[127.0.0.2]:25),
 *	           due again in NEXT seconds (default 3600)
 *	-c LEASE   every recipient claimed for LEASE seconds (in flight)
 *	-N COUNT   COUNT such messages (without -r and -c), 1000 a commit;
 *	           prints nothing
 * Prints the queue id.  Exit 0, 1 on a queue error, 2 on usage.  As
 * root it first becomes the queue directory's owner.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "queue.h"

static int fail(const char *what, int rc)
{
	fprintf(stderr, "queue_inject: %s: %s\n", what, queue_strerror(rc));
	return 1;
}

static int run(struct queue *q, struct queue_op *op, const char *what)
{
	int rc = op ? queue_sync_run(q, op) : QUEUE_ENOMEM;
	queue_op_free(op);
	return rc ? fail(what, rc) : 0;
}

static int inject(struct queue *q, int64_t age, const char *reason,
		  int64_t next, int64_t lease, const char *sender, char **rcpts,
		  uint32_t n)
{
	int64_t now = time(NULL);
	struct queue_rcpt *r = calloc(n, sizeof(*r));
	struct queue_rcpt_update *u = calloc(n, sizeof(*u));
	struct queue_due *items = calloc(n, sizeof(*items));
	struct queue_msg m = { .sender = (char *)sender, .client_name = "localhost",
			       .client_addr = "127.0.0.1", .nrcpt = n, .rcpt = r,
			       .arrival = (now - age) * 1000000 };
	struct queue_spool *sp;
	static const char body[] = "Subject: injected\r\n\r\nhello\r\n";
	int rc = 1;
	if (!r || !u || !items || queue_spool_new(q, &sp))
		goto out;
	for (uint32_t i = 0; i < n; i++)
		r[i].addr = rcpts[i];
	queue_id_new(q, &m.id);
	queue_spool_write(sp, body, sizeof(body) - 1);
	if ((rc = run(q, queue_op_submit(&m, sp, now - age), "submit")))
		goto out;
	for (uint32_t i = 0; i < n; i++) {
		u[i] = (struct queue_rcpt_update){ .rcpt = i, .state = QUEUE_RCPT_DEFERRED,
			.next_attempt = now + next, .dsn = "4.4.1", .reason = reason,
			.diag_type = "smtp", .hop_host = "mx.example.net",
			.hop_ip = "127.0.0.2", .hop_port = 25 };
		items[i].id = m.id;
		items[i].rcpt = i;
	}
	if (reason && (rc = run(q, queue_op_rcpt_update(m.id.s, u, n), "update")))
		goto out;
	if (lease && (rc = run(q, queue_op_claim(items, n, now, lease), "claim")))
		goto out;
	printf("%s\n", m.id.s);
	rc = 0;
out:
	free(r);
	free(u);
	free(items);
	return rc;
}

/* count messages, GROUP to a transaction (an atomic group of submits). */
#define GROUP 1000
static int inject_many(struct queue *q, long count, const char *sender,
		       char **rcpts, uint32_t n)
{
	static struct queue_msg m[GROUP];
	static struct queue_op *ops[GROUP];
	static const char body[] = "Subject: bulk\r\n\r\nhello\r\n";
	struct queue_rcpt *r = calloc(n, sizeof(*r));
	int64_t now = time(NULL);
	if (!r)
		return 1;
	for (uint32_t i = 0; i < n; i++)
		r[i].addr = rcpts[i];
	for (long done = 0; done < count; ) {
		size_t k = count - done < GROUP ? (size_t)(count - done) : GROUP;
		for (size_t i = 0; i < k; i++) {
			struct queue_spool *sp;
			m[i] = (struct queue_msg){ .sender = (char *)sender,
				.client_name = "localhost", .client_addr = "127.0.0.1",
				.nrcpt = n, .rcpt = r, .arrival = now * 1000000 };
			queue_id_new(q, &m[i].id);
			if (queue_spool_new(q, &sp))
				return fail("spool", QUEUE_ENOMEM);
			queue_spool_write(sp, body, sizeof(body) - 1);
			ops[i] = queue_op_submit(&m[i], sp, now);
		}
		if (run(q, queue_op_group(ops, k), "group"))
			return 1;
		done += (long)k;
	}
	free(r);
	return 0;
}

int main(int argc, char **argv)
{
	const char *reason = NULL;
	long age = 0, next = 3600, lease = 0, count = 0;
	int c;
	if (argc < 2)
		goto usage;
	const char *dir = argv[1];
	optind = 2;
	while ((c = getopt(argc, argv, "a:r:n:c:N:")) != -1) {
		switch (c) {
		case 'a': age = atol(optarg); break;
		case 'r': reason = optarg; break;
		case 'n': next = atol(optarg); break;
		case 'c': lease = atol(optarg); break;
		case 'N': count = atol(optarg); break;
		default: goto usage;
		}
	}
	if (argc - optind < 2)
		goto usage;
	struct stat st;
	if (geteuid() == 0 && stat(dir, &st) == 0 &&
	    (setgid(st.st_gid) || setuid(st.st_uid))) {
		perror("queue_inject: setuid");
		return 1;
	}
	struct queue_lock *l;
	struct queue *q;
	int rc = queue_lock_acquire(dir, &l);
	if (rc)
		return fail("lock", rc);
	if ((rc = queue_open(&q, dir, 256u << 20, 0))) {
		queue_lock_release(l);
		return fail("open", rc);
	}
	queue_claims_void(q);
	if (count > 0)
		rc = inject_many(q, count, argv[optind], argv + optind + 1,
				 (uint32_t)(argc - optind - 1));
	else
		rc = inject(q, age, reason, next, lease, argv[optind], argv + optind + 1,
			    (uint32_t)(argc - optind - 1));
	queue_close(q);
	queue_lock_release(l);
	return rc;
usage:
	fprintf(stderr, "usage: queue_inject DIR [-a AGE] [-r REASON] [-n NEXT] [-c LEASE] [-N COUNT]\n"
		"                    SENDER RCPT...\n");
	return 2;
}
