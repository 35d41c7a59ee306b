#!/bin/bash
# queue_bounce.sh - the bounce group under SIGKILL: a crash never loses a
# bounce, never makes two, never leaves a failed original behind.
#
# Each round starts t/helpers/queue_bounce as a child that stores messages
# and bounces them through atomic groups (fail + queue bounce + remove the
# original) from 16 workers, kills it with SIGKILL after 50..400 ms, and
# checks the queue with "queue_bounce verify".  Rounds accumulate in one
# queue.  TAP output.
set -u

: "${top_builddir:=.}"
helper=$top_builddir/t/helpers/queue_bounce
rounds=20
time_limit=90

if [ ! -x "$helper" ]; then
	echo "1..0 # SKIP $helper not built"
	exit 0
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/queue_bounce.XXXXXX") || exit 1
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

n=0
max=0
start=$SECONDS
for ((round = 1; round <= rounds; round++)); do
	if ((SECONDS - start >= time_limit)); then
		echo "# time limit of ${time_limit}s reached after $((round - 1)) rounds"
		break
	fi
	"$helper" child "$tmp/queue" "$tmp/acks" "$RANDOM$round" 2>"$tmp/child.err" &
	child=$!
	ms=$((50 + RANDOM % 351))
	sleep "$((ms / 1000)).$(printf %03d $((ms % 1000)))"
	alive=1
	kill -0 "$child" 2>/dev/null || alive=0
	kill -9 "$child" 2>/dev/null
	wait "$child" 2>/dev/null
	child=
	n=$((n + 1))
	if ((!alive)); then
		echo "not ok $n - round $round: child exited by itself"
		sed -e 's/^/#   /' "$tmp/child.err" | head -n 20
		continue
	fi
	if out=$("$helper" verify "$tmp/queue" "$tmp/acks" 2>"$tmp/verify.err"); then
		m=$(echo "$out" | sed -n 's/^verified \([0-9]*\) bounces$/\1/p')
		echo "ok $n - round $round: ${m:-0} acknowledged bounces, no bounce lost or doubled (killed after ${ms} ms)"
		((${m:-0} > max)) && max=${m:-0}
	else
		echo "not ok $n - round $round: verify failed after ${ms} ms"
		sed -e 's/^/#   /' "$tmp/verify.err" | head -n 40
	fi
done
n=$((n + 1))
if ((max > 0)); then
	echo "ok $n - bounces were acknowledged ($max)"
else
	echo "not ok $n - no bounce was ever acknowledged"
fi
echo "1..$n"
