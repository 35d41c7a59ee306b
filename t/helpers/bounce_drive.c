/*
 * bounce_drive.c - drive the report service (relayd/bounce) the way the
 * scheduler does, against a real queue, for t/integration/dsn_bounce.py.
 *
 *   bounce_drive -c CONF -d DIR -s SENDER -b BODY [-k failure|delay|success]
 *                [-F] [-e ENVID] [-U] [-O OUT] RCPT...
 *
 * Stores an original message (from SENDER, body from file BODY, RET=FULL
 * with -F, ENVID, SMTPUTF8 with -U) in the queue in DIR, then for the
 * recipients asks the service for a report of kind -k, and commits what a
 * scheduler commits, in one atomic group: the recipients' new states
 * (failed ones FAILED, the others SENT or DEFERRED), the report's submit
 * op, and the original's removal when done.  Each RCPT is
 * "ADDR/NOTIFY/ACTION/ORCPT/REPLY" (NOTIFY: never, or a comma list of
 * success, failure, delay, or "-"; ACTION: failed, delayed, relayed,
 * delivered; "-" for no ORCPT or reply; a reply is the next hop's, from
 * mx.example.com).
 *
 * Prints "orig ID", then "report NEWID flags=0xF sender=<S> rcpt=<R>
 * notify=N" and writes the report's body to OUT, or "report none";
 * "orig-left N" is the number of messages left with the original's id.
 * Exit 0, 1 on a failure.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>
#include "bounce/bounce.h"
#include "queue.h"

static struct {
	int called, status;
	struct queue_op *op;
	queue_id newid;
} answer;

static void on_done(void *cbarg, int status, struct queue_op *op, const queue_id *newid)
{
	(void)cbarg;
	answer.called = 1;
	answer.status = status;
	answer.op = op;
	if (newid)
		answer.newid = *newid;
}

static void die(const char *what)
{
	fprintf(stderr, "bounce_drive: %s\n", what);
	exit(1);
}

static unsigned notify_of(const char *s)
{
	unsigned n = 0;
	if (!strcmp(s, "-"))
		return 0;
	if (strstr(s, "never")) n |= QUEUE_NOTIFY_NEVER;
	if (strstr(s, "success")) n |= QUEUE_NOTIFY_SUCCESS;
	if (strstr(s, "failure")) n |= QUEUE_NOTIFY_FAILURE;
	if (strstr(s, "delay")) n |= QUEUE_NOTIFY_DELAY;
	return n;
}

static enum report_action action_of(const char *s)
{
	return !strcmp(s, "delayed") ? REPORT_ACTION_DELAYED :
	       !strcmp(s, "relayed") ? REPORT_ACTION_RELAYED :
	       !strcmp(s, "delivered") ? REPORT_ACTION_DELIVERED : REPORT_ACTION_FAILED;
}

static char *field(char **p)
{
	char *s = *p, *e = strchr(s, '/');
	if (e) {
		*e = '\0';
		*p = e + 1;
	} else {
		*p = s + strlen(s);
	}
	return s;
}

static void store_original(struct queue *q, struct queue_msg *m, const char *body,
			   int argc, char **argv)
{
	FILE *f = fopen(body, "rb");
	struct queue_spool *sp;
	char buf[8192];
	size_t got;
	if (!f || queue_spool_new(q, &sp))
		die("cannot read the body");
	while ((got = fread(buf, 1, sizeof(buf), f)) > 0)
		if (queue_spool_write(sp, buf, got))
			die("spool");
	fclose(f);
	m->nrcpt = (uint32_t)argc;
	m->rcpt = calloc((size_t)argc, sizeof(*m->rcpt));
	for (int i = 0; i < argc; i++) {
		char *p = argv[i];
		m->rcpt[i].addr = field(&p);
		m->rcpt[i].notify = notify_of(field(&p));
		(void)field(&p);
		char *orcpt = field(&p);
		m->rcpt[i].orcpt = strcmp(orcpt, "-") ? orcpt : NULL;
	}
	queue_id_new(q, &m->id);
	struct queue_op *op = queue_op_submit(m, sp, (int64_t)time(NULL) + 3600);
	if (!op || queue_sync_run(q, op))
		die("cannot store the original");
	queue_op_free(op);
}

int main(int argc, char **argv)
{
	const char *conf = NULL, *dir = NULL, *body = NULL, *out = NULL;
	struct queue_msg m = { .client_name = "localhost", .client_addr = "127.0.0.1",
			       .arrival = (int64_t)time(NULL) * 1000000 - 7200000000 };
	enum report_kind kind = REPORT_FAILURE;
	int c;
	while ((c = getopt(argc, argv, "c:d:s:b:k:Fe:UO:")) != -1) {
		switch (c) {
		case 'c': conf = optarg; break;
		case 'd': dir = optarg; break;
		case 's': m.sender = optarg; break;
		case 'b': body = optarg; break;
		case 'k':
			kind = !strcmp(optarg, "delay") ? REPORT_DELAY :
			       !strcmp(optarg, "success") ? REPORT_SUCCESS : REPORT_FAILURE;
			break;
		case 'F': m.ret = QUEUE_RET_FULL; break;
		case 'e': m.envid = optarg; break;
		case 'U': m.flags |= QUEUE_F_SMTPUTF8 | QUEUE_F_8BITMIME; break;
		case 'O': out = optarg; break;
		default: die("usage");
		}
	}
	if (!conf || !dir || !m.sender || !body || optind >= argc)
		die("usage: bounce_drive -c CONF -d DIR -s SENDER -b BODY RCPT...");
	struct config *cfg;
	if (config_new(&cfg, conf, stderr))
		die("bad config");
	struct queue *q;
	if (queue_open(&q, dir, 64u << 20, 0))
		die("cannot open the queue");
	int nr = argc - optind;
	char **specs = argv + optind;
	char **copy = calloc((size_t)nr, sizeof(*copy));
	for (int i = 0; i < nr; i++)
		copy[i] = strdup(specs[i]);
	store_original(q, &m, body, nr, copy);
	printf("orig %s\n", m.id.s);

	/* What the scheduler hands over: the stored message and the facts. */
	struct queue_read *rd;
	struct queue_msg sm;
	if (queue_read_begin(q, &rd) || queue_msg_get(rd, m.id.s, &sm))
		die("cannot read the original back");
	queue_read_end(rd);
	struct report_rcpt *r = calloc((size_t)nr, sizeof(*r));
	struct queue_rcpt_update *u = calloc((size_t)nr, sizeof(*u));
	int64_t now = (int64_t)time(NULL);
	for (int i = 0; i < nr; i++) {
		char *p = specs[i];
		(void)field(&p);
		(void)field(&p);
		enum report_action a = action_of(field(&p));
		(void)field(&p);
		char *reply = field(&p);
		int has_reply = strcmp(reply, "-") != 0;
		r[i] = (struct report_rcpt){
			.rcpt = (uint32_t)i, .addr = sm.rcpt[i].addr, .orcpt = sm.rcpt[i].orcpt,
			.notify = sm.rcpt[i].notify, .action = a,
			.dsn = a == REPORT_ACTION_FAILED ? "5.1.1" :
			       a == REPORT_ACTION_DELAYED ? "4.4.1" : "2.0.0",
			.reason = has_reply ? reply : "connection timed out",
			.diag_type = has_reply ? "smtp" : NULL,
			.hop_host = has_reply ? "mx.example.com" : NULL,
			.hop_ip = has_reply ? "127.0.0.1" : NULL, .hop_port = 25,
			.when = now, .will_retry_until = now + 86400,
		};
		u[i] = (struct queue_rcpt_update){
			.rcpt = (uint32_t)i,
			.state = a == REPORT_ACTION_FAILED ? QUEUE_RCPT_FAILED :
				 a == REPORT_ACTION_DELAYED ? QUEUE_RCPT_DEFERRED : QUEUE_RCPT_SENT,
			.next_attempt = now + 600, .dsn = r[i].dsn, .reason = r[i].reason,
			.diag_type = r[i].diag_type, .hop_host = r[i].hop_host,
			.hop_ip = r[i].hop_ip, .hop_port = 25,
		};
	}

	uv_loop_t loop;
	struct bounce *b;
	uv_loop_init(&loop);
	if (bounce_new(&b, &loop, q, cfg))
		die("bounce_new");
	const struct sched_report_ops *ops = bounce_ops(b);
	ops->prepare(ops->arg, &sm, r, (size_t)nr, kind, on_done, NULL);
	for (int i = 0; i < 1000 && !answer.called; i++)
		uv_run(&loop, UV_RUN_ONCE);
	if (!answer.called || answer.status)
		die("no report built");

	struct queue_op *g[3];
	size_t ng = 0;
	g[ng++] = queue_op_rcpt_update(m.id.s, u, (size_t)nr);
	if (answer.op)
		g[ng++] = answer.op;
	g[ng++] = queue_op_remove_done(m.id.s);
	struct queue_op *group = queue_op_group(g, ng);
	if (!group || queue_sync_run(q, group))
		die("the group did not commit");
	queue_op_free(group);

	if (!answer.op) {
		printf("report none\n");
	} else {
		struct queue_msg bm;
		if (queue_read_begin(q, &rd) || queue_msg_get(rd, answer.newid.s, &bm))
			die("the report is not stored");
		queue_read_end(rd);
		printf("report %s flags=0x%x sender=<%s> rcpt=<%s> notify=%u nrcpt=%u\n",
		       bm.id.s, bm.flags, bm.sender, bm.rcpt[0].addr, bm.rcpt[0].notify,
		       bm.nrcpt);
		FILE *f = out ? fopen(out, "wb") : NULL;
		char buf[8192];
		size_t got;
		for (uint64_t off = 0; f; off += got) {
			if (queue_body_copy(q, bm.id.s, off, buf, sizeof(buf), &got))
				die("cannot read the report");
			fwrite(buf, 1, got, f);
			if (got < sizeof(buf))
				break;
		}
		if (f)
			fclose(f);
		queue_msg_clear(&bm);
	}
	if (queue_read_begin(q, &rd))
		die("read");
	struct queue_msg left;
	int gone = queue_msg_get(rd, m.id.s, &left);
	printf("orig-left %d\n", gone == 0);
	if (gone == 0)
		queue_msg_clear(&left);
	queue_read_end(rd);

	bounce_free(b);
	uv_run(&loop, UV_RUN_DEFAULT);
	uv_loop_close(&loop);
	queue_msg_clear(&sm);
	queue_close(q);
	config_unref(cfg);
	for (int i = 0; i < nr; i++)
		free(copy[i]);
	free(copy);
	free(m.rcpt);
	free(r);
	free(u);
	return 0;
}
