/*
 * relayq.h - relayq's three views of the queue, each a walk over every
 * message (qsel_walk) that writes to out: the mailq listing
 * (relayq_text.c), one JSON object per message (relayq_json.c) and the
 * summary by destination and age (relayq_shape.c).  Each returns 0, or
 * -1 after a message on stderr.
 */
#ifndef RELAYD_RELAYQ_H
#define RELAYD_RELAYQ_H

#include <stdio.h>
#include "qsel.h"

/* Messages copied out of one snapshot at a time. */
#define RELAYQ_PAGE 1000

int relayq_text(struct queue *q, FILE *out, int64_t now);
int relayq_json(struct queue *q, FILE *out, int64_t now);
int relayq_shape(struct queue *q, FILE *out, int64_t now);

/* Report a walk's error (QUEUE_E* code) or a write error on out. */
int relayq_finish(int rc, FILE *out);

#endif
