"""dnstest - real DNS servers on loopback ports for the resolver's tests.

Unbound serves a test zone as an authoritative zone (auth-zone: NXDOMAIN
and NODATA carry the zone's SOA, CNAMEs are chased inside the zone, as a
real authoritative server does), PTR records with local-data-ptr, and
forwards one zone to a dnsmasq without upstreams, which refuses it, so
unbound answers SERVFAIL for that zone at once.  A UDP socket that never
answers stands for a dead server.  Everything listens on 127.0.0.1 only
and is stopped by PID.
"""
import os
import signal
import socket
import subprocess
import tempfile
import time

from relaydtest import free_port

UNBOUND = "/usr/sbin/unbound"
DNSMASQ = "/usr/sbin/dnsmasq"


def free_udp_tcp_port():
    """A port free for both UDP and TCP on 127.0.0.1."""
    for _ in range(50):
        port = free_port()
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            u.bind(("127.0.0.1", port))
            return port
        except OSError:
            continue
        finally:
            u.close()
    raise RuntimeError("no free port")


def _wait_udp(port, timeout=10):
    """Until a DNS query to port gets any answer."""
    q = bytes.fromhex("abcd01000001000000000000") + b"\x04test\x00\x00\x06\x00\x01"
    deadline = time.time() + timeout
    while time.time() < deadline:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.settimeout(0.2)
        try:
            s.sendto(q, ("127.0.0.1", port))
            s.recv(512)
            return True
        except OSError:
            time.sleep(0.05)
        finally:
            s.close()
    return False


class DNS:
    """unbound (port) + dnsmasq (refuser) with zone text for 'test.'.

    zone: records in zone-file syntax, relative to test. (an SOA and NS
    are added).  ptr: {ip: name}.
    """

    def __init__(self, zone, ptr=None):
        self.dir = tempfile.mkdtemp(prefix="relayd-dns-")
        self.procs = []
        self.refuser_port = free_udp_tcp_port()
        self._start([DNSMASQ, "-k", "--port=%d" % self.refuser_port,
                     "--listen-address=127.0.0.1", "--bind-interfaces",
                     "--no-resolv", "--no-hosts", "--conf-file=/dev/null",
                     "--pid-file=", "--user=root", "--group=root"], "dnsmasq.log")
        zone_path = os.path.join(self.dir, "test.zone")
        with open(zone_path, "w") as f:
            f.write("$ORIGIN test.\n$TTL 300\n"
                    "@ SOA ns.test. host.test. 1 3600 600 86400 60\n"
                    "@ NS ns.test.\nns A 127.0.0.1\n" + zone)
        for attempt in range(5):
            self.port = free_udp_tcp_port()
            conf = os.path.join(self.dir, "unbound.conf")
            lines = [
                "server:",
                "  interface: 127.0.0.1@%d" % self.port,
                "  do-daemonize: no", '  username: ""', '  chroot: ""',
                '  directory: "%s"' % self.dir, '  pidfile: ""',
                "  use-syslog: no", "  verbosity: 0", "  do-ip6: no",
                "  access-control: 127.0.0.0/8 allow",
                "  do-not-query-localhost: no",
                '  local-zone: "test." nodefault',
                '  local-zone: "refused.example." always_refuse',
                "  num-threads: 1",
            ]
            for ip, name in (ptr or {}).items():
                lines.append('  local-data-ptr: "%s %s"' % (ip, name))
            lines += [
                "forward-zone:", '  name: "broken.example."',
                "  forward-addr: 127.0.0.1@%d" % self.refuser_port,
                "auth-zone:", '  name: "test."', '  zonefile: "%s"' % zone_path,
                "  for-downstream: yes", "  for-upstream: no",
                "  fallback-enabled: no",
                "remote-control:", "  control-enable: no",
            ]
            with open(conf, "w") as f:
                f.write("\n".join(lines) + "\n")
            p = self._start([UNBOUND, "-d", "-c", conf], "unbound.log")
            if _wait_udp(self.port):
                return
            self._stop(p)
        raise RuntimeError("unbound did not start:\n" + self.log())

    def _start(self, argv, log):
        f = open(os.path.join(self.dir, log), "ab")
        p = subprocess.Popen(argv, stdout=f, stderr=subprocess.STDOUT)
        f.close()
        self.procs.append(p)
        return p

    def _stop(self, p):
        if p.poll() is None:
            os.kill(p.pid, signal.SIGTERM)
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.kill(p.pid, signal.SIGKILL)
                p.wait()

    def log(self):
        out = ""
        for name in ("unbound.log", "dnsmasq.log"):
            try:
                with open(os.path.join(self.dir, name), errors="replace") as f:
                    out += f.read()
            except OSError:
                pass
        return out

    def stop(self):
        for p in self.procs:
            self._stop(p)
        subprocess.run(["rm", "-rf", self.dir])


