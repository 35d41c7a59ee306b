#!/usr/bin/python3
"""queue_faults.py - the queue under faults, judged from outside relayd.

t/helpers/fault_shim.so is preloaded into relayd: it logs, in one global
order, every durable sync (fsync, fdatasync, msync(MS_SYNC), writes to
O_DSYNC files), directory fsyncs, file creations, the end of each DATA
section read from a socket ("dot") and each "250 ... queued" written to
one ("ack"); on request it makes spill-file writes slow or fsync fail.

1. Flags: the queue opened the way relayd opens it has none of
   MDB_NOSYNC, MDB_NOMETASYNC, MDB_MAPASYNC.
2. Durability: for every acknowledged message, two durable syncs in
   sequence (the data, then the meta page) start after its dot and end
   before its 250.  Fails with any of the three flags above, or with a 250
   sent before the commit returns.
3. The queue directory is fsynced after the environment's files exist.
4. A slow spill disk does not stall other sessions: NOOP latency on a
   second connection stays low while a large message spills; and the
   spilling session stops taking content while both spill buffers are
   full, even in BDAT chunks small enough to arrive with their command.
5. fsync fails with EIO: the in-flight client gets a 4xx (never a 250),
   relayd logs at crit ("fatal:") and exits non-zero.
6. A reader killed inside a read transaction loses its slot to the
   periodic reader check (period set by RELAYD_READER_CHECK_MS).
"""
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from relaydtest import TAP, Relayd, Client, NO_DELIVERY, TOP_BUILD, queued_id  # noqa: E402

SHIM = os.path.join(TOP_BUILD, "t", "helpers", "fault_shim.so")
QUEUE_ENV = os.path.join(TOP_BUILD, "t", "helpers", "queue_env")


def shim_env(r, **extra):
    """relayd's environment with the shim preloaded and its log in r.dir."""
    env = dict(os.environ)
    env["LD_PRELOAD"] = SHIM
    # The shim comes before ASan's runtime in the library list; that is
    # harmless here (it only forwards calls), so let ASan accept it.
    env["ASAN_OPTIONS"] = (env.get("ASAN_OPTIONS", "") + ":verify_asan_link_order=0").lstrip(":")
    log = os.path.join(r.dir, "shim.log")
    open(log, "w").close()
    os.chmod(log, 0o666)
    env["RELAYD_SHIM_LOG"] = log
    env.update({k: str(v) for k, v in extra.items()})
    r.env = env
    return log


def events(log):
    out = []
    with open(log) as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 2 and parts[0].isdigit():
                out.append((int(parts[0]), parts[1], parts[2:]))
    out.sort()
    return out


def send_one(port, body, rcpt="bob@example.net"):
    """One message over a raw connection; returns the reply to the dot."""
    c = Client(port, timeout=30)
    try:
        c.reply()
        c.cmd("EHLO client.example")
        c.cmd("MAIL FROM:<alice@example.org>")
        c.cmd("RCPT TO:<%s>" % rcpt)
        if not c.cmd("DATA").startswith("354"):
            return ""
        c.send(body + b".\r\n")
        reply = c.reply()
        c.cmd("QUIT")
        return reply
    finally:
        c.close()


