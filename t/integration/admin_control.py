#!/usr/bin/python3
"""admin_control - the daemon's control socket.

It is 0660, relayd's user and group; garbage, invalid JSON, a line over
the limit, wrong types, too many ids, an unknown verb and many
connections at once each get an error reply or a close, never a crash:
the daemon keeps answering.  A `relayctl delete ALL` racing with mail
arriving removes only what was there: every message accepted after it
ended is still queued, every one accepted before it started is gone.
"""
import grp
import json
import os
import pwd
import re
import smtplib
import socket
import stat
import sys
import threading
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from relaydtest import TAP, Relayd, NO_DELIVERY, QUEUED_RE  # noqa: E402
from admincommon import relayctl, RELAYCTL, RELAYQ, run  # noqa: E402

# A user in the relayd group only, and one in neither (setpriv, util-linux).
AS_GROUP = ["setpriv", "--reuid=nobody", "--regid=relayd", "--clear-groups"]
AS_NOBODY = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"]

t = TAP()
LINE_MAX = 64 * 1024


def connect(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect(path)
    return s


def call(s, data):
    """Send raw bytes, read one reply line (None if the daemon closed)."""
    s.sendall(data)
    buf = b""
    while not buf.endswith(b"\n"):
        try:
            chunk = s.recv(65536)
        except (ConnectionResetError, socket.timeout):
            return None
        if not chunk:
            return None
        buf += chunk
    return json.loads(buf)


def status_ok(path):
    try:
        with connect(path) as s:
            rep = call(s, b'{"verb":"status"}\n')
            return rep is not None and rep.get("ok") is True
    except OSError:
        return False


r = Relayd(conf=NO_DELIVERY, tls=False)
try:
    r.start()
    path = os.path.join(r.queue_dir, "control")
    st = os.stat(path)
    t.ok(stat.S_ISSOCK(st.st_mode), "the socket is at <queue_dir>/control")
    t.eq(stat.S_IMODE(st.st_mode), 0o660, "mode 0660")
    t.eq((pwd.getpwuid(st.st_uid).pw_name, grp.getgrgid(st.st_gid).gr_name),
         ("relayd", "relayd"), "owned by relayd:relayd (made after the privilege drop)")

    code, out, err = run(AS_GROUP + [RELAYCTL, "-f", r.conf_path, "status"])
    t.ok(code == 0 and b"daemon: running" in out, "a relayd group member may use the socket", err)
    code, out, err = run(AS_NOBODY + [RELAYCTL, "-f", r.conf_path, "hold", "ALL"])
    t.ok(code == 1, "anyone else may not", err)

    with connect(path) as s:
        rep = call(s, b'{"verb":"status"}\n')
        t.ok(rep["ok"] and rep["pid"] == r.proc.pid and rep["queue"]["messages"] == 0,
             "status: pid and queue size", str(rep))
        for data, want, name in (
                (b"garbage\n", "invalid JSON", "garbage"),
                (b"{\"verb\": \"hold\", \n", "invalid JSON", "an unfinished object"),
                (b"[1,2,3]\n", "a request is an object", "an array"),
                (b'{"verb": 7}\n', "a request is an object", "a verb that is not a string"),
                (b'{"verb": "explode"}\n', "unknown verb", "an unknown verb"),
                (b'{"verb": "hold", "ids": "ALL"}\n', "must be an array", "ids not an array"),
                (b'{"verb": "hold", "ids": [1]}\n', "must be an array", "an id not a string"),
                (b'{"verb": "hold", "verb": "delete", "ids": []}\n', "invalid JSON", "a duplicate key"),
                (b'{"verb": "delete", "ids": [' + b",".join([b'"0CRBY68X1NKR"'] * 1001) + b"]}\n",
                 "too many ids", "1001 ids"),
                (b'\xff\xfe{"verb": "status"}\n', "invalid JSON", "invalid UTF-8")):
            rep = call(s, data)
            t.ok(rep is not None and rep["ok"] is False and want in rep["error"],
                 "%s: an error reply" % name, str(rep))
        rep = call(s, b'{"verb": "delete", "ids": ["0CRBY68X1NKR", "bad\\u001b"]}\n')
        t.ok(rep["ok"] and rep["done"] == 0 and rep["missing"] == 1 and rep["failed"] == 1,
             "unknown and malformed ids are counted, not fatal", str(rep))
        s.sendall(b'{"verb":"status"}\n{"verb":"status"}\n')
        buf = b""
        while buf.count(b"\n") < 2:
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
        reps = [json.loads(x) for x in buf.split(b"\n")[:-1]]
        t.ok(len(reps) == 2 and all(x["ok"] for x in reps), "two pipelined requests: two replies")

    with connect(path) as s:
        rep = call(s, b"x" * (LINE_MAX + 10))
        t.ok(rep is not None and "too long" in rep["error"], "a line over 64 KiB: an error reply")
        try:
            s.sendall(b"\n")
            closed = s.recv(10) == b""
        except OSError:
            closed = True
        t.ok(closed, "and the connection is closed")

    # Random bytes and mangled requests (seeded, bounded), a connection each.
    import random
    rnd = random.Random(12)
    seeds = [b'{"verb":"hold","ids":["0CRBY68X1NKR"]}\n', b'{"verb":"status"}\n',
             b'{"verb":"delete","ids":[]}\n']
    answered = 0
    for i in range(200):
        if i % 2:
            data = bytes(rnd.randrange(256) for _ in range(rnd.randrange(1, 300))) + b"\n"
        else:
            data = bytearray(rnd.choice(seeds))
            for _ in range(rnd.randrange(1, 6)):
                data[rnd.randrange(len(data) - 1)] = rnd.randrange(256)
            data = bytes(data)
        try:
            with connect(path) as c:
                c.settimeout(5)
                c.sendall(data)
                c.shutdown(socket.SHUT_WR)
                if c.recv(65536):
                    answered += 1
        except OSError:
            pass
    t.ok(answered >= 190, "200 random or mangled requests: answered (%d)" % answered)
    t.ok(status_ok(path) and r.proc.poll() is None, "and the daemon is still up")

    conns = []
    for i in range(150):
        for attempt in range(50):      # a full backlog says EAGAIN: wait for accept
            try:
                c = connect(path)
                break
            except BlockingIOError:
                time.sleep(0.02)
        try:
            c.sendall(b'{"verb": "sta')     # and then nothing
        except OSError:
            pass                        # one over the limit: closed by the daemon
        conns.append(c)
    t.eq(len(conns), 150, "150 idle connections are accepted")
    t.ok(status_ok(path), "with them open, a new client is still served (the idlest make room)")
    for c in conns:
        c.close()
    time.sleep(0.3)
    t.ok(status_ok(path), "the daemon still answers after 150 connections")
    t.ok(r.proc.poll() is None, "the daemon is still up")

    # delete ALL while mail arrives.
    acked = []          # (time accepted, id)
    stop = threading.Event()

    def sender():
        with smtplib.SMTP("127.0.0.1", r.port_smtp, timeout=20) as c:
            n = 0
            while not stop.is_set() and n < 3000:
                c.ehlo_or_helo_if_needed()
                c.mail("load@example.org")
                c.rcpt("x%d@example.net" % n)
                code, msg = c.data(b"Subject: %d\r\n\r\nbody\r\n" % n)
                m = QUEUED_RE.match("%d %s" % (code, msg.decode()))
                if m:
                    acked.append((time.time(), m.group(1)))
                n += 1

    th = threading.Thread(target=sender)
    th.start()
    deadline = time.time() + 20
    while len(acked) < 200 and time.time() < deadline:
        time.sleep(0.05)
    t0 = time.time()
    code, out, err = relayctl(r, "delete", "ALL")
    t1 = time.time()
    time.sleep(0.5)
    stop.set()
    th.join(30)
    t.eq(code, 0, "delete ALL while mail arrives: exit 0")
    left = set(r.queue_ids())
    before = [q for (w, q) in acked if w < t0]
    after = [q for (w, q) in acked if w > t1]
    t.ok(len(before) >= 200 and after, "mail was accepted before, during and after (%d, %d)"
         % (len(before), len(after)))
    t.ok(not any(q in left for q in before), "every message there before is gone")
    t.ok(all(q in left for q in after), "every message accepted afterwards is kept",
         str([q for q in after if q not in left][:5]))
    removed = set(re.findall(r"postsuper\[\d+\]: ([0-9A-Z]{12}): removed", r.log()))
    gone = {q for (w, q) in acked if q not in left}
    t.eq(gone, removed, "exactly the messages logged as removed are gone")

    t.eq(r.stop(), 0, "the daemon stops cleanly")
    t.ok(not os.path.exists(path), "and removes its socket")
    code, out, err = run(AS_GROUP + [RELAYQ, "-f", r.conf_path])
    t.eq(code, 0, "daemon down: a relayd group member may list the queue")
    code, out, err = run(AS_GROUP + [RELAYCTL, "-f", r.conf_path, "hold", "ALL"])
    t.ok(code == 1 and "needs write access" in err, "but not change it, and is told why", err)
    t.ok(r.sanitizer_clean(), "no sanitizer report", r.log())
except Exception:
    t.ok(False, "exception", traceback.format_exc())
finally:
    r.cleanup()
t.done()
