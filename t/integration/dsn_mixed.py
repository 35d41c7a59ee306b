#!/usr/bin/python3
"""dsn_mixed - every report an attempt calls for is sent: one message to
three recipients at a scripted next hop without DSN, whose one attempt
ends after delay_warning has passed (the hop holds its EHLO reply): one
refused with 550 (a failure report), one taken with NOTIFY=SUCCESS (a
success notice, Action: relayed), one deferred with 450 (a delay
warning).  The sender gets the three, each a report of one kind parsed
with Python's email package and dsncheck, each logged as "QUEUEID: sender
KIND notification: NEWID", all queued with the attempt's results.
"""
import asyncio
import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from relaydtest import TAP, Relayd  # noqa: E402
from smtpc_common import Sink, Handler  # noqa: E402
from deliver_common import wait_for, records  # noqa: E402
from dsncheck import check_report  # noqa: E402
from dsn_common import SENDER, submit, reports, notes  # noqa: E402

DELAY_WARNING = 2
SUBJECTS = {"failed": "Undelivered Mail Returned to Sender",
            "delayed": "Delayed Mail (still being retried)",
            "relayed": "Successful Mail Delivery Report"}


class SlowHandler(Handler):
    """Holds the first EHLO reply until delay_warning has passed, so the
    first attempt's results come in with a warning due."""

    def __init__(self, sink):
        super().__init__(sink)
        self.held = False

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        if not self.held:
            self.held = True
            await asyncio.sleep(DELAY_WARNING + 1.5)
        return await super().handle_EHLO(server, session, envelope, hostname, responses)


t = TAP()
sink = Sink("127.0.0.2")
sink.handler = SlowHandler(sink)
sink.controller.handler = sink.handler
sink.replies["RCPT"] = {"hard@dest.test": "550 5.1.1 <hard@dest.test>: no such user",
                        "soft@dest.test": "450 4.2.0 mailbox busy"}
sink.start()
r = Relayd(conf="relayhost = [127.0.0.2]:%d\nretry_min = 60s\nretry_max = 60s\n"
           "delay_warning = %ds\n" % (sink.port, DELAY_WARNING))
try:
    r.start()
    q = submit(r, [("hard@dest.test", ""), ("ok@dest.test", "NOTIFY=SUCCESS"),
                   ("soft@dest.test", "")], subject="mixed")
    t.ok(q, "one message to three recipients queued")
    t.ok(wait_for(lambda: len(records(r, q)) >= 3, timeout=30), "one attempt for all three",
         r.log()[-3000:])
    t.eq(sorted((x[1], x[4]) for x in records(r, q)),
         [("hard@dest.test", "bounced"), ("ok@dest.test", "sent"),
          ("soft@dest.test", "deferred")], "550 bounced, 250 sent, 450 deferred")
    t.ok(wait_for(lambda: len(reports(sink, q)) >= 3, timeout=20),
         "three reports reached the sender's hop", r.log()[-3000:])
    time.sleep(0.5)        # a fourth would show up now
    got = reports(sink, q)
    t.eq(len(got), 3, "exactly three: one per kind")
    seen = {}
    for m, raw in got:
        problems, p = check_report(raw)
        t.ok(not problems, "a valid report", "\n".join(problems))
        t.eq(m["rcpts"], [SENDER], "to the envelope sender")
        rs = p.get("recipients", [])
        acts = sorted({x.get("action") for x in rs})
        t.ok(len(acts) == 1, "one kind per report", str(acts))
        if acts:
            seen[acts[0]] = ([x.get("final-recipient") for x in rs],
                             p.get("headers", {}).get("subject"))
    t.eq(seen.get("failed"), (["rfc822; hard@dest.test"], SUBJECTS["failed"]),
         "the failure: hard@ only")
    t.eq(seen.get("relayed"), (["rfc822; ok@dest.test"], SUBJECTS["relayed"]),
         "the success notice: ok@, Action: relayed")
    t.eq(seen.get("delayed"), (["rfc822; soft@dest.test"], SUBJECTS["delayed"]),
         "the delay warning: soft@")
    n = notes(r, q)
    t.eq(sorted(k for k, _ in n), ["delay", "delivery status", "non-delivery"],
         "log: one sender notification line per report")
    got_ids = set()
    for m, raw in got:
        mid = re.search(rb"^Message-ID: <([0-9A-Z]{12})\.", raw, re.M)
        if mid:
            got_ids.add(mid.group(1).decode())
    t.eq(got_ids, {i for _, i in n}, "the logged NEWIDs are the reports delivered")
    t.ok(r.sanitizer_clean(), "no sanitizer report")
finally:
    t.eq(r.stop(), 0, "clean stop")
    sink.stop()
    r.cleanup()
t.done()
