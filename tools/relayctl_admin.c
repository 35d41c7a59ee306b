/*
 * relayctl_admin.c - the verbs that change the queue: hold, release,
 * delete, requeue (ID... | ALL | - for ids on stdin, narrowed by
 * filters), flush (every message with deferred recipients) and deliver
 * ID.
 *
 * The targets are chosen first from read-only snapshots: the ids given,
 * or every message, kept when the filters match and the action would
 * change it (hold skips held mail, release takes only held mail).  Mail
 * that arrives afterwards is never touched, so "delete ALL" while mail
 * comes in removes only what was there.  Then they go in batches of
 * CONTROL_IDS_MAX, each committed whole, to the daemon or to the queue
 * (ctl_backend.h).  Ctrl-C stops between two batches: what is done is
 * done, the queue is consistent, and the count is printed.  Progress and
 * a summary go to stderr only when it is a terminal.
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "control/control_proto.h"
#include "ctl_backend.h"
#include "qsel.h"
#include "relayctl.h"
#include "text.h"

struct targets {
	queue_id *v;
	size_t n, cap;
};

struct pick {
	const char *verb;
	struct qsel_filter f;
	int dry_run;
	int64_t now;
	struct targets t;
	int oom;
};

static volatile sig_atomic_t interrupted;

static void on_sigint(int sig)
{
	(void)sig;
	interrupted = 1;
}

static int add_target(struct targets *t, const char *id)
{
	if (t->n == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 1024;
		queue_id *v = realloc(t->v, cap * sizeof(*v));
		if (!v)
			return -1;
		t->v = v;
		t->cap = cap;
	}
	snprintf(t->v[t->n++].s, sizeof(t->v[0].s), "%s", id);
	return 0;
}

/* Would the action change m?  (Recipients a delivery holds are left to
 * it by the queue either way.) */
static int relevant(const char *verb, const struct queue_msg *m)
{
	int held = m->flags & QUEUE_F_HELD;
	if (!strcmp(verb, "hold"))
		return !held;
	if (!strcmp(verb, "release"))
		return held;
	if (!strcmp(verb, "flush")) {
		for (uint32_t i = 0; !held && i < m->nrcpt; i++)
			if (m->rcpt[i].state == QUEUE_RCPT_DEFERRED)
				return 1;
		return 0;
	}
	return 1;
}

static const char *would(const char *verb)
{
	return !strcmp(verb, "delete") ? "removed" :
	       !strcmp(verb, "hold") ? "placed on hold" :
	       !strcmp(verb, "release") ? "released from hold" :
	       !strcmp(verb, "requeue") ? "requeued" : "delivered now";
}

static int consider(const struct queue_msg *m, void *arg)
{
	struct pick *p = arg;
	if (!qsel_match(&p->f, m) || !relevant(p->verb, m))
		return 0;
	if (p->dry_run) {
		char esc[1024];
		uint32_t live = 0;
		for (uint32_t i = 0; i < m->nrcpt; i++)
			live += qsel_rcpt_live(&m->rcpt[i]);
		text_escape(esc, sizeof(esc), m->sender, strlen(m->sender));
		printf("%s: would be %s (from=<%s>, size=%llu, nrcpt=%u)\n", m->id.s,
		       would(p->verb), esc, (unsigned long long)m->size, live);
	}
	if (add_target(&p->t, m->id.s)) {
		p->oom = 1;
		return 1;
	}
	return 0;
}

/* Explicit ids: each looked up in a snapshot of its own. */
static int pick_ids(struct queue *q, struct pick *p, char **ids, size_t n,
		    int *bad)
{
	for (size_t i = 0; i < n && !p->oom; i++) {
		struct queue_read *rd;
		struct queue_msg m = { 0 };
		int rc = queue_id_valid(ids[i]) ? queue_read_begin(q, &rd) : QUEUE_ENOENT;
		if (rc == QUEUE_ENOENT) {
			char esc[256];
			text_escape(esc, sizeof(esc), ids[i], strlen(ids[i]));
			fprintf(stderr, "relayctl: %s: not a queue id\n", esc);
			*bad = 1;
			continue;
		}
		if (rc)
			return rc;
		rc = queue_msg_get(rd, ids[i], &m);
		if (rc == QUEUE_ENOENT) {
			fprintf(stderr, "relayctl: %s: no such message\n", ids[i]);
			*bad = 1;
		} else if (rc == 0) {
			if (!strcmp(p->verb, "deliver") && (m.flags & QUEUE_F_HELD)) {
				fprintf(stderr, "relayctl: %s: on hold (release it first)\n", ids[i]);
				*bad = 1;
			} else {
				consider(&m, p);
			}
		}
		queue_msg_clear(&m);
		queue_read_end(rd);
		if (rc && rc != QUEUE_ENOENT)
			return rc;
	}
	return 0;
}

