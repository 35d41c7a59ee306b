#!/usr/bin/python3
"""MX delivery against next hops on 127.0.0.x found through a test DNS
server: the preferred MX down -> the second; equal preferences spread;
destination_concurrency counted at the hop; several messages on one
connection; a dead destination backed off as a whole; queue_lifetime
expiry (4.4.7); destination_rate; a reload changing relayhost reaches
mail already queued."""
import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from relaydtest import TAP, Relayd, free_port  # noqa: E402
from smtpc_common import Sink  # noqa: E402
from deliver_common import (submit, wait_for, records, removed, CountingHop,  # noqa: E402
                            RELAY_RE)
import dnstest  # noqa: E402

ZONE = """
two MX 10 mx1.two
two MX 20 mx2.two
mx1.two A 127.0.0.11
mx2.two A 127.0.0.12
eq MX 10 a.eq
eq MX 10 b.eq
a.eq A 127.0.0.21
b.eq A 127.0.0.22
conc A 127.0.0.41
dead A 127.0.0.31
exp A 127.0.0.43
rate A 127.0.0.42
"""

t = TAP()
dns = dnstest.DNS(ZONE)
port = free_port("127.0.0.11")
hops = []
relays = []


def hop(h):
    hops.append(h)
    return h.start()


def relayd(conf):
    r = Relayd(conf="dns_servers = 127.0.0.1:%d\ndelivery_port = %d\n" % (dns.port, port) + conf)
    relays.append(r)
    return r.start()


class Greet421(CountingHop):
    """Answers every connection with 421 and closes it."""

    def _serve(self, c, n):
        try:
            c.sendall(b"421 4.3.2 Service not available\r\n")
        except OSError:
            pass
        finally:
            with self.lock:
                self.active -= 1
            c.close()


try:
    mx2 = hop(Sink("127.0.0.12", port=port))
    eqa = hop(Sink("127.0.0.21", port=port))
    eqb = hop(Sink("127.0.0.22", port=port))
    conc = hop(CountingHop("127.0.0.41", port=port, stall=True))
    dead = hop(Greet421("127.0.0.31", port=port))
    r = relayd("destination_concurrency = 2\nretry_min = 1s\nretry_max = 30s\n")

    # preferred MX down (nothing on 127.0.0.11) -> the second
    qid = submit(r, ["u@two.test"])
    t.ok(wait_for(lambda: removed(r, qid)), "delivered through the second MX",
         r.log()[-2000:])
    rec = records(r, qid)
    t.ok(rec and rec[-1][4] == "sent" and
         RELAY_RE.match(rec[-1][2]).group(1) == "mx2.two.test" and
         RELAY_RE.match(rec[-1][2]).group(2) == "127.0.0.12", "relay is mx2", rec)
    t.eq(len(mx2.messages), 1, "one copy at mx2")

    # equal preferences spread
    for i in range(16):
        q = submit(r, ["u%d@eq.test" % i])
        wait_for(lambda: removed(r, q), timeout=10)
    t.ok(len(eqa.messages) + len(eqb.messages) == 16, "16 delivered to the equal MXs")
    t.ok(eqa.messages and eqb.messages, "both equal-preference MXs used (%d/%d)" %
         (len(eqa.messages), len(eqb.messages)))

    # one message, two destinations delivered apart: removed once
    q = submit(r, ["v@two.test", "w@eq.test"])
    t.ok(wait_for(lambda: removed(r, q)), "two destinations: removed", r.log()[-2000:])
    t.eq(sorted(x[4] for x in records(r, q)), ["sent", "sent"], "two destinations: both sent")
    t.eq(r.log().count("%s: removed" % q), 1, "two destinations: one 'removed' line")

    # destination_concurrency = 2 and connection reuse
    ids = [submit(r, ["c%d@conc.test" % i]) for i in range(10)]
    wait_for(lambda: conc.dots >= 2, timeout=10)
    time.sleep(0.5)
    conc.release()
    t.ok(wait_for(lambda: all(removed(r, q) for q in ids), timeout=30),
         "10 messages delivered", r.log()[-2000:])
    t.ok(conc.max_active <= 2, "at most 2 connections at once (%d)" % conc.max_active)
    conns = set(m[0] for m in conc.messages)
    t.ok(len(conc.messages) == 10 and len(conns) < 10,
         "several messages on one connection (%d messages, %d connections)" %
         (len(conc.messages), len(conns)))

    # a dead destination is backed off as a whole
    t0 = time.time()
    dids = []
    for i in range(6):
        dids.append(submit(r, ["d%d@dead.test" % i]))
        time.sleep(1)
    time.sleep(1)
    n = dead.conns
    t.ok(n <= 5, "6 messages over 7s to a dead destination: %d connections" % n)
    t.ok(all(any(x[4] == "deferred" for x in records(r, q)) for q in dids[:1]),
         "its mail is deferred")
    t.ok(r.sanitizer_clean(), "no sanitizer report")
    t.eq(r.stop(), 0, "clean stop")

    # expiry and destination_rate
    expsink = hop(Sink("127.0.0.43", port=port, replies={"MAIL": "451 4.3.0 try later"}))
    ratehop = hop(CountingHop("127.0.0.42", port=port))
    r2 = relayd("retry_min = 1s\nretry_max = 1s\nqueue_lifetime = 4s\ndestination_rate = 60\n")
    q = submit(r2, ["x@exp.test"])
    t.ok(wait_for(lambda: removed(r2, q), timeout=30), "expired message removed",
         r2.log()[-2000:])
    rec = records(r2, q)
    t.ok(len(rec) >= 2 and rec[0][4] == "deferred", "deferred first")
    t.ok(rec and rec[-1][4] == "bounced" and rec[-1][3] == "4.4.7",
         "then bounced with 4.4.7", rec[-1:] if rec else rec)
    t0 = time.time()
    ids = [submit(r2, ["r%d@rate.test" % i]) for i in range(4)]
    t.ok(wait_for(lambda: len(ratehop.messages) == 4, timeout=20), "4 messages at 60/min")
    el = time.time() - t0
    t.ok(el >= 2.5, "destination_rate = 60 spaces them a second apart (%.1fs)" % el)
    t.ok(r2.sanitizer_clean(), "no sanitizer report")
    t.eq(r2.stop(), 0, "clean stop")

    # a reload changing relayhost reaches queued mail
    newhop = hop(Sink("127.0.0.44"))
    r3 = relayd("relayhost = [127.0.0.45]:%d\nretry_min = 2s\nretry_max = 2s\n" % port)
    q = submit(r3, ["y@any.test"])
    t.ok(wait_for(lambda: any(x[4] == "deferred" for x in records(r3, q))),
         "deferred at the first relayhost")
    with open(r3.conf_path) as f:
        text = f.read()
    r3.write_conf(text.replace("relayhost = [127.0.0.45]:%d" % port,
                               "relayhost = [127.0.0.44]:%d" % newhop.port))
    r3.signal(signal.SIGHUP)
    t.ok(wait_for(lambda: removed(r3, q), timeout=20), "sent through the new relayhost",
         r3.log()[-2000:])
    t.eq(len(newhop.messages), 1, "the new relayhost has it")
    t.ok(r3.sanitizer_clean(), "no sanitizer report")
    t.eq(r3.stop(), 0, "clean stop")
finally:
    for x in relays:
        x.cleanup()
    for h in hops:
        h.stop()
    dns.stop()
t.done()
