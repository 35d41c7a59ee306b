/*
 * relayctl_status.c - "relayctl status": is relayd running (the daemon
 * lock), the queue's size (a read-only snapshot, so it works either
 * way) and, from the control socket, the daemon's counters, one
 * "key: value" per line.  Exit 0 when relayd runs, 1 when it does not.
 * "relayctl reload": the daemon rereads its configuration (as SIGHUP),
 * asked through the socket, or signalled at the pid in its lock file
 * when the socket cannot be reached.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include "ctl_client.h"
#include "qsel.h"
#include "relayctl.h"

static void print_json(const char *prefix, json_t *o)
{
	const char *k;
	json_t *v;
	json_object_foreach(o, k, v) {
		if (!strcmp(k, "ok"))
			continue;
		if (json_is_object(v)) {
			char p[128];
			snprintf(p, sizeof(p), "%s%s.", prefix, k);
			print_json(p, v);
		} else if (json_is_integer(v)) {
			printf("%s%s: %lld\n", prefix, k, (long long)json_integer_value(v));
		} else if (json_is_string(v)) {
			printf("%s%s: %s\n", prefix, k, json_string_value(v));
		}
	}
}

/* One request on a fresh connection; the reply, or NULL (said why). */
static json_t *ask(const struct relayctl *ctl, const char *verb)
{
	struct ctl_client c;
	char err[512];
	json_t *req = json_pack("{s:s}", "verb", verb), *rep = NULL;
	if (req && !ctl_client_open(&c, ctl->cfg.control_socket, err, sizeof(err))) {
		rep = ctl_client_call(&c, req, err, sizeof(err));
		ctl_client_close(&c);
	}
	json_decref(req);
	if (!rep)
		fprintf(stderr, "relayctl: %s\n", err);
	else if (!json_is_true(json_object_get(rep, "ok"))) {
		const char *why = json_string_value(json_object_get(rep, "error"));
		fprintf(stderr, "relayctl: the daemon says: %s\n", why ? why : "error");
		json_decref(rep);
		rep = NULL;
	}
	return rep;
}

int relayctl_status(struct relayctl *ctl, int argc, char **argv)
{
	long pid = 0;
	struct queue *q;
	struct queue_read *rd;
	uint64_t n = 0;
	(void)argc;
	(void)argv;
	int running = queue_lock_probe(ctl->cfg.queue_dir, &pid);
	if (running < 0) {
		fprintf(stderr, "relayctl: queue %s: %s\n", ctl->cfg.queue_dir,
			queue_strerror(running));
		return 1;
	}
	printf("daemon: %s\n", running ? "running" : "stopped");
	if (running)
		printf("pid: %ld\n", pid);
	if (qsel_open(&q, &ctl->cfg, "relayctl") == 0) {
		int rc = queue_read_begin(q, &rd);
		if (!rc) {
			rc = queue_count(rd, &n);
			queue_read_end(rd);
		}
		if (!rc)
			printf("queue.messages: %llu\n", (unsigned long long)n);
		queue_close(q);
	}
	if (running) {
		json_t *rep = ask(ctl, "status");
		if (!rep)
			return 1;
		json_object_del(rep, "pid");
		json_object_del(rep, "queue");     /* printed above */
		print_json("", rep);
		json_decref(rep);
	}
	if (fflush(stdout))
		return 1;
	if (!running)
		fprintf(stderr, "relayctl: relayd is not running\n");
	return running ? 0 : 1;
}

int relayctl_reload(struct relayctl *ctl, int argc, char **argv)
{
	long pid = 0;
	(void)argc;
	(void)argv;
	int running = queue_lock_probe(ctl->cfg.queue_dir, &pid);
	if (running != 1) {
		fprintf(stderr, "relayctl: relayd is not running\n");
		return 1;
	}
	json_t *rep = ask(ctl, "reload");
	if (rep) {
		json_decref(rep);
		return 0;
	}
	if (pid > 0 && kill((pid_t)pid, SIGHUP) == 0) {
		fprintf(stderr, "relayctl: sent SIGHUP to relayd (pid %ld)\n", pid);
		return 0;
	}
	fprintf(stderr, "relayctl: cannot signal relayd (pid %ld): %m\n", pid);
	return 1;
}