/* Ids one per line on stdin (blank lines skipped). */
static int read_stdin_ids(char ***out, size_t *n)
{
	char *line = NULL, **v = NULL;
	size_t cap = 0, len = 0, vcap = 0;
	ssize_t r;
	*n = 0;
	while ((r = getline(&line, &cap, stdin)) > 0) {
		line[strcspn(line, " \t\r\n")] = 0;
		if (!line[0])
			continue;
		if (len == vcap) {
			vcap = vcap ? vcap * 2 : 256;
			char **nv = realloc(v, vcap * sizeof(*v));
			if (!nv)
				goto fail;
			v = nv;
		}
		if (!(v[len] = strdup(line)))
			goto fail;
		len++;
	}
	free(line);
	*out = v;
	*n = len;
	return 0;
fail:
	free(line);
	for (size_t i = 0; i < len; i++)
		free(v[i]);
	free(v);
	return -1;
}

static double mono(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Send the targets in batches; the number done in *done. */
static int apply(const struct relayctl *ctl, const char *verb,
		 const struct targets *t, size_t *done, int tty)
{
	struct ctl_backend b;
	const char *ids[CONTROL_IDS_MAX];
	size_t missing = 0;
	int rc = 0;
	double t0 = mono();
	*done = 0;
	if (ctl_backend_open(&b, &ctl->cfg, "relayctl")) {
		ctl_backend_close(&b);
		return -1;
	}
	for (size_t at = 0; at < t->n && !interrupted; ) {
		size_t k = t->n - at < CONTROL_IDS_MAX ? t->n - at : CONTROL_IDS_MAX;
		struct ctl_batch r;
		for (size_t i = 0; i < k; i++)
			ids[i] = t->v[at + i].s;
		if (ctl_backend_run(&b, verb, ids, k, &r)) {
			rc = -1;
			break;
		}
		*done += r.done;
		missing += r.missing;
		if (r.failed) {
			fprintf(stderr, "%srelayctl: %zu message%s not changed: %s\n",
				tty ? "\n" : "", r.failed, r.failed == 1 ? "" : "s",
				r.first_error[0] ? r.first_error : "error");
			rc = -1;
		}
		at += k;
		if (tty) {
			double dt = mono() - t0;
			fprintf(stderr, "\rrelayctl: %s: %zu/%zu (%.0f/s)", verb, at, t->n,
				dt > 0 ? (double)at / dt : 0.0);
		}
	}
	ctl_backend_close(&b);
	if (tty && t->n)
		fputc('\n', stderr);
	if (missing && tty)
		fprintf(stderr, "relayctl: %zu gone meanwhile (delivered or removed)\n",
			missing);
	return rc;
}

static const struct option admin_opts[] = {
	{ "from", required_argument, NULL, 'F' },
	{ "to-domain", required_argument, NULL, 'T' },
	{ "older-than", required_argument, NULL, 'O' },
	{ "reason", required_argument, NULL, 'R' },
	{ "dry-run", no_argument, NULL, 'n' },
	{ NULL, 0, NULL, 0 },
};

static int parse_opts(struct pick *p, int argc, char **argv)
{
	char err[256];
	int c;
	optind = 1;
	opterr = 1;
	while ((c = getopt_long(argc, argv, "n", admin_opts, NULL)) != -1) {
		switch (c) {
		case 'F': p->f.from = optarg; break;
		case 'T': p->f.to_domain = optarg; break;
		case 'O':
			if (config_parse_duration(optarg, &p->f.older_than) ||
			    !p->f.older_than) {
				fprintf(stderr, "relayctl: --older-than %s: not a duration (e.g. 2h, 3d)\n",
					optarg);
				return 2;
			}
			break;
		case 'R':
			if (p->f.has_reason || qsel_filter_reason(&p->f, optarg, err, sizeof(err))) {
				fprintf(stderr, "relayctl: --reason %s: %s\n", optarg,
					p->f.has_reason ? "given twice" : err);
				return 2;
			}
			break;
		case 'n': p->dry_run = 1; break;
		default: return 2;
		}
	}
	return 0;
}

static int usage_error(const char *verb, const char *why)
{
	fprintf(stderr, "relayctl %s: %s (relayctl -h for usage)\n", verb, why);
	return 2;
}

/* argv[0] is the verb. */
static int admin_verb(struct relayctl *ctl, const char *verb, int argc, char **argv)
{
	struct pick p = { .verb = verb, .now = time(NULL) };
	char **ids = argv, **owned = NULL;
	size_t nids = 0;
	/* getopt wants the verb in front: it is argv[-1]. */
	int rc = parse_opts(&p, argc + 1, argv - 1), bad = 0, all = 0;
	p.f.now = p.now;
	if (rc)
		goto out;
	ids = argv - 1 + optind;
	nids = (size_t)(argc + 1 - optind);
	if (!strcmp(verb, "flush")) {
		if (nids || qsel_filter_set(&p.f)) {
			rc = usage_error(verb, "takes no arguments");
			goto out;
		}
		all = 1;
	} else if (!strcmp(verb, "deliver")) {
		if (nids != 1 || qsel_filter_set(&p.f)) {
			rc = usage_error(verb, "takes one queue id");
			goto out;
		}
	} else if (nids == 1 && !strcmp(ids[0], "ALL")) {
		all = 1;
		nids = 0;
	} else if (nids == 1 && !strcmp(ids[0], "-")) {
		if (read_stdin_ids(&owned, &nids)) {
			fprintf(stderr, "relayctl: out of memory\n");
			rc = 1;
			goto out;
		}
		ids = owned;
	} else if (nids == 0 && !qsel_filter_set(&p.f)) {
		rc = usage_error(verb, "needs queue ids, ALL, - or a filter");
		goto out;
	} else if (nids == 0) {
		all = 1;            /* the filters choose among all messages */
	}
	struct queue *q;
	if (qsel_open(&q, &ctl->cfg, "relayctl")) {
		rc = 1;
		goto out;
	}
	int qr = all ? qsel_walk(q, 1000, consider, &p) : pick_ids(q, &p, ids, nids, &bad);
	queue_close(q);
	if (p.oom || (qr && qr != 1)) {
		fprintf(stderr, "relayctl: reading the queue: %s\n",
			p.oom ? "out of memory" : queue_strerror(qr));
		rc = 1;
		goto out;
	}
	int tty = isatty(2);
	if (p.dry_run) {
		if (tty)
			fprintf(stderr, "relayctl: %zu message%s would be %s\n", p.t.n,
				p.t.n == 1 ? "" : "s", would(verb));
		rc = bad;
		goto out;
	}
	struct sigaction sa = { .sa_handler = on_sigint }, old;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, &old);
	size_t done = 0;
	double t0 = mono();
	rc = apply(ctl, verb, &p.t, &done, tty) ? 1 : bad;
	sigaction(SIGINT, &old, NULL);
	if (interrupted) {
		fprintf(stderr, "relayctl: interrupted: %zu of %zu message%s %s\n", done,
			p.t.n, p.t.n == 1 ? "" : "s", would(verb));
		rc = 1;
	} else if (tty) {
		fprintf(stderr, "relayctl: %zu message%s %s in %.1fs\n", done,
			done == 1 ? "" : "s", would(verb), mono() - t0);
	}
out:
	if (owned) {
		for (size_t i = 0; i < nids; i++)
			free(owned[i]);
		free(owned);
	}
	free(p.t.v);
	qsel_filter_free(&p.f);
	return rc;
}

#define ADMIN_VERB(name) \
	int relayctl_##name(struct relayctl *ctl, int argc, char **argv) \
	{ return admin_verb(ctl, #name, argc, argv); }
ADMIN_VERB(hold)
ADMIN_VERB(release)
ADMIN_VERB(delete)
ADMIN_VERB(requeue)
ADMIN_VERB(flush)
ADMIN_VERB(deliver)
