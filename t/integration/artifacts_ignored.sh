#!/bin/bash
# artifacts_ignored.sh - an in-tree build and `make check` must leave
# `git status` clean.  An out-of-tree build directory holds exactly what
# an in-tree build would write into the source tree (objects, programs,
# test logs, fuzz replays, ...), so every file in it, taken as a path in
# the source tree, must be ignored by .gitignore.
set -u
. "$(dirname "$0")/../lib.sh"

src=$(cd "$top_srcdir" && pwd -P)
bld=$(cd "$top_builddir" && pwd -P)
if [ "$src" = "$bld" ]; then
	echo "1..0 # SKIP in-tree build: run from an out-of-tree build (as .ci/run does)"
	exit 0
fi
if ! git -C "$src" rev-parse --git-dir >/dev/null 2>&1; then
	echo "1..0 # SKIP not a git checkout"
	exit 0
fi
# The files of this build, less what other tests are writing right now
# (their logs are *.log / *.trs, ignored anyway).
files=$(cd "$bld" && find . -type f ! -name '*.log' ! -name '*.trs' | sed 's|^\./||' | sort)
check "the build directory has files to look at" test -n "$files"
not_ignored=$(printf '%s\n' "$files" |
	git -C "$src" check-ignore --no-index --stdin -v -n | sed -n 's/^::\t//p')
for f in $not_ignored; do
	diag "an in-tree build would leave $f untracked: add it to .gitignore"
done
check "every build product is in .gitignore" test -z "$not_ignored"
done_testing
