#!/usr/bin/python3
"""admin_relayctl - relayctl's queue verbs against a running daemon (the
control socket) and a stopped one (straight to the queue).

Each way: hold takes a message out of the due index (the scheduler's
only source: held mail is never delivered) and release, requeue, flush
and deliver make mail due now (relayq -j's next_attempt_time and the due
index); the filters pick what they should, --dry-run touches nothing;
ids come from arguments, ALL or stdin; every change is logged
postsuper-style (the daemon's log, or relayctl's own syslog lines);
status, reload and the exit codes 0/1/2.
"""
import os
import re
import socket
import sys
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from relaydtest import TAP, Relayd, NO_DELIVERY  # noqa: E402
from admincommon import relayctl, inject, due, jlist  # noqa: E402

t = TAP()


class Syslog:
    """A datagram socket standing in for /dev/log (relayctl's own lines)."""

    def __init__(self, directory):
        self.path = os.path.join(directory, "log.sock")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        os.chmod(self.path, 0o666)      # relayctl writes as the queue's owner
        self.sock.setblocking(False)
        self.lines = []

    def read(self):
        while True:
            try:
                self.lines.append(self.sock.recv(65536).decode("utf-8", "replace"))
            except BlockingIOError:
                return "\n".join(self.lines)


def next_times(r, qid):
    return [x["next_attempt_time"] for x in jlist(r)[qid]["recipients"]]


def due_now(r, qid, since):
    """Every recipient due now, or tried since `since` (a running
    scheduler may have taken it at once)."""
    for x in jlist(r)[qid]["recipients"]:
        tried = [h["time"] for h in x["attempt_history"] if h["time"] >= since]
        if abs(x["next_attempt_time"] - time.time()) > 2 and not tried:
            return False
    return True


