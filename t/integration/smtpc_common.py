"""smtpc_common - next hops for the delivery client's tests (smtpc_*.py).

Two kinds of scripted next hop, both on 127.0.0.x loopback addresses only:
  Sink    aiosmtpd, for well-behaved servers with scripted replies and
          advertised extensions (STARTTLS, AUTH, SIZE, SMTPUTF8, DSN...);
          it records every transaction byte for byte.
  RawHop  a plain socket server running a script per connection, for what
          aiosmtpd will not do: strict pipelining checks, stalls, drops,
          malformed replies.
drive() runs t/helpers/smtpc_drive against a hop and parses its lines.

Not a test itself: run directly it prints a TAP skip plan.
Every wait is bounded: sockets carry timeouts, the driver runs under
subprocess.run(timeout=...), which kills it by PID.
"""
import os
import re
import socket
import ssl
import subprocess
import tempfile
import threading
import warnings

from relaydtest import TOP_BUILD, free_port

warnings.filterwarnings("ignore", category=DeprecationWarning)

from aiosmtpd.controller import Controller  # noqa: E402
from aiosmtpd.smtp import SMTP, AuthResult  # noqa: E402

DRIVE = os.path.join(TOP_BUILD, "t", "helpers", "smtpc_drive")
DRIVE_TIMEOUT = 60


def body_file(directory, data, name="msg"):
    path = os.path.join(directory, name)
    with open(path, "wb") as f:
        f.write(data)
    return path


def simple_message(subject="test", body="Hello.\r\n"):
    return ("From: sender@relayd.test\r\nTo: rcpt@example.test\r\n"
            "Subject: %s\r\n\r\n%s" % (subject, body)).encode()


# ---- the driver ----

LINE_RE = re.compile(r"(\w+)=(\S*)")


def parse_line(line):
    """'rcpt 0 1 <a@b> kind=reply ... reason=TEXT' -> dict; reason/text
    run to the end of the line."""
    out = {}
    for tail in ("reason=", "text="):
        i = line.find(" " + tail)
        if i >= 0:
            out[tail[:-1]] = line[i + len(tail) + 1:]
            line = line[:i]
    words = line.split()
    out["type"] = words[0] if words else ""
    if out["type"] == "rcpt":
        out["msg"], out["idx"], out["addr"] = int(words[1]), int(words[2]), words[3].strip("<>")
    elif out["type"] == "msg":
        out["msg"] = int(words[1])
    for k, v in LINE_RE.findall(line):
        out[k] = v
    return out


class Run:
    def __init__(self, rc, out, err):
        self.rc, self.out, self.err = rc, out, err
        self.lines = [parse_line(l) for l in out.splitlines()]

    def rcpts(self, msg=None):
        return [l for l in self.lines if l["type"] == "rcpt" and (msg is None or l["msg"] == msg)]

    def rcpt(self, addr, msg=0):
        """The last line for addr in message msg (after a retry in clear,
        the retry's)."""
        for l in reversed(self.rcpts(msg)):
            if l["addr"] == addr:
                return l
        return {}

    def msgs(self):
        return [l for l in self.lines if l["type"] == "msg"]

    def closed(self):
        c = [l for l in self.lines if l["type"] == "closed"]
        return c[-1] if c else {}

    def __repr__(self):
        return "rc=%r\nstdout:\n%s\nstderr:\n%s" % (self.rc, self.out, self.err[-2000:])


def drive(addr, port, *args, timeout=DRIVE_TIMEOUT):
    argv = [DRIVE, "-s", "%s:%d" % (addr, port)] + [str(a) for a in args]
    try:
        p = subprocess.run(argv, capture_output=True, timeout=timeout)
        return Run(p.returncode, p.stdout.decode("utf-8", "replace"),
                   p.stderr.decode("utf-8", "replace"))
    except subprocess.TimeoutExpired as e:
        return Run(None, (e.stdout or b"").decode("utf-8", "replace"),
                   (e.stderr or b"").decode("utf-8", "replace"))


def sanitizer_clean(run):
    return not any(m in run.err for m in ("AddressSanitizer", "runtime error:",
                                          "LeakSanitizer", "panic:"))


# ---- certificates ----

def make_ca(directory):
    """A test CA: (ca_cert, ca_key)."""
    cert = os.path.join(directory, "ca.pem")
    key = os.path.join(directory, "ca.key")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                    "-subj", "/CN=relayd test CA", "-days", "2", "-keyout", key,
                    "-out", cert, "-addext", "basicConstraints=critical,CA:TRUE",
                    "-addext", "keyUsage=critical,keyCertSign,cRLSign"],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   timeout=60)
    return cert, key


