#!/bin/bash
# queue_bounce.sh - the bounce group under SIGKILL: a crash never loses a
# bounce, never makes two, never leaves a failed original behind.
#
# queue_crash.sh's rounds with t/helpers/queue_bounce as the child: it
# stores messages and bounces each through one atomic group (fail the
# recipient + queue the bounce + remove the original) from 16 workers,
# is killed with SIGKILL after 50..400 ms, and "queue_bounce verify"
# checks the queue after each round.  TAP output.
QUEUE_CRASH_HELPER=queue_bounce QUEUE_CRASH_ROUNDS=20 QUEUE_CRASH_TIME=90 \
	exec bash "$(dirname "$0")/queue_crash.sh"
