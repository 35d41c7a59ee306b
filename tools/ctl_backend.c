/*
 * ctl_backend.c - the control socket or the queue itself (ctl_backend.h).
 */
#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "ctl_backend.h"
#include "privs.h"

/* As root, become queue_dir's owner: files LMDB or the lock creates must
 * stay the daemon's. */
static int become_queue_owner(const char *dir, const char *prog)
{
	struct stat st;
	char err[512];
	if (geteuid() != 0)
		return 0;
	if (stat(dir, &st)) {
		fprintf(stderr, "%s: %s: %m\n", prog, dir);
		return -1;
	}
	if (st.st_uid == 0)
		return 0;
	struct passwd *pw = getpwuid(st.st_uid);
	if (!pw || privs_drop(pw->pw_name, st.st_uid, pw->pw_gid, err, sizeof(err))) {
		fprintf(stderr, "%s: cannot become the owner of %s: %s\n", prog, dir,
			pw ? err : "unknown user");
		return -1;
	}
	return 0;
}

static int open_socket(struct ctl_backend *b, const struct config *cfg,
		       const char *prog)
{
	char err[512];
	b->direct = 0;
	if (ctl_client_open(&b->sock, cfg->control_socket, err, sizeof(err))) {
		fprintf(stderr, "%s: %s\n", prog, err);
		return -1;
	}
	return 0;
}

static int open_direct(struct ctl_backend *b, const struct config *cfg,
		       const char *prog)
{
	struct queue_open_opts o = { .map_size = (size_t)cfg->queue_map_size };
	int rc = queue_open_opts(&b->q, cfg->queue_dir, &o);
	if (rc) {
		fprintf(stderr, "%s: cannot open queue %s: %s\n", prog, cfg->queue_dir,
			queue_strerror(rc));
		return -1;
	}
	/* We hold the lock: claims are a dead daemon's. */
	queue_claims_void(b->q);
	if (uv_loop_init(&b->loop))
		return -1;
	b->loop_live = 1;
	if ((rc = queue_writer_start(b->q, &b->loop))) {
		fprintf(stderr, "%s: cannot start the queue writer: %s\n", prog,
			queue_strerror(rc));
		return -1;
	}
	b->writer_live = 1;
	return 0;
}

int ctl_backend_open(struct ctl_backend *b, const struct config *cfg,
		     const char *prog)
{
	long pid = 0;
	memset(b, 0, sizeof(*b));
	b->sock.fd = -1;
	b->direct = 1;
	int rc = queue_lock_probe(cfg->queue_dir, &pid);
	if (rc == 1)
		return open_socket(b, cfg, prog);
	if (rc < 0) {
		fprintf(stderr, "%s: queue %s: %s\n", prog, cfg->queue_dir,
			queue_strerror(rc));
		return -1;
	}
	if (become_queue_owner(cfg->queue_dir, prog))
		return -1;
	char data[4096];
	snprintf(data, sizeof(data), "%s/data.mdb", cfg->queue_dir);
	if (access(data, W_OK) && errno == EACCES) {
		fprintf(stderr, "%s: relayd is not running, and changing its queue needs "
			"write access to %s (root or the relayd user)\n", prog, data);
		return -1;
	}
	rc = queue_lock_acquire(cfg->queue_dir, &b->lock);
	if (rc == QUEUE_EBUSY)       /* relayd started meanwhile */
		return open_socket(b, cfg, prog);
	if (rc) {
		fprintf(stderr, "%s: cannot lock queue %s: %s\n", prog, cfg->queue_dir,
			queue_strerror(rc));
		return -1;
	}
	return open_direct(b, cfg, prog);
}

struct direct_wait {
	int done;
	struct ctl_batch *r;
};

static void on_direct_done(void *arg, const struct control_admin_result *res)
{
	struct direct_wait *w = arg;
	w->done = 1;
	w->r->done = res->done;
	w->r->missing = res->missing;
	w->r->failed = res->failed;
	if (res->err)
		snprintf(w->r->first_error, sizeof(w->r->first_error), "%s",
			 queue_strerror(res->err));
}

static int run_direct(struct ctl_backend *b, const char *verb,
		      const char *const *ids, size_t n, struct ctl_batch *r)
{
	struct direct_wait w = { .r = r };
	if (control_admin_run(b->q, NULL, control_action_find(verb), ids, n,
			      on_direct_done, &w))
		return -1;
	while (!w.done && uv_run(&b->loop, UV_RUN_ONCE))
		;
	return w.done ? 0 : -1;
}

static int run_socket(struct ctl_backend *b, const char *verb,
		      const char *const *ids, size_t n, struct ctl_batch *r,
		      const char *prog)
{
	char err[512];
	json_t *a = json_array();
	for (size_t i = 0; a && i < n; i++)
		json_array_append_new(a, json_string(ids[i]));
	json_t *req = json_pack("{s:s, s:o}", "verb", verb, "ids", a);
	json_t *rep = req ? ctl_client_call(&b->sock, req, err, sizeof(err)) : NULL;
	json_decref(req);
	if (!rep) {
		fprintf(stderr, "%s: %s\n", prog, req ? err : "out of memory");
		return -1;
	}
	if (!json_is_true(json_object_get(rep, "ok"))) {
		const char *why = json_string_value(json_object_get(rep, "error"));
		fprintf(stderr, "%s: the daemon says: %s\n", prog, why ? why : "error");
		json_decref(rep);
		return -1;
	}
	r->done = (size_t)json_integer_value(json_object_get(rep, "done"));
	r->missing = (size_t)json_integer_value(json_object_get(rep, "missing"));
	r->failed = (size_t)json_integer_value(json_object_get(rep, "failed"));
	json_t *e;
	size_t i;
	json_array_foreach(json_object_get(rep, "errors"), i, e) {
		const char *why = json_string_value(json_object_get(e, "error"));
		if (why && strcmp(why, "no such message")) {
			snprintf(r->first_error, sizeof(r->first_error), "%s", why);
			break;
		}
	}
	json_decref(rep);
	return 0;
}

int ctl_backend_run(struct ctl_backend *b, const char *verb,
		    const char *const *ids, size_t n, struct ctl_batch *r)
{
	memset(r, 0, sizeof(*r));
	if (n == 0)
		return 0;
	if (b->direct) {
		if (run_direct(b, verb, ids, n, r)) {
			fprintf(stderr, "relayctl: out of memory\n");
			return -1;
		}
		return 0;
	}
	return run_socket(b, verb, ids, n, r, "relayctl");
}

void ctl_backend_close(struct ctl_backend *b)
{
	ctl_client_close(&b->sock);
	if (b->writer_live) {
		queue_writer_stop(b->q);
		uv_run(&b->loop, UV_RUN_DEFAULT);
	}
	if (b->q)
		queue_close(b->q);
	if (b->loop_live)
		uv_loop_close(&b->loop);
	if (b->lock)
		queue_lock_release(b->lock);
	memset(b, 0, sizeof(*b));
	b->sock.fd = -1;
}
