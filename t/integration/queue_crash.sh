#!/bin/bash
# queue_crash.sh - the durability contract under SIGKILL.
#
# Each round starts t/helpers/queue_crash as a child that submits messages
# through the group-commit writer from 16 concurrent submitters and logs
# every acknowledged message (its "250") to an ack file, kills it with
# SIGKILL after a random 50..400 ms, then checks with "queue_crash verify"
# that every acknowledged message is in the queue, whole, with its
# recipients due.  Rounds accumulate in one queue directory, so each round
# also checks that the queue reopens writable after a crash.  TAP output.
#
# Other crash scenarios run through this same loop with another helper
# that takes the same "child DIR ACKFILE SEED" and "verify DIR ACKFILE"
# arguments and prints "verified N messages" (queue_bounce.sh):
# QUEUE_CRASH_HELPER, QUEUE_CRASH_ROUNDS, QUEUE_CRASH_TIME.
set -u

: "${top_builddir:=.}"
helper=$top_builddir/t/helpers/${QUEUE_CRASH_HELPER:-queue_crash}
rounds=${QUEUE_CRASH_ROUNDS:-50}
time_limit=${QUEUE_CRASH_TIME:-240}     # seconds, whatever the number of rounds done

if [ ! -x "$helper" ]; then
	echo "1..0 # SKIP $helper not built"
	exit 0
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/queue_crash.XXXXXX") || exit 1
child=
cleanup() {
	if [ -n "$child" ]; then
		kill -9 "$child" 2>/dev/null
		wait "$child" 2>/dev/null
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

qdir=$tmp/queue
acks=$tmp/acks
n=0
max_acked=0
prev=0
start=$SECONDS

# diag FILE: copy a file into the TAP stream as comments.
diag() {
	sed -e 's/^/#   /' "$1" | head -n 40
}

for ((round = 1; round <= rounds; round++)); do
	if ((SECONDS - start >= time_limit)); then
		echo "# time limit of ${time_limit}s reached after $((round - 1)) rounds"
		break
	fi
	seed=$(( (RANDOM << 30) ^ (RANDOM << 15) ^ RANDOM ^ round ))
	"$helper" child "$qdir" "$acks" "$seed" 2>"$tmp/child.err" &
	child=$!
	ms=$((50 + RANDOM % 351))
	sleep "$((ms / 1000)).$(printf %03d $((ms % 1000)))"
	alive=1
	kill -0 "$child" 2>/dev/null || alive=0
	kill -9 "$child" 2>/dev/null
	wait "$child" 2>/dev/null
	status=$?
	child=

	n=$((n + 1))
	if ((!alive)); then
		echo "not ok $n - round $round: child exited by itself (status $status) after ${ms} ms"
		diag "$tmp/child.err"
		continue
	fi
	if out=$("$helper" verify "$qdir" "$acks" 2>"$tmp/verify.err"); then
		m=$(echo "$out" | sed -n 's/^verified \([0-9]*\) messages$/\1/p')
		m=${m:-0}
		echo "ok $n - round $round: $m acknowledged messages intact (+$((m - prev)) after ${ms} ms, seed $seed)"
		prev=$m
		((m > max_acked)) && max_acked=$m
	else
		echo "not ok $n - round $round: verify failed after ${ms} ms (seed $seed)"
		diag "$tmp/verify.err"
	fi
done

n=$((n + 1))
if ((max_acked > 0)); then
	echo "ok $n - some round acknowledged messages ($max_acked in all, $((SECONDS - start)) s)"
else
	echo "not ok $n - no round acknowledged any message"
	[ -s "$tmp/child.err" ] && diag "$tmp/child.err"
fi
echo "1..$n"
