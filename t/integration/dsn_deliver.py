#!/usr/bin/python3
"""dsn_deliver - delivery status notifications end to end: relayd
delivers through a scripted next hop (relayhost), the hop refuses some
recipients (550 at RCPT, 554 after DATA, 450 until expiry), and the
reports relayd queues are themselves delivered to the same hop, where
they are read and checked with dsncheck: NOTIFY=NEVER/SUCCESS/FAILURE,
RET=FULL/HDRS, ENVID and ORCPT echoed, one delay warning, expiry, no
bounce of a null-sender message, the §6 "sender ... notification" lines.
"""
import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from relaydtest import TAP, Relayd, session  # noqa: E402
from smtpc_common import Sink, Handler  # noqa: E402
from deliver_common import wait_for, records, removed  # noqa: E402
from dsncheck import check_report  # noqa: E402

SENDER = "sender@client.test"
NOTE_RE = re.compile(r"relayd/bounce\[\d+\]: ([0-9A-Z]{12}): sender (non-delivery|delay|"
                     r"delivery status) notification: ([0-9A-Z]{12})$", re.M)


class DotHandler(Handler):
    """The sink's handler, refusing after DATA when a recipient is listed
    in sink.dot_fail."""

    async def handle_DATA(self, server, session, envelope):
        reply = await super().handle_DATA(server, session, envelope)
        if any(r in self.sink.dot_fail for r in envelope.rcpt_tos):
            return "554 5.7.1 content rejected by policy"
        return reply


def submit(r, rcpts, mail_params="", sender=SENDER, subject="test", body=None):
    """rcpts: [(address, "NOTIFY=... ORCPT=..." or "")]; the queue id."""
    c = session(r)
    c.cmd(("MAIL FROM:<%s> %s" % (sender, mail_params)).rstrip())
    for a, params in rcpts:
        c.cmd(("RCPT TO:<%s> %s" % (a, params)).rstrip())
    c.cmd("DATA")
    data = body or ("From: <%s>\r\nTo: <%s>\r\nSubject: %s\r\n\r\nHello.\r\n" %
                    (sender, rcpts[0][0], subject))
    c.send(data.encode("utf-8"))
    c.send(b".\r\n")
    last = c.reply() or ""
    c.cmd("QUIT")
    c.close()
    m = re.search(r"queued as ([0-9A-Z]{12})", last)
    return m.group(1) if m else None


def reports(sink, orig_id=None):
    """Reports the sink received: (message dict, raw bytes, parsed)."""
    out = []
    for m in sink.messages:
        if m["from"] not in ("", "<>"):
            continue
        raw = m["content"]
        mid = re.search(rb"^Message-ID: <([0-9A-Z]{12})\.([0-9A-Z]{12})@", raw, re.M)
        if orig_id and not (mid and mid.group(2).decode() == orig_id):
            continue
        out.append((m, raw))
    return out


def notes(r, qid):
    return [(k, n) for q, k, n in NOTE_RE.findall(r.log()) if q == qid]


t = TAP()
sink = Sink("127.0.0.2")
sink.handler = DotHandler(sink)
sink.controller.handler = sink.handler
sink.dot_fail = {"dotfail@dest.test"}
sink.replies["RCPT"] = {"hard@dest.test": "550 5.1.1 <hard@dest.test>: no such user",
                        "never@dest.test": "550 5.1.1 no such user",
                        "soft@dest.test": "450 4.2.0 mailbox busy",
                        "soft2@dest.test": "450 4.2.0 mailbox busy"}
sink.start()
r = Relayd(conf="relayhost = [127.0.0.2]:%d\nretry_min = 1s\nretry_max = 1s\n"
           "delay_warning = 2s\nqueue_lifetime = 6s\n" % sink.port)
