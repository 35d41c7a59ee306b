/*
 * control_admin.c - admin actions through the group-commit writer (see
 * control_admin.h).
 */
#include <stdlib.h>
#include <string.h>
#include "control_admin.h"
#include "log.h"

struct control_action {
	const char *name;
	enum queue_admin_action op;
	const char *done;           /* the postsuper log text, or NULL */
	int wakes;                  /* makes mail due now */
	int cancels;                /* takes mail away from deliveries */
	int lifts;                  /* lifts its destinations' backoff */
};

/* deliver is flush for one message: its deferred recipients due now.
 * Both lift the backoff of the destinations concerned, as postqueue -f
 * does for dead ones: an admin who fixed the next hop wants mail now. */
static const struct control_action actions[] = {
	{ "hold", QUEUE_ADMIN_HOLD, "placed on hold", 0, 1, 0 },
	{ "release", QUEUE_ADMIN_RELEASE, "released from hold", 1, 0, 0 },
	{ "delete", QUEUE_ADMIN_DELETE, "removed", 0, 1, 0 },
	{ "requeue", QUEUE_ADMIN_REQUEUE, "requeued", 1, 0, 0 },
	{ "flush", QUEUE_ADMIN_FLUSH, NULL, 1, 0, 1 },
	{ "deliver", QUEUE_ADMIN_FLUSH, NULL, 1, 0, 1 },
};

const struct control_action *control_action_find(const char *name)
{
	for (size_t i = 0; i < sizeof(actions) / sizeof(actions[0]); i++)
		if (!strcmp(actions[i].name, name))
			return &actions[i];
	return NULL;
}

const char *control_action_done(const struct control_action *a)
{
	return a->done ? a->done : "scheduled for delivery now";
}

struct admin_run;
struct admin_item {
	struct admin_run *run;
	queue_id id;
};

struct admin_run {
	const struct control_hooks *h;
	const struct control_action *a;
	size_t pending;
	struct control_admin_result res;
	control_admin_done_fn *done;
	void *arg;
	struct admin_item items[];
};

static void note_error(struct admin_run *run, const char *id, const char *why)
{
	if (run->res.errors && json_array_size(run->res.errors) < CONTROL_ERRORS_MAX)
		json_array_append_new(run->res.errors,
				      json_pack("{s:s, s:s}", "id", id, "error", why));
}

static void item_finished(struct admin_run *run)
{
	if (--run->pending)
		return;
	if (run->a->wakes && run->res.done && run->h && run->h->queue_changed)
		run->h->queue_changed(run->h->arg);
	run->done(run->arg, &run->res);
	json_decref(run->res.errors);
	free(run);
}

static void on_op_done(void *arg, int status, const struct queue_op *op)
{
	struct admin_item *it = arg;
	struct admin_run *run = it->run;
	(void)op;
	if (status == 0) {
		run->res.done++;
		if (run->a->done)
			log_info(LOG_SVC_POSTSUPER, "%s: %s", it->id.s, run->a->done);
		if (run->a->cancels && run->h && run->h->cancel_msg)
			run->h->cancel_msg(run->h->arg, it->id.s);
		if (run->a->lifts && run->h && run->h->lift_msg)
			run->h->lift_msg(run->h->arg, it->id.s);
	} else if (status == QUEUE_ENOENT) {
		run->res.missing++;
		note_error(run, it->id.s, "no such message");
	} else {
		run->res.failed++;
		if (!run->res.err)
			run->res.err = status;
		note_error(run, it->id.s, queue_strerror(status));
		log_warn(LOG_SVC_POSTSUPER, "%s: %s: %s", it->id.s, run->a->name,
			 queue_strerror(status));
	}
	item_finished(run);
}

int control_admin_run(struct queue *q, const struct control_hooks *h,
		      const struct control_action *a, const char *const *ids,
		      size_t n, control_admin_done_fn *done, void *arg)
{
	struct admin_run *run = calloc(1, sizeof(*run) + n * sizeof(run->items[0]));
	if (!run || !(run->res.errors = json_array())) {
		free(run);
		return QUEUE_ENOMEM;
	}
	run->h = h;
	run->a = a;
	run->done = done;
	run->arg = arg;
	run->pending = n + 1;       /* + 1: finished below, after every submit */
	for (size_t i = 0; i < n; i++) {
		struct admin_item *it = &run->items[i];
		it->run = run;
		snprintf(it->id.s, sizeof(it->id.s), "%.*s", QUEUE_ID_LEN, ids[i]);
		if (!queue_id_valid(ids[i])) {
			run->res.failed++;
			note_error(run, it->id.s, "not a queue id");
			run->pending--;
			continue;
		}
		struct queue_op *op = queue_op_admin(ids[i], a->op);
		int rc = op ? queue_writer_submit(q, op, on_op_done, it) : QUEUE_ENOMEM;
		if (rc) {               /* the writer has freed the op */
			run->res.failed++;
			if (!run->res.err)
				run->res.err = rc;
			note_error(run, it->id.s, queue_strerror(rc));
			run->pending--;
		}
	}
	item_finished(run);
	return 0;
}
