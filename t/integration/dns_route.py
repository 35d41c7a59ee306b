#!/usr/bin/python3
"""relayctl route against a real DNS server (unbound, with dnsmasq
refusing behind it for SERVFAIL) on a loopback port: MX order and the
shuffle of equal preferences, implicit MX, null MX, NXDOMAIN, NODATA, an
MX at a CNAME, MX hosts without addresses, IPv6-only hosts, SERVFAIL,
REFUSED, a server that never answers, loops to this host, the address
cap, relayhost, the CLI contract; then bad answers from a scripted
responder (truncated, malformed, looping names, absurd TTLs, hundreds
of records), which must end in an answer or a temporary error in time.
"""
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from relaydtest import TAP, TOP_BUILD, free_port  # noqa: E402
import dnstest  # noqa: E402

RELAYCTL = os.path.join(TOP_BUILD, "tools", "relayctl")
ZONE = """
multi MX 10 mx1.multi
multi MX 20 mx2.multi
mx1.multi A 127.0.0.11
mx2.multi A 127.0.0.12
eq MX 10 a.eq
eq MX 10 b.eq
eq MX 10 c.eq
eq MX 20 d.eq
a.eq A 127.0.0.21
b.eq A 127.0.0.22
c.eq A 127.0.0.23
d.eq A 127.0.0.24
implicit A 127.0.0.13
nullmx MX 0 .
txtonly TXT "no mail here"
cname MX 10 alias.cname
alias.cname CNAME real.cname
real.cname A 127.0.0.14
skip MX 10 nothing.skip
skip MX 20 good.skip
nothing.skip TXT "no address"
good.skip A 127.0.0.15
noaddr MX 10 nothing.noaddr
nothing.noaddr TXT "no address"
v6only MX 10 mx.v6only
mx.v6only AAAA ::1
dual MX 10 mx.dual
mx.dual A 127.0.0.16
mx.dual AAAA ::1
myself MX 10 relayd.test.
myself MX 20 backup.myself
backup.myself A 127.0.0.17
selfaddr MX 10 me.selfaddr
me.selfaddr A 127.0.0.1
partself MX 10 other.partself
partself MX 20 me.partself
partself MX 30 worse.partself
other.partself A 127.0.0.18
me.partself A 127.0.0.1
worse.partself A 127.0.0.19
many MX 10 h1.many
many MX 20 h2.many
many MX 30 h3.many
many MX 40 h4.many
h1.many A 127.0.1.1
h1.many A 127.0.1.2
h2.many A 127.0.2.1
h2.many A 127.0.2.2
h3.many A 127.0.3.1
h3.many A 127.0.3.2
h4.many A 127.0.4.1
relay A 127.0.0.30
""" + "".join("bigmx MX %d h%d.bigmx\nh%d.bigmx A 127.0.5.%d\n" % (i % 10, i, i, i)
              for i in range(200))

t = TAP()
tmp = tempfile.mkdtemp(prefix="relayd-route-")
os.chmod(tmp, 0o755)
dns = dnstest.DNS(ZONE)
silent = dnstest.Silent()
bad = dnstest.BadServer()
DPORT = 2525
SELF_PORT = free_port()


def conf(extra="", server=None):
    path = os.path.join(tmp, "relayd.conf")
    with open(path, "w") as f:
        f.write("hostname = relayd.test\nqueue_dir = %s/q\n" % tmp +
                "smtp_listen = 127.0.0.1:%d\nsubmission_listen =\n" % SELF_PORT +
                "dns_servers = 127.0.0.1:%d\n" % (server or dns.port) +
                "dns_timeout = 2s\n" + extra)
    return path


def route(dest, extra="", server=None, timeout=20):
    """(exit code, stdout lines, stderr, seconds)"""
    start = time.time()
    p = subprocess.run([RELAYCTL, "-f", conf(extra, server), "route", dest],
                       capture_output=True, text=True, timeout=timeout)
    return p.returncode, p.stdout.splitlines(), p.stderr.strip(), time.time() - start


def port_extra():
    return "delivery_port = %d\n" % DPORT


