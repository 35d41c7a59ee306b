#!/bin/bash
# fuzz_replay.sh - replay the fuzz targets' seed corpus and every saved
# crash (t/fuzz/crashes/TARGET-NAME) through the plain-main builds of the
# targets: each input once, properties checked, sanitizers watching in
# the --enable-sanitizers build.  Long fuzzing runs live in bench/fuzz.
set -u
. "$(dirname "$0")/../lib.sh"
fz=$top_srcdir/t/fuzz
for target in config smtp_data smtp_parse queue_codec dns_msg smtp_reply sendmail dsn_compose; do
	replay=$top_builddir/t/fuzz/replay_$target
	n_seeds=$(find "$fz/corpus/$target" -type f 2>/dev/null | wc -l)
	check "$target: the seed corpus exists ($n_seeds inputs)" test "$n_seeds" -gt 0
	check "$target: replaying the seed corpus" "$replay" "$fz/corpus/$target"
	for crash in "$fz"/crashes/"$target"-*; do
		[ -f "$crash" ] || continue
		check "$target: saved crash $(basename "$crash") stays fixed" "$replay" "$crash"
	done
done
done_testing
