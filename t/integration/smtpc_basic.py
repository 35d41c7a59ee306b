#!/usr/bin/python3
"""smtpc_basic - the delivery client against well-behaved next hops:
content byte for byte (dot-stuffing, a large body), several messages over
one connection, per-recipient results, scripted refusals at every stage,
EHLO extensions (PIPELINING, SIZE, 8BITMIME, SMTPUTF8, DSN), HELO
fallback, connect failure, source address."""
import os
import re
import shutil

from relaydtest import TAP, free_port
from smtpc_common import (RawHop, check_eq, Sink, body_file, drive, greet_ehlo, sanitizer_clean,
                          simple_message, tmpdir)

t = TAP()


def eq(got, want, name, extra=None):
    return check_eq(t, got, want, name, extra)


d = tmpdir()
runs = []


def run(*a, **kw):
    r = drive(*a, **kw)
    runs.append(r)
    return r


def conns(sink):
    return len({m["conn"] for m in sink.messages})


# ---- content byte for byte ----
sink = Sink("127.0.0.2").start()
tricky = (b"From: a@relayd.test\r\nSubject: dots\r\n\r\n.leading dot\r\n..two\r\n"
          b".\r\nmiddle . dot\r\n.\r\nend without CRLF.")
f1 = body_file(d, tricky, "tricky")
r = run(sink.addr, sink.port, "-m", f1, "-r", "a@x.test")
eq(r.rcpt("a@x.test").get("status"), "sent", "accepted message: status=sent")
eq(r.rcpt("a@x.test").get("reason"), "250 2.0.0 Ok: queued as TESTID",
     "the reason is the hop's reply")
eq(r.closed().get("kind"), "none", "the session ends with QUIT", r)
got = sink.messages[-1]["content"] if sink.messages else b""
eq(got, tricky + b"\r\n", "dot-stuffed content arrives byte for byte (CRLF added at the end)")
eq(r.msgs()[0].get("dot"), "1", "the final dot is reported sent")

# A large body: streamed in bounded pieces, byte for byte.
line = b"0123456789abcdefghijklmnopqrstuvwxyz.ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789\r\n"
big = b"Subject: big\r\n\r\n" + b"".join(
    (b"." if i % 7 == 0 else b"") + line for i in range(500000))
fbig = body_file(d, big, "big")
base = run(sink.addr, sink.port)          # no message: the driver's own footprint
r = run(sink.addr, sink.port, "-m", fbig, "-r", "big@x.test")
eq(r.rcpt("big@x.test").get("status"), "sent", "a %d MB message is sent" % (len(big) >> 20), r)
t.ok(sink.messages and sink.messages[-1]["content"] == big,
     "the large message arrives byte for byte")
grow = int(r.closed().get("maxrss_kb", 0)) - int(base.closed().get("maxrss_kb", 0))
t.ok(grow < 4096 or os.environ.get("RELAYD_SANITIZERS") == "yes",
     "sending %d MB grows the client by %d KiB (< 4 MiB: no whole-body buffering)"
     % (len(big) >> 20, grow))

# ---- two messages, one connection ----
n0 = len(sink.messages)
f2 = body_file(d, simple_message("second"), "second")
r = run(sink.addr, sink.port, "-m", f1, "-r", "one@x.test", "-m", f2, "-f", "other@relayd.test",
        "-r", "two@x.test")
eq([m.get("dot") for m in r.msgs()], ["1", "1"], "two messages, both sent")
eq(r.closed().get("messages"), "2", "the session counts two transactions")
new = sink.messages[n0:]
eq(len(new), 2, "the hop received two messages")
eq(len({m["conn"] for m in new}), 1, "over one connection")
eq([m["from"] for m in new], ["sender@relayd.test", "other@relayd.test"], "each with its sender")
eq(r.msgs()[1].get("setup"), "0.000", "the second message has no setup time (reused)")
sink.stop()

# ---- per-recipient results, refusals at each stage ----
sink = Sink("127.0.0.2", replies={"RCPT": {
    "unknown@x.test": "550 5.1.1 <unknown@x.test>: Recipient address rejected",
    "grey@x.test": "450 4.2.0 <grey@x.test>: greylisted"}}).start()
fm = body_file(d, simple_message(), "m")
r = run(sink.addr, sink.port, "-m", fm, "-r", "ok@x.test", "-r", "unknown@x.test",
        "-r", "grey@x.test", "-r", "ok2@x.test")
