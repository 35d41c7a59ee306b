#!/usr/bin/python3
"""dsn_crash - a bounce survives SIGKILL of the daemon at any moment
between the next hop's 550 and the commit of its result, and is never
made twice: the next hop kills relayd (by PID) a few milliseconds after
sending the 550, at a different delay each round, so the kill lands
before the report is built, while it is, around the group commit and
after it.  After a restart each original has exactly one report (one
report queue id; a report delivered again after a crash keeps its id),
and the original is gone.
"""
import os
import re
import signal
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from relaydtest import TAP, Relayd, session  # noqa: E402
from smtpc_common import Sink, Handler  # noqa: E402
from deliver_common import wait_for  # noqa: E402

SENDER = "sender@client.test"
DELAYS_MS = [0, 0, 0.5, 1, 1.5, 2, 3, 5, 10, 40]


class KillHandler(Handler):
    """Refuses hard@dest.test; the first time in a round, SIGKILLs relayd
    sink.kill_ms after answering."""

    async def handle_RCPT(self, server, session, envelope, address, options):
        reply = await super().handle_RCPT(server, session, envelope, address, options)
        s = self.sink
        if address == "hard@dest.test":
            s.hard_seen += 1
            if s.armed:
                s.armed = False
                pid = s.pid
                threading.Timer(s.kill_ms / 1000.0, lambda: os.kill(pid, signal.SIGKILL)).start()
        return reply


def submit(r, subject):
    c = session(r)
    c.cmd("MAIL FROM:<%s>" % SENDER)
    c.cmd("RCPT TO:<hard@dest.test>")
    c.cmd("DATA")
    c.send(("From: <%s>\r\nSubject: %s\r\n\r\nHello.\r\n.\r\n" % (SENDER, subject)).encode())
    last = c.reply() or ""
    c.cmd("QUIT")
    c.close()
    m = re.search(r"queued as ([0-9A-Z]{12})", last)
    return m.group(1) if m else None


def report_ids(sink, orig):
    ids = set()
    for m in sink.messages:
        mid = re.search(rb"^Message-ID: <([0-9A-Z]{12})\.([0-9A-Z]{12})@", m["content"], re.M)
        if m["from"] in ("", "<>") and mid and mid.group(2).decode() == orig:
            ids.add(mid.group(1).decode())
    return ids


t = TAP()
sink = Sink("127.0.0.2")
sink.handler = KillHandler(sink)
sink.controller.handler = sink.handler
sink.replies["RCPT"] = {"hard@dest.test": "550 5.1.1 no such user"}
sink.armed, sink.hard_seen, sink.pid, sink.kill_ms = False, 0, 0, 0
sink.start()
r = Relayd(conf="relayhost = [127.0.0.2]:%d\nretry_min = 1s\nretry_max = 1s\n" % sink.port)
# Work in flight at the kill is due again when its claim's lease ends.
r.env = dict(os.environ, RELAYD_CLAIM_LEASE="2")
before = after = 0
try:
    for ms in DELAYS_MS:
        r.start()
        sink.hard_seen, sink.pid, sink.kill_ms = 0, r.proc.pid, ms
        sink.armed = True
        qid = submit(r, "killed %dms after the 550" % ms)
        died = wait_for(lambda: r.proc.poll() is not None, timeout=20)
        t.ok(qid and died, "%g ms: queued, killed after the 550" % ms)
        r.log_file.close()
        r.start()
        # The queue, not the log: a kill just after the commit loses the
        # "removed" line, not the removal.
        done = wait_for(lambda: report_ids(sink, qid) and qid not in r.queue_ids(),
                        timeout=30, step=0.2)
        ids = report_ids(sink, qid)
        t.ok(done and len(ids) == 1, "%g ms: exactly one report after the restart" % ms,
             "reports %r, log:\n%s" % (ids, r.log()[-2500:]))
        # The 550 seen again means the kill came before the commit.
        if sink.hard_seen > 1:
            before += 1
        else:
            after += 1
        t.ok(r.stop() == 0, "%g ms: clean stop after recovery" % ms)
    t.diag("kills before the commit: %d, after: %d" % (before, after))
    t.ok(before > 0, "some kills landed before the result was committed")
    t.ok(after > 0, "some after it")
    t.ok(r.sanitizer_clean(), "no sanitizer report")
finally:
    r.stop()
    sink.stop()
    r.cleanup()
t.done()
