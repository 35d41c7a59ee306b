#!/usr/bin/python3
"""start_privs - relayd started as root in a tree the relayd user cannot
reach (a clone under /root, or any 0700 directory): the start fails with
a message that names the directory, its mode and owner, the user and the
permission to give, never a bare "queue I/O error".

Started by an unprivileged user (no drop), relayd still makes a queue
directory that does not exist yet, as it always has; when it cannot (the
parent is not writable), the message names the parent and the user.
"""
import os
import pwd
import subprocess
import sys
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from relaydtest import TAP, Relayd, RELAYD   # noqa: E402

t = TAP()
if os.geteuid() != 0:
    print("1..0 # SKIP needs root (relayd must drop privileges)")
    sys.exit(0)

r = Relayd(tls=False)
try:
    private = os.path.join(r.dir, "private")
    os.mkdir(private, 0o700)
    queue = os.path.join(private, "relayd", "run", "queue")
    os.makedirs(os.path.dirname(queue), 0o755)
    with open(r.conf_path) as f:
        text = f.read().replace("queue_dir = %s" % r.queue_dir, "queue_dir = %s" % queue)
    r.write_conf(text)
    r.start(wait_port=False)
    deadline = time.time() + 15
    while r.proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    rc = r.proc.poll()
    log = r.log()
    t.eq(rc, 1, "relayd exits 1")
    line = next((l for l in log.splitlines() if "cannot open queue" in l), "")
    t.ok(line, "the log says the queue cannot be opened", log[-1500:])
    t.ok("I/O error" not in log, "no bare 'I/O error'", log[-1500:])
    t.ok("user relayd" in line, "the message names the user", line)
    t.ok("cannot search directory %s " % private in line,
         "the message names the directory that refuses (%s)" % private, line)
    t.ok("drwx------ root:root" in line, "the message shows its mode and owner", line)
    t.ok("execute (x) permission" in line and "chmod o+x %s" % private in line,
         "the message says which permission to give, and how", line)
except Exception:
    t.ok(False, "no unexpected exception", traceback.format_exc())
finally:
    r.cleanup()


def start_as_relayd(r, queue):
    """relayd run by the relayd user itself, queue_dir = queue; the
    process, once started or exited (15 s at most)."""
    with open(r.conf_path) as f:
        text = f.read().replace("queue_dir = %s" % r.queue_dir, "queue_dir = %s" % queue)
    r.write_conf(text)
    r.log_file = open(r.log_path, "ab")
    r.proc = subprocess.Popen(["setpriv", "--reuid=relayd", "--regid=relayd", "--init-groups",
                               RELAYD, "-F", "-f", r.conf_path],
                              stdout=r.log_file, stderr=subprocess.STDOUT)
    deadline = time.time() + 15
    while (r.proc.poll() is None and "daemon started" not in r.log()
           and time.time() < deadline):
        time.sleep(0.05)


pw = pwd.getpwnam("relayd")
r = Relayd(tls=False)
try:
    own = os.path.join(r.dir, "own")
    os.mkdir(own, 0o755)
    os.chown(own, pw.pw_uid, pw.pw_gid)
    queue = os.path.join(own, "queue")
    start_as_relayd(r, queue)
    t.ok(r.proc.poll() is None and "daemon started" in r.log(),
         "unprivileged: relayd starts with a queue_dir that does not exist yet",
         r.log()[-1500:])
    t.ok(os.path.isdir(queue) and os.stat(queue).st_uid == pw.pw_uid,
         "... and makes it, owned by the user running it")
    t.eq(r.stop(), 0, "... and stops cleanly")
except Exception:
    t.ok(False, "no unexpected exception", traceback.format_exc())
finally:
    r.cleanup()

r = Relayd(tls=False)
try:
    start_as_relayd(r, os.path.join(r.dir, "queue"))   # r.dir: root's, 0755
    deadline = time.time() + 15
    while r.proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    log = r.log()
    line = next((l for l in log.splitlines() if "cannot open queue" in l), "")
    t.eq(r.proc.poll(), 1, "unprivileged, parent not writable: relayd exits 1")
    t.ok("user relayd cannot write" in line and r.dir in line and "I/O error" not in log,
         "... saying which user cannot write where", log[-1500:])
except Exception:
    t.ok(False, "no unexpected exception", traceback.format_exc())
finally:
    r.cleanup()
t.done()
