#!/bin/bash
# docs.sh - the documentation stands on its own: every man page renders
# without a warning (groff -ww, man --warnings), and neither the README,
# the man pages nor doc/ send readers outside the repository.
set -u
. "$(dirname "$0")/../lib.sh"
export LC_ALL=C.UTF-8 MANWIDTH=80

for page in "$top_srcdir"/man/*.[1-8]; do
	name=$(basename "$page")
	out=$(groff -ww -z -man -t "$page" 2>&1)
	check "$name: groff -ww -z -man: no warning" test -z "$out"
	[ -z "$out" ] || diag "$out"
	if command -v man >/dev/null; then
		out=$(man --warnings -l "$page" 2>&1 >/dev/null)
		check "$name: man --warnings -l: no warning" test -z "$out"
		[ -z "$out" ] || diag "$out"
	fi
	check "$name: has NAME and SYNOPSIS or DESCRIPTION" \
		bash -c "grep -q '^\.SH NAME' '$page' && grep -Eq '^\.SH (SYNOPSIS|DESCRIPTION)' '$page'"
done

docs=("$top_srcdir/README" "$top_srcdir"/man/*.[1-8] "$top_srcdir"/doc/*.md)
out=$(grep -nE '\.\./shared|/work/|DESIGN\.md|STYLE\.md' "${docs[@]}" 2>/dev/null)
check "README, man pages and doc/ point nowhere outside the repository" test -z "$out"
[ -z "$out" ] || diag "$out"
check "doc/architecture.md exists" test -s "$top_srcdir/doc/architecture.md"
done_testing
