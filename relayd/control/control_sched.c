/*
 * control_sched.c - the control socket's hooks on the scheduler
 * (control_sched.h).
 */
#include "control_sched.h"
#include "delivery/sched.h"

static void wake(void *arg)
{
	sched_wake(arg);
}

static int cancel(void *arg, const char *id)
{
	return sched_cancel_msg(arg, id);
}

static void lift(void *arg, const char *id)
{
	sched_lift_msg(arg, id);
}

static void stats(void *arg, json_t *out)
{
	struct sched_stats st;
	sched_stats(arg, &st);
	json_object_set_new(out, "connections", json_integer(st.connections));
	json_object_set_new(out, "deliveries", json_integer(st.deliveries));
	json_object_set_new(out, "messages", json_integer(st.messages));
	json_object_set_new(out, "recipients", json_integer(st.recipients));
	json_object_set_new(out, "destinations", json_integer(st.destinations));
	json_object_set_new(out, "sent", json_integer((json_int_t)st.sent));
	json_object_set_new(out, "deferred", json_integer((json_int_t)st.deferred));
	json_object_set_new(out, "bounced", json_integer((json_int_t)st.bounced));
	json_object_set_new(out, "expired", json_integer((json_int_t)st.expired));
}

void control_hooks_sched(struct control_hooks *h, struct sched *s)
{
	*h = (struct control_hooks){ .arg = s, .queue_changed = wake,
				     .cancel_msg = cancel, .lift_msg = lift,
				     .stats = stats };
}