def message(n, size=600):
    line = b"x" * 70 + b"\r\n"
    return (b"Subject: fault test %d\r\n\r\n" % n) + line * (size // len(line) + 1)


def test_flags(t):
    d = tempfile.mkdtemp(prefix="relayd-qenv-")
    try:
        out = subprocess.run([QUEUE_ENV, "flags", os.path.join(d, "q")],
                             capture_output=True, text=True, timeout=30)
        flags = out.stdout.split()
        t.ok(out.returncode == 0 and flags[:1] == ["flags"], "flags: queue opens like relayd's",
             out.stderr)
        for bad in ("NOSYNC", "NOMETASYNC", "MAPASYNC"):
            t.ok(bad not in flags, "flags: MDB_%s is not set" % bad, out.stdout)
    finally:
        subprocess.run(["rm", "-rf", d])


def durable_before_ack(ev):
    """For each ack: (ok, why).  Needs a dot on the same socket before it
    and two durable syncs, the second started after the first ended, all
    between the dot and the ack."""
    results = []
    last_dot = {}
    syncs = []          # (begin, end) pairs
    for seq, kind, args in ev:
        if kind == "dot":
            last_dot[args[0]] = seq
        elif kind == "sync-begin":
            syncs.append([seq, None, args[1]])
        elif kind == "sync-end":
            ok = len(args) >= 3 and args[2] not in ("-1",)
            for s in reversed(syncs):
                if s[1] is None and s[2] == args[1]:
                    s[1] = seq if ok else -1
                    break
        elif kind == "ack":
            dot = last_dot.pop(args[0], None)
            if dot is None:
                results.append((False, "ack at %d without a dot before it" % seq))
                continue
            inside = [s for s in syncs if s[0] > dot and s[1] is not None and 0 < s[1] < seq]
            chained = any(b[0] > a[1] for a in inside for b in inside)
            results.append((chained, "dot %d ack %d syncs between %r" % (dot, seq, inside)))
    return results


def test_durability(t):
    r = Relayd(conf=NO_DELIVERY, tls=False)
    log = shim_env(r)
    try:
        r.start()
        replies = [send_one(r.port_smtp, message(i)) for i in range(5)]
        t.ok(all(queued_id(x) for x in replies), "durability: 5 messages queued", replies)
        r.stop()
        ev = events(log)
        res = durable_before_ack(ev)
        t.eq(len(res), 5, "durability: the shim saw 5 acks")
        bad = [why for ok, why in res if not ok]
        t.ok(res and not bad,
             "durability: each 250 follows two chained durable syncs after its dot",
             "\n".join(bad[:5]))
        creates = [s for s, k, a in ev if k == "create" and a and a[0].endswith("/data.mdb")]
        qdir = os.path.realpath(r.queue_dir)
        dirsyncs = [s for s, k, a in ev if k == "dirsync" and a and a[0] == qdir]
        t.ok(creates and dirsyncs and max(dirsyncs) > min(creates),
             "dir fsync: queue_dir fsynced after data.mdb was created",
             "creates %r dirsyncs %r" % (creates, dirsyncs))
        t.ok(r.sanitizer_clean(), "durability: no sanitizer report", r.log()[-3000:])
    finally:
        r.cleanup()


def test_slow_spill(t):
    slow_ms = 500
    r = Relayd(conf=NO_DELIVERY, tls=False)
    shim_env(r, RELAYD_SHIM_SLOW_SPILL_MS=slow_ms)
    try:
        r.start()
        body = message(0, size=600 * 1024)
        result = {}

        def big():
            result["reply"] = send_one(r.port_smtp, body)

        c = Client(r.port_smtp, timeout=30)
        c.reply()
        c.cmd("EHLO probe.example")
        th = threading.Thread(target=big)
        th.start()
        lat = []
        deadline = time.time() + 60
        while th.is_alive() and time.time() < deadline and len(lat) < 2000:
            t0 = time.monotonic()
            rep = c.cmd("NOOP")
            lat.append(time.monotonic() - t0)
            if not rep.startswith("250"):
                break
            time.sleep(0.02)
        th.join(60)
        c.close()
        qid = queued_id(result.get("reply"))
        t.ok(qid is not None, "slow spill: the large message is queued", result)
        got = r.body(qid) if qid else None
        text = body.split(b"\r\n\r\n", 1)[1]
        t.ok(got is not None and got.endswith(b"\r\n\r\n" + text) and b"Subject: fault test 0\r\n" in got,
             "slow spill: its body is stored whole", got[:300] if got else None)
        worst = max(lat) if lat else 0
        t.diag("slow spill: %d NOOPs during the transfer, worst %.0f ms, spill writes %d ms each"
               % (len(lat), worst * 1000, slow_ms))
        t.ok(len(lat) >= 5, "slow spill: the probe ran during the transfer (%d NOOPs)" % len(lat))
        t.ok(worst < slow_ms / 2000.0,
             "slow spill: no NOOP waited %d ms or more (worst %.0f ms)" % (slow_ms // 2, worst * 1000))
        # The same content by BDAT, and by DATA pipelined with QUIT and a
        # half-close: input read while the spool is busy is not lost.
        c = Client(r.port_smtp, timeout=30)
        c.reply()
        c.cmd("EHLO client.example")
        c.cmd("MAIL FROM:<alice@example.org>")
        c.cmd("RCPT TO:<bob@example.net>")
        chunks = [body[i:i + 100000] for i in range(0, len(body), 100000)]
        for i, chunk in enumerate(chunks):
            last = " LAST" if i == len(chunks) - 1 else ""
            c.send(b"BDAT %d%s\r\n" % (len(chunk), last.encode()) + chunk)
        replies = [c.reply() for _ in chunks]
        c.close()
        qid = queued_id(replies[-1])
        t.ok(qid is not None and all(x.startswith("250") for x in replies),
             "slow spill: BDAT in %d chunks queued" % len(chunks), replies)
        got = r.body(qid) if qid else None
        t.ok(got is not None and got.endswith(b"\r\n\r\n" + text), "slow spill: BDAT body whole")
        c = Client(r.port_smtp, timeout=30)
        c.reply()
        c.send(b"EHLO client.example\r\nMAIL FROM:<alice@example.org>\r\n"
               b"RCPT TO:<bob@example.net>\r\nDATA\r\n" + body + b".\r\nQUIT\r\n")
        c.sock.shutdown(socket.SHUT_WR)
        replies = [c.reply() for _ in range(6)]
        c.close()
        qid = queued_id(replies[4])
        t.ok(qid is not None and replies[5].startswith("221"),
             "slow spill: pipelined DATA, QUIT and EOF: queued, then 221", replies)
    finally:
        r.cleanup()


def test_spill_bound_bdat(t):
    """Small BDAT chunks, each read whole with its command, must not pile
    up in memory while a slow spill write is in flight: the session stops
    (no reply) until the disk catches up, whatever the chunk size."""
    slow_ms = 400
    chunk = 8 * 1024
    total = 1024 * 1024
    r = Relayd(conf=NO_DELIVERY, tls=False)
    shim_env(r, RELAYD_SHIM_SLOW_SPILL_MS=slow_ms)
    try:
        r.start()
        c = Client(r.port_smtp, timeout=30)
        c.reply()
        c.cmd("EHLO client.example")
        c.cmd("MAIL FROM:<alice@example.org>")
        c.cmd("RCPT TO:<bob@example.net>")
        line = b"y" * 78 + b"\r\n"
        data = b"Subject: bdat bound\r\n\r\n" + line * (total // len(line))
        sent, stalled_at, ok = 0, None, True
        while sent < len(data):
            piece = data[sent:sent + chunk]
            last = sent + len(piece) >= len(data)
            t0 = time.monotonic()
            c.send(b"BDAT %d%s\r\n" % (len(piece), b" LAST" if last else b"") + piece)
            rep = c.reply()
            took = time.monotonic() - t0
            sent += len(piece)
            if not rep.startswith("250"):
                ok = False
                break
            if stalled_at is None and took > slow_ms / 2000.0:
                stalled_at = sent
        c.close()
        qid = queued_id(rep)
        t.ok(ok and qid is not None, "spill bound: %d KiB in %d KiB BDAT chunks queued"
             % (total // 1024, chunk // 1024), rep)
        got = r.body(qid) if qid else None
        t.ok(got is not None and got.endswith(data.split(b"\r\n\r\n", 1)[1]),
             "spill bound: its body is stored whole")
        # In memory at most: the spill threshold, the buffer being
        # written and the one filling, plus a chunk; the stall must come
        # before twice that.
        t.diag("spill bound: first stall after %s bytes" % stalled_at)
        t.ok(stalled_at is not None and stalled_at <= 512 * 1024,
             "spill bound: the session waits for the slow spill write (first stall after %s bytes)"
             % stalled_at)
    finally:
        r.cleanup()


def test_eio(t):
    r = Relayd(conf=NO_DELIVERY, tls=False)
    trigger = os.path.join(r.dir, "fail-sync")
    shim_env(r, RELAYD_SHIM_FAIL_SYNC=trigger)
    try:
        r.start()
        t.ok(queued_id(send_one(r.port_smtp, message(1))), "EIO: a message before the fault is queued")
        # The scheduler's writes for it (claim, deferral) must be behind
        # us, or one of them, not message 2, would meet the fault.
        r.wait_log("status=deferred")
        time.sleep(0.3)
        open(trigger, "w").close()
        try:
            reply = send_one(r.port_smtp, message(2))
        except OSError as e:
            reply = "connection error: %s" % e
        t.ok(not reply.startswith("250"), "EIO: the in-flight message gets no 250", reply)
        t.ok(reply.startswith("4"), "EIO: the in-flight message gets a 4xx", reply)
        try:
            rc = r.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            rc = None
        t.ok(rc is not None and rc > 0, "EIO: relayd exits non-zero by itself (status %r)" % rc)
        t.ok("fatal: queue %s is unusable (Input/output error)" % r.queue_dir in r.log(),
             "EIO: the cause is logged at crit",
             r.log()[-2000:])
        t.ok(r.sanitizer_clean(), "EIO: no sanitizer report", r.log()[-3000:])
    finally:
        r.cleanup()


def readers(qdir):
    out = subprocess.run([QUEUE_ENV, "readers", qdir], capture_output=True, text=True, timeout=30)
    return out.stdout.split()


def test_reader_check(t):
    r = Relayd(conf=NO_DELIVERY, tls=False)
    r.env = dict(os.environ, RELAYD_READER_CHECK_MS="300")
    holder = None
    try:
        r.start()
        holder = subprocess.Popen([QUEUE_ENV, "hold", r.queue_dir], stdout=subprocess.PIPE,
                                  text=True)
        line = holder.stdout.readline().split()
        pid = line[1] if len(line) == 2 and line[0] == "holding" else None
        t.ok(pid is not None and pid in readers(r.queue_dir),
             "reader check: the holder's slot is listed", line)
        holder.kill()
        holder.wait()
        holder = None
        gone = False
        deadline = time.time() + 10
        while time.time() < deadline:
            if pid not in readers(r.queue_dir):
                gone = True
                break
            time.sleep(0.1)
        t.ok(gone, "reader check: the dead reader's slot is cleared while relayd runs")
        t.ok(r.wait_log("cleared 1 queue reader slot left by dead processes", 5),
             "reader check: relayd logs the slot it cleared", r.log()[-1500:])
        t.ok(queued_id(send_one(r.port_smtp, message(3))), "reader check: relayd still queues")
    finally:
        if holder:
            holder.kill()
            holder.wait()
        r.cleanup()


def main():
    t = TAP()
    for f in (SHIM, QUEUE_ENV):
        if not os.path.exists(f):
            print("1..0 # SKIP %s not built" % f)
            return
    tests = (test_flags, test_durability, test_slow_spill, test_spill_bound_bdat, test_eio, test_reader_check)
    # A direct run may name the scenarios to run: queue_faults.py eio flags
    wanted = sys.argv[1:]
    for test in tests:
        if wanted and test.__name__[5:] not in wanted:
            continue
        try:
            test(t)
        except Exception as e:  # a broken scenario fails, the others still run
            t.ok(False, "%s raised" % test.__name__, repr(e))
    t.done()


if __name__ == "__main__":
    main()
