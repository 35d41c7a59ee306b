#!/usr/bin/python3
"""smtp_load - relayd under concurrency, a crash, and a graceful stop.

 1. 500 concurrent sessions each send one message: every one gets its 250
    and every acknowledged id is stored with its body.
 2. Durability (DESIGN.md §3): ~10 connections pipeline messages while
    relayd is SIGKILLed; after a restart on the same queue every message
    that got a 250 is there, byte for byte (each body carries a checksum).
 3. SIGTERM while a client is inside DATA: the client may finish and gets
    its 250 (or a 421), idle sessions get 421 4.3.2, relayd exits 0 and
    nothing acknowledged is lost; a DATA that never ends is cut off after
    the stop grace period and relayd still exits 0.
"""
import concurrent.futures
import hashlib
import os
import re
import resource
import signal
import sys
import threading
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from relaydtest import TAP, Relayd, Client, NO_DELIVERY, queued_id  # noqa: E402


t = TAP()



def make_body(tag, lines=8):
    """A message whose X-Checksum: covers everything after the header."""
    payload = b"".join(b"%s line %d: the quick brown fox jumps over the lazy dog\r\n"
                       % (tag.encode(), i) for i in range(lines))
    return (b"Subject: load %s\r\nMessage-ID: <%s@load.example>\r\n"
            b"Date: Mon, 02 Mar 2026 10:00:00 +0000\r\n"
            b"X-Checksum: %s\r\n\r\n" % (tag.encode(), tag.encode(),
                                         hashlib.sha256(payload).hexdigest().encode())
            + payload)


def body_intact(stored):
    """The stored body (with relayd's Received:) verifies its checksum."""
    if not stored:
        return False
    m = re.search(rb"\r\nX-Checksum: ([0-9a-f]{64})\r\n\r\n", stored)
    if not m:
        return False
    return hashlib.sha256(stored[m.end():]).hexdigest().encode() == m.group(1)


def strip_received(stored):
    """The stored body without the Received: field relayd prepended."""
    if not stored or not stored.startswith(b"Received: "):
        return None
    pos = 0
    while True:
        eol = stored.find(b"\r\n", pos)
        if eol < 0:
            return None
        pos = eol + 2
        if stored[pos:pos + 1] not in (b" ", b"\t"):
            return stored[pos:]


