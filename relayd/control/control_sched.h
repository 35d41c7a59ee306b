/*
 * control_sched.h - the control socket's hooks filled in with the
 * delivery scheduler (delivery/sched.h): wake it after mail was made due
 * now, cancel deliveries of mail deleted or held, and report its
 * counters in "status".  The daemon, which owns both, joins them.
 */
#ifndef RELAYD_CONTROL_SCHED_H
#define RELAYD_CONTROL_SCHED_H

#include "control_admin.h"

struct sched;
/* Fill h for s (which must outlive the control socket's use of h). */
void control_hooks_sched(struct control_hooks *h, struct sched *s);

#endif
