#!/usr/bin/python3
"""Restarts and stops during delivery: SIGKILL while the next hop holds
its reply to the final dot -> the message is delivered again after the
restart (at least once) and nothing is lost; SIGTERM before the final
dot -> abandoned, delivered once after the restart; SIGTERM after the
final dot -> the reply is awaited and committed, no second copy."""
import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from relaydtest import TAP, Relayd  # noqa: E402
from deliver_common import submit, wait_for, removed, records, CountingHop  # noqa: E402

t = TAP()


def relayd(h):
    # The default claim lease (minutes): a restart must not wait for it.
    return Relayd(conf="relayhost = [127.0.0.2]:%d\nretry_min = 1s\nretry_max = 2s\n" % h.port)


# SIGKILL while the dot's reply is held
h = CountingHop("127.0.0.2", stall=True).start()
r = relayd(h)
try:
    r.start()
    qid = submit(r, ["k@dest.test"])
    t.ok(wait_for(lambda: h.dots >= 1), "the hop has the content, reply held")
    r.stop(signal.SIGKILL)
    h.release()
    t.ok(wait_for(lambda: len(h.messages) >= 1), "the hop kept its copy")
    r.start()
    t.ok(wait_for(lambda: removed(r, qid), timeout=15), "delivered again at once after the restart",
         r.log()[-2000:])
    t.ok("1 recipient in flight when relayd stopped: due again now" in r.log(),
         "the dead run's claim given back, logged")
    t.ok(len(h.messages) >= 2, "at least once: %d copies" % len(h.messages))
    t.eq(r.queue_ids(), [], "nothing left in the queue")
    t.eq(r.stop(), 0, "clean stop")
finally:
    r.cleanup()
    h.stop()

# SIGTERM before the final dot
h = CountingHop("127.0.0.2", stall=True, stall_data=True).start()
r = relayd(h)
try:
    r.start()
    qid = submit(r, ["t@dest.test"])
    t.ok(wait_for(lambda: h.datas >= 1), "the hop holds its 354")
    t0 = time.time()
    t.eq(r.stop(), 0, "SIGTERM: clean stop")
    t.ok(time.time() - t0 < 10, "within a bounded time")
    t.ok(not records(r, qid), "no attempt recorded for the abandoned transaction")
    h.release()
    r.start()
    t.ok(wait_for(lambda: removed(r, qid), timeout=30), "delivered after the restart",
         r.log()[-2000:])
    time.sleep(0.5)
    t.eq(len(h.messages), 1, "exactly one copy")
    t.eq(r.stop(), 0, "clean stop")
finally:
    r.cleanup()
    h.stop()

# SIGTERM after the final dot
h = CountingHop("127.0.0.2", stall=True).start()
r = relayd(h)
try:
    r.start()
    qid = submit(r, ["d@dest.test"])
    t.ok(wait_for(lambda: h.dots >= 1), "the hop holds the dot's reply")
    r.signal(signal.SIGTERM)
    time.sleep(1)
    h.release()
    t.eq(r.stop(), 0, "clean stop once the reply came")
    t.ok(removed(r, qid), "the result was committed before exit", r.log()[-2000:])
    r.start()
    time.sleep(3)
    t.eq(len(h.messages), 1, "no second copy after the restart")
    t.eq(r.queue_ids(), [], "queue empty")
    t.ok(r.sanitizer_clean(), "no sanitizer report")
    t.eq(r.stop(), 0, "clean stop")
finally:
    r.cleanup()
    h.stop()
t.done()
