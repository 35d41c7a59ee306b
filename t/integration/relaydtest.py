"""relaydtest - the shared harness of relayd's Python integration tests.

Each test script starts its own relayd on free loopback ports with a
configuration in a fresh temporary directory, talks to it with real
clients, and stops it by PID.  Output is TAP for automake's tap-driver.

Run with /usr/bin/python3 (Debian's Python: aiosmtpd and friends import
only there).  top_builddir / top_srcdir come from the environment that
`make check` sets; they default to this tree for a direct run.
"""
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TOP_SRC = os.environ.get("top_srcdir") or os.path.dirname(os.path.dirname(HERE))
TOP_BUILD = os.environ.get("top_builddir") or TOP_SRC
RELAYD = os.path.join(TOP_BUILD, "relayd", "relayd")
QUEUE_DUMP = os.path.join(TOP_BUILD, "t", "helpers", "queue_dump")
# Built with ASan: memory figures include its quarantine and shadow.
SANITIZED = os.environ.get("RELAYD_SANITIZERS") == "yes"


# The reply to an accepted message, and its queue id.
QUEUED_RE = re.compile(r"^250 2\.0\.0 Ok: queued as ([0-9A-Z]{12})$")
# Keep whatever relayd queues where it is once delivery exists: a relayhost
# nobody listens on, tried rarely.
NO_DELIVERY = "relayhost = [127.0.0.1]:1\nretry_min = 1h\nretry_max = 2h\n"


def queued_id(reply):
    """The queue id of a '250 2.0.0 Ok: queued as ID' reply, or None."""
    m = QUEUED_RE.match(reply or "")
    return m.group(1) if m else None


class TAP:
    """Numbered ok/not ok lines; done() prints the plan and exits."""

    def __init__(self):
        self.n = 0
        self.failed = 0

    def ok(self, cond, name, diag=None):
        self.n += 1
        name = name.replace("\n", " ")
        print(("ok %d - %s" if cond else "not ok %d - %s") % (self.n, name), flush=True)
        if not cond:
            self.failed += 1
            if diag is not None:
                for line in str(diag).splitlines()[:40]:
                    print("#   " + line, flush=True)
        return cond

    def eq(self, got, want, name):
        return self.ok(got == want, name, "got:  %r\nwant: %r" % (got, want))

    def skip(self, name, reason):
        self.n += 1
        print("ok %d - %s # SKIP %s" % (self.n, name.replace("\n", " "), reason), flush=True)

    def diag(self, msg):
        for line in str(msg).splitlines():
            print("# " + line, flush=True)

    def done(self):
        print("1..%d" % self.n, flush=True)
        sys.exit(1 if self.failed else 0)


def free_port(host="127.0.0.1"):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind((host, 0))
    port = s.getsockname()[1]
    s.close()
    return port


_cert_cache = {}


def make_cert(directory, cn="relayd.test"):
    """A self-signed RSA certificate and key in directory."""
    cert = os.path.join(directory, "cert.pem")
    key = os.path.join(directory, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                    "-subj", "/CN=" + cn, "-days", "2", "-keyout", key, "-out", cert],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.chmod(cert, 0o644)
    os.chmod(key, 0o644)   # readable by the unprivileged user for SIGHUP
    return cert, key


def crypt_hash(password):
    out = subprocess.run(["openssl", "passwd", "-6", password], check=True,
                         capture_output=True, text=True)
    return out.stdout.strip()


