#!/usr/bin/python3
"""queue_lock - relayd holds its queue's lock while it runs.

A tool sees the running daemon and its pid (t/helpers/queue_dump -L, which
calls queue_lock_probe), a second relayd on the same queue_dir refuses to
start, a stopped or SIGKILLed daemon leaves no stale lock, and the queue
directory and files let the daemon's group read it.
"""
import os
import signal
import smtplib
import stat
import subprocess
import sys
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from relaydtest import TAP, Relayd, QUEUE_DUMP, NO_DELIVERY  # noqa: E402

t = TAP()


def probe(qdir):
    out = subprocess.run([QUEUE_DUMP, qdir, "-L"], capture_output=True, timeout=10)
    return out.stdout.decode().strip()


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


r = Relayd(conf=NO_DELIVERY, tls=False)
r2 = Relayd(conf=NO_DELIVERY, tls=False)
try:
    r.start()
    t.eq(probe(r.queue_dir), "running %d" % r.proc.pid, "a tool sees the daemon and its pid")
    with smtplib.SMTP("127.0.0.1", r.port_smtp, timeout=10) as c:
        c.sendmail("a@example.org", ["b@example.net"], b"Subject: x\r\n\r\nhi\r\n")
    ids = r.queue_ids()
    t.eq(len(ids), 1, "one message queued")

    with open(r2.conf_path) as f:
        text = f.read()
    r2.write_conf(text.replace(r2.queue_dir, r.queue_dir))
    r2.start(wait_port=False)
    try:
        code = r2.proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        code = None
    t.eq(code, 1, "a second relayd on the same queue exits 1")
    t.ok("cannot lock queue" in r2.log(), "and says why", r2.log())
    t.eq(probe(r.queue_dir), "running %d" % r.proc.pid, "the first one still holds it")

    t.eq(mode(r.queue_dir), 0o750, "queue_dir is 0750")
    t.eq(mode(os.path.join(r.queue_dir, "data.mdb")), 0o640, "data.mdb is 0640")
    t.eq(mode(os.path.join(r.queue_dir, "lock.mdb")), 0o660, "lock.mdb is 0660")

    t.eq(r.stop(), 0, "stops cleanly")
    t.eq(probe(r.queue_dir), "stopped", "a stopped daemon releases the lock")

    r.start()
    r.stop(sig=signal.SIGKILL)
    t.eq(probe(r.queue_dir), "stopped", "a killed daemon leaves no stale lock")
    r.start()
    t.eq(probe(r.queue_dir), "running %d" % r.proc.pid, "and the next one starts")
    t.eq(r.queue_ids(), ids, "with the message still queued")
    t.eq(r.stop(), 0, "stops cleanly again")
    t.ok(r.sanitizer_clean(), "no sanitizer report from the daemon", r.log())
    # A refused start exits without freeing its configuration (LeakSanitizer
    # says so); memory errors are what must not happen.
    t.ok(not any(m in r2.log() for m in ("ERROR: AddressSanitizer", "runtime error:",
                                         "panic:")),
         "no memory error in the refused one", r2.log())
except Exception:
    t.ok(False, "exception", traceback.format_exc())
finally:
    r.cleanup()
    r2.cleanup()
t.done()
