/*
 * control.h - the daemon's control socket: relayctl's way in while relayd
 * runs (protocol in control_proto.h).  Runs on the daemon's loop; every
 * change goes through the queue's group-commit writer (control_admin.h),
 * so it serializes with deliveries, and the hooks let the scheduler
 * cancel deliveries of deleted mail and wake up for mail due now.
 *
 * Hostile or broken clients cost bounded memory (one request buffer of
 * CONTROL_LINE_MAX and one reply each, at most CONTROL_CLIENTS_MAX
 * clients) and never block the loop: a client is read only while it has
 * no request running and no reply unsent.
 */
#ifndef RELAYD_CONTROL_H
#define RELAYD_CONTROL_H

#include <uv.h>
#include "control_admin.h"
#include "control_proto.h"
#include "queue.h"

struct control;

/* Listen on path (a stale socket there is replaced) for the queue q,
 * whose writer runs on loop.  hooks is copied (may be NULL).  0, or -1
 * with the reason in err. */
int control_start(struct control **cp, uv_loop_t *loop, const char *path,
		  struct queue *q, const struct control_hooks *hooks,
		  char *err, size_t errlen);
/* Replace the hooks (the scheduler starts after the socket). */
void control_set_hooks(struct control *c, const struct control_hooks *hooks);
/* Stop listening, remove the socket, close every client; a request in
 * progress finishes first (its op is with the writer), so call this
 * before queue_writer_stop.  The rest is freed by the loop. */
void control_stop(struct control *c);

#endif