class Relayd:
    """One relayd under test.

    conf: extra "key = value" lines.  tls: generate a certificate.
    users: {name: password} for auth_users_file.
    """

    def __init__(self, conf="", tls=True, users=None, sender_map=None, hostname="relayd.test",
                 peername_lookup=False):
        self.dir = tempfile.mkdtemp(prefix="relayd-it-")
        os.chmod(self.dir, 0o755)      # the relayd user must reach the queue
        self.port_smtp = free_port()
        self.port_sub = free_port()
        self.port_subs = free_port()
        self.queue_dir = os.path.join(self.dir, "queue")
        self.log_path = os.path.join(self.dir, "relayd.log")
        self.conf_path = os.path.join(self.dir, "relayd.conf")
        self.proc = None
        self.env = None          # the daemon's environment (None: ours)
        self.prefix = []         # a command relayd runs under (setpriv, unshare)
        lines = [
            "hostname = %s" % hostname,
            "smtp_listen = 127.0.0.1:%d" % self.port_smtp,
            "submission_listen = 127.0.0.1:%d" % self.port_sub,
            "submissions_listen = 127.0.0.1:%d" % self.port_subs,
            "queue_dir = %s" % self.queue_dir,
            "queue_map_size = 256M",
            # Client names need a DNS server on loopback (dnstest.py);
            # without one, no lookup may leave the machine.
            "smtpd_peername_lookup = %s" % ("yes" if peername_lookup else "no"),
        ]
        if tls:
            self.cert, self.key = make_cert(self.dir, hostname)
            lines += ["tls_cert_file = %s" % self.cert, "tls_key_file = %s" % self.key]
        users = {"alice": "secret"} if users is None else users
        self.passwd = os.path.join(self.dir, "passwd")
        with open(self.passwd, "w") as f:
            for u, p in users.items():
                f.write("%s:%s\n" % (u, crypt_hash(p)))
        os.chmod(self.passwd, 0o644)
        lines.append("auth_users_file = %s" % self.passwd)
        if sender_map is not None:
            path = os.path.join(self.dir, "sender_map")
            with open(path, "w") as f:
                f.write(sender_map)
            os.chmod(path, 0o644)
            lines.append("sender_login_map = %s" % path)
        # Mail must not leave for the real DNS or the network: a test that
        # names no next hop keeps what it queues (NO_DELIVERY).
        if not re.search(r"(?m)^\s*(relayhost|dns_servers)\s*=", conf):
            conf = NO_DELIVERY + conf
        self.write_conf("\n".join(lines) + "\n" + conf)

    def write_conf(self, text):
        with open(self.conf_path, "w") as f:
            f.write(text)
        os.chmod(self.conf_path, 0o644)

    def _repick_ports(self):
        """New free ports for the three listeners (another test took one
        between free_port() and relayd's bind)."""
        with open(self.conf_path) as f:
            text = f.read()
        for attr, key in (("port_smtp", "smtp_listen"), ("port_sub", "submission_listen"),
                          ("port_subs", "submissions_listen")):
            port = free_port()
            text = re.sub(r"(?m)^%s = 127\.0\.0\.1:\d+$" % key,
                          "%s = 127.0.0.1:%d" % (key, port), text)
            setattr(self, attr, port)
        self.write_conf(text)

    def start(self, wait_port=True):
        for attempt in range(5):
            start_at = os.path.getsize(self.log_path) if os.path.exists(self.log_path) else 0
            self.log_file = open(self.log_path, "ab")
            self.proc = subprocess.Popen(self.prefix + [RELAYD, "-F", "-f", self.conf_path],
                                         stdout=self.log_file, stderr=subprocess.STDOUT,
                                         env=self.env)
            if not wait_port:
                return self
            deadline = time.time() + 15
            while time.time() < deadline:
                if self.proc.poll() is not None:
                    break
                # Only this relayd's own start line says the port is ours.
                if "daemon started" not in self.log()[start_at:]:
                    time.sleep(0.05)
                    continue
                try:
                    socket.create_connection(("127.0.0.1", self.port_smtp), timeout=1).close()
                    # That probe is a session of its own; let it be logged.
                    return self
                except OSError:
                    time.sleep(0.05)
            else:
                raise RuntimeError("relayd did not listen:\n" + self.log())
            self.log_file.close()
            tail = self.log()[start_at:]
            if ("cannot bind" not in tail and "cannot listen" not in tail) or attempt == 4:
                raise RuntimeError("relayd exited %s:\n%s" % (self.proc.returncode, self.log()))
            # Lost a port race with a parallel test: forget that attempt
            # (its log holds the failed start) and try other ports.
            with open(self.log_path, "r+b") as f:
                f.truncate(start_at)
            self._repick_ports()
        return self

    def signal(self, sig):
        if self.proc and self.proc.poll() is None:
            os.kill(self.proc.pid, sig)

    def stop(self, sig=None, timeout=20):
        """Stop by PID (SIGTERM unless sig); returns the exit status
        (negative: killed)."""
        if sig is None:
            sig = signal.SIGTERM
        if not self.proc:
            return None
        if self.proc.poll() is None:
            os.kill(self.proc.pid, sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.log_file.close()
        return self.proc.returncode

    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def sanitizer_clean(self):
        text = self.log()
        return not any(m in text for m in ("AddressSanitizer", "runtime error:",
                                           "LeakSanitizer", "panic:"))

    def wait_log(self, needle, timeout=10):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if needle in self.log():
                return True
            time.sleep(0.05)
        return False

    def queue_ids(self):
        out = subprocess.run([QUEUE_DUMP, self.queue_dir, "-l"], capture_output=True)
        return out.stdout.decode().split()

    def body(self, qid):
        out = subprocess.run([QUEUE_DUMP, self.queue_dir, qid], capture_output=True)
        return out.stdout if out.returncode == 0 else None

    def envelope(self, qid):
        out = subprocess.run([QUEUE_DUMP, self.queue_dir, qid, "-e"], capture_output=True)
        return out.stdout.decode("utf-8", "replace") if out.returncode == 0 else None

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


class Client:
    """A raw SMTP client over one socket, for what smtplib will not do
    (bare LF, pipelining by hand, oversize lines)."""

    def __init__(self, port, host="127.0.0.1", timeout=10, source=None):
        self.sock = socket.create_connection((host, port), timeout=timeout,
                                             source_address=(source, 0) if source else None)
        self.buf = b""

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def reply(self):
        """One whole (possibly multi-line) reply as text; '' at EOF."""
        lines = []
        while True:
            while b"\r\n" not in self.buf:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return "\n".join(lines)
                self.buf += chunk
            line, self.buf = self.buf.split(b"\r\n", 1)
            line = line.decode("utf-8", "replace")
            lines.append(line)
            if len(line) < 4 or line[3] != "-":
                return "\n".join(lines)

    def cmd(self, line):
        self.send(line + "\r\n")
        return self.reply()

    def closed(self, timeout=5):
        """True when the server closes the connection within timeout."""
        self.sock.settimeout(timeout)
        try:
            while True:
                data = self.sock.recv(65536)
                if not data:
                    return True
        except (socket.timeout, TimeoutError):
            return False
        except OSError:
            return True

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def session(r, port=None, source=None, ehlo="client.example", timeout=10):
    """A raw Client of relayd r after the greeting (c.greeting) and, unless
    ehlo is None, an EHLO (c.ehlo)."""
    c = Client(port or r.port_smtp, source=source, timeout=timeout)
    c.greeting = c.reply()
    if ehlo:
        c.ehlo = c.cmd("EHLO " + ehlo)
    return c


def replies(c, n):
    """Up to n replies of Client c (fewer at EOF or timeout)."""
    out = []
    for _ in range(n):
        try:
            rep = c.reply()
        except OSError:
            break
        if not rep:
            break
        out.append(rep)
    return out
