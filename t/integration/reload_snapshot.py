#!/usr/bin/python3
"""reload_snapshot - configuration snapshots across SIGHUP.  A session
keeps the configuration it started with (a reference-counted snapshot),
so a reload that changes string values (hostname) and limits neither
frees what the session still reads nor changes its rules mid-way: its
EHLO, SIZE and Received: stay those of its greeting, it completes
messages across several reloads, and new sessions get the new values.
Run under ASan too (the --enable-sanitizers build): the log must stay
free of sanitizer reports.
"""
import os
import re
import signal
import sys
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from relaydtest import TAP, Relayd, Client, queued_id   # noqa: E402
from tls_common import wait_count, finish   # noqa: E402

RELOADED = "reload: configuration"

t = TAP()
r = Relayd(tls=False, conf="message_size_limit = 10M\n")


def send(c, subject):
    """MAIL, RCPT, DATA on an open session; the queue id or None."""
    if not c.cmd("MAIL FROM:<a@example.org>").startswith("250"):
        return None
    if not c.cmd("RCPT TO:<b@example.net>").startswith("250"):
        return None
    if not c.cmd("DATA").startswith("354"):
        return None
    return queued_id(c.cmd("Subject: %s\r\n\r\nbody\r\n." % subject))


def size_of(ehlo):
    m = re.search(r"^250[- ]SIZE (\d+)$", ehlo, re.M)
    return int(m.group(1)) if m else None


try:
    r.start()
    a = Client(r.port_smtp)
    t.eq(a.reply(), "220 relayd.test ESMTP relayd", "session A: greeting")
    e = a.cmd("EHLO client.test")
    t.ok(e.startswith("250-relayd.test"), "session A: EHLO names relayd.test", e)
    t.eq(size_of(e), 10 * 1024 * 1024, "session A: SIZE 10M")

    with open(r.conf_path) as f:
        base = f.read()
    for i in range(3):
        r.write_conf(base.replace("hostname = relayd.test", "hostname = new%d.test" % i)
                     .replace("message_size_limit = 10M", "message_size_limit = %dM" % (5 - i)))
        r.signal(signal.SIGHUP)
        t.ok(wait_count(r, RELOADED, i + 1), "reload %d announced" % (i + 1), r.log()[-1500:])
        b = Client(r.port_smtp)
        t.eq(b.reply(), "220 new%d.test ESMTP relayd" % i,
             "reload %d: a new session gets the new hostname" % (i + 1))
        eb = b.cmd("EHLO client.test")
        t.eq(size_of(eb), (5 - i) * 1024 * 1024, "reload %d: a new session gets the new SIZE"
             % (i + 1))
        b.cmd("QUIT")
        b.close()
        e = a.cmd("EHLO client.test")
        t.ok(e.startswith("250-relayd.test"),
             "reload %d: session A's EHLO still names relayd.test (its snapshot)" % (i + 1), e)
        t.eq(size_of(e), 10 * 1024 * 1024, "reload %d: session A still has SIZE 10M" % (i + 1))
        qid = send(a, "across reload %d" % (i + 1))
        t.ok(qid, "reload %d: session A completes a message" % (i + 1))
        body = r.body(qid) if qid else b""
        t.ok(body and b"by relayd.test (relayd)" in body.split(b"\r\n\r\n")[0],
             "reload %d: its Received: says 'by relayd.test'" % (i + 1),
             (body or b"")[:300])
    t.ok(a.cmd("QUIT").startswith("221 "), "session A: QUIT 221")
    a.close()
    t.ok(r.proc.poll() is None, "relayd still runs")
except Exception:
    t.ok(False, "no unexpected exception", traceback.format_exc())
finally:
    finish(t, r)
    r.cleanup()
t.done()
