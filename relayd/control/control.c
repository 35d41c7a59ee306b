/*
 * control.c - the control socket: JSON lines over a UNIX socket, one
 * request at a time per client, dispatched through a table of verbs.
 * See control.h and control_proto.h.
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "control.h"
#include "log.h"

struct ctl_client {
	uv_pipe_t pipe;             /* first: the handle's address is ours */
	struct control *c;
	struct ctl_client *next, **pprev;
	char *buf;                  /* CONTROL_LINE_MAX bytes */
	size_t len;
	uint64_t last;              /* loop time of the last activity */
	int busy;                   /* a request runs or its reply is unsent */
	int op_pending;             /* a control_admin_run has not ended */
	int closing, closed;
	int close_after_reply;
};

struct control {
	uv_loop_t *loop;
	uv_pipe_t listener;
	uv_timer_t idle;
	struct queue *q;
	struct control_hooks h;
	char *path;
	struct ctl_client *clients;
	size_t nclients;
	int handles;                /* listener and timer still open */
	int stopping;
	int bound;                  /* the socket file is ours to remove */
	uint64_t started;
};

static void client_read_more(struct ctl_client *cl);

static void maybe_free(struct control *c)
{
	if (c->stopping && c->handles == 0 && c->nclients == 0) {
		free(c->path);
		free(c);
	}
}

static void client_free(struct ctl_client *cl)
{
	struct control *c = cl->c;
	if ((*cl->pprev = cl->next))
		cl->next->pprev = cl->pprev;
	c->nclients--;
	free(cl->buf);
	free(cl);
	maybe_free(c);
}

static void on_client_closed(uv_handle_t *h)
{
	struct ctl_client *cl = h->data;
	cl->closed = 1;
	if (!cl->op_pending)
		client_free(cl);
}

static void client_close(struct ctl_client *cl)
{
	if (cl->closing)
		return;
	cl->closing = 1;
	uv_close((uv_handle_t *)&cl->pipe, on_client_closed);
}

struct ctl_write {
	uv_write_t req;
	struct ctl_client *cl;
	char *text;
};

static void on_written(uv_write_t *req, int status)
{
	struct ctl_write *w = (struct ctl_write *)req;
	struct ctl_client *cl = w->cl;
	free(w->text);
	free(w);
	if (cl->closing)
		return;
	cl->busy = 0;
	cl->last = uv_now(cl->c->loop);
	if (status < 0 || cl->close_after_reply || cl->c->stopping)
		client_close(cl);
	else
		client_read_more(cl);
}

/* Send o (taken over) as one line; the client is read again once it is
 * written. */
static void reply(struct ctl_client *cl, json_t *o)
{
	struct ctl_write *w = calloc(1, sizeof(*w));
	char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
	json_decref(o);
	size_t n = s ? strlen(s) : 0;
	char *line = s ? realloc(s, n + 2) : NULL;
	if (!w || !line) {
		free(w);
		free(line ? line : s);
		client_close(cl);
		return;
	}
	line[n] = '\n';
	line[n + 1] = 0;
	w->cl = cl;
	w->text = line;
	uv_buf_t b = uv_buf_init(line, (unsigned)n + 1);
	cl->busy = 1;
	if (uv_write(&w->req, (uv_stream_t *)&cl->pipe, &b, 1, on_written)) {
		free(line);
		free(w);
		client_close(cl);
	}
}

static void reply_error(struct ctl_client *cl, const char *why)
{
	reply(cl, json_pack("{s:b, s:s}", "ok", 0, "error", why));
}

/* ---- verbs ---- */

static void on_admin_done(void *arg, const struct control_admin_result *r)
{
	struct ctl_client *cl = arg;
	cl->op_pending = 0;
	if (cl->closing) {
		if (cl->closed)
			client_free(cl);
		return;
	}
	reply(cl, json_pack("{s:b, s:I, s:I, s:I, s:O}", "ok", 1,
			    "done", (json_int_t)r->done, "missing", (json_int_t)r->missing,
			    "failed", (json_int_t)r->failed, "errors", r->errors));
}

static void verb_admin(struct ctl_client *cl, const char *verb, json_t *req)
{
	const struct control_action *a = control_action_find(verb);
	json_t *ids = json_object_get(req, "ids");
	size_t n = json_array_size(ids);
	if (!json_is_array(ids))
		return reply_error(cl, "\"ids\" must be an array of queue ids");
	if (n > CONTROL_IDS_MAX)
		return reply_error(cl, "too many ids in one request");
	const char **v = calloc(n ? n : 1, sizeof(*v));
	if (!v)
		return reply_error(cl, "out of memory");
	for (size_t i = 0; i < n; i++) {
		if (!(v[i] = json_string_value(json_array_get(ids, i)))) {
			free(v);
			return reply_error(cl, "\"ids\" must be an array of queue ids");
		}
	}
	cl->op_pending = 1;
	cl->busy = 1;
	if (control_admin_run(cl->c->q, &cl->c->h, a, v, n, on_admin_done, cl)) {
		cl->op_pending = 0;
		reply_error(cl, "out of memory");
	}
	free(v);
}