eq([(x["addr"], x["status"], x["dsn"]) for x in r.rcpts()],
     [("ok@x.test", "sent", "2.0.0"), ("unknown@x.test", "bounced", "5.1.1"),
      ("grey@x.test", "deferred", "4.2.0"), ("ok2@x.test", "sent", "2.0.0")],
     "mixed recipients: each gets its own result")
t.ok("said: 550 5.1.1 <unknown@x.test>: Recipient address rejected (in reply to RCPT TO command)"
     in r.rcpt("unknown@x.test").get("reason", ""), "the 550 is quoted Postfix-style", r)
eq(r.rcpt("grey@x.test").get("next"), "1", "a 4xx RCPT may be tried at the next MX")
t.ok(re.search(r"relayd/smtp\[\d+\]: DRIVE0000000: to=<unknown@x\.test>, "
               r"relay=127\.0\.0\.2\[127\.0\.0\.2\]:%d, delay=[0-9.]+, "
               r"delays=0/0/[0-9.]+/[0-9.]+, dsn=5\.1\.1, status=bounced \(host "
               r"127\.0\.0\.2\[127\.0\.0\.2\] said: 550 5\.1\.1 <unknown@x\.test>: "
               r"Recipient address rejected \(in reply to RCPT TO command\)\)$" % sink.port,
               r.err, re.M),
     "the mail log record: Postfix's format, from fact through policy", r.err)
t.ok(re.search(r"DRIVE0000000: to=<ok@x\.test>, .* dsn=2\.0\.0, status=sent "
               r"\(250 2\.0\.0 Ok: queued as TESTID\)$", r.err, re.M),
     "the mail log record of a delivered recipient")
eq(sink.messages[-1]["rcpts"] if sink.messages else None, ["ok@x.test", "ok2@x.test"],
     "only the accepted recipients got the message")
sink.stop()

sink = Sink("127.0.0.2", replies={"RCPT": {"a@x.test": "550 5.1.1 no", "b@x.test": "550 5.1.1 no"}}).start()
r = run(sink.addr, sink.port, "-m", fm, "-r", "a@x.test", "-r", "b@x.test", "-m", fm,
        "-r", "a@x.test")
eq(r.msgs()[0].get("dot"), "0", "every recipient refused: no DATA")
eq(len(sink.messages), 0, "and nothing delivered")
eq(r.rcpt("a@x.test", 1).get("status"), "bounced",
     "the next message on the connection still works (RSET in between)")
sink.stop()

for stage, reply, status, dsn in (("MAIL", "451 4.3.0 try later", "deferred", "4.3.0"),
                                  ("MAIL", "553 5.7.1 sender refused", "bounced", "5.7.1"),
                                  ("DOT", "554 5.7.1 content refused", "bounced", "5.7.1"),
                                  ("DOT", "452 4.3.1 full", "deferred", "4.3.1")):
    sink = Sink("127.0.0.2", replies={stage: reply}).start()
    r = run(sink.addr, sink.port, "-m", fm, "-r", "a@x.test", "-r", "b@x.test")
    eq([(x["status"], x["dsn"]) for x in r.rcpts()], [(status, dsn)] * 2,
         "%s answered %s: both recipients %s %s" % (stage, reply[:3], status, dsn))
    eq(r.rcpt("a@x.test").get("stage"), "mail" if stage == "MAIL" else "dot",
         "%s %s: reported at its stage" % (stage, reply[:3]))
    sink.stop()


# Greeting refusals and DATA refusals need a raw hop.
def refusing_greeting(code):
    def script(c, n):
        c.send("%s raw.test go away\r\n" % code)
        c.line()
    return script


for code, status, nxt in (("421", "deferred", "1"), ("554", "deferred", "1")):
    hop = RawHop(refusing_greeting(code), "127.0.0.3").start()
    r = run(hop.addr, hop.port, "-m", fm, "-r", "a@x.test")
    x = r.rcpt("a@x.test")
    eq((x.get("kind"), x.get("stage"), x.get("status"), x.get("next")),
         ("reply", "greeting", status, nxt),
         "greeting %s: %s, next address may be tried" % (code, status), r)
    t.ok("refused to talk to me: %s raw.test go away" % code in x.get("reason", ""),
         "greeting %s: the reason quotes it" % code)
    hop.stop()


def data_451(c, n):
    greet_ehlo(c)
    c.line()
    c.send("250 ok\r\n")
    c.line()
    c.send("250 ok\r\n")
    c.line()                     # DATA
    c.send("451 4.3.0 DATA refused\r\n")
    while True:
        cmd = c.line()
        c.send("250 ok\r\n" if cmd == "RSET" else "221 bye\r\n")
        if cmd == "QUIT":
            return


