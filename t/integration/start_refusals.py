#!/usr/bin/python3
"""start_refusals - relayd refuses to start, exits 1 and says why in one
line that names the culprit, when: queue_dir belongs to another user,
a queue file inside it does, the certificate and the key do not match,
an SMTP listener's address is in use or not available on this host, or
metrics_listen's address is in use.  Started without -F, the command
itself exits 1 (and 0 once the start succeeds).
"""
import os
import pwd
import re
import shutil
import socket
import subprocess
import sys
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from relaydtest import TAP, Relayd, RELAYD, free_port, make_cert   # noqa: E402

t = TAP()
if os.geteuid() != 0:
    print("1..0 # SKIP needs root (queue ownership and the privilege drop)")
    sys.exit(0)


def refused(r, name, want, prefix=()):
    """Start r (optionally under a prefix command), expect exit 1 and a
    log line holding every string of want; returns that line."""
    with open(r.log_path, "ab") as log:
        proc = subprocess.Popen([*prefix, RELAYD, "-F", "-f", r.conf_path],
                                stdout=log, stderr=subprocess.STDOUT)
        try:
            rc = proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            rc = "still running"
    text = r.log()
    line = next((l for l in text.splitlines() if all(w in l for w in want)), "")
    t.eq(rc, 1, "%s: relayd exits 1" % name)
    t.ok(line, "%s: the log says %s" % (name, " ... ".join(want)), text[-1500:])
    t.ok("fatal: relayd not started" in text, "%s: and ends with a fatal line" % name, text[-600:])
    t.ok("daemon started" not in text, "%s: and never started" % name)
    open(r.log_path, "w").close()
    return line


def replace(r, old, new):
    with open(r.conf_path) as f:
        text = f.read()
    if old not in text:
        raise RuntimeError("%r not in the configuration" % old)
    r.write_conf(text.replace(old, new))


r = Relayd()
others = []
try:
    other = pwd.getpwnam("nobody")
    # ---- queue_dir owned by someone else: never taken over ----
    os.mkdir(r.queue_dir, 0o755)
    os.chown(r.queue_dir, other.pw_uid, other.pw_gid)
    line = refused(r, "queue_dir owned by nobody",
                   ["queue_dir %s" % r.queue_dir, "not owned by user relayd",
                    "chown -R relayd: %s" % r.queue_dir])
    t.ok("nobody" in line, "the message shows the owner", line)
    st = os.stat(r.queue_dir)
    t.ok(st.st_uid == other.pw_uid and st.st_mode & 0o777 == 0o755,
         "the directory's owner and mode are left alone")
    # ---- a queue file of root's inside a directory of relayd's ----
    relayd_pw = pwd.getpwnam("relayd")
    os.chown(r.queue_dir, relayd_pw.pw_uid, relayd_pw.pw_gid)
    with open(os.path.join(r.queue_dir, "lock.mdb"), "w"):
        pass
    line = refused(r, "lock.mdb owned by root",
                   ["%s/lock.mdb" % r.queue_dir, "root:root", "not owned by user relayd"])
    os.unlink(os.path.join(r.queue_dir, "lock.mdb"))
    with open(os.path.join(r.queue_dir, "relayd.lock"), "w"):
        pass
    line = refused(r, "relayd.lock owned by root",
                   ["%s/relayd.lock" % r.queue_dir, "root:root", "not owned by user relayd"])
    shutil.rmtree(r.queue_dir)
    # ---- certificate and key that do not match ----
    other_dir = os.path.join(r.dir, "other")
    os.mkdir(other_dir, 0o755)
    _, key2 = make_cert(other_dir, "other.test")
    replace(r, "tls_key_file = %s" % r.key, "tls_key_file = %s" % key2)
    refused(r, "mismatched key", [key2, "does not match", r.cert])
    replace(r, "tls_key_file = %s" % key2, "tls_key_file = %s" % r.key)
    # ---- an SMTP listener's address in use ----
    busy = socket.socket()
    busy.bind(("127.0.0.1", r.port_sub))
    busy.listen()
    others.append(busy)
    refused(r, "port in use", ["127.0.0.1:%d" % r.port_sub, "address already in use"])
    busy.close()
    # ---- metrics_listen in use ----
    mport = free_port()
    busy = socket.socket()
    busy.bind(("127.0.0.1", mport))
    busy.listen()
    others.append(busy)
    with open(r.conf_path, "a") as f:
        f.write("metrics_listen = 127.0.0.1:%d\n" % mport)
    refused(r, "metrics port in use",
            ["metrics_listen 127.0.0.1:%d" % mport, "Address already in use"])
    busy.close()
    replace(r, "metrics_listen = 127.0.0.1:%d\n" % mport, "")
    # ---- an address this host does not have: ::1 in a network
    # namespace of our own, whose loopback is down ----
    if subprocess.run(["unshare", "-n", "true"], capture_output=True).returncode == 0:
        replace(r, "submission_listen = 127.0.0.1:%d" % r.port_sub,
                "submission_listen = [::1]:%d" % r.port_sub)
        refused(r, "address not available", ["[::1]:%d" % r.port_sub, "address not available"],
                prefix=("unshare", "-n"))
        replace(r, "submission_listen = [::1]:%d" % r.port_sub,
                "submission_listen = 127.0.0.1:%d" % r.port_sub)
    else:
        t.skip("address not available", "unshare -n is not permitted here")
    # ---- without -F: the command's exit status is the verdict ----
    replace(r, "tls_key_file = %s" % r.key, "tls_key_file = %s" % key2)
    rc = subprocess.run([RELAYD, "-f", r.conf_path], timeout=30).returncode
    t.eq(rc, 1, "detached start with a bad key: the command exits 1")
    replace(r, "tls_key_file = %s" % key2, "tls_key_file = %s" % r.key)
    rc = subprocess.run([RELAYD, "-f", r.conf_path], timeout=30).returncode
    t.eq(rc, 0, "detached start that works: the command exits 0 once relayd is up")
    pid = None
    if rc == 0:
        # The daemon is listening by the time the command returned.
        try:
            socket.create_connection(("127.0.0.1", r.port_smtp), timeout=2).close()
            t.ok(True, "... and relayd already listens")
        except OSError as e:
            t.ok(False, "... and relayd already listens", str(e))
        out = subprocess.run(["pgrep", "-f", "^%s -f %s$" % (re.escape(RELAYD), re.escape(r.conf_path))],
                             capture_output=True, text=True).stdout.split()
        pid = int(out[0]) if len(out) == 1 else None
        t.ok(pid, "the detached daemon is found by its command line", str(out))
    if pid:
        os.kill(pid, 15)
        deadline = time.time() + 15
        while time.time() < deadline:
            try:
                os.kill(pid, 0)
                time.sleep(0.05)
            except ProcessLookupError:
                break
        else:
            os.kill(pid, 9)
except Exception:
    t.ok(False, "no unexpected exception", traceback.format_exc() + r.log()[-2000:])
finally:
    for s in others:
        s.close()
    r.cleanup()
t.done()
