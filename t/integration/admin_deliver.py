#!/usr/bin/python3
"""admin_deliver - relayctl with the scheduler: what reaches a next hop.

Mail queued against a dead relayhost, then the relayhost pointed at a
sink and the configuration reloaded (relayctl reload): deliver ID and
flush deliver what is not held, never the held message; release makes the held
one due now and the woken scheduler delivers it at once (retry_min is an
hour); delete or hold of a message in
flight (its DATA stalled at the sink) abandons the delivery: the sink
never gets its final dot, and a held message is delivered once released.  status shows the scheduler's counters.
"""
import os
import sys
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from relaydtest import TAP, Relayd  # noqa: E402
from deliver_common import CountingHop, submit, wait_for  # noqa: E402
from admincommon import relayctl, jlist  # noqa: E402

t = TAP()
DEAD = "relayhost = [127.0.0.1]:1\nretry_min = 1h\nretry_max = 2h\n"


def rcpts_at(sink):
    with sink.lock:
        return [a for m in sink.messages for a in m[2]]


def in_flight(hop, verb, rcpt):
    """A relayd whose relayhost stalls DATA; submit to rcpt, wait until the
    delivery is in DATA, run relayctl verb on it, then let the hop go on.
    Returns (relayd, queue id, relayctl's exit code)."""
    r = Relayd(conf="relayhost = [127.0.0.2]:%d\nretry_min = 1h\nretry_max = 2h\n" % hop.port,
               tls=False)
    r.start()
    qid = submit(r, [rcpt])
    t.ok(wait_for(lambda: hop.datas >= 1, timeout=10), "%s: the delivery is in DATA" % verb)
    t.eq(jlist(r).get(qid, {}).get("queue_name"), "active", "%s: relayq shows it active" % verb)
    code, out, err = relayctl(r, verb, qid)
    time.sleep(1)
    hop.release()
    time.sleep(2)
    return r, qid, code


def point_at(r, port):
    with open(r.conf_path) as f:
        text = f.read().replace("relayhost = [127.0.0.1]:1",
                                "relayhost = [127.0.0.2]:%d" % port)
    r.write_conf(text)
    code, out, err = relayctl(r, "reload")
    return code == 0 and r.wait_log("reload: configuration")


sink = CountingHop().start()
stall = CountingHop(stall_data=True, stall=True).start()
stall2 = CountingHop(stall_data=True, stall=True).start()
r = Relayd(conf=DEAD, tls=False)
try:
    r.start()
    held = submit(r, ["held@dest.example"])
    other = submit(r, ["other@dest.example"])
    one = submit(r, ["one@dest.example"])
    # Every one tried and deferred (retry_min 1h) before the relayhost
    # changes: one never tried (its destination backed off after the first
    # refusal) would go at the reload by itself, before "deliver ID" could
    # show that it is what sends it.  A flush lifts the backoff.
    wait_for(lambda: jlist(r).get(held, {}).get("queue_name") == "deferred")
    relayctl(r, "flush")
    t.ok(wait_for(lambda: len(jlist(r)) == 3 and
                  all(m.get("queue_name") == "deferred" for m in jlist(r).values()),
                  timeout=30),
         "three messages queued, each deferred against a dead relayhost", str(jlist(r)))
    code, out, err = relayctl(r, "hold", held)
    t.eq(code, 0, "hold one")
    t.ok(point_at(r, sink.port), "relayhost now the sink (relayctl reload)")
    code, out, err = relayctl(r, "deliver", one)
    t.eq(code, 0, "deliver ID")
    t.ok(wait_for(lambda: "one@dest.example" in rcpts_at(sink), timeout=10),
         "deliver: the message reaches the sink at once (retry_min is 1h)")
    code, out, err = relayctl(r, "flush")
    t.eq(code, 0, "flush")
    t.ok(wait_for(lambda: "other@dest.example" in rcpts_at(sink), timeout=10),
         "flush: what is not held reaches the sink")
    time.sleep(2)
    t.ok("held@dest.example" not in rcpts_at(sink), "the held message never does")
    t.eq(jlist(r).get(held, {}).get("queue_name"), "hold", "it is still queued, on hold")
    code, out, err = relayctl(r, "release", held)
    t.eq(code, 0, "release")
    t.ok(wait_for(lambda: "held@dest.example" in rcpts_at(sink), timeout=10),
         "released: delivered at once (the scheduler was woken)")
    t.ok(wait_for(lambda: "scheduler.sent: 3\n" in relayctl(r, "status")[1].decode()),
         "status: the scheduler's counters", relayctl(r, "status")[1].decode())
    t.eq(r.stop(), 0, "the daemon stops cleanly")
    t.ok(r.sanitizer_clean(), "no sanitizer report", r.log()[-3000:])
    r.cleanup()

    # delete in flight: the sink holds its 354, relayd waits in DATA.
    r, doomed, code = in_flight(stall, "delete", "doomed@dest.example")
    t.eq(code, 0, "delete it")
    t.eq((stall.dots, doomed in jlist(r)), (0, False),
         "deleted in flight: no final dot sent, the message gone")
    t.eq(r.stop(), 0, "the daemon stops cleanly")
    r.cleanup()

    # hold in flight: the delivery is abandoned (the cancel hook), and
    # the message stays, held, until released.
    r, parked, code = in_flight(stall2, "hold", "parked@dest.example")
    t.eq(code, 0, "hold it in flight")
    t.eq((stall2.dots, jlist(r).get(parked, {}).get("queue_name")), (0, "hold"),
         "held in flight: the delivery abandoned before its final dot, the message held")
    code, out, err = relayctl(r, "release", parked)
    t.ok(wait_for(lambda: stall2.dots >= 1 and parked not in jlist(r), timeout=10),
         "released: delivered now")
    t.eq(r.stop(), 0, "the daemon stops cleanly")
    t.ok(r.sanitizer_clean(), "no sanitizer report", r.log()[-3000:])
except Exception:
    t.ok(False, "exception", traceback.format_exc())
finally:
    r.cleanup()
    sink.stop()
    stall.stop()
    stall2.stop()
t.done()
