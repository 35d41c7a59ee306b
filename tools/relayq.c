/*
 * relayq.c - "relayq [-f FILE] [-j | -s]": the queue as mailq shows it,
 * as JSON lines (postqueue -j), or summed up by destination and age.
 * It reads the queue through short read-only snapshots, so it needs no
 * running daemon and only read access to queue_dir (the relayd group).
 * Exit codes: 0 ok, 1 failure (message on stderr), 2 usage.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "relayq.h"

#define DEFAULT_CONFIG "/etc/relayd/relayd.conf"

static void usage(void)
{
	fprintf(stderr, "usage: relayq [-f FILE] [-j | -s]\n"
		"  (none)  the queue, mailq-style\n"
		"  -j      one JSON object per message per line\n"
		"  -s      summary by destination domain, age and state\n");
	exit(2);
}

static int load_config(struct config *cfg, const char *path)
{
	if (config_load_quiet(cfg, path, stderr) == 0)
		return 0;
	fprintf(stderr, "relayq: %s: configuration errors\n", path);
	return -1;
}

int relayq_finish(int rc, FILE *out)
{
	if (rc) {
		fprintf(stderr, "relayq: reading the queue: %s\n", queue_strerror(rc));
		return -1;
	}
	if (fflush(out) || ferror(out)) {
		if (errno == EPIPE)     /* relayq | head */
			return 0;
		fprintf(stderr, "relayq: write error: %s\n", strerror(errno));
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	const char *path = DEFAULT_CONFIG;
	int mode = 0, c;
	while ((c = getopt(argc, argv, "f:jsh")) != -1) {
		switch (c) {
		case 'f': path = optarg; break;
		case 'j':
		case 's':
			if (mode)
				usage();
			mode = c;
			break;
		default: usage();
		}
	}
	if (optind != argc)
		usage();
	struct config cfg;
	if (load_config(&cfg, path)) {
		config_free(&cfg);
		return 1;
	}
	struct queue *q;
	if (qsel_open(&q, &cfg, "relayq")) {
		config_free(&cfg);
		return 1;
	}
	/* A big listing goes out in large writes, not one per line. */
	static char obuf[1 << 16];
	setvbuf(stdout, obuf, _IOFBF, sizeof(obuf));
	int64_t now = time(NULL);
	int rc = mode == 'j' ? relayq_json(q, stdout, now) :
		 mode == 's' ? relayq_shape(q, stdout, now) :
			       relayq_text(q, stdout, now);
	queue_close(q);
	config_free(&cfg);
	return rc ? 1 : 0;
}
