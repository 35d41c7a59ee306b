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

/* A verb's handler: 0 ok, 1 failure (message on stderr already). */
typedef int relayctl_fn(struct relayctl *ctl, int argc, char **argv);

relayctl_fn relayctl_route;

#endif
