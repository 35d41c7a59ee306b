/*
 * ctl_backend.h - where relayctl's changes go: through the daemon's
 * control socket while relayd runs (queue_lock_probe says so), or, when
 * it does not, straight into the queue on a loop and a group-commit
 * writer of relayctl's own, holding the daemon lock meanwhile so that
 * relayd cannot start under it.  Both ways end in control_admin_run.
 *
 * Run as root, the direct way first becomes the owner of queue_dir, so
 * that nothing it creates there is root's.
 */
#ifndef RELAYD_CTL_BACKEND_H
#define RELAYD_CTL_BACKEND_H

#include <uv.h>
#include "config.h"
#include "control/control_admin.h"
#include "ctl_client.h"

struct ctl_backend {
	int direct;
	struct ctl_client sock;        /* !direct */
	struct queue *q;               /* direct */
	struct queue_lock *lock;
	uv_loop_t loop;
	int loop_live, writer_live;
};

/* Counts of one batch (control_admin_result without the errors). */
struct ctl_batch {
	size_t done, missing, failed;
	char first_error[256];
};

int ctl_backend_open(struct ctl_backend *b, const struct config *cfg,
		     const char *prog);
/* Apply the action called verb to n ids (at most CONTROL_IDS_MAX); 0 or
 * -1 (message on stderr).  Per-id troubles are counted in *r. */
int ctl_backend_run(struct ctl_backend *b, const char *verb,
		    const char *const *ids, size_t n, struct ctl_batch *r);
void ctl_backend_close(struct ctl_backend *b);

#endif
