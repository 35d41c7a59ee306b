#!/usr/bin/python3
"""Delivery through a relayhost: mail leaves at once, the §6 records are
written, the message is removed; several messages share one connection;
a 5xx bounces, a 4xx defers and is retried."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from relaydtest import TAP, Relayd  # noqa: E402
from smtpc_common import Sink  # noqa: E402
from deliver_common import submit, wait_for, records, removed, RELAY_RE  # noqa: E402

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
    t.ok(r.sanitizer_clean(), "no sanitizer report")
finally:
    rc = r.stop()
    t.eq(rc, 0, "clean stop")
    sink.stop()
    r.cleanup()
t.done()
