#!/usr/bin/python3
"""admin_bulk - relayctl's bulk actions on a big queue.

Piped, a bulk action prints nothing extra; with stderr on a terminal (a
pty) it shows done/total with a rate and a final summary.  Ctrl-C
(SIGINT) in the middle of "delete ALL" through the daemon stops between
two committed batches: exit 1, "interrupted: N of M", and exactly N
messages are gone, each logged.
"""
import os
import re
import select
import signal
import subprocess
import sys
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from relaydtest import TAP, Relayd, NO_DELIVERY  # noqa: E402
from admincommon import RELAYCTL, QUEUE_INJECT, relayctl, relayq, run  # noqa: E402

t = TAP()
N = 60000


def count(r):
    code, out, err = relayq(r, "-s")
    for line in out.decode().split("\n"):
        if line.startswith("total "):
            return int(line.split()[1])
    raise RuntimeError("relayq -s: " + out.decode() + err)


def on_pty(r, args, until=None, timeout=120):
    """Run relayctl with stderr on a pty; returns (process, text read).
    With until, return as soon as the text matches it (process running)."""
    master, slave = os.openpty()
    p = subprocess.Popen([RELAYCTL, "-f", r.conf_path] + args, stdout=subprocess.PIPE,
                         stderr=slave, stdin=subprocess.DEVNULL)
    os.close(slave)
    text, deadline = b"", time.time() + timeout
    while time.time() < deadline:
        if until and re.search(until, text.decode("utf-8", "replace")):
            return p, master, text.decode("utf-8", "replace")
        ready, _, _ = select.select([master], [], [], 0.5)
        if ready:
            try:
                chunk = os.read(master, 65536)
            except OSError:
                break
            if not chunk:
                break
            text += chunk
        elif p.poll() is not None and not until:
            break
    return p, master, text.decode("utf-8", "replace")


def drain(master, text):
    while True:
        ready, _, _ = select.select([master], [], [], 0.5)
        if not ready:
            return text
        try:
            chunk = os.read(master, 65536)
        except OSError:
            return text
        if not chunk:
            return text
        text += chunk.decode("utf-8", "replace")


r = Relayd(conf=NO_DELIVERY, tls=False)
try:
    r.start()
    r.stop()
    code, out, err = run([QUEUE_INJECT, r.queue_dir, "-N", str(N), "bulk@example.org",
                          "a@example.net", "b@example.com"], timeout=300)
    t.ok(code == 0, "%d messages queued" % N, err)
    t.eq(count(r), N, "relayq -s counts them")

    code, out, err = relayctl(r, "hold", "ALL")
    t.eq((code, out, err), (0, b"", ""), "hold ALL, piped: nothing on stdout or stderr")

    p, master, text = on_pty(r, ["release", "ALL"])
    p.wait(60)
    text = drain(master, text)
    os.close(master)
    t.eq(p.returncode, 0, "release ALL on a terminal: exit 0")
    t.ok(re.search(r"release: %d/%d \(\d+/s\)" % (N, N), text), "progress: done/total and rate", text)
    t.ok(re.search(r"relayctl: %d messages released from hold in [\d.]+s" % N, text),
         "a summary line", text)

    r.start()
    p, master, text = on_pty(r, ["delete", "ALL"], until=r"delete: \d+/%d" % N)
    p.send_signal(signal.SIGINT)
    p.wait(60)
    text = drain(master, text)
    os.close(master)
    m = re.search(r"interrupted: (\d+) of %d messages removed" % N, text)
    t.eq(p.returncode, 1, "Ctrl-C: exit 1")
    t.ok(m, "says how many were done", text)
    done = int(m.group(1)) if m else -1
    t.ok(0 < done < N, "stopped part way (%d of %d)" % (done, N))
    t.eq(count(r), N - done, "exactly that many are gone: the rest stays queued")
    removed = len(re.findall(r"postsuper\[\d+\]: [0-9A-Z]{12}: removed", r.log()))
    t.eq(removed, done, "each of them logged")
    code, out, err = relayctl(r, "delete", "ALL")
    t.eq((code, err), (0, ""), "the rest deleted, piped: quiet")
    t.eq(count(r), 0, "the queue is empty")
    t.eq(r.stop(), 0, "the daemon stops cleanly")
    t.ok(r.sanitizer_clean(), "no sanitizer report", r.log()[-3000:])
except Exception:
    t.ok(False, "exception", traceback.format_exc())
finally:
    r.cleanup()
t.done()
