#!/usr/bin/python3
"""dsn_notice - bounce_notice_recipient end to end: a message from <>
that fails with 550 at a scripted next hop is copied, once, to the
postmaster (never to <>); so is a failure of relayd's own bounce; a
notice that fails in turn is only logged (no loop); without the key no
notice at all.  Each notice is parsed with Python's email package and
checked with dsncheck; the "postmaster non-delivery notification" lines
are checked against what reached the sink.
"""
import email
import email.policy
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from relaydtest import TAP, Relayd  # noqa: E402
from smtpc_common import Sink  # noqa: E402
from deliver_common import wait_for, records, removed  # noqa: E402
from dsncheck import check_report  # noqa: E402
from dsn_common import submit, reports, notes  # noqa: E402

POSTMASTER = "postmaster@relay.test"


def pm_notes(r, qid):
    """Every notification line about qid: (to whom, kind, new id)."""
    return [(w, k, n) for w in ("sender", "postmaster") for k, n in notes(r, qid, w)]


def null_messages(sink):
    return [m for m in sink.messages if m["from"] in ("", "<>")]


t = TAP()
sink = Sink("127.0.0.2")
sink.replies["RCPT"] = {"hard@dest.test": "550 5.1.1 <hard@dest.test>: no such user",
                        "gone@client.test": "550 5.1.1 <gone@client.test>: no such user"}
sink.start()
conf = ("relayhost = [127.0.0.2]:%d\nretry_min = 1s\nretry_max = 1s\n"
        "delay_warning = 0\n" % sink.port)
r = Relayd(conf=conf + "bounce_notice_recipient = %s\n" % POSTMASTER)
try:
    r.start()
    # 1. A null-sender message failing with 550: one notice, to the postmaster.
    q1 = submit(r, [("hard@dest.test", "NOTIFY=NEVER")], sender="", subject="null one")
    t.ok(q1, "a null-sender message queued")
    t.ok(wait_for(lambda: reports(sink, q1)), "a notice reached the postmaster's hop",
         r.log()[-3000:])
    got = reports(sink, q1)
    t.eq(len(got), 1, "exactly one notice")
    if got:
        m, raw = got[0]
        t.eq(m["rcpts"], [POSTMASTER], "the notice goes to bounce_notice_recipient")
        t.ok(m["from"] in ("", "<>"), "the notice is from <>", m["from"])
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        t.eq(msg.get_content_type(), "multipart/report", "email: multipart/report")
        t.eq(msg.get_param("report-type"), "delivery-status", "email: report-type")
        t.eq(str(msg["Auto-Submitted"]), "auto-replied", "email: Auto-Submitted")
        problems, p = check_report(raw)
        t.ok(not problems, "the notice is a valid report", "\n".join(problems))
        rs = p.get("recipients", [])
        t.eq([(x.get("final-recipient"), x.get("action"), x.get("status")) for x in rs],
             [("rfc822; hard@dest.test", "failed", "5.1.1")],
             "it reports the failure (NOTIFY=NEVER does not hide it from the postmaster)")
        t.ok("550 5.1.1" in (rs or [{}])[0].get("diagnostic-code", ""), "the hop's words")
    n1 = pm_notes(r, q1)
    t.eq([(w, k) for w, k, _ in n1], [("postmaster", "non-delivery")],
         "log: QUEUEID: postmaster non-delivery notification: NEWID")
    t.ok(wait_for(lambda: removed(r, q1)), "the original is dropped")
    t.eq([x[4] for x in records(r, q1)], ["bounced"], "and logged as bounced")
    for _, _, nid in n1:
        t.ok(wait_for(lambda: removed(r, nid)), "the notice is delivered and removed")
        t.eq([x[4] for x in records(r, nid)], ["sent"], "the notice: status=sent")

    # 2. A double bounce: the sender refuses relayd's own bounce.
    q2 = submit(r, [("hard@dest.test", "")], sender="gone@client.test", subject="double")
    t.ok(wait_for(lambda: pm_notes(r, q2)), "the first failure is bounced to the sender")
    b2 = [n for w, k, n in pm_notes(r, q2) if w == "sender"]
    t.eq(len(b2), 1, "one bounce")
    if b2:
        t.ok(wait_for(lambda: reports(sink, b2[0])), "its failure is copied to the postmaster",
             r.log()[-3000:])
        got = reports(sink, b2[0])
        t.eq([m["rcpts"] for m, _ in got], [[POSTMASTER]], "one notice, to the postmaster")
        if got:
            problems, p = check_report(got[0][1])
            t.ok(not problems, "valid report", "\n".join(problems))
            t.eq([x.get("final-recipient") for x in p.get("recipients", [])],
                 ["rfc822; gone@client.test"], "about the bounce's recipient")
        t.eq([(w, k) for w, k, _ in pm_notes(r, b2[0])], [("postmaster", "non-delivery")],
             "log: the bounce's postmaster notification")

    # 3. No loop: the postmaster refuses notices too.
    sink.replies["RCPT"][POSTMASTER] = "550 5.1.1 <%s>: no such user" % POSTMASTER
    before = len(null_messages(sink))
    q3 = submit(r, [("hard@dest.test", "")], sender="", subject="loop")
    t.ok(wait_for(lambda: pm_notes(r, q3)), "the notice is queued")
    n3 = [n for _, _, n in pm_notes(r, q3)]
    if n3:
        t.ok(wait_for(lambda: removed(r, n3[0])), "the failed notice is dropped")
        t.eq([x[4] for x in records(r, n3[0])], ["bounced"], "the notice: status=bounced")
        time.sleep(1.5)    # a report about it would be queued with its failure
        t.eq(pm_notes(r, n3[0]), [], "a failed notice is never reported (no loop)")
    t.eq(len(null_messages(sink)), before, "nothing more reached the sink from <>")
    t.ok(r.sanitizer_clean(), "no sanitizer report")
finally:
    t.eq(r.stop(), 0, "clean stop")
    r.cleanup()

# Without the key: the null-sender failure is only logged.
sink.replies["RCPT"].pop(POSTMASTER, None)
before = len(null_messages(sink))
r = Relayd(conf=conf)
try:
    r.start()
    q = submit(r, [("hard@dest.test", "")], sender="", subject="no key")
    t.ok(wait_for(lambda: removed(r, q)), "no key: the message is dropped")
    t.eq([x[4] for x in records(r, q)], ["bounced"], "no key: logged as bounced")
    time.sleep(1)
    t.eq(pm_notes(r, q), [], "no key: no notification logged")
    t.eq(len(null_messages(sink)), before, "no key: no notice delivered")
finally:
    t.eq(r.stop(), 0, "clean stop")
    sink.stop()
    r.cleanup()
t.done()
