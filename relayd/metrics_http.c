/*
 * metrics_http.c - libmicrohttpd driven by the libuv loop (metrics_http.h).
 *
 * The listening socket is made here, not by libmicrohttpd, so that a bind
 * that fails says which address and why, in the daemon's own words.
 * libmicrohttpd then runs in "external polling" mode with epoll: its one
 * epoll descriptor is readable whenever any of its sockets has work, and
 * MHD_run never blocks.  After every run the timer is set to what
 * MHD_get_timeout asks for (connection timeouts, or 0 when work is
 * already buffered).
 */
#include <errno.h>
#include <microhttpd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include "log.h"
#include "metrics.h"
#include "metrics_http.h"

struct metrics_http {
	uv_loop_t *loop;
	int fd;                      /* listener until MHD owns it */
	struct MHD_Daemon *mhd;
	uv_poll_t poll;
	uv_timer_t timer;
	int handles;                 /* open libuv handles */
	char name[80];               /* "127.0.0.1:9525" for messages */
	uint64_t logged_at;          /* uv_now() of the last warning */
	unsigned long unlogged;      /* warnings since, not written */
};

static const char NOT_FOUND[] = "not found: try /metrics\n";
static const char NOT_ALLOWED[] = "method not allowed\n";

static enum MHD_Result reply_static(struct MHD_Connection *c, unsigned status,
				    const char *text)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(
		strlen(text), (void *)text, MHD_RESPMEM_PERSISTENT);
	if (!r)
		return MHD_NO;
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain; charset=utf-8");
	if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
		MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
	enum MHD_Result rc = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return rc;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c,
				  const char *url, const char *method,
				  const char *version, const char *upload,
				  size_t *upload_len, void **con_cls)
{
	(void)cls; (void)version; (void)upload; (void)con_cls;
	/* Answer at the first call, body or not: a request with a body is
	 * not one we serve, and MHD closes the connection after the reply
	 * instead of reading the body. */
	*upload_len = 0;
	if (strcmp(url, "/metrics") != 0)
		return reply_static(c, MHD_HTTP_NOT_FOUND, NOT_FOUND);
	if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 &&
	    strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
		return reply_static(c, MHD_HTTP_METHOD_NOT_ALLOWED, NOT_ALLOWED);
	size_t len;
	char *text = metrics_render(&len);
	if (!text)
		return MHD_NO;
	struct MHD_Response *r = MHD_create_response_from_buffer(len, text,
								 MHD_RESPMEM_MUST_FREE);
	if (!r) {
		free(text);
		return MHD_NO;
	}
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE,
				"text/plain; version=0.0.4; charset=utf-8");
	enum MHD_Result rc = MHD_queue_response(c, MHD_HTTP_OK, r);
	MHD_destroy_response(r);
	return rc;
}

/* libmicrohttpd's complaints (a client past the connection limit, a
 * request too big) come per connection: at most one line a second, so
 * whoever can reach the port cannot flood the log through it. */
static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	struct metrics_http *h = cls;
	uint64_t now = uv_now(h->loop);
	if (h->logged_at && now - h->logged_at < 1000) {
		h->unlogged++;
		return;
	}
	char text[512];
	vsnprintf(text, sizeof(text), fmt, ap);
	text[strcspn(text, "\n")] = 0;
	if (h->unlogged)
		log_warn(LOG_SVC_MASTER, "metrics %s: %s (and %lu more not logged)", h->name,
			 text, h->unlogged);
	else
		log_warn(LOG_SVC_MASTER, "metrics %s: %s", h->name, text);
	h->logged_at = now;
	h->unlogged = 0;
}

static void run(struct metrics_http *h);

static void on_poll(uv_poll_t *p, int status, int events)
{
	(void)status; (void)events;
	run(p->data);
}

static void on_timer(uv_timer_t *t)
{
	run(t->data);
}

