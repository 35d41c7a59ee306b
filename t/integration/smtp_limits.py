#!/usr/bin/python3
"""smtp_limits - smtpd_session_limit: beyond it a new connection gets
"421 4.7.0" and is closed, from any address (a flood from many addresses
cannot exhaust descriptors or memory); the warning is logged at most once
a second however many are refused; a freed slot is usable again; past 64
refusals still in progress, connections are closed without a reply.
Clients: raw sockets from several 127.x addresses.  Runs in a few seconds.
"""
import os
import sys
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from relaydtest import TAP, Client, Relayd               # noqa: E402

LIMIT = 3

t = TAP()
r = Relayd(conf="smtpd_session_limit = %d\n" % LIMIT)
clients = []
try:
    r.start()
    time.sleep(0.3)                 # the harness's start probe is gone
    for i in range(LIMIT):
        c = Client(r.port_smtp, source="127.0.1.%d" % (i + 1))
        clients.append(c)
    greets = [c.reply() for c in clients]
    t.ok(all(g.startswith("220 ") for g in greets),
         "%d sessions from %d addresses get 220" % (LIMIT, LIMIT), greets)

    refused, closed = [], []
    start = time.monotonic()
    for i in range(3):
        c = Client(r.port_smtp, source="127.0.2.%d" % (i + 1))
        refused.append(c.reply())
        closed.append(c.closed(timeout=5))
        c.close()
    burst = time.monotonic() - start
    t.ok(all(x.startswith("421 4.7.0") for x in refused),
         "sessions beyond smtpd_session_limit -> 421 4.7.0", refused)
    t.ok(all(closed), "... and the connection is closed", closed)
    t.ok(r.wait_log("session limit reached"), "log: the limit is logged")
    if burst < 0.9:
        n = r.log().count("session limit reached")
        t.eq(n, 1, "log: three refusals within %.2f s -> one warning" % burst)
    else:
        t.skip("log: one warning per second", "refusals took %.1f s" % burst)

    # The established sessions still work.
    t.ok(clients[0].cmd("EHLO client.test").startswith("250"),
         "a session under the limit still answers")
    clients.pop(0).cmd("QUIT")
    greet = ""
    deadline = time.time() + 10
    while time.time() < deadline:
        c = Client(r.port_smtp, source="127.0.3.1")
        greet = c.reply()
        if greet.startswith("220 "):
            clients.append(c)
            break
        c.close()
        time.sleep(0.1)
    t.ok(greet.startswith("220 "), "a freed slot accepts a new session", greet)
    time.sleep(1.1)
    c = Client(r.port_smtp, source="127.0.2.9")
    rep = c.reply()
    c.close()
    t.ok(rep.startswith("421 4.7.0"), "full again -> 421 4.7.0", rep)
    t.ok(r.wait_log("1 connection(s) refused") or r.log().count("session limit reached") == 2,
         "log: a second warning after a second has passed")

    # Refusals that linger (465: the 421 waits for a TLS handshake that
    # never comes) are bounded too: past 64 of them a connection is
    # closed at once, without a reply.
    lingering = []
    for i in range(70):
        lingering.append(Client(r.port_subs, source="127.0.4.%d" % (i + 1)))
    last = lingering[-1]
    t.ok(last.closed(timeout=5), "past the limit and 64 lingering refusals: closed at once")
    t.ok(not lingering[0].closed(timeout=0.2), "... while the first refusals still wait for TLS")
    for c in lingering:
        c.close()
    for c in clients:
        c.close()
    t.eq(r.stop(), 0, "relayd stops cleanly")
    t.ok(r.sanitizer_clean(), "no sanitizer report", r.log()[-2000:])
except Exception:
    t.ok(False, "no unexpected exception", traceback.format_exc())
finally:
    for c in clients:
        c.close()
    r.cleanup()
t.done()