hop = RawHop(data_451, "127.0.0.3").start()
r = run(hop.addr, hop.port, "-m", fm, "-r", "a@x.test")
eq((r.rcpt("a@x.test").get("stage"), r.rcpt("a@x.test").get("status")), ("data", "deferred"),
     "DATA answered 451: deferred at the DATA stage", r)
hop.stop()


# ---- PIPELINING: MAIL and every RCPT in one go ----
def strict_pipelining(c, n):
    greet_ehlo(c, ("PIPELINING", "8BITMIME"))
    # Not a byte of reply until MAIL and all three RCPTs have arrived:
    # a client that waits for the MAIL reply stalls here.
    batch = c.until(b"RCPT TO:<c@x.test>\r\n")
    hop.batch = batch
    c.send("250 ok\r\n250 ok\r\n550 5.1.1 no b\r\n250 ok\r\n")
    c.line()
    c.send("354 go\r\n")
    c.until(b"\r\n.\r\n")
    c.send("250 2.0.0 queued\r\n")
    c.line()
    c.send("221 bye\r\n")


hop = RawHop(strict_pipelining, "127.0.0.3").start()
hop.batch = b""
r = run(hop.addr, hop.port, "-T", "5000,5000,3000,5000,5000", "-m", fm, "-r", "a@x.test",
        "-r", "b@x.test", "-r", "c@x.test")
eq([x.get("status") for x in r.rcpts()], ["sent", "bounced", "sent"],
     "PIPELINING: MAIL and the RCPTs go out before any reply", r)
eq(hop.batch.count(b"\r\n"), 4, "PIPELINING: one batch of MAIL + 3 RCPT")
hop.stop()

# ---- SIZE ----
sink = Sink("127.0.0.2", size=1000).start()
fsmall = body_file(d, simple_message("small"), "small")
fbig2 = body_file(d, simple_message("big", "x" * 70 + "\r\n") * 30, "big2")
r = run(sink.addr, sink.port, "-m", fbig2, "-r", "a@x.test", "-m", fsmall, "-r", "b@x.test")
x = r.rcpt("a@x.test")
eq((x.get("kind"), x.get("status"), x.get("dsn")), ("too_big", "bounced", "5.3.4"),
     "over the hop's SIZE: bounced 5.3.4 before MAIL", r)
t.ok("exceeds size limit 1000" in x.get("reason", ""), "the reason names the limit")
eq([m[0] for m in sink.mails], ["sender@relayd.test"], "only the small message was offered")
t.ok(sink.messages and "SIZE=%d" % os.path.getsize(fsmall) in sink.messages[-1]["mail_options"],
     "SIZE= is declared to a hop that offers SIZE")
sink.stop()

# ---- 8BITMIME ----
eight = "Subject: caf\u00e9\r\n\r\nd\u00e9j\u00e0 vu\r\n".encode()
f8 = body_file(d, eight, "eight")
sink = Sink("127.0.0.2").start()
r = run(sink.addr, sink.port, "-m", f8, "-8", "-r", "a@x.test")
eq(r.rcpt("a@x.test").get("status"), "sent", "8-bit content to an 8BITMIME hop: sent")
t.ok(sink.messages and "BODY=8BITMIME" in sink.messages[-1]["mail_options"]
     and sink.messages[-1]["content"] == eight, "with BODY=8BITMIME, byte for byte")
sink.stop()
sink = Sink("127.0.0.2", ehlo_remove=["8BITMIME"]).start()
r = run(sink.addr, sink.port, "-m", f8, "-8", "-r", "a@x.test", "-m", fm, "-r", "b@x.test")
eq((r.rcpt("a@x.test").get("status"), r.rcpt("a@x.test").get("dsn")), ("bounced", "5.6.3"),
     "8-bit content, hop without 8BITMIME: bounced 5.6.3 (no conversion)", r)
eq(r.rcpt("b@x.test", 1).get("status"), "sent", "a 7-bit message to the same hop goes")
eq(len(sink.messages), 1, "the 8-bit one was never offered")
sink.stop()

