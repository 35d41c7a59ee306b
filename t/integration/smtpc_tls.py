#!/usr/bin/python3
"""smtpc_tls - STARTTLS towards the next hop at each tls_outbound level
(none, may, encrypt, verify) against hops with and without STARTTLS,
self-signed and test-CA certificates (made here with openssl), the
Postfix-style TLS log line, the `may` fallback to clear text after a
failed handshake, and AUTH PLAIN/LOGIN to a relayhost only under TLS."""
import re
import shutil
import time

from relaydtest import TAP
from smtpc_common import (RawHop, Sink, body_file, check_eq, drive, greet_ehlo,
                          make_ca, make_leaf, make_self_signed, sanitizer_clean,
                          server_ctx, simple_message, tmpdir)

t = TAP()
d = tmpdir()
runs = []
ADDR = "127.0.0.7"


def eq(got, want, name, extra=None):
    return check_eq(t, got, want, name, extra)


def run(hop, *args):
    r = drive(hop.addr, hop.port, *args)
    runs.append(r)
    return r


def status(r, addr="a@x.test"):
    x = r.rcpt(addr)
    return (x.get("kind"), x.get("status"), x.get("dsn"))


fm = body_file(d, simple_message(), "m")
self_cert = make_self_signed(d, "mx.test")
ca = make_ca(d)
leaf = make_leaf(d, ca, "mx.test")
tls_line = re.compile(r"relayd/smtp\[\d+\]: (\w+) TLS connection established to "
                      r"mx\.test\[127\.0\.0\.7\]:(\d+): (TLSv1\.[23]) with cipher (\S+) "
                      r"\((\d+)/(\d+) bits\)")

# ---- levels against a self-signed STARTTLS hop ----
sink = Sink(ADDR, tls=self_cert).start()
r = run(sink, "-t", "may", "-n", "mx.test", "-m", fm, "-r", "a@x.test")
eq(status(r), ("reply", "sent", "2.0.0"), "may, STARTTLS offered: sent", r)
t.ok(sink.messages and sink.messages[-1]["tls"], "may: the message went over TLS")
m = tls_line.search(r.err)
t.ok(m and m.group(1) == "Untrusted" and m.group(2) == str(sink.port),
     "may, self-signed: 'Untrusted TLS connection established to mx.test[127.0.0.7]:PORT: "
     "TLSv1.3 with cipher ... (N/N bits)'", r.err)
eq(r.closed().get("tls"), "1", "the session reports TLS")

r = run(sink, "-t", "none", "-n", "mx.test", "-m", fm, "-r", "a@x.test")
eq(status(r)[1], "sent", "none: sent", r)
t.ok(sink.messages and not sink.messages[-1]["tls"], "none: in clear although STARTTLS was offered")

r = run(sink, "-t", "encrypt", "-n", "mx.test", "-m", fm, "-r", "a@x.test")
eq(status(r)[1], "sent", "encrypt, STARTTLS offered: sent", r)
t.ok(sink.messages and sink.messages[-1]["tls"], "encrypt: over TLS")

n = len(sink.messages)
r = run(sink, "-t", "verify", "-c", ca[0], "-n", "mx.test", "-m", fm, "-r", "a@x.test")
eq(status(r), ("tls", "deferred", "4.7.5"), "verify, self-signed hop: deferred 4.7.5", r)
t.ok("certificate verify failed" in r.rcpt("a@x.test").get("reason", ""),
     "verify, self-signed: the reason says the certificate failed",
     r.rcpt("a@x.test").get("reason"))
eq((r.closed().get("fallback"), len(sink.messages)), ("0", n),
   "verify: no fallback to clear text, nothing delivered")
sink.stop()

# ---- a hop without STARTTLS ----
sink = Sink(ADDR).start()
r = run(sink, "-t", "may", "-n", "mx.test", "-m", fm, "-r", "a@x.test")
eq(status(r)[1], "sent", "may, no STARTTLS: sent in clear", r)
r = run(sink, "-t", "encrypt", "-n", "mx.test", "-m", fm, "-r", "a@x.test")
eq(status(r), ("no_starttls", "deferred", "4.7.4"),
   "encrypt, no STARTTLS: deferred 4.7.4 (temporary)", r)
t.ok("TLS is required, but was not offered by host mx.test[127.0.0.7]"
     in r.rcpt("a@x.test").get("reason", ""), "encrypt, no STARTTLS: Postfix's words")
eq(len(sink.mails), 1, "encrypt, no STARTTLS: MAIL never sent")
sink.stop()

