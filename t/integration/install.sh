#!/bin/bash
# install.sh - make install DESTDIR=...: the daemon and relayctl in sbin,
# the sample configuration and passwd beside where the live ones go, the
# man pages in their sections, the systemd unit naming the installed
# paths (and passing systemd-analyze verify when systemd is there);
# make uninstall takes every file away again.
set -u
. "$(dirname "$0")/../lib.sh"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
dest=$tmp/root
# Not the parent make's flags: under make check they bring -w and a
# jobserver, whose messages would mix with the printed directories.
mk() { env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -s --no-print-directory -C "$top_builddir" "$@"; }

check "make install DESTDIR=... succeeds" mk install DESTDIR="$dest"
# The directories this build installs into, as configure set them.
dirs=$(mk --eval='print-dirs: ; @echo "$(sbindir)|$(bindir)|$(sysconfdir)|$(mandir)|$(systemdsystemunitdir)|$(sbin_PROGRAMS)|$(bin_PROGRAMS)"' print-dirs)
IFS='|' read -r sbindir bindir sysconfdir mandir unitdir sbin_progs bin_progs <<<"$dirs"
diag "sbindir=$sbindir sysconfdir=$sysconfdir mandir=$mandir unitdir=$unitdir"

check "relayd and relayctl are sbin programs" \
	bash -c "[[ ' $sbin_progs ' == *' relayd/relayd '* && ' $sbin_progs ' == *' tools/relayctl '* ]]"
for p in $sbin_progs; do
	check "${p##*/} installed executable in sbin" test -x "$dest$sbindir/${p##*/}"
done
for p in $bin_progs; do
	check "${p##*/} installed executable in bin" test -x "$dest$bindir/${p##*/}"
done
check "sample configuration in \$(sysconfdir)/relayd" \
	cmp "$top_srcdir/etc/relayd.conf" "$dest$sysconfdir/relayd/relayd.conf.sample"
check "sample passwd in \$(sysconfdir)/relayd" \
	cmp "$top_srcdir/etc/passwd.sample" "$dest$sysconfdir/relayd/passwd.sample"
check "no live relayd.conf is installed (never overwrite one)" \
	test ! -e "$dest$sysconfdir/relayd/relayd.conf"
check "the installed relayd -t accepts the installed sample" \
	"$dest$sbindir/relayd" -t -f "$dest$sysconfdir/relayd/relayd.conf.sample"
for page in "$top_srcdir"/man/*.[1-8]; do
	name=$(basename "$page")
	check "man page $name in man${name##*.}" \
		cmp "$page" "$dest$mandir/man${name##*.}/$name"
done

unit=$dest$unitdir/relayd.service
check "relayd.service in the unit directory" test -f "$unit"
check "the unit starts the installed relayd in the foreground" \
	grep -qx "ExecStart=$sbindir/relayd -F -f $sysconfdir/relayd/relayd.conf" "$unit"
check "no ExecStartPre: a failed one would restart in a loop" bash -c "! grep -q '^ExecStartPre=' '$unit'"
check "no placeholder left in the unit" bash -c "! grep -q '@[a-z]*@' '$unit'"
for want in Type=notify Restart=on-failure RestartPreventExitStatus=78 ProtectSystem=strict \
	ReadWritePaths=/var/spool/relayd PrivateTmp=yes NoNewPrivileges=yes TimeoutStopSec=660s \
	'CapabilityBoundingSet=CAP_NET_BIND_SERVICE CAP_SETUID CAP_SETGID CAP_CHOWN'; do
	check "the unit has $want" grep -qx "$want" "$unit"
done
if command -v systemd-analyze >/dev/null; then
	# verify wants the unit's programs and man pages where the unit
	# says: a copy pointing into DESTDIR, man pages found by MANPATH.
	sed "s|=$sbindir/|=$dest$sbindir/|g" "$unit" > "$tmp/relayd.service"
	out=$(cd "$tmp" && MANPATH=$dest$mandir systemd-analyze verify --man=yes ./relayd.service 2>&1)
	rc=$?
	check "systemd-analyze verify: exit 0" test "$rc" -eq 0
	check "systemd-analyze verify: no complaint" test -z "$out"
	[ -z "$out" ] || diag "$out"
else
	echo "ok $((n += 1)) # SKIP systemd-analyze is not installed"
fi

check "make uninstall DESTDIR=... succeeds" mk uninstall DESTDIR="$dest"
left=$(find "$dest" -type f -o -type l)
check "make uninstall leaves no file behind" test -z "$left"
[ -z "$left" ] || diag "left: $left"
done_testing
