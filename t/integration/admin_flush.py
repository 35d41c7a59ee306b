#!/usr/bin/python3
"""admin_flush - relayctl flush and deliver lift a destination's backoff.

Like postqueue -f, which has the queue manager try dead destinations too:
a next hop that refused connections gets its destination backed off as a
whole (retry_min is an hour); the admin brings the hop up and runs
relayctl flush (MX: the queue's persisted block and the scheduler's
in-memory one) or relayctl deliver ID (relayhost: the in-memory one);
the mail reaches the hop within seconds, not after the block ends.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from relaydtest import TAP, Relayd, free_port  # noqa: E402
from deliver_common import CountingHop, submit, wait_for, records  # noqa: E402
from admincommon import relayctl  # noqa: E402
import dnstest  # noqa: E402

t = TAP()
SLOW = "retry_min = 1h\nretry_max = 2h\n"


def got(hop, rcpt):
    with hop.lock:
        return any(rcpt in m[2] for m in hop.messages)


def backed_off(r, qid, what):
    """The first attempt was refused, and a second message to the same
    destination is not even tried: the destination as a whole waits."""
    t.ok(wait_for(lambda: [x for x in records(r, qid) if x[4] == "deferred"], timeout=10),
         "%s: the refused attempt deferred" % what, r.log()[-2000:])
    q2 = submit(r, ["again@" + what])
    t.ok(q2 and not wait_for(lambda: records(r, q2), timeout=2),
         "%s: the destination is backed off (a second message not tried)" % what,
         r.log()[-2000:])


def verb_delivers(r, hop, verb, args, rcpts, what):
    code, out, err = relayctl(r, verb, *args)
    t.ok(code == 0, "%s: relayctl %s" % (what, verb), err)
    for rc in rcpts:
        t.ok(wait_for(lambda: got(hop, rc), timeout=4),
             "%s: %s reaches the hop within seconds of %s" % (what, rc, verb),
             r.log()[-2000:])


def case(what, conf, addr, port, verb):
    """Back off the destination of `what`, bring its hop up at addr:port,
    run relayctl verb (deliver: on the first message)."""
    r = Relayd(conf=conf + SLOW, tls=False)
    hop = None
    try:
        r.start()
        q1 = submit(r, ["first@" + what])
        backed_off(r, q1, what)
        hop = CountingHop(addr, port=port).start()
        rcpts = ["first@" + what] + (["again@" + what] if verb == "flush" else [])
        verb_delivers(r, hop, verb, [q1] if verb == "deliver" else [], rcpts, what)
        dest = addr if "relayhost" in conf else what      # as the scheduler names it
        t.ok(r.wait_log("%s: backoff and pace reset by flush" % dest), "%s: the reset logged" % what)
        t.ok(r.sanitizer_clean(), "%s: no sanitizer report" % what)
    finally:
        t.eq(r.stop(), 0, "%s: clean stop" % what)
        if hop:
            hop.stop()
        r.cleanup()


# MX: the block is in the queue (dstate) and in the scheduler.
dns = dnstest.DNS("dead A 127.0.0.31\n")
port = free_port("127.0.0.31")
try:
    case("dead.test", "dns_servers = 127.0.0.1:%d\ndelivery_port = %d\n" % (dns.port, port),
         "127.0.0.31", port, "flush")
finally:
    dns.stop()
# relayhost: the block is the scheduler's only; deliver ID lifts it.
port = free_port("127.0.0.2")
case("relay.test", "relayhost = [127.0.0.2]:%d\n" % port, "127.0.0.2", port, "deliver")
t.done()