def scenario(running):
    mode = "running" if running else "stopped"
    r = Relayd(conf=NO_DELIVERY, tls=False)
    try:
        r.start()          # makes the queue
        r.stop()
        slog = Syslog(r.dir)
        env = dict(os.environ, RELAYD_SYSLOG_SOCKET=slog.path)
        m1 = inject(r, "spam@spam.example", ["a@dead.example"], reason="421 dead host refused",
                    age=3 * 3600)
        m2 = inject(r, "Spam@SPAM.example", ["b@ok.example"], reason="450 greylisted", age=600)
        m3 = inject(r, "good@example.org", ["c@dead.example"], reason="421 dead host refused",
                    age=3600)
        m4 = inject(r, "good@example.org", ["d@ok.example"])
        if running:
            r.start()

        def log():
            return r.log() if running else slog.read()

        def ctl(*a, stdin=None):
            return relayctl(r, *a, stdin=stdin, env=env)

        # Before flush or deliver: they lift the dead relayhost's backoff, and
        # the attempts that follow replace the injected reasons.
        code, out, err = ctl("hold", "--reason", "dead host refused$", "--dry-run")
        t.eq(sorted(ln.split(":")[0] for ln in out.decode().split("\n")[:-1]), sorted([m1, m3]),
             "%s: --reason REGEX" % mode)
        code, out, err = ctl("hold", m1)
        t.eq(code, 0, "%s: hold exits 0" % mode)
        t.eq(jlist(r)[m1]["queue_name"], "hold", "%s: the message is held" % mode)
        t.ok(all(d[0] != m1 for d in due(r)), "%s: a held message is out of the due index" % mode)
        pid = r.proc.pid if running else r"\d+"
        t.ok(re.search(r"relayd/postsuper\[%s\]: %s: placed on hold" % (pid, m1), log()),
             "%s: logged 'placed on hold'" % mode, log())
        code, out, err = ctl("hold", m1)
        t.eq(code, 0, "%s: holding it again is not an error" % mode)

        since = int(time.time())
        code, out, err = ctl("release", "ALL")
        t.eq(code, 0, "%s: release ALL" % mode)
        t.ok(due_now(r, m1, since), "%s: released: due now (next_attempt_time)" % mode,
             str(jlist(r)[m1]))
        t.ok(any(d[0] == m1 and (abs(d[2] - time.time()) <= 2 or running) for d in due(r)),
             "%s: and back in the due index" % mode)
        t.ok(re.search(r"%s: released from hold" % m1, log()), "%s: logged release" % mode)

        t.ok(all(x > time.time() + 1000 for x in next_times(r, m3)), "%s: m3 due later" % mode)
        since = int(time.time())
        code, out, err = ctl("requeue", "-", stdin=(m3 + "\n\n").encode())
        t.eq(code, 0, "%s: requeue - (ids on stdin)" % mode)
        t.ok(due_now(r, m3, since), "%s: requeued: due now" % mode)
        t.ok(re.search(r"%s: requeued" % m3, log()), "%s: logged requeue" % mode)

        since = int(time.time())
        code, out, err = ctl("flush")
        t.eq(code, 0, "%s: flush" % mode)
        t.ok(due_now(r, m2, since), "%s: flush: deferred due now" % mode)

        code, out, err = ctl("hold", m4)
        code, out, err = ctl("deliver", m4)
        t.ok(code == 1 and "on hold" in err, "%s: deliver of a held message: exit 1, says why" % mode,
             err)
        ctl("release", m4)
        code, out, err = ctl("deliver", m4)
        t.eq(code, 0, "%s: deliver ID" % mode)

        # Filters and --dry-run.
        code, out, err = ctl("delete", "--from", "@spam.example", "--dry-run")
        lines = out.decode().split("\n")[:-1]
        t.eq(code, 0, "%s: delete --dry-run exits 0" % mode)
        t.eq(sorted(ln.split(":")[0] for ln in lines), sorted([m1, m2]),
             "%s: --from @domain (any case) would touch the two spam messages" % mode)
        t.ok(all("would be removed (from=<" in ln for ln in lines), "%s: says what it would do" % mode,
             out.decode())
        t.eq(len(jlist(r)), 4, "%s: --dry-run removed nothing" % mode)
        code, out, err = ctl("hold", "--to-domain", "DEAD.example", "--older-than", "2h", "--dry-run")
        t.eq([ln.split(":")[0] for ln in out.decode().split("\n")[:-1]], [m1],
             "%s: --to-domain and --older-than together" % mode)
        code, out, err = ctl("hold", "--from", "good@EXAMPLE.org", "--dry-run", "ALL")
        t.eq(sorted(ln.split(":")[0] for ln in out.decode().split("\n")[:-1]), sorted([m3, m4]),
             "%s: --from ADDR with ALL" % mode)
        code, out, err = ctl("delete", "--from", "@spam.example")
        t.eq(code, 0, "%s: delete --from @domain" % mode)
        t.eq(sorted(jlist(r)), sorted([m3, m4]), "%s: exactly those two are gone" % mode)
        t.ok(re.search(r"relayd/postsuper\[%s\]: %s: removed" % (pid, m2), log()),
             "%s: logged 'removed'" % mode)

        code, out, err = ctl("delete", "0CRBY68X1NKR")
        t.ok(code == 1 and "no such message" in err, "%s: an unknown id: exit 1" % mode, err)
        code, out, err = ctl("delete", "not-an-id\x1b")
        t.ok(code == 1 and "not a queue id" in err and "\x1b" not in err,
             "%s: a malformed id: exit 1, escaped" % mode, err)
        code, out, err = ctl("delete", "ALL")
        t.eq((code, jlist(r)), (0, {}), "%s: delete ALL" % mode)

        for args in (["hold"], ["hold", "--older-than", "soon"], ["hold", "--reason", "(", "ALL"],
                     ["bogus"], ["flush", "x"], ["deliver"], ["hold", "--nope", "ALL"]):
            code, out, err = ctl(*args)
            t.eq(code, 2, "%s: usage error %s: exit 2" % (mode, " ".join(args)))

        code, out, err = ctl("status")
        text = out.decode()
        if running:
            t.ok(code == 0 and "daemon: running" in text and "pid: %d" % r.proc.pid in text and
                 "queue.messages: 0" in text, "status: running, its pid, the queue size", text + err)
            code, out, err = ctl("reload")
            t.eq(code, 0, "reload exits 0")
            t.ok(r.wait_log("reload: configuration"), "the daemon reloaded")
            t.eq(r.stop(), 0, "the daemon stops cleanly")
            t.ok(r.sanitizer_clean(), "no sanitizer report", r.log())
        else:
            t.ok(code == 1 and "daemon: stopped" in text and "queue.messages: 0" in text and
                 "not running" in err, "status: stopped, exit 1, the queue size", text + err)
            code, out, err = ctl("reload")
            t.ok(code == 1 and "not running" in err, "reload without the daemon: exit 1")
            owner = os.stat(r.queue_dir).st_uid
            t.ok(all(os.stat(os.path.join(r.queue_dir, f)).st_uid == owner
                     for f in os.listdir(r.queue_dir)),
                 "nothing in queue_dir became root's", str(os.listdir(r.queue_dir)))
            r.start()
            t.ok(r.proc.poll() is None, "the daemon starts after relayctl changed the queue")
            r.stop()
    except Exception:
        t.ok(False, "%s: exception" % mode, traceback.format_exc())
    finally:
        r.cleanup()


scenario(running=True)
scenario(running=False)
t.done()
