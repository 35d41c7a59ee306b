#!/usr/bin/python3
"""Delivery through a relayhost: mail leaves at once, the §6 records are
written, the message is removed; several messages share one connection;
a 5xx bounces, a 4xx defers and is retried."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import re  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402
from relaydtest import TAP, Relayd, QUEUE_DUMP  # noqa: E402
from smtpc_common import Sink  # noqa: E402
from deliver_common import submit, wait_for, records, removed, RELAY_RE, CountingHop  # noqa: E402

t = TAP()
sink = Sink("127.0.0.2").start()
r = Relayd(conf="relayhost = [127.0.0.2]:%d\nretry_min = 1s\nretry_max = 2s\n" % sink.port)
try:
    r.start()
    qid = submit(r, ["a@dest.test"])
    t.ok(qid, "message queued")
    t.ok(wait_for(lambda: len(sink.messages) >= 1), "the sink got it")
    t.ok(wait_for(lambda: removed(r, qid)), "removed from the queue", r.log()[-3000:])
    rec = records(r, qid)
    t.eq([(x[1], x[4]) for x in rec], [("a@dest.test", "sent")], "one sent record")
    if rec:
        m = RELAY_RE.match(rec[0][2])
        t.ok(m and m.group(2) == "127.0.0.2" and int(m.group(3)) == sink.port,
             "relay=HOST[IP]:PORT names the sink", rec[0][2])
        t.ok(rec[0][3] == "2.0.0" and "250" in rec[0][5], "dsn and remote reply", rec[0])
    m = sink.messages[0] if sink.messages else {}
    t.ok(b"Hello." in m.get("content", b""), "content delivered")
    t.eq(m.get("rcpts"), ["a@dest.test"], "envelope recipient")

    # mixed: one 250, one 450, one 550
    sink.replies["RCPT"] = {"soft@dest.test": "450 4.2.0 mailbox busy",
                            "hard@dest.test": "550 5.1.1 no such user"}
    qid2 = submit(r, ["ok@dest.test", "soft@dest.test", "hard@dest.test"])
    t.ok(wait_for(lambda: len(records(r, qid2)) >= 3), "three records", r.log()[-3000:])
    st = {x[1]: (x[4], x[3]) for x in records(r, qid2)}
    t.eq(st.get("ok@dest.test", ("",))[0], "sent", "250 -> sent")
    t.eq(st.get("soft@dest.test"), ("deferred", "4.2.0"), "450 -> deferred")
    t.eq(st.get("hard@dest.test"), ("bounced", "5.1.1"), "550 -> bounced")
    t.ok(not removed(r, qid2), "message stays while one recipient is deferred")
    # retry then success
    sink.replies["RCPT"] = {}
    t.ok(wait_for(lambda: removed(r, qid2), timeout=20), "retried, sent, removed")
    st = [x for x in records(r, qid2) if x[1] == "soft@dest.test"]
    t.eq([x[4] for x in st], ["deferred", "sent"], "deferred then sent")
    t.ok(not [x for x in records(r, qid2) if x[1] != "soft@dest.test" and
              records(r, qid2).count(x) > 1], "the others are not attempted again")
    # a throttling reply slows the destination down, logged
    sink.replies["MAIL"] = "421 4.7.0 Too many messages, slow down"
    q3 = submit(r, ["slow@dest.test"])
    t.ok(wait_for(lambda: records(r, q3)), "throttled attempt recorded")
    t.eq([x[4] for x in records(r, q3)][:1], ["deferred"], "421 -> deferred")
    pace = re.findall(r"relayd/qmgr\[\d+\]: (\S+): pace changed: concurrency (\d+) -> (\d+), "
                      r"gap ([0-9.]+)s -> ([0-9.]+)s \((.*)\)$", r.log(), re.M)
    t.ok(pace and pace[0][0] == "127.0.0.2" and int(pace[0][2]) < int(pace[0][1]) and
         float(pace[0][4]) > float(pace[0][3]), "pace change logged: fewer connections, "
         "longer gap", pace)
    sink.replies.pop("MAIL")
    t.ok(wait_for(lambda: removed(r, q3), timeout=20), "throttled message sent later")
    t.ok(r.sanitizer_clean(), "no sanitizer report")
finally:
    rc = r.stop()
    t.eq(rc, 0, "clean stop")
    sink.stop()
    r.cleanup()

# A reused connection found dead at MAIL: the message goes again on a
# fresh connection, without an attempt counted (no deferral).
h = CountingHop("127.0.0.2", stall=True, close_after_dot=True).start()
r = Relayd(conf="relayhost = [127.0.0.2]:%d\ndestination_concurrency = 1\n"
           "retry_min = 1h\nretry_max = 2h\n" % h.port)
try:
    r.start()
    ids = [submit(r, ["m%d@dest.test" % i]) for i in range(4)]
    wait_for(lambda: h.dots >= 1)
    time.sleep(0.5)
    h.release()
    t.ok(wait_for(lambda: all(removed(r, q) for q in ids), timeout=20),
         "dead reuse: all four delivered", r.log()[-3000:])
    t.ok(not [x for x in records(r) if x[4] != "sent"], "dead reuse: nothing deferred")
    t.ok(h.conns >= 3, "dead reuse: fresh connections (%d)" % h.conns)
    t.eq(r.stop(), 0, "clean stop")

    # a held message is not delivered, the others are
    r.start()
    h.close_after_dot = False
    hold_id = submit(r, ["held@dest.test"])
    r.stop()
    rc = subprocess.run([QUEUE_DUMP, r.queue_dir, hold_id, "-H"]).returncode
    t.eq(rc, 0, "message put on hold while relayd was down")
    r.start()
    q = submit(r, ["free@dest.test"])
    t.ok(wait_for(lambda: removed(r, q)), "the other message is delivered")
    time.sleep(1)
    t.ok(not records(r, hold_id) and hold_id in r.queue_ids(), "the held one is untouched")
    t.eq(r.stop(), 0, "clean stop")
finally:
    r.cleanup()
    h.stop()

# relayhost pointing at our own listener: a loop, bounced 5.4.6
r = Relayd(conf="relayhost = [127.0.0.1]:1\n")
try:
    with open(r.conf_path) as f:
        text = f.read()
    r.write_conf(text.replace("relayhost = [127.0.0.1]:1",
                              "relayhost = [127.0.0.1]:%d" % r.port_smtp))
    r.start()
    q = submit(r, ["loop@dest.test"])
    t.ok(wait_for(lambda: records(r, q)), "loop: attempted", r.log()[-2000:])
    rec = records(r, q)
    t.ok(rec and rec[0][4] == "bounced" and rec[0][3] == "5.4.6" and rec[0][2] == "none",
         "loop: bounced 5.4.6, relay=none", rec)
    t.ok(r.sanitizer_clean(), "no sanitizer report")
    t.eq(r.stop(), 0, "clean stop")
finally:
    r.cleanup()
t.done()