try:
    r.start()
    # 550 at RCPT, mixed with a good recipient; RET=FULL, ENVID, ORCPT.
    q1 = submit(r, [("ok@dest.test", ""),
                    ("hard@dest.test", "ORCPT=rfc822;Hard+2Bx@dest.test")],
                mail_params="RET=FULL ENVID=env+2B1", subject="first")
    # 554 after DATA; RET=HDRS.
    q2 = submit(r, [("dotfail@dest.test", "")], mail_params="RET=HDRS", subject="second")
    # NOTIFY=NEVER: no bounce.
    q3 = submit(r, [("never@dest.test", "NOTIFY=NEVER")], subject="third")
    # NOTIFY=SUCCESS through a hop without DSN: "relayed".
    q4 = submit(r, [("ok2@dest.test", "NOTIFY=SUCCESS")], subject="fourth")
    # Null sender: never bounced.
    q5 = submit(r, [("hard@dest.test", "")], sender="", subject="fifth")
    # 450 until expiry: one delay warning, then a bounce (4.x.x).
    q6 = submit(r, [("soft@dest.test", "")], subject="sixth")
    # NOTIFY=FAILURE: no delay warning, the expiry bounce.
    q7 = submit(r, [("soft2@dest.test", "NOTIFY=FAILURE")], subject="seventh")
    # 8-bit content, and an SMTPUTF8 sender.
    q8 = submit(r, [("hard@dest.test", "")], mail_params="BODY=8BITMIME RET=FULL",
                body="From: <%s>\r\nSubject: caf\u00e9\r\n\r\n\u00e9t\u00e9\r\n" % SENDER)
    U = "j\u00f6rg@client.test"
    q9 = submit(r, [("hard@dest.test", "")], mail_params="SMTPUTF8 BODY=8BITMIME",
                sender=U, body="From: <%s>\r\nSubject: gr\u00fc\u00dfe\r\n\r\nhi\r\n" % U)
    t.ok(all([q1, q2, q3, q4, q5, q6, q7, q8, q9]), "nine messages queued")

    # 1. 550 at RCPT.
    t.ok(wait_for(lambda: reports(sink, q1)), "550 at RCPT: a bounce reached the sender's hop",
         r.log()[-3000:])
    got = reports(sink, q1)
    if got:
        m, raw = got[0]
        t.eq(m["rcpts"], [SENDER], "the bounce goes to the envelope sender")
        problems, p = check_report(raw)
        t.ok(not problems, "the bounce is a valid report", "\n".join(problems))
        rs = p.get("recipients", [])
        t.eq([x.get("final-recipient") for x in rs], ["rfc822; hard@dest.test"],
             "only the failed recipient is reported")
        x = rs[0] if rs else {}
        t.eq(x.get("action"), "failed", "Action: failed")
        t.eq(x.get("status"), "5.1.1", "Status from the reply")
        t.ok("550 5.1.1 <hard@dest.test>: no such user" in x.get("diagnostic-code", ""),
             "Diagnostic-Code carries the hop's words", x.get("diagnostic-code"))
        t.eq(x.get("original-recipient"), "rfc822;Hard+x@dest.test", "ORCPT echoed")
        t.eq(p.get("per_message", {}).get("original-envelope-id"), "env+1", "ENVID echoed")
        t.eq(p.get("per_message", {}).get("reporting-mta"), "dns; relayd.test", "Reporting-MTA")
        t.eq(p.get("orig_type"), "message/rfc822", "RET=FULL: the whole message")
        t.ok(b"Subject: first" in p.get("orig", b"") and b"Hello." in p.get("orig", b""),
             "the original returned with its body")
    t.eq([k for k, _ in notes(r, q1)], ["non-delivery"],
         "log: sender non-delivery notification: NEWID")
    t.ok(wait_for(lambda: removed(r, q1)), "the original is removed")

    # 2. 554 after DATA, RET=HDRS.
    t.ok(wait_for(lambda: reports(sink, q2)), "554 after DATA: bounced")
    got = reports(sink, q2)
    if got:
        problems, p = check_report(got[0][1])
        t.ok(not problems, "valid report", "\n".join(problems))
        x = (p.get("recipients") or [{}])[0]
        t.eq(x.get("status"), "5.7.1", "Status 5.7.1")
        t.ok("554 5.7.1 content rejected" in x.get("diagnostic-code", ""), "the DATA reply")
        t.eq(p.get("orig_type"), "text/rfc822-headers", "RET=HDRS: headers only")
        t.ok(b"Hello." not in p.get("orig", b""), "no body returned")

    # 4. NOTIFY=SUCCESS.
    t.ok(wait_for(lambda: reports(sink, q4)), "NOTIFY=SUCCESS: a success notice")
    got = reports(sink, q4)
    if got:
        problems, p = check_report(got[0][1])
        t.ok(not problems, "valid report", "\n".join(problems))
        t.eq(p.get("headers", {}).get("subject"), "Successful Mail Delivery Report", "subject")
        t.eq((p.get("recipients") or [{}])[0].get("action"), "relayed",
             "Action: relayed (the hop does not speak DSN)")
    t.eq([k for k, _ in notes(r, q4)], ["delivery status"],
         "log: sender delivery status notification")

    # 8/9. 8-bit and SMTPUTF8 originals.
    t.ok(wait_for(lambda: reports(sink, q8) and reports(sink, q9)), "8-bit and SMTPUTF8: bounced")
    got = reports(sink, q8)
    if got:
        m, raw = got[0]
        problems, p = check_report(raw, eightbit_ok=True)
        t.ok(not problems, "8-bit: valid report", "\n".join(problems))
        t.ok("BODY=8BITMIME" in m["mail_options"], "8-bit: the report is sent BODY=8BITMIME",
             m["mail_options"])
        t.ok("caf\u00e9".encode() in p.get("orig", b""), "8-bit: the original returned as is")
    got = reports(sink, q9)
    if got:
        m, raw = got[0]
        problems, p = check_report(raw, eightbit_ok=True, utf8=True)
        t.ok(not problems, "SMTPUTF8: valid global report", "\n".join(problems))
        t.eq(m["rcpts"], [U], "SMTPUTF8: to the UTF-8 sender")
        t.ok("SMTPUTF8" in m["mail_options"], "SMTPUTF8: the report is sent SMTPUTF8",
             m["mail_options"])

    # 6/7. Delay warning, then expiry.
    t.ok(wait_for(lambda: len(reports(sink, q6)) >= 2, timeout=30),
         "450 until expiry: a warning, then a bounce", r.log()[-3000:])
    got = reports(sink, q6)
    kinds = []
    for m, raw in got:
        problems, p = check_report(raw)
        t.ok(not problems, "valid report", "\n".join(problems))
        x = (p.get("recipients") or [{}])[0]
        kinds.append((x.get("action"), (x.get("status") or "")[:1]))
        if x.get("action") == "delayed":
            t.ok("will-retry-until" in x, "the warning has Will-Retry-Until")
            t.eq(p.get("headers", {}).get("subject"), "Delayed Mail (still being retried)",
                 "delay subject")
    t.eq(kinds, [("delayed", "4"), ("failed", "4")],
         "exactly one warning, then the failure with a 4.x.x status")
    t.eq([k for k, _ in notes(r, q6)], ["delay", "non-delivery"], "log: delay, non-delivery")
    t.ok(wait_for(lambda: removed(r, q7), timeout=30), "NOTIFY=FAILURE message expired")
    t.eq([k for k, _ in notes(r, q7)], ["non-delivery"], "NOTIFY=FAILURE: no delay warning")

    # 3 and 5: no report.
    t.ok(removed(r, q3) and removed(r, q5), "NOTIFY=NEVER and null-sender messages removed")
    t.eq(reports(sink, q3) + reports(sink, q5), [], "no report for NOTIFY=NEVER or <>")
    t.eq(notes(r, q3) + notes(r, q5), [], "no notification logged for them")
    bounced = [x for x in records(r, q5) if x[4] == "bounced"]
    t.eq(len(bounced), 1, "the null-sender failure is logged as bounced")

    # The reports themselves: from <>, delivered once each, then removed.
    ids = [n for q in (q1, q2, q4, q6, q7, q8, q9) for _, n in notes(r, q)]
    t.ok(wait_for(lambda: all(removed(r, i) for i in ids)), "every report delivered and removed")
    t.eq(len([m for m in sink.messages if m["from"] in ("", "<>")]), len(ids),
         "one delivery per report, none twice")
    t.ok(r.sanitizer_clean(), "no sanitizer report")
finally:
    rc = r.stop()
    t.eq(rc, 0, "clean stop")
    r.cleanup()

# delay_warning = 0: no warning, only the bounce at expiry.
r = Relayd(conf="relayhost = [127.0.0.2]:%d\nretry_min = 1s\nretry_max = 1s\n"
           "delay_warning = 0\nqueue_lifetime = 4s\n" % sink.port)
try:
    r.start()
    q = submit(r, [("soft@dest.test", "")], subject="no warning")
    t.ok(wait_for(lambda: reports(sink, q), timeout=30), "delay_warning = 0: the expiry bounce")
    time.sleep(1)
    got = reports(sink, q)
    acts = [(check_report(raw)[1].get("recipients") or [{}])[0].get("action") for _, raw in got]
    t.eq(acts, ["failed"], "delay_warning = 0: no delay warning before it")
finally:
    t.eq(r.stop(), 0, "clean stop")
    sink.stop()
    r.cleanup()
t.done()
