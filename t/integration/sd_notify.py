#!/usr/bin/python3
"""sd_notify - relayd -F under a service manager that sets NOTIFY_SOCKET
(systemd's Type=notify): READY=1 arrives once relayd listens, STOPPING=1
at SIGTERM, both to a socket in the file system and to an abstract one,
after the drop to the relayd user; a failed start never says READY=1.
"""
import os
import signal
import socket
import sys
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from relaydtest import TAP, Relayd   # noqa: E402

t = TAP()


def datagrams(sock, timeout):
    """Datagrams received within timeout seconds of the last one."""
    out = []
    sock.settimeout(timeout)
    try:
        while len(out) < 10:
            out.append(sock.recv(4096).decode())
    except socket.timeout:
        pass
    return out


for kind in ("path", "abstract"):
    r = Relayd(tls=False)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        if kind == "path":
            addr = os.path.join(r.dir, "notify")
            sock.bind(addr)
            os.chmod(addr, 0o777)       # relayd sends after the drop
        else:
            addr = "@relayd-test-notify-%d" % os.getpid()
            sock.bind("\0" + addr[1:])
        r.env = dict(os.environ, NOTIFY_SOCKET=addr)
        r.start()
        got = datagrams(sock, 2)
        t.eq(got, ["READY=1"], "%s socket: READY=1 once listening" % kind)
        r.signal(signal.SIGTERM)
        got = datagrams(sock, 5)
        t.ok("STOPPING=1" in got, "%s socket: STOPPING=1 at SIGTERM" % kind, str(got))
        t.eq(r.stop(), 0, "%s socket: relayd exits 0" % kind)
    except Exception:
        t.ok(False, "no unexpected exception", traceback.format_exc() + r.log()[-1500:])
    finally:
        r.cleanup()
        sock.close()

# A start that fails (the queue directory belongs to someone else) must
# not claim to be ready.
if os.geteuid() != 0:
    t.skip("failed start", "needs root")
    t.done()
r = Relayd(tls=False)
sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
try:
    addr = "@relayd-test-notify-fail-%d" % os.getpid()
    sock.bind("\0" + addr[1:])
    r.env = dict(os.environ, NOTIFY_SOCKET=addr)
    os.mkdir(r.queue_dir)
    os.chown(r.queue_dir, 65534, 65534)
    r.start(wait_port=False)
    r.proc.wait(timeout=15)
    t.eq(r.proc.returncode, 1, "failed start: exit 1")
    t.eq(datagrams(sock, 1), [], "failed start: no READY=1")
except Exception:
    t.ok(False, "no unexpected exception", traceback.format_exc() + r.log()[-1500:])
finally:
    r.cleanup()
    sock.close()
t.done()