# ---- a test CA ----
sink = Sink(ADDR, tls=leaf).start()
r = run(sink, "-t", "verify", "-c", ca[0], "-n", "mx.test", "-m", fm, "-r", "a@x.test")
eq(status(r)[1], "sent", "verify, certificate from the test CA for mx.test: sent", r)
m = tls_line.search(r.err)
t.ok(m and m.group(1) == "Verified", "verify: 'Verified TLS connection established ...'", r.err)
r = run(sink, "-t", "verify", "-c", ca[0], "-n", "other.test", "-m", fm, "-r", "a@x.test")
eq(status(r), ("tls", "deferred", "4.7.5"), "verify, right CA but another host name: deferred", r)
t.ok("hostname mismatch" in r.rcpt("a@x.test").get("reason", ""),
     "verify, wrong name: the reason says hostname mismatch", r.rcpt("a@x.test").get("reason"))
r = run(sink, "-t", "verify", "-n", "mx.test", "-m", fm, "-r", "a@x.test")
eq(status(r)[0], "tls", "verify against the system store: the test CA is not trusted", r)
r = run(sink, "-t", "verify", "-c", ca[0], "-m", fm, "-r", "a@x.test")
eq(status(r)[0], "tls", "verify without a host name: the IP is checked, and this "
   "certificate names mx.test only", r)
r = run(sink, "-t", "may", "-c", ca[0], "-n", "other.test", "-m", fm, "-r", "a@x.test")
m = re.search(r"(\w+) TLS connection established to other\.test", r.err)
eq((status(r)[1], m.group(1) if m else None), ("sent", "Trusted"),
   "may, trusted chain but another name: sent, logged 'Trusted'", r)
sink.stop()
sink = Sink(ADDR, tls=make_leaf(d, ca, ADDR, prefix="ipleaf", san="IP:" + ADDR)).start()
r = run(sink, "-t", "verify", "-c", ca[0], "-m", fm, "-r", "a@x.test")
eq(status(r)[1], "sent", "verify without a host name: a certificate for the IP passes", r)
sink.stop()


# ---- may: a failed handshake, then clear text ----
def broken_tls(c, n):
    if n == 0:
        greet_ehlo(c, ("PIPELINING", "STARTTLS"))
        c.line()
        c.send("220 go ahead\r\n")
        c.available(0.5)
        c.send(b"\x15\x03\x03\x00\x02\x02\x28 this is not TLS\r\n")
        c.available(0.5)
        return
    greet_ehlo(c, ("PIPELINING",))
    c.line()
    c.line()
    c.send("250 ok\r\n250 ok\r\n")
    c.line()
    c.send("354 go\r\n")
    c.until(b"\r\n.\r\n")
    c.send("250 2.0.0 clear\r\n")
    c.line()
    c.send("221 bye\r\n")


hop = RawHop(broken_tls, ADDR).start()
r = run(hop, "-t", "may", "-n", "mx.test", "-m", fm, "-r", "a@x.test")
eq((status(r)[:2], r.closed().get("fallback")), (("tls", "deferred"), "1"),
   "may, handshake fails: deferred, the result says a clear-text retry is allowed", r)
hop.stop()
hop = RawHop(broken_tls, ADDR).start()
r = run(hop, "-t", "may", "-F", "-n", "mx.test", "-m", fm, "-r", "a@x.test")
eq((status(r)[1], r.out.count("retry in clear")), ("sent", 1),
   "may, handshake fails: the retry in clear delivers (as Postfix does)", r)
hop.stop()
hop = RawHop(broken_tls, ADDR).start()
r = run(hop, "-t", "encrypt", "-F", "-n", "mx.test", "-m", fm, "-r", "a@x.test")
eq((status(r)[:2], r.closed().get("fallback"), r.out.count("retry in clear")),
   (("tls", "deferred"), "0", 0), "encrypt, handshake fails: deferred, no clear-text retry", r)
hop.stop()



def stalled_tls(c, n):
    if n == 0:
        greet_ehlo(c, ("PIPELINING", "STARTTLS"))
        c.line()
        c.send("220 go ahead\r\n")
        time.sleep(5)             # the ClientHello gets no answer
        return
    broken_tls(c, 1)


hop = RawHop(stalled_tls, ADDR).start()
r = run(hop, "-t", "may", "-F", "-T", "5000,5000,1500,5000,5000", "-n", "mx.test", "-m", fm,
        "-r", "a@x.test")
