/*
 * relayctl.h - relayctl's verbs: each is one entry of the command table
 * in relayctl.c with its argument count and handler, in its own file
 * (relayctl_VERB.c).
 */
#ifndef RELAYD_RELAYCTL_H
#define RELAYD_RELAYCTL_H

#include "config.h"

/* What every verb gets: the loaded configuration. */
struct relayctl {
	const char *config_path;
	struct config cfg;
};

/* A verb's handler, given the words after the verb (argv[-1] is the
 * verb): 0 ok, 1 failure (message on stderr already), 2 usage. */
typedef int relayctl_fn(struct relayctl *ctl, int argc, char **argv);

relayctl_fn relayctl_route;
relayctl_fn relayctl_hold, relayctl_release, relayctl_delete, relayctl_requeue;
relayctl_fn relayctl_flush, relayctl_deliver, relayctl_status, relayctl_reload;

#endif
