/*
 * relayctl.c - relayd's admin tool: "relayctl [-f FILE] VERB ARGS...".
 * Verbs are dispatched through one table (name, arguments, handler, the
 * line of usage); a verb that is added is one row and one handler.
 * Exit codes: 0 ok, 1 failure (message on stderr), 2 usage.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "log.h"
#include "relayctl.h"

#define DEFAULT_CONFIG "/etc/relayd/relayd.conf"

struct verb {
	const char *name;
	int min_args, max_args;
	relayctl_fn *run;
	const char *usage;      /* arguments, for the usage message */
	const char *help;
};

#define FILTERS "[--from ADDR|@DOMAIN] [--to-domain D] [--older-than DURATION]\n" \
	"           [--reason REGEX] [--dry-run] ID...|ALL|-"
#define ANY 1 << 20

static const struct verb verbs[] = {
	{ "route", 1, 1, relayctl_route, "ADDRESS|DOMAIN",
	  "the next hops delivery would try, in order (works without the daemon)" },
	{ "flush", 0, 0, relayctl_flush, "", "attempt every deferred message now" },
	{ "deliver", 1, 1, relayctl_deliver, "ID", "attempt one message now" },
	{ "hold", 0, ANY, relayctl_hold, FILTERS, "put messages on hold: no delivery" },
	{ "release", 0, ANY, relayctl_release, FILTERS,
	  "release held messages, due now" },
	{ "delete", 0, ANY, relayctl_delete, FILTERS, "remove messages, without a bounce" },
	{ "requeue", 0, ANY, relayctl_requeue, FILTERS,
	  "every recipient still to deliver due now (releases held ones)" },
	{ "status", 0, 0, relayctl_status, "", "is relayd running, its counters, queue size" },
	{ "reload", 0, 0, relayctl_reload, "", "reload the configuration (SIGHUP)" },
};

#define NVERBS (sizeof(verbs) / sizeof(verbs[0]))

static void usage(void)
{
	fprintf(stderr, "usage: relayctl [-f FILE] VERB [ARGS]\n");
	for (size_t i = 0; i < NVERBS; i++)
		fprintf(stderr, "  relayctl %s %s\n      %s\n", verbs[i].name,
			verbs[i].usage, verbs[i].help);
	exit(2);
}

/* Load the configuration; its warnings are shown only with its errors,
 * so that a verb's output is not drowned in "not implemented yet". */
static int load_config(struct relayctl *ctl)
{
	if (config_load_quiet(&ctl->cfg, ctl->config_path, stderr) == 0)
		return 0;
	fprintf(stderr, "relayctl: %s: configuration errors\n", ctl->config_path);
	return -1;
}

int main(int argc, char **argv)
{
	struct relayctl ctl = { .config_path = DEFAULT_CONFIG };
	int c;
	while ((c = getopt(argc, argv, "+f:h")) != -1) {
		switch (c) {
		case 'f': ctl.config_path = optarg; break;
		default: usage();
		}
	}
	if (optind >= argc)
		usage();
	const struct verb *v = NULL;
	for (size_t i = 0; i < NVERBS; i++)
		if (!strcmp(argv[optind], verbs[i].name))
			v = &verbs[i];
	int nargs = argc - optind - 1;
	if (!v) {
		fprintf(stderr, "relayctl: unknown verb '%s'\n", argv[optind]);
		usage();
	}
	if (nargs < v->min_args || nargs > v->max_args)
		usage();
	if (load_config(&ctl)) {
		config_free(&ctl.cfg);
		return 1;
	}
	/* Postfix-style log lines for the changes made without the daemon. */
	/* RELAYD_SYSLOG_SOCKET (tests only) replaces /dev/log. */
	if (getenv("RELAYD_SYSLOG_SOCKET"))
		log_set_syslog_path(getenv("RELAYD_SYSLOG_SOCKET"));
	log_open(ctl.cfg.syslog_name,
		 ctl.cfg.log_format == LOG_FORMAT_JSON ? LOG_FLAG_JSON : 0);
	int rc = v->run(&ctl, nargs, argv + optind + 1);
	config_free(&ctl.cfg);
	return rc == 2 ? 2 : rc ? 1 : 0;
}