# ---- SMTPUTF8 ----
futf = body_file(d, simple_message("utf8"), "utf8")
sink = Sink("127.0.0.2", smtputf8=True).start()
r = run(sink.addr, sink.port, "-m", futf, "-u", "-f", "s\u00e9nder@relayd.test", "-r", "\u00fc@x.test")
eq(r.rcpt("\u00fc@x.test").get("status"), "sent", "SMTPUTF8 hop: a UTF-8 envelope is sent", r)
t.ok(sink.messages and "SMTPUTF8" in sink.messages[-1]["mail_options"], "with SMTPUTF8 on MAIL")
sink.stop()
sink = Sink("127.0.0.2", smtputf8=False).start()
r = run(sink.addr, sink.port, "-m", futf, "-u", "-r", "\u00fc@x.test")
eq((r.rcpt("\u00fc@x.test").get("status"), r.rcpt("\u00fc@x.test").get("dsn")),
     ("bounced", "5.6.7"), "SMTPUTF8 needed, not offered: bounced 5.6.7", r)
eq(sink.mails, [], "and MAIL was never sent")
sink.stop()

# ---- DSN ----
sink = Sink("127.0.0.2", dsn=True).start()
r = run(sink.addr, sink.port, "-m", fm, "-R", "HDRS", "-E", "ENV+2BID", "-r", "a@x.test",
        "-N", "SUCCESS,FAILURE", "-O", "rfc822;a+40x.test", "-r", "b@x.test", "-N", "NEVER")
eq(r.msgs()[0].get("dsn_passed"), "1", "DSN offered: reported passed on", r)
eq(sink.handler.dsn_mail, [["RET=HDRS", "ENVID=ENV+2BID"]], "RET and ENVID on MAIL")
eq(sink.handler.dsn_rcpt, [["NOTIFY=SUCCESS,FAILURE", "ORCPT=rfc822;a+40x.test"],
                             ["NOTIFY=NEVER"]], "NOTIFY and ORCPT on RCPT")
sink.stop()
# aiosmtpd refuses parameters it does not know (555): a plain hop
# accepting the message shows none were sent.
sink = Sink("127.0.0.2").start()
r = run(sink.addr, sink.port, "-m", fm, "-R", "FULL", "-E", "X", "-r", "a@x.test", "-N", "SUCCESS")
eq((r.rcpt("a@x.test").get("status"), r.msgs()[0].get("dsn_passed")), ("sent", "0"),
     "no DSN offered: no DSN parameters, message sent, reported not passed", r)
sink.stop()


# ---- HELO fallback ----
def ehlo_refused(c, n):
    c.send("220 old.test SMTP\r\n")
    hop.first = c.line()
    c.send("502 5.5.2 EHLO not implemented\r\n")
    hop.second = c.line()
    c.send("250 old.test\r\n")
    c.line()
    c.send("250 ok\r\n")
    c.line()
    c.send("250 ok\r\n")
    c.line()
    c.send("354 go\r\n")
    c.until(b"\r\n.\r\n")
    c.send("250 ok\r\n")
    c.line()
    c.send("221 bye\r\n")


hop = RawHop(ehlo_refused, "127.0.0.3").start()
r = run(hop.addr, hop.port, "-m", fm, "-r", "a@x.test")
eq((getattr(hop, "first", ""), getattr(hop, "second", "")),
     ("EHLO relayd.test", "HELO relayd.test"), "EHLO refused with 5xx: HELO follows", r)
eq(r.rcpt("a@x.test").get("status"), "sent", "and the message goes over HELO")
hop.stop()

# ---- connect failures, source address ----
closed_port = free_port("127.0.0.4")
r = run("127.0.0.4", closed_port, "-m", fm, "-r", "a@x.test")
x = r.rcpt("a@x.test")
eq((x.get("kind"), x.get("status"), x.get("dsn"), x.get("next")),
     ("connect", "deferred", "4.4.1", "1"), "connection refused: deferred 4.4.1, next address", r)
t.ok("connect to 127.0.0.4[127.0.0.4]:%d: connection refused" % closed_port in x.get("reason", ""),
     "connection refused: reason names host, IP and port")

sink = Sink("127.0.0.2").start()
r = run(sink.addr, sink.port, "-b", "127.0.0.5", "-n", "mx.x.test", "-m", fm, "-r", "a@x.test")
eq(sink.messages[-1]["peer"] if sink.messages else None, "127.0.0.5",
     "smtp_bind_address: the hop sees the source address")
t.ok(r.closed().get("relay", "").startswith("mx.x.test[127.0.0.2]:"), "relay=HOST[IP]:PORT")
sink.stop()

t.ok(all(sanitizer_clean(x) for x in runs), "no sanitizer report from any run",
     "\n".join(x.err for x in runs if not sanitizer_clean(x))[:3000])
shutil.rmtree(d, ignore_errors=True)
t.done()