static void verb_status(struct ctl_client *cl, const char *verb, json_t *req)
{
	struct control *c = cl->c;
	struct queue_writer_stats ws;
	struct queue_read *rd;
	uint64_t msgs = 0;
	(void)verb;
	(void)req;
	int rc = queue_read_begin(c->q, &rd);
	if (!rc) {
		rc = queue_count(rd, &msgs);
		queue_read_end(rd);
	}
	if (rc)
		return reply_error(cl, queue_strerror(rc));
	queue_writer_stats(c->q, &ws);
	json_t *sched = json_object();
	if (c->h.stats && sched)
		c->h.stats(c->h.arg, sched);
	reply(cl, json_pack("{s:b, s:I, s:s, s:I, s:{s:I}, s:{s:I, s:I}, s:{s:I}, s:o}",
		"ok", 1, "pid", (json_int_t)getpid(), "version", PACKAGE_VERSION,
		"uptime", (json_int_t)((uv_now(c->loop) - c->started) / 1000),
		"queue", "messages", (json_int_t)msgs,
		"writer", "batches", (json_int_t)ws.batches, "ops", (json_int_t)ws.ops,
		"control", "clients", (json_int_t)c->nclients,
		"scheduler", sched ? sched : json_null()));
}

/* SIGHUP's handler does the reload, on this loop, once we return. */
static void verb_reload(struct ctl_client *cl, const char *verb, json_t *req)
{
	(void)verb;
	(void)req;
	log_info(LOG_SVC_CONTROL, "reload requested");
	if (uv_kill(getpid(), SIGHUP))
		return reply_error(cl, "cannot signal the daemon");
	reply(cl, json_pack("{s:b}", "ok", 1));
}

static const struct {
	const char *name;
	void (*run)(struct ctl_client *cl, const char *verb, json_t *req);
} verbs[] = {
	{ "hold", verb_admin }, { "release", verb_admin },
	{ "delete", verb_admin }, { "requeue", verb_admin },
	{ "flush", verb_admin }, { "deliver", verb_admin },
	{ "status", verb_status }, { "reload", verb_reload },
};

static void dispatch(struct ctl_client *cl, const char *line, size_t len)
{
	json_error_t jerr;
	json_t *req = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr);
	const char *verb = json_string_value(json_object_get(req, "verb"));
	if (!req || !json_is_object(req) || !verb) {
		json_decref(req);
		return reply_error(cl, req ? "a request is an object with a \"verb\""
				       : "invalid JSON");
	}
	for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++) {
		if (!strcmp(verbs[i].name, verb)) {
			verbs[i].run(cl, verb, req);
			json_decref(req);
			return;
		}
	}
	json_decref(req);
	reply_error(cl, "unknown verb");
}

/* Run the next whole line in the buffer, if any and if idle. */
static void client_next(struct ctl_client *cl)
{
	if (cl->busy || cl->closing)
		return;
	char *nl = memchr(cl->buf, '\n', cl->len);
	if (!nl) {
		if (cl->len == CONTROL_LINE_MAX) {
			cl->close_after_reply = 1;
			reply_error(cl, "request too long");
		}
		return;
	}
	size_t used = (size_t)(nl - cl->buf) + 1;
	/* dispatch parses the line before anything can reuse the buffer. */
	uv_read_stop((uv_stream_t *)&cl->pipe);
	cl->busy = 1;
	dispatch(cl, cl->buf, used - 1);
	memmove(cl->buf, cl->buf + used, cl->len - used);
	cl->len -= used;
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
	struct ctl_client *cl = h->data;
	(void)hint;
	*buf = uv_buf_init(cl->buf + cl->len, (unsigned)(CONTROL_LINE_MAX - cl->len));
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	struct ctl_client *cl = s->data;
	(void)buf;
	if (nread < 0) {
		/* EOF, an error, or UV_ENOBUFS: the buffer is full without a
		 * line, which client_next has answered already. */
		if (nread != UV_ENOBUFS)
			client_close(cl);
		else
			uv_read_stop(s);
		return;
	}
	cl->len += (size_t)nread;
	cl->last = uv_now(cl->c->loop);
	client_next(cl);
}

static void client_read_more(struct ctl_client *cl)
{
	client_next(cl);
	if (!cl->busy && !cl->closing &&
	    uv_read_start((uv_stream_t *)&cl->pipe, on_alloc, on_read))
		client_close(cl);
}

