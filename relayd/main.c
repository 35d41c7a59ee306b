/*
 * main.c - relayd's command line (DESIGN §4): -f FILE, -F, -t, -n.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "config.h"
#include "daemon.h"
#include "log.h"
#include "service.h"

#define DEFAULT_CONFIG "/etc/relayd/relayd.conf"

/* sysexits.h's EX_CONFIG: the service manager must not restart a daemon
 * whose file is wrong (the unit's RestartPreventExitStatus); -t keeps 1,
 * its documented status. */
#define EXIT_CONFIG 78

static void usage(void)
{
	fprintf(stderr, "usage: relayd [-F] [-t] [-n] [-f FILE]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	const char *path = DEFAULT_CONFIG;
	int foreground = 0, check = 0, dump = 0, c;
	while ((c = getopt(argc, argv, "f:Ftnh")) != -1) {
		switch (c) {
		case 'f': path = optarg; break;
		case 'F': foreground = 1; break;
		case 't': check = 1; break;
		case 'n': dump = 1; break;
		default: usage();
		}
	}
	if (optind != argc)
		usage();

	struct config *cfg;
	int errors = config_new(&cfg, path, stderr);
	if (errors != 0) {
		if (!check)
			fprintf(stderr, "relayd: fatal: %s: configuration errors\n", path);
		return check ? 1 : EXIT_CONFIG;
	}
	if (check || dump) {
		if (dump)
			config_dump(cfg, stdout);
		config_unref(cfg);
		return 0;
	}

	/* A peer that closes while a reply is being written must cost its
	 * session an EPIPE, not the daemon its life. */
	signal(SIGPIPE, SIG_IGN);
	struct daemon d = { .cfg = cfg, .config_path = path };
	d.log_flags = foreground ? LOG_FLAG_STDERR : 0;
	if (cfg->log_format == LOG_FORMAT_JSON)
		d.log_flags |= LOG_FLAG_JSON;
	log_open(cfg->syslog_name, d.log_flags);
	if (!foreground && service_detach() != 0)
		log_fatal(LOG_SVC_MASTER, "cannot detach: %m");
	if (daemon_start(&d) != 0) {
		service_started(0);
		log_fatal(LOG_SVC_MASTER, "relayd not started: see the error above");
	}
	service_started(1);
	return daemon_run(&d);
}
