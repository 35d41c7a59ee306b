# lib.sh - TAP helpers for the shell integration tests.
# Source it; call ok/not_ok through `check`, then `done_testing`.
n=0
failed=0
check() {
	# check NAME COMMAND...: one test point, ok when COMMAND succeeds.
	local name=$1
	shift
	n=$((n + 1))
	if "$@" >/dev/null 2>&1; then
		echo "ok $n - $name"
	else
		echo "not ok $n - $name"
		failed=$((failed + 1))
	fi
}
diag() { echo "# $*"; }
done_testing() {
	echo "1..$n"
	[ "$failed" -eq 0 ]
}
: "${top_srcdir:=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}"
: "${top_builddir:=$top_srcdir}"
