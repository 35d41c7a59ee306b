/*
 * metrics_http.h - the Prometheus endpoint on metrics_listen: GET /metrics
 * answers the exposition of metrics.h over plain HTTP/1.1; any other path
 * is 404, any other method 405.
 *
 * libmicrohttpd parses HTTP; it runs without threads of its own, its epoll
 * descriptor watched by a uv_poll on the daemon's loop and its timeouts
 * by a uv_timer, so a scrape is one more event on the loop.  Requests are
 * bounded (METRICS_HTTP_MEMORY per connection: headers beyond it get 431
 * or 413 and the connection closes), idle connections time out, and at
 * most METRICS_HTTP_CONNECTIONS are open at once.
 */
#ifndef RELAYD_METRICS_HTTP_H
#define RELAYD_METRICS_HTTP_H

#include <stddef.h>
#include <uv.h>
#include "config.h"

#define METRICS_HTTP_MEMORY (16 * 1024)   /* bytes per connection */
#define METRICS_HTTP_TIMEOUT 10           /* seconds idle */
#define METRICS_HTTP_CONNECTIONS 64

struct metrics_http;

/* Bind and listen on addr (as root, before privileges drop: the port may
 * be privileged).  0, or -1 with "ADDR: reason" in err. */
int metrics_http_new(struct metrics_http **out, uv_loop_t *loop,
		     const struct config_addr *addr, char *err, size_t errlen);
/* Start answering (after the drop). */
int metrics_http_start(struct metrics_http *h, char *err, size_t errlen);
/* Close every connection and the listener; h is freed once its handles
 * are closed (the loop must run on). */
void metrics_http_free(struct metrics_http *h);

#endif