def make_leaf(directory, ca, name, prefix="leaf", san=None):
    """A server certificate for name (subjectAltName san, default
    DNS:name) signed by ca: (cert, key)."""
    ca_cert, ca_key = ca
    key = os.path.join(directory, prefix + ".key")
    csr = os.path.join(directory, prefix + ".csr")
    cert = os.path.join(directory, prefix + ".pem")
    ext = os.path.join(directory, prefix + ".ext")
    with open(ext, "w") as f:
        f.write("subjectAltName=%s\nextendedKeyUsage=serverAuth\n" % (san or "DNS:" + name))
    subprocess.run(["openssl", "req", "-new", "-newkey", "rsa:2048", "-nodes",
                    "-subj", "/CN=" + name, "-keyout", key, "-out", csr],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   timeout=60)
    subprocess.run(["openssl", "x509", "-req", "-in", csr, "-CA", ca_cert, "-CAkey", ca_key,
                    "-CAcreateserial", "-days", "2", "-extfile", ext, "-out", cert],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   timeout=60)
    return cert, key


def make_self_signed(directory, name, prefix="self"):
    key = os.path.join(directory, prefix + ".key")
    cert = os.path.join(directory, prefix + ".pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                    "-subj", "/CN=" + name, "-addext", "subjectAltName=DNS:" + name,
                    "-days", "2", "-keyout", key, "-out", cert],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   timeout=60)
    return cert, key


def server_ctx(cert, key):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    return ctx


# ---- aiosmtpd sink ----

DSN_PARAMS = ("NOTIFY", "ORCPT", "RET", "ENVID")


class DSNSMTP(SMTP):
    """aiosmtpd refuses parameters it does not know (555); a DSN hop takes
    the RFC 3461 ones off the command line, recorded, before it parses."""

    def _strip(self, arg, into):
        keep = []
        for word in arg.split(" "):
            k = word.split("=", 1)[0].upper()
            if k in DSN_PARAMS and "=" in word:
                into.append(word)
            else:
                keep.append(word)
        return " ".join(keep)

    async def smtp_MAIL(self, arg):
        got = []
        if arg:
            arg = self._strip(arg, got)
        self.event_handler.dsn_mail.append(got)
        await super().smtp_MAIL(arg)

    async def smtp_RCPT(self, arg):
        got = []
        if arg:
            arg = self._strip(arg, got)
        self.event_handler.dsn_rcpt.append(got)
        await super().smtp_RCPT(arg)


class Handler:
    def __init__(self, sink):
        self.sink = sink
        self.dsn_mail = []
        self.dsn_rcpt = []

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        self.sink.helos.append(hostname)
        out = []
        for r in responses:
            if any(r[4:].upper().startswith(x) for x in self.sink.ehlo_remove):
                continue
            out.append(r)
        last = out.pop()
        for extra in self.sink.ehlo_add:
            out.append("250-" + extra)
        out.append(last)
        for i in range(len(out) - 1):
            out[i] = "250-" + out[i][4:]
        out[-1] = "250 " + out[-1][4:]
        return out

    async def handle_MAIL(self, server, session, envelope, address, options):
        self.sink.mails.append((address, list(options)))
        reply = self.sink.replies.get("MAIL")
        if reply:
            return reply
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 2.1.0 Ok"

    async def handle_RCPT(self, server, session, envelope, address, options):
        reply = self.sink.replies.get("RCPT", {}).get(address)
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(options)
        return "250 2.1.5 Ok"

    async def handle_DATA(self, server, session, envelope):
        self.sink.messages.append({
            "from": envelope.mail_from, "mail_options": list(envelope.mail_options),
            "rcpts": list(envelope.rcpt_tos), "rcpt_options": list(envelope.rcpt_options),
            "content": bytes(envelope.original_content),
            "peer": session.peer[0], "tls": session.ssl is not None,
            "auth": bool(session.authenticated), "conn": session.peer[1],
        })
        return self.sink.replies.get("DOT", "250 2.0.0 Ok: queued as TESTID")


class SinkController(Controller):
    def __init__(self, sink, **kw):
        self.sink = sink
        super().__init__(sink.handler, **kw)

    def factory(self):
        cls = DSNSMTP if self.sink.dsn else SMTP
        return cls(self.handler, **self.SMTP_kwargs)

    def _trigger_server(self):
        # The stock readiness probe speaks to the server; ours only needs
        # the port to accept, and must not count as a session.
        with socket.create_connection((self.hostname, self.port), timeout=5):
            pass