try:
    rc, out, err, _ = route("multi.test", port_extra())
    t.eq((rc, out), (0, ["10 mx1.multi.test 127.0.0.11:2525",
                         "20 mx2.multi.test 127.0.0.12:2525"]),
         "distinct preferences: in order, delivery_port applied")
    rc, out2, _, _ = route("alice@multi.test", port_extra())
    t.eq(out2, out, "an address routes like its domain")

    firsts, orders_ok = {}, True
    for i in range(60):
        rc, out, err, _ = route("eq.test", port_extra())
        hosts = [line.split()[1] for line in out]
        if rc != 0 or sorted(hosts[:3]) != ["a.eq.test", "b.eq.test", "c.eq.test"] \
                or hosts[3:] != ["d.eq.test"]:
            orders_ok = False
        firsts[hosts[0] if hosts else None] = firsts.get(hosts[0] if hosts else None, 0) + 1
    t.ok(orders_ok, "equal preferences first, the next preference after, in 60 runs", firsts)
    # Each of three hosts first 20 times in 60 expected; fewer than 5 is
    # over 4 standard deviations away.
    t.ok(all(firsts.get(h, 0) >= 5 for h in ("a.eq.test", "b.eq.test", "c.eq.test")),
         "equal preferences shuffled per lookup: %s" % sorted(firsts.items(), key=str))

    rc, out, err, _ = route("implicit.test", port_extra())
    t.eq((rc, out), (0, ["0 implicit.test 127.0.0.13:2525"]), "no MX: the domain itself (implicit MX)")

    rc, out, err, _ = route("nullmx.test", port_extra())
    t.ok(rc == 1 and not out and "permanent failure: 5.1.10" in err, "null MX: permanent 5.1.10", err)

    rc, out, err, _ = route("nx.test", port_extra())
    t.ok(rc == 1 and "permanent failure: 5.1.2" in err and "type=MX: Host not found" in err,
         "NXDOMAIN: permanent 5.1.2", err)

    rc, out, err, _ = route("txtonly.test", port_extra())
    t.ok(rc == 1 and "permanent failure: 5.4.4" in err and "no data record" in err,
         "NODATA for MX and for the addresses: permanent 5.4.4", err)

    rc, out, err, _ = route("cname.test", port_extra())
    t.eq((rc, out), (0, ["10 alias.cname.test 127.0.0.14:2525"]), "MX naming a CNAME: followed")

    rc, out, err, _ = route("skip.test", port_extra())
    t.eq((rc, out), (0, ["20 good.skip.test 127.0.0.15:2525"]), "an MX host without addresses is skipped")
    rc, out, err, _ = route("noaddr.test", port_extra())
    t.ok(rc == 1 and "permanent failure: 5.4.4" in err, "no MX host has an address: 5.4.4", err)

    rc, out, err, _ = route("v6only.test", port_extra())
    t.eq((rc, out), (0, ["10 mx.v6only.test [::1]:2525"]), "IPv6-only MX host")
    rc, out, err, _ = route("v6only.test", port_extra() + "inet_protocols = ipv4\n")
    t.ok(rc == 1 and "5.4.4" in err, "IPv6-only MX host with inet_protocols = ipv4: 5.4.4", err)
    rc, out, err, _ = route("dual.test", port_extra())
    t.eq((rc, sorted(out)), (0, ["10 mx.dual.test 127.0.0.16:2525", "10 mx.dual.test [::1]:2525"]),
         "dual-stack host: both addresses")
    rc, out, err, _ = route("dual.test", port_extra() + "inet_protocols = ipv6\n")
    t.eq((rc, out), (0, ["10 mx.dual.test [::1]:2525"]), "inet_protocols = ipv6: IPv6 only")

    rc, out, err, secs = route("x.broken.example", port_extra())
    t.ok(rc == 1 and "temporary failure: 4.4.3" in err, "SERVFAIL: temporary 4.4.3", err)
    rc, out, err, secs = route("x.refused.example", port_extra())
    t.ok(rc == 1 and "temporary failure: 4.4.3" in err, "REFUSED: temporary 4.4.3", err)

    rc, out, err, secs = route("example.test", port_extra(), server=silent.port)
    t.ok(rc == 1 and "temporary failure: 4.4.3" in err and "timeout" in err,
         "server that never answers: temporary 4.4.3", err)
    t.ok(1.5 <= secs < 4, "... within dns_timeout (2s): %.2fs" % secs)

    rc, out, err, _ = route("myself.test", port_extra())
    t.ok(rc == 1 and "permanent failure: 5.4.6" in err and "loops back to myself" in err,
         "best MX is named like this host: 5.4.6", "rc=%d %s %s" % (rc, out, err))
    rc, out, err, _ = route("selfaddr.test", "delivery_port = %d\n" % SELF_PORT)
    t.ok(rc == 1 and "5.4.6" in err, "best MX is an address this host listens on: 5.4.6", err)
    rc, out, err, _ = route("selfaddr.test", port_extra())
    t.eq((rc, out), (0, ["10 me.selfaddr.test 127.0.0.1:2525"]),
         "the same address on a port this host does not listen on is not a loop")
    rc, out, err, _ = route("partself.test", "delivery_port = %d\n" % SELF_PORT)
    t.eq((rc, out), (0, ["10 other.partself.test 127.0.0.18:%d" % SELF_PORT]),
         "a less preferred MX that is this host: it and the rest dropped")

    rc, out, err, _ = route("many.test", port_extra())
    t.eq((rc, [line.split()[0] for line in out]), (0, ["10", "10", "20", "20", "30"]),
         "at most smtp_mx_address_limit (5) addresses, in preference order")
    rc, out, err, _ = route("many.test", port_extra() + "smtp_mx_address_limit = 0\n")
    t.eq(len(out), 7, "smtp_mx_address_limit = 0: every address")
    rc, out, err, _ = route("many.test", port_extra() + "smtp_mx_address_limit = 2\n")
    t.eq(sorted(out), ["10 h1.many.test 127.0.1.1:2525", "10 h1.many.test 127.0.1.2:2525"],
         "smtp_mx_address_limit = 2")

    rc, out, err, _ = route("bigmx.test", port_extra())
    t.ok(rc == 0 and [line.split()[0] for line in out] == ["0"] * 5,
         "200 MX records (over TCP after a truncated UDP answer): the 5 best addresses",
         "rc=%d %s %s" % (rc, out, err))

    rc, out, err, _ = route("multi.test", "relayhost = [relay.test]:2600\n")
    t.eq((rc, out), (0, ["0 relay.test 127.0.0.30:2600"]), "relayhost: its addresses and port")
    rc, out, err, _ = route("multi.test", "relayhost = [127.0.0.31]:2601\n")
    t.eq((rc, out), (0, ["0 127.0.0.31 127.0.0.31:2601"]), "numeric relayhost")

    p = subprocess.run([RELAYCTL, "-f", conf(), "route"], capture_output=True, text=True)
    t.ok(p.returncode == 2 and "usage" in p.stderr, "route without an argument: usage, exit 2")
    p = subprocess.run([RELAYCTL, "-f", conf(), "frobnicate"], capture_output=True, text=True)
    t.ok(p.returncode == 2 and "unknown verb" in p.stderr, "unknown verb: exit 2")
    p = subprocess.run([RELAYCTL, "-f", os.path.join(tmp, "missing.conf"), "route", "x.test"],
                       capture_output=True, text=True)
    t.ok(p.returncode == 1 and "missing.conf" in p.stderr, "unreadable config: exit 1, named")
    with open(os.path.join(tmp, "bad.conf"), "w") as f:
        f.write("bogus = 1\n")
    p = subprocess.run([RELAYCTL, "-f", os.path.join(tmp, "bad.conf"), "route", "x.test"],
                       capture_output=True, text=True)
    t.ok(p.returncode == 1 and "bad.conf:1:" in p.stderr, "config errors: FILE:LINE, exit 1")

    # Bad answers: an answer or a temporary error, in time, never a crash.
    cases = {
        "trunc.bad": "4.4.3", "short.bad": "4.4.3", "garbage.bad": "4.4.3",
        "loop.bad": "4.4.3", "overrun.bad": "4.4.3", "mismatch.bad": "4.4.3",
        "wrongtype.bad": "0 wrongtype.bad 127.0.0.40:2525",
        "ttl.bad": "10 mx.ttl.bad 127.0.0.40:2525",
    }
    for name, want in sorted(cases.items()):
        rc, out, err, secs = route(name, port_extra(), server=bad.port)
        got = out[0] if rc == 0 and out else err
        t.ok(rc in (0, 1) and want in got and secs < 5,
             "bad answer %s: %s (%.1fs)" % (name.split(".")[0], want, secs), "rc=%d %s" % (rc, got))
    rc, out, err, secs = route("many.bad", port_extra(), server=bad.port)
    t.ok(rc in (0, 1) and secs < 5 and (len(out) == 5 or "4.4.3" in err),
         "hundreds of MX records: bounded answer or temporary error (%d lines)" % len(out),
         "rc=%d %s" % (rc, err))
finally:
    bad.stop()
    silent.stop()
    dns.stop()
    subprocess.run(["rm", "-rf", tmp])
t.done()
