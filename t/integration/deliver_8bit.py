#!/usr/bin/python3
"""The 8-bit fact: what a next hop without 8BITMIME is refused is content
with an octet over 127, not the submitter's BODY=8BITMIME declaration
(often made for 7-bit mail).  A declared 7-bit message goes to such a hop
as is; a declared 8-bit one bounces 5.6.3; a hop that offers 8BITMIME
gets BODY=8BITMIME for both, and for undeclared 8-bit content too."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from relaydtest import TAP, Relayd  # noqa: E402
from smtpc_common import Sink  # noqa: E402
from deliver_common import submit, wait_for, records, removed  # noqa: E402

ASCII = b"From: <a@client.test>\r\nSubject: plain\r\n\r\nJust ASCII.\r\n"
EIGHT = (b"From: <a@client.test>\r\nSubject: 8bit\r\nContent-Type: text/plain; "
         b"charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\nGr\xc3\xbc\xc3\x9fe.\r\n")


def run(t, offer):
    sink = Sink("127.0.0.2", ehlo_remove=() if offer else ("8BITMIME",)).start()
    r = Relayd(conf="relayhost = [127.0.0.2]:%d\nretry_min = 1h\nretry_max = 2h\n" % sink.port)
    what = "hop with 8BITMIME" if offer else "hop without 8BITMIME"
    try:
        r.start()
        got = {}
        for name, body, declare in (("ascii-declared", ASCII, True),
                                    ("8bit-declared", EIGHT, True),
                                    ("8bit-undeclared", EIGHT, False)):
            # from the null sender: a bounce makes no report
            qid = submit(r, ["%s@dest.test" % name], sender="", body=body,
                         params="BODY=8BITMIME" if declare else "")
            t.ok(qid, "%s: %s queued" % (what, name))
            t.ok(wait_for(lambda: removed(r, qid), timeout=15),
                 "%s: %s done" % (what, name), r.log()[-2000:])
            got[name] = [(x[3], x[4], x[5]) for x in records(r, qid)]
        opts = {m["rcpts"][0].split("@")[0]: m["mail_options"] for m in sink.messages}
        t.ok(got["ascii-declared"][:1] and got["ascii-declared"][0][1] == "sent",
             "%s: declared 8BITMIME, 7-bit content: sent" % what, got["ascii-declared"])
        if offer:
            for name in got:
                t.ok(got[name][:1] and got[name][0][1] == "sent" and
                     "BODY=8BITMIME" in opts.get(name, []),
                     "%s: %s sent with BODY=8BITMIME" % (what, name), (got[name], opts))
        else:
            t.eq(opts.get("ascii-declared"), [], "%s: no BODY= to it" % what)
            for name in ("8bit-declared", "8bit-undeclared"):
                rec = got[name][:1]
                t.ok(rec and rec[0][:2] == ("5.6.3", "bounced") and
                     "8-bit content" in rec[0][2] and "8BITMIME" in rec[0][2],
                     "%s: %s bounced 5.6.3 with the reason" % (what, name), got[name])
            t.ok(not opts.get("8bit-declared") and "8bit-declared" not in opts,
                 "%s: 8-bit content not sent" % what, opts)
        t.ok(r.sanitizer_clean(), "%s: no sanitizer report" % what)
    finally:
        t.eq(r.stop(), 0, "%s: clean stop" % what)
        sink.stop()
        r.cleanup()


t = TAP()
run(t, offer=False)
run(t, offer=True)
t.done()