/* Over the limit: the client silent for longest, with nothing running,
 * makes room, so idle connections cannot lock relayctl out.  0, or -1
 * when every other client is busy. */
static int evict_idlest(struct control *c, struct ctl_client *fresh)
{
	struct ctl_client *idlest = NULL;
	for (struct ctl_client *cl = c->clients; cl; cl = cl->next)
		if (cl != fresh && !cl->busy && !cl->closing &&
		    (!idlest || cl->last < idlest->last))
			idlest = cl;
	if (!idlest)
		return -1;
	client_close(idlest);
	return 0;
}

static void on_connection(uv_stream_t *server, int status)
{
	struct control *c = server->data;
	struct ctl_client *cl;
	if (status < 0 || c->stopping)
		return;
	if (!(cl = calloc(1, sizeof(*cl))) || !(cl->buf = malloc(CONTROL_LINE_MAX))) {
		free(cl);
		return;
	}
	uv_pipe_init(c->loop, &cl->pipe, 0);
	cl->pipe.data = cl;
	cl->c = c;
	cl->last = uv_now(c->loop);
	if ((cl->next = c->clients))
		cl->next->pprev = &cl->next;
	cl->pprev = &c->clients;
	c->clients = cl;
	c->nclients++;
	if (uv_accept(server, (uv_stream_t *)&cl->pipe)) {
		client_close(cl);
		return;
	}
	if (c->nclients > CONTROL_CLIENTS_MAX && evict_idlest(c, cl)) {
		client_close(cl);
		return;
	}
	client_read_more(cl);
}

/* Close clients silent for CONTROL_IDLE_MS with nothing running. */
static void on_idle_check(uv_timer_t *t)
{
	struct control *c = t->data;
	uint64_t now = uv_now(c->loop);
	for (struct ctl_client *cl = c->clients, *next; cl; cl = next) {
		next = cl->next;
		if (!cl->busy && now - cl->last >= CONTROL_IDLE_MS)
			client_close(cl);
	}
}

/* Bind path 0660, replacing a stale socket (we hold the queue lock: no
 * other relayd can be using it). */
static int bind_socket(struct control *c, char *err, size_t errlen)
{
	struct stat st;
	if (lstat(c->path, &st) == 0 && S_ISSOCK(st.st_mode))
		unlink(c->path);
	mode_t old = umask(0117);
	int rc = uv_pipe_bind(&c->listener, c->path);
	umask(old);
	c->bound = rc == 0;
	if (!rc && chmod(c->path, 0660))
		rc = uv_translate_sys_error(errno);
	if (!rc)
		rc = uv_listen((uv_stream_t *)&c->listener, CONTROL_CLIENTS_MAX,
			       on_connection);
	if (rc)
		snprintf(err, errlen, "control socket %s: %s", c->path, uv_strerror(rc));
	return rc ? -1 : 0;
}

int control_start(struct control **cp, uv_loop_t *loop, const char *path,
		  struct queue *q, const struct control_hooks *hooks,
		  char *err, size_t errlen)
{
	struct control *c = calloc(1, sizeof(*c));
	if (!c || !(c->path = strdup(path))) {
		free(c);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	c->loop = loop;
	c->q = q;
	if (hooks)
		c->h = *hooks;
	c->started = uv_now(loop);
	uv_pipe_init(loop, &c->listener, 0);
	uv_timer_init(loop, &c->idle);
	c->listener.data = c->idle.data = c;
	c->handles = 2;
	if (bind_socket(c, err, errlen)) {
		control_stop(c);
		return -1;
	}
	uv_timer_start(&c->idle, on_idle_check, CONTROL_IDLE_MS / 4,
		       CONTROL_IDLE_MS / 4);
	*cp = c;
	return 0;
}

void control_set_hooks(struct control *c, const struct control_hooks *hooks)
{
	memset(&c->h, 0, sizeof(c->h));
	if (hooks)
		c->h = *hooks;
}

static void on_handle_closed(uv_handle_t *h)
{
	struct control *c = h->data;
	c->handles--;
	maybe_free(c);
}

void control_stop(struct control *c)
{
	if (!c || c->stopping)
		return;
	c->stopping = 1;
	memset(&c->h, 0, sizeof(c->h));     /* the scheduler goes first */
	if (c->bound)
		unlink(c->path);
	uv_close((uv_handle_t *)&c->listener, on_handle_closed);
	uv_close((uv_handle_t *)&c->idle, on_handle_closed);
	for (struct ctl_client *cl = c->clients, *next; cl; cl = next) {
		next = cl->next;
		if (!cl->op_pending)
			client_close(cl);
	}
}