/* Let MHD do what is ready, then wake again when it asks to. */
static void run(struct metrics_http *h)
{
	MHD_UNSIGNED_LONG_LONG ms;
	MHD_run(h->mhd);
	if (MHD_get_timeout(h->mhd, &ms) == MHD_YES)
		uv_timer_start(&h->timer, on_timer, ms, 0);
	else
		uv_timer_stop(&h->timer);
}

static void describe(const struct config_addr *a, char *out, size_t len)
{
	if (a->ss.ss_family == AF_INET6)
		snprintf(out, len, "[%s]:%u", a->host, a->port);
	else
		snprintf(out, len, "%s:%u", a->host, a->port);
}

int metrics_http_new(struct metrics_http **out, uv_loop_t *loop,
		     const struct config_addr *addr, char *err, size_t errlen)
{
	struct metrics_http *h = calloc(1, sizeof(*h));
	*out = NULL;
	if (!h) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	h->loop = loop;
	describe(addr, h->name, sizeof(h->name));
	const int one = 1;
	h->fd = socket(addr->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (h->fd < 0 ||
	    setsockopt(h->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    (addr->ss.ss_family == AF_INET6 &&
	     setsockopt(h->fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one))) ||
	    bind(h->fd, (const struct sockaddr *)&addr->ss, addr->sslen) ||
	    listen(h->fd, 64)) {
		snprintf(err, errlen, "cannot listen on metrics_listen %s: %s", h->name,
			 strerror(errno));
		if (h->fd >= 0)
			close(h->fd);
		free(h);
		return -1;
	}
	*out = h;
	return 0;
}

int metrics_http_start(struct metrics_http *h, char *err, size_t errlen)
{
	h->mhd = MHD_start_daemon(
		MHD_USE_EPOLL | MHD_USE_ERROR_LOG, 0, NULL, NULL, on_request, h,
		/* First, or libmicrohttpd warns that messages about the
		 * options before it went to its own logger (stderr). */
		MHD_OPTION_EXTERNAL_LOGGER, mhd_log, h,
		MHD_OPTION_LISTEN_SOCKET, (MHD_socket)h->fd,
		MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)METRICS_HTTP_MEMORY,
		MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)METRICS_HTTP_TIMEOUT,
		MHD_OPTION_CONNECTION_LIMIT, (unsigned)METRICS_HTTP_CONNECTIONS,
		MHD_OPTION_END);
	if (h->mhd)
		h->fd = -1;          /* MHD's now: MHD_stop_daemon closes it */
	const union MHD_DaemonInfo *info = h->mhd ?
		MHD_get_daemon_info(h->mhd, MHD_DAEMON_INFO_EPOLL_FD) : NULL;
	if (!info) {
		snprintf(err, errlen, "metrics_listen %s: cannot start the HTTP server",
			 h->name);
		return -1;
	}
	if (uv_poll_init(h->loop, &h->poll, info->epoll_fd)) {
		snprintf(err, errlen, "metrics_listen %s: cannot poll", h->name);
		return -1;
	}
	h->handles++;
	uv_timer_init(h->loop, &h->timer);
	h->handles++;
	h->poll.data = h->timer.data = h;
	uv_poll_start(&h->poll, UV_READABLE, on_poll);
	log_info(LOG_SVC_MASTER, "metrics on http://%s/metrics", h->name);
	return 0;
}

static void on_closed(uv_handle_t *hd)
{
	struct metrics_http *h = hd->data;
	if (--h->handles == 0)
		free(h);
}

void metrics_http_free(struct metrics_http *h)
{
	if (!h)
		return;
	/* The poll stops before MHD closes the descriptor it watches. */
	if (h->handles)
		uv_poll_stop(&h->poll);
	if (h->mhd)
		MHD_stop_daemon(h->mhd);
	if (h->fd >= 0)
		close(h->fd);
	if (!h->handles) {
		free(h);
		return;
	}
	uv_close((uv_handle_t *)&h->poll, on_closed);
	uv_close((uv_handle_t *)&h->timer, on_closed);
}
