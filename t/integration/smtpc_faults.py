#!/usr/bin/python3
"""smtpc_faults - the delivery client against misbehaving next hops: a
connection dropped in the middle of DATA, stalls at each stage (short
timeouts), hostile replies (over-long lines, garbage, no line end, 8-bit,
endless continuations, random bytes), a 421 mid-transaction, and the
graceful abandon before and after the final dot.  Every case must end in
a clean temporary failure with the right stage, never a crash or a hang."""
import os
import shutil
import socket
import time

from relaydtest import TAP
from smtpc_common import (RawHop, body_file, check_eq, drive, greet_ehlo, sanitizer_clean,
                          simple_message, tmpdir)

t = TAP()
d = tmpdir()
runs = []
# connect, helo, command, data_xfer, data_done (ms): short, but long enough
# for a loaded machine (make -j check under ASan) to get a hop's reply in.
FAST = "-T", "5000,1500,1500,1500,1500"


def eq(got, want, name, extra=None):
    return check_eq(t, got, want, name, extra)


def run(script, *args, addr="127.0.0.6"):
    hop = RawHop(script, addr).start()
    start = time.monotonic()
    r = drive(hop.addr, hop.port, *args)
    r.elapsed = time.monotonic() - start
    runs.append(r)
    hop.stop()
    r.hop = hop
    return r


def fact(r, addr="a@x.test"):
    x = r.rcpt(addr)
    return (x.get("kind"), x.get("stage"), x.get("status"), x.get("dsn"))


fm = body_file(d, simple_message(), "m")
big = b"Subject: big\r\n\r\n" + (b"y" * 78 + b"\r\n") * 250000      # 20 MB
fbig = body_file(d, big, "big")


def to_data(c):
    """Greeting, EHLO, MAIL, RCPT (pipelined), DATA: 354."""
    greet_ehlo(c)
    c.line()
    c.line()
    c.send("250 ok\r\n250 ok\r\n")
    c.line()
    c.send("354 go ahead\r\n")