def fetch_bodies(relayd, qids):
    """{id: stored body}, read by a few queue_dump processes at a time."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as ex:
        return dict(zip(qids, ex.map(relayd.body, qids)))


# More descriptors for 500 client sockets (relayd inherits the limit).
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
want = 4096 if hard == resource.RLIM_INFINITY else min(4096, hard)
if soft < want:
    resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))

N_SESSIONS = 500

r = Relayd(tls=False, conf=NO_DELIVERY)
try:
    r.start()

    # ---- 1. 500 concurrent sessions ------------------------------------------
    results = {}
    errors = {}
    barrier = threading.Barrier(N_SESSIONS + 1)
    lock = threading.Lock()

    def one_session(i):
        c = None
        try:
            c = Client(r.port_smtp, timeout=30)
            greet = c.reply()
            barrier.wait(timeout=40)     # every session open at once
            if not greet.startswith("220 "):
                raise RuntimeError("greeting %r" % greet)
            body = make_body("s%03d" % i)
            c.send("EHLO load%d.example\r\n" % i)
            c.reply()
            rep = [c.cmd("MAIL FROM:<load%d@example.org>" % i),
                   c.cmd("RCPT TO:<rcpt%d@example.net>" % i), c.cmd("DATA")]
            if rep != ["250 2.1.0 Ok", "250 2.1.5 Ok",
                       "354 End data with <CR><LF>.<CR><LF>"]:
                raise RuntimeError("replies %r" % rep)
            c.send(body + b".\r\n")
            final = c.reply()
            c.cmd("QUIT")
            with lock:
                results[i] = (final, body)
        except Exception as e:                  # noqa: BLE001
            with lock:
                errors[i] = repr(e)
            try:
                barrier.abort()
            except threading.BrokenBarrierError:
                pass
        finally:
            if c:
                c.close()

    t0 = time.time()
    threads = [threading.Thread(target=one_session, args=(i,), daemon=True)
               for i in range(N_SESSIONS)]
    for th in threads:
        th.start()
    all_open = True
    try:
        barrier.wait(timeout=40)
    except threading.BrokenBarrierError:
        all_open = False
    open_time = time.time() - t0
    deadline = time.time() + 60
    for th in threads:
        th.join(max(0.1, deadline - time.time()))
    elapsed = time.time() - t0
    t.diag("500 sessions: all open after %.1f s, done after %.1f s" % (open_time, elapsed))
    t.ok(all_open, "500 sessions open concurrently, each greeted with 220",
         list(errors.items())[:5])
    t.ok(not any(th.is_alive() for th in threads), "all 500 sessions finished in time")
    t.eq(len(errors), 0, "no session failed")
    ids = {i: queued_id(res[0]) for i, res in results.items()}
    good = [i for i in range(N_SESSIONS) if ids.get(i)]
    t.eq(len(good), N_SESSIONS, "all 500 messages got '250 2.0.0 Ok: queued as ID'")
    t.eq(len(set(ids[i] for i in good)), len(good), "the 500 queue ids are distinct")
    stored = set(r.queue_ids())
    missing = [ids[i] for i in good if ids[i] not in stored]
    t.eq(missing, [], "every acknowledged id is in the queue")
    bodies = fetch_bodies(r, [ids[i] for i in good])
    bad = [ids[i] for i in good if strip_received(bodies[ids[i]]) != results[i][1] or
           not body_intact(bodies[ids[i]])]
    t.eq(bad, [], "every stored body is exactly what its client sent")
    t.eq(len(stored), N_SESSIONS, "nothing else was stored")
    t.ok(r.wait_log("disconnect from unknown[127.0.0.1] ehlo=1 mail=1 rcpt=1 data=1 quit=1"),
         "sessions were logged")
    t.eq(len(re.findall(r"\(queue active\)", r.log())), N_SESSIONS,
         "500 'queue active' log lines")

    # ---- 2. SIGKILL under load, restart on the same queue --------------------
    acked = {}             # id -> body
    gen_errors = []
    stop_gen = threading.Event()
    sent_count = [0]

    def generator(g):
        c = None
        try:
            c = Client(r.port_smtp, timeout=10)
            if not c.reply().startswith("220"):
                return
            c.cmd("EHLO gen%d.example" % g)
            k = 0
            while not stop_gen.is_set() and k < 100000:
                batch = []
                for _ in range(4):
                    tag = "g%d-%d" % (g, k)
                    k += 1
                    batch.append((tag, make_body(tag, lines=50 + (k * 37) % 250)))
                c.send(b"".join(b"MAIL FROM:<%s@gen.example>\r\nRCPT TO:<to@example.net>\r\n"
                                b"DATA\r\n%s.\r\n" % (tag.encode(), body)  # no line starts with '.'
                                for tag, body in batch))
                with lock:
                    sent_count[0] += len(batch)
                for tag, body in batch:
                    rep = [c.reply() for _ in range(4)]
                    if "" in rep:
                        return             # relayd went away
                    qid = queued_id(rep[3])
                    if rep[:3] != ["250 2.1.0 Ok", "250 2.1.5 Ok",
                                   "354 End data with <CR><LF>.<CR><LF>"] or not qid:
                        with lock:
                            gen_errors.append((tag, rep))
                        return
                    with lock:
                        acked[qid] = body
                # A pause keeps the number of messages to verify (one
                # queue_dump each, slow under ASan) in the hundreds.
                stop_gen.wait(0.08)
        except OSError:
            pass                               # reset by the SIGKILL
        finally:
            if c:
                c.close()

    before_crash = set(r.queue_ids())
    gens = [threading.Thread(target=generator, args=(g,), daemon=True) for g in range(10)]
    for th in gens:
        th.start()
    time.sleep(1.0)
    with lock:
        acked_at_kill = len(acked)
    rc = r.stop(signal.SIGKILL)
    stop_gen.set()
    for th in gens:
        th.join(15)
    t.eq(rc, -signal.SIGKILL, "relayd was SIGKILLed under load")
    t.ok(not any(th.is_alive() for th in gens), "the load generators stopped")
    t.eq(gen_errors, [], "no message was refused before the crash")
    t.diag("crash: %d sent, %d acknowledged (%d at the kill)" %
           (sent_count[0], len(acked), acked_at_kill))
    t.ok(len(acked) >= 20, "the generators got at least 20 messages acknowledged",
         len(acked))
    try:
        r.start()
        restarted = True
    except RuntimeError as e:
        restarted = False
        t.diag(str(e)[-2000:])
    t.ok(restarted, "relayd restarts on the queue of the killed instance")
    after = set(r.queue_ids())
    lost = sorted(q for q in acked if q not in after)
    t.eq(lost, [], "every acknowledged message survived the SIGKILL")
    bodies = fetch_bodies(r, [q for q in acked if q in after])
    bad = [q for q in bodies if strip_received(bodies[q]) != acked[q] or
           not body_intact(bodies[q])]
    t.eq(bad, [], "every acknowledged message is byte-exact after the crash")
    extra = sorted(after - before_crash - set(acked))
    bodies = fetch_bodies(r, extra)
    torn = [q for q in extra if not body_intact(bodies[q])]
    t.diag("%d committed but unacknowledged messages" % len(extra))
    t.eq(torn, [], "messages committed without a 250 are intact too")
    t.ok(before_crash <= after, "the earlier 500 messages are still there")
    c = Client(r.port_smtp)
    c.reply()
    c.cmd("EHLO after.example")
    c.cmd("MAIL FROM:<after@example.org>")
    c.cmd("RCPT TO:<after@example.net>")
    c.cmd("DATA")
    c.send(make_body("after-crash") + b".\r\n")
    qid = queued_id(c.reply())
    c.cmd("QUIT")
    c.close()
    t.ok(qid is not None and qid in r.queue_ids(), "the restarted relayd queues new mail")
    t.ok(qid is not None and all(qid > q for q in after),
         "queue ids keep increasing after the restart")
    rc = r.stop()
    t.eq(rc, 0, "the restarted relayd exits 0 on SIGTERM")
    t.ok(r.sanitizer_clean(), "no sanitizer report (load, crash)", r.log()[-3000:])
except Exception:
    t.ok(False, "no unexpected exception (load, crash)", traceback.format_exc())
finally:
    r.cleanup()

# ---- 3. SIGTERM during DATA ---------------------------------------------------
r = Relayd(tls=False, conf=NO_DELIVERY)
try:
    r.start()
    # One message before, to check nothing acknowledged is lost.
    c = Client(r.port_smtp)
    c.reply()
    c.cmd("EHLO pre.example")
    c.cmd("MAIL FROM:<pre@example.org>")
    c.cmd("RCPT TO:<pre@example.net>")
    c.cmd("DATA")
    pre_body = make_body("pre")
    c.send(pre_body + b".\r\n")
    pre_id = queued_id(c.reply())
    t.ok(pre_id is not None, "stop: a message queued before the stop")
    idle = c                                 # stays in command state

    d = Client(r.port_smtp)
    d.reply()
    d.cmd("EHLO data.example")
    d.cmd("MAIL FROM:<indata@example.org>")
    d.cmd("RCPT TO:<indata@example.net>")
    t.ok(d.cmd("DATA").startswith("354 "), "stop: a session is inside DATA")
    body = make_body("in-data", lines=40)
    d.send(body[:len(body) // 2])
    time.sleep(0.3)
    r.signal(signal.SIGTERM)
    t.ok(r.wait_log("terminating on signal 15", 5), "stop: SIGTERM received")
    t.eq(idle.reply(), "421 4.3.2 relayd.test Service shutting down",
         "stop: a session in command state gets 421 4.3.2 at once")
    t.ok(idle.closed(), "stop: and is closed")
    idle.close()
    refused = False
    try:
        x = Client(r.port_smtp, timeout=2)
        refused = x.reply() == ""
        x.close()
    except OSError:
        refused = True
    t.ok(refused, "stop: no new session is accepted")
    time.sleep(0.5)
    t.ok(r.proc.poll() is None, "stop: relayd waits for the session in DATA")
    # A new transaction pipelined behind the end of the data must not
    # start once the daemon is stopping.
    d.send(body[len(body) // 2:] + b".\r\n" +
           b"MAIL FROM:<late@example.org>\r\nRCPT TO:<late@example.net>\r\nDATA\r\n")
    final = d.reply()
    in_id = queued_id(final)
    t.ok(in_id is not None or final.startswith("421 "),
         "stop: finishing DATA after SIGTERM gets 250 (or 421)", final)
    t.ok(in_id is not None, "stop: the DATA in progress was accepted within the grace period",
         final)
    after = d.reply() if in_id else ""
    t.ok(not in_id or after.startswith("421 4.3.2"),
         "stop: then 421 4.3.2 shutting down, not 250 to the pipelined MAIL", after)
    t.ok(d.closed(), "stop: the DATA session is closed")
    d.close()
    try:
        r.proc.wait(timeout=15)
    except Exception:                          # noqa: BLE001
        pass
    rc = r.stop()
    t.eq(rc, 0, "stop: relayd exits 0 after SIGTERM during DATA")
    ids = r.queue_ids()
    t.ok(pre_id in ids and strip_received(r.body(pre_id)) == pre_body,
         "stop: the message queued before the stop is intact")
    if in_id:
        t.ok(in_id in ids and strip_received(r.body(in_id)) == body,
             "stop: the message finished during the stop is stored byte-exact")
    t.ok(r.sanitizer_clean(), "stop: no sanitizer report", r.log()[-3000:])

    # A DATA that never ends is cut off after the grace period.
    r.start()
    d = Client(r.port_smtp, timeout=30)
    d.reply()
    d.cmd("EHLO stall.example")
    d.cmd("MAIL FROM:<stall@example.org>")
    d.cmd("RCPT TO:<stall@example.net>")
    d.cmd("DATA")
    d.send(b"Subject: never finished\r\n\r\npartial")
    time.sleep(0.2)
    t0 = time.time()
    r.signal(signal.SIGTERM)
    rep = d.reply()
    waited = time.time() - t0
    t.eq(rep, "421 4.3.2 relayd.test Service shutting down",
         "stop: a stalled DATA gets 421 4.3.2 after the grace period")
    t.ok(d.closed(), "stop: the stalled session is closed")
    d.close()
    try:
        r.proc.wait(timeout=15)
    except Exception:                          # noqa: BLE001
        pass
    t.ok(time.time() - t0 < 20, "stop: relayd stops within the grace period", waited)
    rc = r.stop()
    t.eq(rc, 0, "stop: relayd exits 0 after cutting off the stalled DATA")
    t.ok(all(strip_received(r.body(q)) is not None for q in r.queue_ids()) and
         len(r.queue_ids()) == (2 if in_id else 1),
         "stop: the stalled message was not stored, the others are still there",
         r.queue_ids())
    t.ok(r.sanitizer_clean(), "stop: no sanitizer report (stalled DATA)", r.log()[-3000:])
except Exception:
    t.ok(False, "no unexpected exception (stop)", traceback.format_exc())
finally:
    r.cleanup()
t.done()