class Sink:
    """An aiosmtpd next hop on addr:port.

    replies: {"MAIL": "451 ...", "RCPT": {addr: "550 ..."}, "DOT": "554 ..."}
    ehlo_add / ehlo_remove: EHLO keywords to add / remove (prefix match).
    dsn: take NOTIFY/ORCPT/RET/ENVID (and advertise DSN).
    """

    def __init__(self, addr="127.0.0.1", replies=None, ehlo_add=(), ehlo_remove=(),
                 dsn=False, tls=None, auth=None, smtputf8=True, size=None,
                 decode_data=False, require_auth=False, port=None):
        self.addr = addr
        self.port = port or free_port(addr)
        self.replies = replies or {}
        self.ehlo_add = list(ehlo_add) + (["DSN"] if dsn else [])
        self.ehlo_remove = [x.upper() for x in ehlo_remove]
        self.dsn = dsn
        self.helos, self.mails, self.messages, self.logins = [], [], [], []
        self.handler = Handler(self)
        kw = dict(hostname=addr, port=self.port, enable_SMTPUTF8=smtputf8,
                  data_size_limit=size, decode_data=decode_data,
                  server_hostname="sink.test", ready_timeout=10)
        if tls:
            kw["tls_context"] = server_ctx(*tls)
        if auth:
            user, password = auth

            def authenticator(server, session, envelope, mechanism, data):
                self.logins.append((mechanism, data.login.decode(), data.password.decode()))
                ok = data.login.decode() == user and data.password.decode() == password
                return AuthResult(success=ok, handled=False)
            kw["authenticator"] = authenticator
            kw["auth_require_tls"] = True
            kw["auth_required"] = require_auth
        self.controller = SinkController(self, **kw)

    def start(self):
        self.controller.start()
        return self

    def stop(self):
        try:
            self.controller.stop()
        except Exception:
            pass


# ---- raw scripted hop ----

class RawConn:
    def __init__(self, sock):
        self.sock = sock
        self.buf = b""
        self.got = b""           # everything read

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        try:
            self.sock.sendall(data)
        except OSError:
            pass

    def _fill(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise EOFError()
        self.got += chunk
        self.buf += chunk

    def line(self):
        while b"\n" not in self.buf:
            self._fill()
        line, self.buf = self.buf.split(b"\n", 1)
        return line.rstrip(b"\r").decode("utf-8", "replace")

    def until(self, marker):
        while marker not in self.buf:
            self._fill()
        data, self.buf = self.buf.split(marker, 1)
        return data + marker

    def available(self, wait=0.2):
        """Whatever arrives within wait seconds, without blocking longer."""
        self.sock.settimeout(wait)
        try:
            self._fill()
        except (socket.timeout, TimeoutError):
            pass
        finally:
            self.sock.settimeout(20)
        data, self.buf = self.buf, b""
        return data

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


class RawHop:
    """Accepts on addr:port; each connection runs script(conn, n) in a
    thread (n counts connections from 0).  Exceptions end the connection.
    """

    def __init__(self, script, addr="127.0.0.1"):
        self.addr = addr
        self.script = script
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((addr, 0))
        self.port = self.sock.getsockname()[1]
        self.sock.listen(8)
        self.sock.settimeout(0.2)
        self.conns = []
        self.errors = []
        self.stopping = False
        self.thread = threading.Thread(target=self._accept, daemon=True)

    def start(self):
        self.thread.start()
        return self

    def _accept(self):
        n = 0
        while not self.stopping:
            try:
                s, _ = self.sock.accept()
            except (socket.timeout, TimeoutError):
                continue
            except OSError:
                break
            s.settimeout(20)
            c = RawConn(s)
            self.conns.append(c)
            threading.Thread(target=self._run, args=(c, n), daemon=True).start()
            n += 1

    def _run(self, c, n):
        try:
            self.script(c, n)
        except EOFError:
            pass
        except Exception as e:   # noqa: BLE001 - reported by the test
            self.errors.append(repr(e))
        finally:
            c.close()

    def stop(self):
        self.stopping = True
        self.thread.join(5)
        self.sock.close()
        for c in self.conns:
            c.close()


def greet_ehlo(c, ext=("PIPELINING", "8BITMIME")):
    """The usual start of a raw hop's session; returns the EHLO line."""
    c.send("220 raw.test ESMTP\r\n")
    ehlo = c.line()
    lines = ["raw.test"] + list(ext)
    c.send("".join("250%s%s\r\n" % ("-" if i < len(lines) - 1 else " ", l)
                   for i, l in enumerate(lines)))
    return ehlo


def check_eq(t, got, want, name, extra=None):
    """t.eq with the driver's run (or anything) shown on failure."""
    return t.ok(got == want, name, "got:  %r\nwant: %r\n%s" % (got, want, extra or ""))


def tmpdir():
    d = tempfile.mkdtemp(prefix="relayd-smtpc-")
    os.chmod(d, 0o755)
    return d


if __name__ == "__main__":
    print("1..0 # SKIP helper module, not a test")