eq((r.rcpts()[0].get("kind") if r.rcpts() else None, r.rcpts()[0].get("stage") if r.rcpts() else None,
    status(r)[1], r.out.count("retry in clear")), ("timeout", "tls", "sent", 1),
   "may, a handshake that stalls: timeout at the tls stage, then delivered in clear", r)
hop.stop()

# ---- cleartext injected after the 220 to STARTTLS (CVE-2011-0411) ----
def inject_after_starttls(c, n):
    greet_ehlo(c, ("PIPELINING", "STARTTLS"))
    c.line()
    # One segment: the 220, then a reply the client must never read as
    # protected (taken as the EHLO reply after TLS, it would bounce).
    c.send("220 go ahead\r\n554 5.7.1 injected in clear\r\n")
    c.sock = server_ctx(*self_cert).wrap_socket(c.sock, server_side=True)
    c.buf = b""
    c.line()
    c.send("250-raw.test\r\n250 PIPELINING\r\n")
    c.line()
    c.line()
    c.send("250 ok\r\n250 ok\r\n")
    c.line()
    c.send("354 go\r\n")
    c.until(b"\r\n.\r\n")
    c.send("250 2.0.0 over TLS\r\n")
    c.line()
    c.send("221 bye\r\n")


hop = RawHop(inject_after_starttls, ADDR).start()
r = run(hop, "-t", "encrypt", "-n", "mx.test", "-m", fm, "-r", "a@x.test")
eq((status(r)[1], r.rcpt("a@x.test").get("reason")), ("sent", "250 2.0.0 over TLS"),
   "cleartext sent after the 220 to STARTTLS is discarded, not read as protected", r)
hop.stop()

# ---- AUTH ----
sink = Sink(ADDR, tls=self_cert, auth=("alice", "s3cret"), require_auth=True).start()
r = run(sink, "-t", "may", "-a", "alice:s3cret", "-n", "mx.test", "-m", fm, "-r", "a@x.test")
eq(status(r)[1], "sent", "AUTH PLAIN under TLS: sent", r)
eq(sink.logins, [("PLAIN", "alice", "s3cret")], "the hop saw AUTH PLAIN with the credentials")
t.ok(sink.messages and sink.messages[-1]["auth"] and sink.messages[-1]["tls"],
     "the transaction was authenticated and encrypted")
r = run(sink, "-t", "may", "-a", "alice:wrong", "-n", "mx.test", "-m", fm, "-r", "a@x.test")
x = r.rcpt("a@x.test")
eq((x.get("stage"), x.get("status"), x.get("dsn")), ("auth", "deferred", "4.7.8"),
   "AUTH refused (535 5.7.8): deferred, never bounced", r)
r = run(sink, "-t", "none", "-a", "alice:s3cret", "-n", "mx.test", "-m", fm, "-r", "a@x.test")
eq(status(r), ("no_auth", "deferred", "4.7.0"), "credentials without TLS: deferred 4.7.0", r)
eq(len(sink.logins), 2, "and no credentials were sent")
sink.stop()
sink = Sink(ADDR, tls=self_cert, auth=("alice", "s3cret"), ehlo_remove=["AUTH"],
            ehlo_add=["AUTH LOGIN"]).start()
r = run(sink, "-t", "may", "-a", "alice:s3cret", "-n", "mx.test", "-m", fm, "-r", "a@x.test")
eq((status(r)[1], sink.logins), ("sent", [("LOGIN", "alice", "s3cret")]),
   "AUTH LOGIN when only LOGIN is offered", r)
sink.stop()


def auth_in_clear(c, n):
    greet_ehlo(c, ("PIPELINING", "AUTH PLAIN LOGIN"))
    while True:
        line = c.line()
        lines_seen.append(line)
        c.send("221 bye\r\n" if line == "QUIT" else "250 ok\r\n")
        if line == "QUIT":
            return


lines_seen = []
hop = RawHop(auth_in_clear, ADDR).start()
r = run(hop, "-t", "may", "-a", "alice:s3cret", "-n", "mx.test", "-m", fm, "-r", "a@x.test")
eq(status(r)[0], "no_auth", "a hop offering AUTH in clear: no AUTH", r)
t.ok(not any("AUTH" in l or "YWxpY2U" in l for l in lines_seen),
     "the credentials never went out in clear", lines_seen)
hop.stop()

t.ok(all(sanitizer_clean(x) for x in runs), "no sanitizer report from any run",
     "\n".join(x.err for x in runs if not sanitizer_clean(x))[:3000])
shutil.rmtree(d, ignore_errors=True)
t.done()
