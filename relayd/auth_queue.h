/*
 * auth_queue.h - password checks, bounded and in a fair order.
 *
 * A yescrypt or sha512-crypt check costs milliseconds of CPU on libuv's
 * thread pool.  Unbounded, a flood of bad passwords would fill the pool
 * (starving everything else queued there) and put every real login
 * behind the whole flood.  So at most max_inflight checks run at once;
 * the others wait, per client (IPv4 address or IPv6 /64), and clients
 * take turns: a client with many sessions gets no more turns than one
 * with a single session.  Clients with failures on record ("suspect")
 * wait in a second class that gets one turn in SUSPECT_SHARE, so a real
 * user's login does not queue behind a flood of failing guesses, and
 * the suspects still make progress.  Beyond max_waiting in all, or
 * max_per_client for one client, a check is refused at once
 * (AUTH_QUEUE_BUSY: answer 454 4.7.0).
 *
 * Loop thread only.  The request keeps its own copies of the strings and
 * a reference on the auth_db.
 */
#ifndef RELAYD_AUTH_QUEUE_H
#define RELAYD_AUTH_QUEUE_H

#include <stddef.h>
#include <uv.h>

struct auth_db;
struct auth_queue;

#define AUTH_QUEUE_BUSY (-2)

/* 0 for any bound takes the default: max_inflight the CPUs, at most the
 * thread pool less one thread; max_waiting 1024; max_per_client 8 (the
 * server passes client_connection_limit when larger).
 * NULL on ENOMEM. */
struct auth_queue *auth_queue_new(uv_loop_t *loop, unsigned max_inflight,
				  size_t max_waiting, size_t max_per_client);
/* Free now when idle, else once the last check has reported. */
void auth_queue_free(struct auth_queue *q);

/* Check user/password; cb(arg, ok) runs later on the loop thread.
 * client: the 16-byte client key; suspect: the client has failures on
 * record.  0, AUTH_QUEUE_BUSY (full; cb will not run) or -1 (ENOMEM;
 * cb will not run). */
typedef void auth_verify_cb(void *arg, int ok);
int auth_queue_check(struct auth_queue *q, struct auth_db *db,
		     const unsigned char client[16], int suspect,
		     const char *user, const char *pass,
		     auth_verify_cb *cb, void *arg);

/* Checks running and waiting now (tests, status). */
void auth_queue_stats(const struct auth_queue *q, unsigned *inflight,
		      size_t *waiting);

#endif
