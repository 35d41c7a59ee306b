"""deliver_common - helpers for the delivery engine's tests (deliver_*.py):
submit mail to a relayd under test, wait for it at a next hop, and the
DESIGN §6 log-line regexes the records are checked against.

Not a test itself: run directly it prints a TAP skip plan.
"""
import re
import time

from relaydtest import session

# DESIGN §6, exactly.
SMTP_RE = re.compile(
    r"relayd/smtp\[\d+\]: ([0-9A-Z]{12}): to=<([^>]*)>, relay=(\S+), delay=[0-9.]+, "
    r"delays=[0-9.]+/[0-9.]+/[0-9.]+/[0-9.]+, dsn=(\d\.\d{1,3}\.\d{1,3}), "
    r"status=(sent|deferred|bounced) \((.*)\)$", re.M)
REMOVED_RE = re.compile(r"relayd/qmgr\[\d+\]: ([0-9A-Z]{12}): removed$", re.M)
ACTIVE_RE = re.compile(
    r"relayd/qmgr\[\d+\]: ([0-9A-Z]{12}): from=<([^>]*)>, size=\d+, nrcpt=\d+ \(queue active\)$",
    re.M)
RELAY_RE = re.compile(r"^([^\[\]]+)\[([0-9a-fA-F.:]+)\]:(\d+)$")


def submit(r, rcpts, sender="sender@client.test", body=None, subject="test", params=""):
    """Send one message through relayd's smtp port; its queue id."""
    c = session(r)
    c.cmd("MAIL FROM:<%s>%s" % (sender, params and " " + params))
    for a in rcpts:
        c.cmd("RCPT TO:<%s>" % a)
    c.cmd("DATA")
    data = body or ("From: <%s>\r\nTo: <%s>\r\nSubject: %s\r\n\r\nHello.\r\n" %
                    (sender, rcpts[0], subject))
    c.send(data.encode() if isinstance(data, str) else data)
    c.send(b".\r\n")
    last = c.reply() or ""
    c.cmd("QUIT")
    c.close()
    m = re.search(r"queued as ([0-9A-Z]{12})", last)
    return m.group(1) if m else None


def wait_for(cond, timeout=20, step=0.05):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = cond()
        if v:
            return v
        time.sleep(step)
    return cond()


def records(r, qid=None):
    """(id, rcpt, relay, dsn, status, reason) of every delivery line."""
    out = SMTP_RE.findall(r.log())
    return [x for x in out if qid is None or x[0] == qid]


def removed(r, qid):
    return qid in REMOVED_RE.findall(r.log())


if __name__ == "__main__":
    print("1..0 # SKIP helper module, not a test")


# ---- a counting next hop ----

import socket  # noqa: E402
import threading  # noqa: E402

from relaydtest import free_port  # noqa: E402


class CountingHop:
    """A minimal SMTP next hop on addr:port (plain socket threads) that
    counts connections (total and most at once) and can hold its reply to
    the final dot: dot_delay seconds, or until release() when stall is
    set.  messages: (conn number, mail from, rcpts, data) per transaction.
    """

    def __init__(self, addr="127.0.0.2", port=None, dot_delay=0.0, stall=False,
                 dot_reply="250 2.0.0 Ok", stall_data=False, close_after_dot=False):
        self.addr = addr
        self.port = port or free_port(addr)
        self.dot_delay = dot_delay
        self.dot_reply = dot_reply
        self.stall = threading.Event()
        if not stall:
            self.stall.set()
        self.stall_data = stall_data     # hold the 354 instead of the dot's reply
        self.datas = 0                   # DATA commands seen
        self.close_after_dot = close_after_dot   # drop the connection after each 250
        self.lock = threading.Lock()
        self.conns = 0
        self.active = 0
        self.max_active = 0
        self.messages = []
        self.dots = 0            # final dots seen (replied or not)
        self.stopping = False
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((addr, self.port))
        self.sock.listen(64)
        self.sock.settimeout(0.2)
        self.thread = threading.Thread(target=self._accept, daemon=True)

    def start(self):
        self.thread.start()
        return self

    def release(self):
        self.stall.set()

    def _accept(self):
        while not self.stopping:
            try:
                c, _ = self.sock.accept()
            except OSError:
                continue
            with self.lock:
                self.conns += 1
                n = self.conns
                self.active += 1
                self.max_active = max(self.max_active, self.active)
            threading.Thread(target=self._serve, args=(c, n), daemon=True).start()

    def _serve(self, c, n):
        c.settimeout(30)
        f = c.makefile("rb")
        try:
            c.sendall(b"220 hop.test ESMTP\r\n")
            mail, rcpts = None, []
            while not self.stopping:
                line = f.readline(4096)
                if not line:
                    break
                cmd = line.strip().upper()
                if cmd.startswith(b"EHLO"):
                    c.sendall(b"250-hop.test\r\n250-PIPELINING\r\n250 8BITMIME\r\n")
                elif cmd.startswith(b"HELO"):
                    c.sendall(b"250 hop.test\r\n")
                elif cmd.startswith(b"MAIL"):
                    mail, rcpts = line.strip()[10:].decode(), []
                    c.sendall(b"250 2.1.0 Ok\r\n")
                elif cmd.startswith(b"RCPT"):
                    rcpts.append(line.strip()[8:].decode().strip("<>"))
                    c.sendall(b"250 2.1.5 Ok\r\n")
                elif cmd == b"DATA":
                    with self.lock:
                        self.datas += 1
                    while self.stall_data and not self.stall.wait(0.1):
                        if self.stopping:
                            return
                    c.sendall(b"354 go\r\n")
                    data = b""
                    while True:
                        l2 = f.readline(1 << 20)
                        if not l2:
                            return
                        if l2 == b".\r\n":
                            break
                        data += l2
                    with self.lock:
                        self.dots += 1
                    if self.dot_delay:
                        time.sleep(self.dot_delay)
                    while not self.stall_data and not self.stall.wait(0.1):
                        if self.stopping:
                            return
                    with self.lock:
                        self.messages.append((n, mail, rcpts, data))
                    c.sendall((self.dot_reply + "\r\n").encode())
                    if self.close_after_dot:
                        time.sleep(0.2)
                        break
                elif cmd == b"RSET":
                    c.sendall(b"250 Ok\r\n")
                elif cmd == b"QUIT":
                    c.sendall(b"221 Bye\r\n")
                    break
                else:
                    c.sendall(b"502 5.5.2 what?\r\n")
        except OSError:
            pass
        finally:
            with self.lock:
                self.active -= 1
            try:
                c.close()
            except OSError:
                pass

    def stop(self):
        self.stopping = True
        self.stall.set()
        try:
            self.sock.close()
        except OSError:
            pass
        self.thread.join(timeout=5)
