/*
 * daemon.h - the daemon's context: the one place that owns the loop, the
 * configuration, the queue and the services built on them.
 */
#ifndef RELAYD_DAEMON_H
#define RELAYD_DAEMON_H

#include <uv.h>
#include "config.h"
#include "queue.h"

struct smtp_server;
struct dns_resolver;
struct control;
struct sched;
struct metrics_http;
struct bounce;

struct daemon {
	uv_loop_t *loop;
	struct config *cfg;          /* current snapshot (one reference) */
	struct queue *queue;
	struct queue_lock *qlock;    /* held while we run: tools look at it */
	struct smtp_server *smtpd;
	struct dns_resolver *dns;    /* dns_servers: read at start only */
	struct control *control;     /* the admin tools' socket */
	struct sched *sched;         /* the delivery scheduler */
	struct bounce *bounce;       /* its report (DSN) service */
	int stop_waiting;            /* server and scheduler still stopping */
	struct metrics_http *metrics;  /* metrics_listen; NULL: none */
	uv_signal_t sig_term, sig_int, sig_hup;
	uv_timer_t reader_timer;     /* clears dead readers' slots */
	uv_timer_t settle_timer;     /* a reload's one retry (passwd mid-rewrite) */
	int settle_tried;
	int stopping;
	int exit_code;               /* daemon_run's result */
	const char *config_path;
	char user[64];               /* who the daemon runs as, for messages */
	unsigned log_flags;
};

/* Open the queue, start the services; 0 or -1 (logged). */
int daemon_start(struct daemon *d);
/* Run the loop until a graceful stop completes; returns the exit code. */
int daemon_run(struct daemon *d);

#endif
