#!/usr/bin/python3
"""limits_ipv6 - an IPv6 client is its /64: client_connection_limit and
the AUTH throttle count every address of one /64 together, so a host
given a /64 cannot dodge them by changing addresses; another /64 is not
affected.

Real IPv6 connections: the script creates a network namespace of its own
(ip netns add), re-runs itself inside it, adds 2001:db8:1:2::a-f and
2001:db8:1:3::a to that namespace's lo, and deletes the namespace at the
end.  The host's networking is never touched.  Needs root and ip(8);
skipped otherwise.
"""
import os
import shutil
import socket
import subprocess
import sys
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from relaydtest import TAP, Client, Relayd                # noqa: E402

NET_A = "2001:db8:1:2::"        # one /64: the addresses one host may use
NET_B = "2001:db8:1:3::a"       # a neighbour in another /64
AUTH_FAIL_LIMIT = 10            # relayd/auth_throttle.h


def outside():
    """Create the namespace, run this script in it, delete it."""
    if os.geteuid() != 0 or not shutil.which("ip"):
        print("1..0 # SKIP needs root and ip(8) for a network namespace")
        return 0
    ns = "relayd-t6-%d" % os.getpid()
    if subprocess.run(["ip", "netns", "add", ns], stderr=subprocess.DEVNULL).returncode:
        print("1..0 # SKIP cannot create a network namespace")
        return 0
    try:
        env = dict(os.environ, RELAYD_TEST_NETNS=ns)
        return subprocess.run(["ip", "netns", "exec", ns, sys.executable,
                               os.path.abspath(__file__)], env=env, timeout=240).returncode
    except subprocess.TimeoutExpired:
        print("not ok 1 - finished in time\n1..1")
        return 1
    finally:
        subprocess.run(["ip", "netns", "del", ns])


if not os.environ.get("RELAYD_TEST_NETNS"):
    sys.exit(outside())

from tls_common import b64, no_verify_ctx, plain       # noqa: E402,F401


def setup_lo():
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    for a in [NET_A + x for x in "abcdef"] + [NET_B]:
        subprocess.run(["ip", "-6", "addr", "add", a + "/128", "dev", "lo", "nodad"],
                       check=True)


def connect(port, src):
    return Client(port, host="::1", source=src)


def tls_session(port, src):
    """EHLO, STARTTLS, EHLO from src; (client, greeting)."""
    c = connect(port, src)
    greet = c.reply()
    if not greet.startswith("220 "):
        return c, greet
    c.cmd("EHLO client.test")
    if c.cmd("STARTTLS").startswith("220"):
        c.sock = no_verify_ctx().wrap_socket(c.sock, server_hostname="relayd.test")
        c.cmd("EHLO client.test")
    return c, greet


t = TAP()
r = None
clients = []
try:
    setup_lo()
    r = Relayd(conf="client_connection_limit = 2\n")
    with open(r.conf_path) as f:
        text = f.read()
    for key, port in (("smtp_listen", r.port_smtp), ("submission_listen", r.port_sub)):
        text = text.replace("%s = 127.0.0.1:%d" % (key, port),
                            "%s = 127.0.0.1:%d, [::1]:%d" % (key, port, port))
    r.write_conf(text)
    r.start()

    # client_connection_limit = 2 per /64.
    for src in (NET_A + "a", NET_A + "b"):
        clients.append(connect(r.port_smtp, src))
    greets = [c.reply() for c in clients]
    t.ok(all(g.startswith("220 ") for g in greets),
         "two sessions from ::a and ::b of one /64 -> 220", greets)
    c = connect(r.port_smtp, NET_A + "c")
    rep = c.reply()
    c.close()
    t.ok(rep.startswith("421 4.7.0"),
         "a third session from ::c of the same /64 -> 421 4.7.0", rep)
    c = connect(r.port_smtp, NET_B)
    rep = c.reply()
    clients.append(c)
    t.ok(rep.startswith("220 "), "another /64 is not limited", rep)
    t.ok("Connection concurrency limit exceeded: 3 from unknown[%sc]" % NET_A in r.log(),
         "log: the limit names the address and counts the /64")
    for c in clients:
        c.cmd("QUIT")
        c.close()
    clients = []

    # The AUTH throttle: failures from ::a..::e add up for the /64.
    codes = []
    srcs = [NET_A + x for x in "abcde"]
    for i in range(AUTH_FAIL_LIMIT):
        c, greet = tls_session(r.port_sub, srcs[i % len(srcs)])
        if not greet.startswith("220 "):
            codes.append(greet[:3])
            c.close()
            break
        rep = c.cmd("AUTH PLAIN " + plain("mallory%d" % i, "guess"))
        codes.append(rep[:3])
        c.close()
    t.eq(codes, ["535"] * (AUTH_FAIL_LIMIT - 1) + ["421"],
         "%d failures from 5 addresses of one /64: 535 ... then 421" % AUTH_FAIL_LIMIT)
    c = connect(r.port_sub, NET_A + "f")
    rep = c.reply()
    c.close()
    t.ok(rep.startswith("421 4.7.0"),
         "a fresh address of that /64 is refused at connect", rep)
    c, greet = tls_session(r.port_sub, NET_B)
    rep = c.cmd("AUTH PLAIN " + plain("alice", "secret")) if greet.startswith("220") else greet
    c.close()
    t.ok(rep.startswith("235"), "another /64 may still log in", rep)

    t.eq(r.stop(), 0, "relayd stops cleanly")
    t.ok(r.sanitizer_clean(), "no sanitizer report", r.log()[-2000:])
except Exception:
    t.ok(False, "no unexpected exception", traceback.format_exc())
finally:
    for c in clients:
        c.close()
    if r:
        r.cleanup()
t.done()