def wait_gone(c, limit=10):
    """Keep the socket until the client closes it (bounded)."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        try:
            if not c.sock.recv(65536):
                return
        except OSError:
            return


# ---- a connect that never completes ----
# A listener with a full accept queue drops further SYNs: the connect
# hangs until smtp_connect_timeout (the conn is aborted mid-connect).
listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
listener.bind(("127.0.0.10", 0))
listener.listen(0)
lport = listener.getsockname()[1]
fillers = []
for _ in range(3):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setblocking(False)
    try:
        s.connect(("127.0.0.10", lport))
    except BlockingIOError:
        pass
    fillers.append(s)
time.sleep(0.2)
start = time.monotonic()
r = drive("127.0.0.10", lport, "-T", "1000,5000,5000,5000,5000", "-m", fm, "-r", "a@x.test")
elapsed = time.monotonic() - start
runs.append(r)
eq(fact(r), ("timeout", "connect", "deferred", "4.4.1"),
   "a connect that hangs: timeout at the connect stage, deferred 4.4.1", r)
t.ok("connect to 127.0.0.10[127.0.0.10]:%d: Connection timed out" % lport
     in r.rcpt("a@x.test").get("reason", ""), "Postfix's words for it")
t.ok(0.9 < elapsed < 6, "smtp_connect_timeout = 1 s: over in %.1fs" % elapsed)
for s in fillers + [listener]:
    s.close()

# ---- lost connection mid-DATA ----
def drop_mid_data(c, n):
    to_data(c)
    got = 0
    while got < 200000:
        got += len(c.sock.recv(65536))
    c.close()


r = run(drop_mid_data, *FAST, "-m", fbig, "-r", "a@x.test")
eq(fact(r), ("lost", "body", "deferred", "4.4.2"), "connection dropped mid-DATA: lost while "
   "sending the body, deferred 4.4.2", r)
eq((r.msgs()[0].get("dot") if r.msgs() else None, r.rcpt("a@x.test").get("next")), ("0", "1"),
   "dropped mid-DATA: the dot was not sent, the next address may be tried")
t.ok("lost connection with 127.0.0.6[127.0.0.6] while sending message body"
     in r.rcpt("a@x.test").get("reason", ""), "dropped mid-DATA: Postfix-style reason")


# ---- stalls ----
def stall_greeting(c, n):
    wait_gone(c)


def stall_rcpt(c, n):
    greet_ehlo(c)
    c.line()
    c.line()
    c.send("250 ok\r\n")          # MAIL answered, RCPT never
    wait_gone(c)


def stall_body(c, n):
    to_data(c)
    time.sleep(6)                 # reads nothing: the client's output fills up


def stall_dot(c, n):
    to_data(c)
    c.until(b"\r\n.\r\n")
    wait_gone(c)


for script, stage, dot, nxt, what in (
        (stall_greeting, "greeting", "0", "1", "receiving the initial server greeting"),
        (stall_rcpt, "rcpt", "0", "1", "sending RCPT TO"),
        (stall_body, "body", "0", "1", "sending message body"),
        (stall_dot, "dot", "1", "0", "sending end of data -- message may be sent more than once")):
    r = run(script, *FAST, "-m", fbig if script is stall_body else fm, "-r", "a@x.test")
    eq(fact(r), ("timeout", stage, "deferred", "4.4.2"),
       "stall at %s: timeout reported at that stage" % stage, r)
    m = r.msgs()
    eq((m[0].get("dot") if m else None, r.rcpt("a@x.test").get("next")), (dot, nxt),
       "stall at %s: dot=%s, next address %s" % (stage, dot, "allowed" if nxt == "1" else "not tried"))
    t.ok(what in r.rcpt("a@x.test").get("reason", ""), "stall at %s: '... while %s'" % (stage, what),
         r.rcpt("a@x.test").get("reason"))
    t.ok(r.elapsed < 10, "stall at %s: over in %.1fs (the timeouts, not the hop, end it)"
         % (stage, r.elapsed))


# ---- hostile replies ----
def replies(greeting):
    def script(c, n):
        c.send(greeting)
        wait_gone(c, 3)
    return script


hostile = [
    ("over-long line", b"220 " + b"a" * 5000, "bad_reply", "line too long"),
    ("garbage", b"hello, this is not SMTP\r\n", "bad_reply", "no reply code"),
    ("code out of range", b"999 what\r\n", "bad_reply", "code out of range"),
    ("mixed codes", b"220-one\r\n250 two\r\n", "bad_reply", "different codes"),
    ("endless continuation", b"220-more\r\n" * 300, "bad_reply", "too many lines"),
    ("no line end, then close", b"220 almost", "lost", "lost connection"),
    ("random bytes", bytes(range(256)) * 4, "bad_reply", "malformed reply"),
]
for name, data, kind, why in hostile:
    def script(c, n, data=data):
        c.send(data)
        if not data.endswith(b"almost"):
            wait_gone(c, 3)
    r = run(script, *FAST, "-m", fm, "-r", "a@x.test")
    x = r.rcpt("a@x.test")
    eq((x.get("kind"), x.get("stage"), x.get("status")), (kind, "greeting", "deferred"),
       "hostile greeting (%s): clean temporary failure" % name, r)
    t.ok(why in x.get("reason", ""), "hostile greeting (%s): says why" % name, x.get("reason"))


def eightbit_rcpt(c, n):
    greet_ehlo(c)
    c.line()
    c.line()
    c.send(b"250 ok\r\n550 5.1.1 caf\xc3\xa9 \x01\x1b[31m nope\r\n")
    c.line()
    c.send("250 reset\r\n")
    c.line()
    c.send("221 bye\r\n")


r = run(eightbit_rcpt, *FAST, "-m", fm, "-r", "a@x.test")
x = r.rcpt("a@x.test")
eq((x.get("status"), x.get("dsn")), ("bounced", "5.1.1"), "8-bit and escape codes in a reply: "
   "still a 5.1.1 bounce", r)
t.ok("550 5.1.1 caf?? ??[31m nope" in x.get("reason", ""),
     "8-bit octets and controls reach the report as '?'", x.get("reason"))


def data_250(c, n):
    greet_ehlo(c)
    c.line()
    c.line()
    c.send("250 ok\r\n250 ok\r\n")
    c.line()
    c.send("250 not what you expected\r\n")
    wait_gone(c, 3)


r = run(data_250, *FAST, "-m", fm, "-r", "a@x.test")
eq(fact(r)[:3], ("bad_reply", "data", "deferred"), "a 250 to DATA (not 354): clean "
   "temporary failure, nothing sent as content", r)


def rcpt_421(c, n):
    greet_ehlo(c)
    c.line()
    c.line()
    c.line()
    c.send("250 ok\r\n250 ok\r\n421 4.3.2 shutting down\r\n")
    c.close()


r = run(rcpt_421, *FAST, "-m", fm, "-r", "a@x.test", "-r", "b@x.test")
eq([(x["addr"], x["kind"], x["code"], x["status"]) for x in r.rcpts()],
   [("a@x.test", "reply", "421", "deferred"), ("b@x.test", "reply", "421", "deferred")],
   "a 421 mid-transaction: every recipient deferred with it (the accepted one too)", r)
eq(r.closed().get("code"), "421", "a 421 ends the session")

# ---- the hop ends an idle session ----
def idle_421(c, n):
    to_data(c)
    c.until(b"\r\n.\r\n")
    c.send("250 2.0.0 first one\r\n")
    time.sleep(0.3)
    c.send("421 4.4.2 raw.test Error: timeout exceeded\r\n")


r = run(idle_421, *FAST, "-I", "1500", "-m", fm, "-r", "a@x.test", "-m", fm, "-r", "b@x.test")
eq(r.rcpt("a@x.test").get("status"), "sent", "idle session: the first message was sent", r)
x = r.rcpt("b@x.test", 1)
eq((x.get("kind"), x.get("stage"), x.get("code"), x.get("status"), x.get("next")),
   ("reply", "idle", "421", "deferred", "1"),
   "a 421 while idle ends the session: the next message is deferred, next address allowed")
eq(r.closed().get("code"), "421", "the session's end is the 421")

# ---- abandon (the SIGTERM path) ----
r = run(stall_body, "-T", "5000,5000,5000,10000,10000", "-A", "1500", "-m", fbig,
        "-r", "a@x.test")
eq(fact(r), ("abandoned", "body", "deferred", "4.3.2"),
   "abandon mid-body: the message is deferred as abandoned", r)
eq((r.msgs()[0].get("dot") if r.msgs() else None, r.rcpt("a@x.test").get("next")), ("0", "0"),
   "abandon mid-body: the dot was never sent (no duplicate possible), same address later")
t.ok(r.elapsed < 5, "abandon mid-body: at once, not at the 10 s timeout (%.1fs)" % r.elapsed)


def slow_dot(c, n):
    to_data(c)
    c.until(b"\r\n.\r\n")
    time.sleep(4)
    c.send("250 2.0.0 queued after all\r\n")
    hop_quit.append(c.line())
    c.send("221 bye\r\n")


hop_quit = []
r = run(slow_dot, "-T", "5000,5000,5000,10000,10000", "-A", "1500", "-m", fm, "-r", "a@x.test",
        "-m", fm, "-r", "b@x.test")
eq((r.rcpt("a@x.test").get("status"), r.msgs()[0].get("dot") if r.msgs() else None), ("sent", "1"),
   "abandon after the dot: the reply is awaited and reported (sent)", r)
eq(hop_quit, ["QUIT"], "then QUIT, and the next message is not started")
eq(r.rcpt("b@x.test", 1).get("kind"), "none",
   "the message not started has no fact from the hop (unsent)")

# ---- the content source fails (a queue read error) ----
def takes_everything(c, n):
    to_data(c)
    wait_gone(c)


r = run(takes_everything, *FAST, "-m", fbig, "-X", "1000000", "-r", "a@x.test")
eq(fact(r), ("local", "body", "deferred", "4.3.0"),
   "the content source fails mid-body: a local error, deferred 4.3.0", r)
eq((r.msgs()[0].get("dot") if r.msgs() else None, r.rcpt("a@x.test").get("next")), ("0", "0"),
   "source failure: no dot sent (the hop discards the partial message), same address later")

# ---- the timeouts and the source address come from relayd.conf ----
conf = os.path.join(d, "relayd.conf")
with open(conf, "w") as f:
    f.write("hostname = cfg.relayd.test\nsmtp_bind_address = 127.0.0.8\n"
            "smtp_helo_timeout = 1s\ntls_outbound = none\n")
peers = []


def greet_then_stall(c, n):
    peers.append(c.sock.getpeername()[0])
    c.send("220 raw.test ESMTP\r\n")
    peers.append(c.line())
    wait_gone(c)                  # EHLO never answered


r = run(greet_then_stall, "-C", conf, "-m", fm, "-r", "a@x.test")
eq((fact(r)[:2], peers), (("timeout", "helo"), ["127.0.0.8", "EHLO cfg.relayd.test"]),
   "relayd.conf: hostname in EHLO, smtp_bind_address is the source, smtp_helo_timeout "
   "bounds the EHLO", r)
t.ok(0.9 < r.elapsed < 6, "smtp_helo_timeout = 1s: over in %.1fs" % r.elapsed)

t.ok(all(sanitizer_clean(x) for x in runs), "no sanitizer report from any run",
     "\n".join(x.err for x in runs if not sanitizer_clean(x))[:3000])
hops = [x.hop for x in runs if hasattr(x, "hop")]
t.ok(all(not h.errors for h in hops), "the scripted hops ran without errors",
     [h.errors for h in hops])
shutil.rmtree(d, ignore_errors=True)
t.done()
