"""tls_common - helpers shared by the tls_*.py integration tests (TLS,
STARTTLS, SMTP AUTH).  Not a test itself: run directly it prints a TAP
skip plan, so a tls_*.py glob in the test list stays harmless.

Everything here talks to 127.0.0.1 only and bounds every wait: sockets
carry timeouts, child processes (swaks, openssl) run under
subprocess.run(timeout=...), which kills them by PID when it expires.
"""
import base64
import hashlib
import re
import signal
import smtplib
import socket
import ssl
import subprocess
import time
import warnings

from relaydtest import Client

HOST = "127.0.0.1"
CHILD_TIMEOUT = 30          # seconds any swaks / openssl run may take

warnings.filterwarnings("ignore", category=DeprecationWarning)


def no_verify_ctx(min_version=None, max_version=None, seclevel0=False):
    """A client context that accepts the self-signed test certificate."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if seclevel0:
        # Debian's OpenSSL refuses TLS < 1.2 at the default security
        # level on the client side; lower it so a refusal can only come
        # from the server.
        ctx.set_ciphers("DEFAULT@SECLEVEL=0")
    if min_version is not None:
        ctx.minimum_version = min_version
    if max_version is not None:
        ctx.maximum_version = max_version
    return ctx


def b64(data):
    if isinstance(data, str):
        data = data.encode()
    return base64.b64encode(data).decode()


def plain(user, password, authzid=""):
    """The RFC 4616 PLAIN response, base64-encoded."""
    return b64("%s\0%s\0%s" % (authzid, user, password))


class TLSClient(Client):
    """The harness's raw Client plus STARTTLS / implicit TLS."""

    def __init__(self, port, source=None, timeout=10, implicit=False):
        super().__init__(port, host=HOST, timeout=timeout, source=source)
        if implicit:
            self.wrap()

    def wrap(self):
        self.sock = no_verify_ctx().wrap_socket(self.sock, server_hostname="relayd.test")
        return self.sock

    def starttls(self):
        """STARTTLS, then the handshake; returns the 220 reply."""
        rep = self.cmd("STARTTLS")
        if rep.startswith("220"):
            self.leftover = self.buf     # cleartext the server sent after 220
            self.buf = b""
            self.wrap()
        return rep

    def quit(self):
        """QUIT, read the 221, close: a polite end that leaves the
        server nothing to write to a closed socket."""
        try:
            self.cmd("QUIT")
            self.closed(timeout=2)
        except OSError:
            pass
        self.close()

    def peer_der(self):
        return self.sock.getpeercert(binary_form=True)

    def pending(self, wait=0.5):
        """Bytes the server sends within `wait` seconds beyond what was
        read ('' when nothing)."""
        data = self.buf
        self.sock.settimeout(wait)
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    break
                data += chunk
        except (socket.timeout, TimeoutError, ssl.SSLError, OSError):
            pass
        finally:
            self.sock.settimeout(10)
        self.buf = b""
        return data.decode("utf-8", "replace")


def session(port, ehlo="client.test", source=None):
    """A raw session on the submission/smtp port past STARTTLS and a new
    EHLO: (client, greeting, ehlo reply before TLS, 220, ehlo after)."""
    c = TLSClient(port, source=source)
    greet = c.reply()
    e1 = c.cmd("EHLO " + ehlo)
    st = c.starttls()
    e2 = c.cmd("EHLO " + ehlo)
    return c, greet, e1, st, e2


def ehlo_keywords(reply):
    """The EHLO keywords (upper case) of a multi-line 250 reply."""
    out = []
    for line in reply.splitlines()[1:]:
        out.append(line[4:].split(" ")[0].upper())
    return out


def smtp(port, source=None):
    s = smtplib.SMTP(HOST, port, timeout=10,
                     source_address=(source, 0) if source else None)
    return s


def smtp_ssl(port, source=None):
    return smtplib.SMTP_SSL(HOST, port, timeout=10, context=no_verify_ctx(),
                            source_address=(source, 0) if source else None)


def run(argv, stdin="", timeout=CHILD_TIMEOUT):
    """Run a client; (returncode, stdout, stderr).  A run that outlives
    timeout is killed and reported as returncode None."""
    try:
        p = subprocess.run(argv, input=stdin, capture_output=True, text=True,
                           timeout=timeout)
        return p.returncode, p.stdout, p.stderr
    except subprocess.TimeoutExpired as e:
        out = e.stdout.decode("utf-8", "replace") if isinstance(e.stdout, bytes) else (e.stdout or "")
        err = e.stderr.decode("utf-8", "replace") if isinstance(e.stderr, bytes) else (e.stderr or "")
        return None, out, err


def swaks(port, *args, timeout=CHILD_TIMEOUT):
    return run(["swaks", "--server", "%s:%d" % (HOST, port), "--timeout", "10",
                "--helo", "client.test"] + list(args), timeout=timeout)


def s_client(port, *args, stdin="", timeout=CHILD_TIMEOUT):
    return run(["openssl", "s_client", "-connect", "%s:%d" % (HOST, port),
                "-servername", "relayd.test"] + list(args),
               stdin=stdin, timeout=timeout)


def queued_id(reply_text):
    m = re.search(r"queued as ([0-9A-Z]{10,})", reply_text)
    return m.group(1) if m else None


def cert_fingerprint_der(der):
    return hashlib.sha256(der).hexdigest()


def cert_fingerprint_file(path):
    with open(path) as f:
        return cert_fingerprint_der(ssl.PEM_cert_to_DER_cert(f.read()))


def cert_cn_der(der):
    """The subject CN of a DER certificate (via openssl x509)."""
    try:
        p = subprocess.run(["openssl", "x509", "-inform", "DER", "-noout",
                            "-subject", "-nameopt", "multiline"],
                           input=der, capture_output=True, timeout=10)
    except subprocess.TimeoutExpired:
        return None
    m = re.search(rb"commonName\s*=\s*(\S+)", p.stdout)
    return m.group(1).decode() if m else None


def count(text, needle):
    return text.count(needle)


def wait_count(r, needle, n, timeout=10):
    """Wait until the log holds at least n occurrences of needle."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if r.log().count(needle) >= n:
            return True
        time.sleep(0.05)
    return False


def proc_status(pid):
    """/proc/PID/status as a dict of the first word per key."""
    out = {}
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                k, _, v = line.partition(":")
                out[k] = v.split()
    except OSError:
        pass
    return out


def finish(t, r, name="relayd"):
    """The end of every script: SIGTERM exits 0, the log is clean."""
    rc = r.stop(signal.SIGTERM)
    t.eq(rc, 0, "%s exits 0 on SIGTERM" % name)
    t.ok(r.sanitizer_clean(), "%s: no sanitizer report in the log" % name, r.log()[-3000:])


if __name__ == "__main__":
    print("1..0 # SKIP helper module, not a test")