class Silent:
    """A UDP port that receives queries and never answers (bounded: it
    lives until stop())."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]

    def stop(self):
        self.sock.close()


# ---- a scripted responder for bad answers (a test peer, like a scripted
# SMTP sink).  The first label of the name asked for picks the misdeed. ----

def _name(labels):
    return b"".join(bytes([len(l)]) + l for l in labels) + b"\0"


def _rr(owner, rtype, ttl, rdata):
    return owner + rtype.to_bytes(2, "big") + b"\0\1" + ttl.to_bytes(4, "big") + \
        len(rdata).to_bytes(2, "big") + rdata


def bad_answer(query):
    """The reply the responder sends to query (bytes), or None."""
    if len(query) < 17:
        return None
    qid, pos, labels = query[:2], 12, []
    while pos < len(query) and query[pos] != 0 and len(labels) < 10:
        n = query[pos]
        labels.append(query[pos + 1:pos + 1 + n])
        pos += 1 + n
    question = query[12:pos + 5]
    qtype = int.from_bytes(query[pos + 1:pos + 3], "big")
    mode = labels[0].decode(errors="replace") if labels else ""
    ptr = b"\xc0\x0c"          # the name asked for
    def reply(flags, an, ans, ns=0, rest=b""):
        return qid + flags + b"\0\1" + an.to_bytes(2, "big") + ns.to_bytes(2, "big") + \
            b"\0\0" + question + ans + rest
    ok = b"\x84\x00"
    if qtype == 1:             # A: every host name has an address
        return reply(ok, 1, _rr(ptr, 1, 300, bytes([127, 0, 0, 40])))
    if qtype == 28:
        return reply(ok, 0, b"")
    if mode == "trunc":
        return reply(b"\x86\x00", 0, b"")
    if mode == "short":
        return qid + b"\x84"
    if mode == "garbage":
        return qid + b"\x84\x00\x00\x01\x00\x05\x00\x00\x00\x00" + os.urandom(40)
    if mode == "loop":
        here = len(question) + 12
        return reply(ok, 1, (0xc000 | here).to_bytes(2, "big") + b"\0\x0f\0\1")
    if mode == "wrongtype":
        return reply(ok, 1, _rr(ptr, 1, 300, bytes([127, 0, 0, 41])))
    if mode == "ttl":
        return reply(ok, 1, _rr(ptr, 15, 0xffffffff, b"\0\x0a\2mx" + ptr))
    if mode == "many":
        recs = b"".join(_rr(ptr, 15, 300, (i % 7).to_bytes(2, "big") +
                            b"\4m%03d" % i + ptr) for i in range(150))
        return reply(ok, 150, recs)
    if mode == "overrun":       # rdlength past the end
        return reply(ok, 1, ptr + b"\0\x0f\0\1\0\0\1\0\xff\xff\0\x0a")
    if mode == "mismatch":      # another id: c-ares must drop it
        return bytes([query[0] ^ 0xff, query[1]]) + reply(ok, 0, b"")[2:]
    return reply(b"\x84\x03", 0, b"")     # NXDOMAIN


def run_bad_server(port, lifetime):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", port))
    s.settimeout(0.5)
    end = time.time() + lifetime
    while time.time() < end:
        try:
            q, peer = s.recvfrom(4096)
        except socket.timeout:
            continue
        a = bad_answer(q)
        if a:
            s.sendto(a, peer)


class BadServer:
    """The scripted responder in a process of its own, stopped by PID."""

    def __init__(self, lifetime=120):
        self.port = free_udp_tcp_port()
        self.proc = subprocess.Popen(["/usr/bin/python3", os.path.abspath(__file__),
                                      "bad-server", str(self.port), str(lifetime)])
        if not _wait_udp(self.port):
            self.stop()
            raise RuntimeError("bad server did not start")

    def stop(self):
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=10)


if __name__ == "__main__":
    import sys
    if len(sys.argv) == 4 and sys.argv[1] == "bad-server":
        run_bad_server(int(sys.argv[2]), float(sys.argv[3]))
