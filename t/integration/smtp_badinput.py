#!/usr/bin/python3
"""smtp_badinput - relayd's SMTP server and bad input (DESIGN.md §7).

Commands out of order, syntax errors, unknown commands, overlong lines,
bare CR / LF and NUL in commands, the error limit, SMTP smuggling in DATA,
size and recipient limits, relay policy, the submission port without AUTH,
the hop limit, idle timeouts, the per-client connection limit, VRFY, HELP,
EXPN and RSET.  Every refusal must be a clear reply, the server must stay
up, and nothing must be queued that should not be.
"""
import os
import re
import sys
import threading
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import relaydtest  # noqa: E402
from relaydtest import (TAP, Relayd, Client, QUEUED_RE, NO_DELIVERY,  # noqa: E402
                        queued_id, session, replies)


t = TAP()



def safe_cmd(c, line):
    """c.cmd(line), or a description of the failure (timeout, EOF)."""
    try:
        return c.cmd(line)
    except OSError as e:
        return "<%s>" % e.__class__.__name__


def send_message(r, content, port=None, source=None, rcpts=("rcpt@example.net",)):
    """A complete transaction; returns the final reply."""
    c = session(r, port, source)
    try:
        c.cmd("MAIL FROM:<sender@example.org>")
        for a in rcpts:
            c.cmd("RCPT TO:<%s>" % a)
        rep = c.cmd("DATA")
        if not rep.startswith("354"):
            return rep
        c.send(content + b".\r\n")
        rep = c.reply()
        c.cmd("QUIT")
        return rep
    finally:
        c.close()


MSG = (b"Subject: test\r\nMessage-ID: <t@example.org>\r\n"
       b"Date: Mon, 02 Mar 2026 10:00:00 +0000\r\n\r\nbody\r\n")

r = Relayd(tls=False, conf=NO_DELIVERY + "message_size_limit = 10K\nrecipient_limit = 3\n"
           "trusted_networks = 127.0.0.1/32\nclient_connection_limit = 3\n")
rt = Relayd(tls=False, conf=NO_DELIVERY + "smtpd_timeout = 2s\n")
try:
    r.start()
    rt.start()

    # ---- commands out of order ------------------------------------------
    c = session(r, ehlo=None)
    t.eq(c.greeting, "220 relayd.test ESMTP relayd", "greeting")
    t.eq(c.cmd("MAIL FROM:<a@example.org>"), "503 5.5.1 Error: send HELO/EHLO first",
         "MAIL before EHLO: 503 5.5.1")
    t.eq(c.cmd("RCPT TO:<b@example.net>"), "503 5.5.1 Error: need MAIL command",
         "RCPT before EHLO/MAIL: 503 5.5.1")
    c.cmd("EHLO client.example")
    t.eq(c.cmd("RCPT TO:<b@example.net>"), "503 5.5.1 Error: need MAIL command",
         "RCPT before MAIL: 503 5.5.1")
    t.eq(c.cmd("DATA"), "503 5.5.1 Error: need MAIL command", "DATA before MAIL: 503 5.5.1")
    t.eq(c.cmd("MAIL FROM:<a@example.org>"), "250 2.1.0 Ok", "MAIL after EHLO: 250")
    t.eq(c.cmd("DATA"), "503 5.5.1 Error: need RCPT command", "DATA before RCPT: 503 5.5.1")
    t.eq(c.cmd("MAIL FROM:<a2@example.org>"), "503 5.5.1 Error: nested MAIL command",
         "nested MAIL: 503 5.5.1")
    t.eq(c.cmd("RCPT TO:<b@example.net>"), "250 2.1.5 Ok", "transaction still usable: RCPT 250")
    t.ok(c.cmd("DATA").startswith("354 "), "transaction still usable: DATA 354")
    c.send(MSG + b".\r\n")
    t.ok(queued_id(c.reply()) is not None, "transaction after the 503s is queued")
    c.close()

    # ---- HELO instead of EHLO ------------------------------------------------
    c = session(r, ehlo=None)
    t.eq(c.cmd("HELO client.example"), "250 relayd.test", "HELO: 250 hostname")
    t.eq(c.cmd("MAIL FROM:<a@example.org> SIZE=100"), "555 5.5.4 ESMTP parameters need EHLO",
         "HELO session: MAIL with SIZE= is 555 5.5.4")
    t.eq(c.cmd("MAIL FROM:<a@example.org>"), "250 2.1.0 Ok", "HELO session: plain MAIL 250")
    c.cmd("RCPT TO:<b@example.net>")
    c.send("BDAT 5 LAST\r\nhello")
    t.eq(c.reply(), "503 5.5.1 Error: send EHLO first", "HELO session: BDAT is 503")
    t.eq(c.cmd("NOOP"), "250 2.0.0 Ok", "HELO session: BDAT bytes consumed, session goes on")
    c.close()

    # ---- syntax errors -------------------------------------------------------
    c = session(r)
    cases = [
        ("EHLO", "501 5.5.4 Syntax: EHLO hostname"),
        ("HELO", "501 5.5.4 Syntax: HELO hostname"),
        ("EHLO bad<host>", "501 5.5.2 Error: invalid hostname"),
        ("MAIL", "501 5.5.4 Syntax: MAIL FROM:<address>"),
        ("MAIL FROM:", "501 5.5.4 Syntax: MAIL FROM:<address>"),
        ("MAIL TO:<a@example.org>", "501 5.5.4 Syntax: MAIL FROM:<address>"),
        ("MAIL FROM:<a@example.org", "501 5.5.4 Syntax: MAIL FROM:<address>"),
        ("MAIL FROM:<a@@example.org>", "501 5.1.7 Bad sender address syntax"),
        ("MAIL FROM:<a..b@example.org>", "501 5.1.7 Bad sender address syntax"),
        ("MAIL FROM:<a@example.org> SIZE=abc", "501 5.5.4 Bad parameter syntax"),
        ("MAIL FROM:<a@example.org> SIZE=1 SIZE=2", "501 5.5.4 Duplicate parameter"),
        ("MAIL FROM:<a@example.org> RET=SOME", "501 5.5.4 Bad parameter syntax"),
        ("MAIL FROM:<a@example.org> FOO=bar", "555 5.5.4 Unsupported option"),
        ("MAIL FROM:<a@example.org> BODY=BINARYMIME", "555 5.5.4 Unsupported option"),
        ("MAIL FROM:<jösé@example.org>", "553 5.6.7 Non-ASCII sender address requires SMTPUTF8"),
        ("RSET now", "501 5.5.4 Syntax: RSET"),
        ("VRFY", "501 5.5.4 Syntax: VRFY address"),
    ]
    for cmd, want in cases:
        t.eq(c.cmd(cmd), want, "syntax: %r -> %s" % (cmd, want[:9]))
    t.eq(c.cmd("MAIL FROM:<a@example.org>"), "250 2.1.0 Ok", "syntax: MAIL ok after errors")
    c.close()
    c = session(r)     # a fresh error count
    c.cmd("MAIL FROM:<a@example.org>")
    rcases = [
        ("RCPT", "501 5.5.4 Syntax: RCPT TO:<address>"),
        ("RCPT FROM:<b@example.net>", "501 5.5.4 Syntax: RCPT TO:<address>"),
        ("RCPT TO:<>", "501 5.1.3 Bad recipient address syntax"),
        ("RCPT TO:<not an address>", "501 5.1.3 Bad recipient address syntax"),
        ("RCPT TO:<b@example.net> NOTIFY=NEVER,SUCCESS", "501 5.5.4 Bad parameter syntax"),
        ("RCPT TO:<b@example.net> NOTIFY=SOMETIMES", "501 5.5.4 Bad parameter syntax"),
        ("RCPT TO:<b@example.net> ORCPT=nosemicolon", "501 5.5.4 Bad parameter syntax"),
        ("RCPT TO:<b@example.net> SIZE=1", "555 5.5.4 Unsupported option"),
        ("RCPT TO:<用户@example.net>", "553 5.6.7 Non-ASCII recipient address requires SMTPUTF8"),
    ]
    for cmd, want in rcases:
        t.eq(c.cmd(cmd), want, "syntax: %r -> %s" % (cmd, want[:9]))
    t.eq(c.cmd("DATA now"), "501 5.5.4 Syntax: DATA", "syntax: DATA with an argument 501")
    t.eq(c.cmd("DATA"), "503 5.5.1 Error: need RCPT command",
         "syntax: no recipient was accepted by the bad RCPTs")
    c.close()

    # ---- unknown commands, VRFY, HELP, EXPN, RSET ----------------------------
    c = session(r)
    t.eq(c.cmd("FOO bar"), "502 5.5.2 Error: command not recognized", "unknown command: 502")
    t.eq(c.cmd("MAILFROM:<a@example.org>"), "502 5.5.2 Error: command not recognized",
         "MAILFROM (no space) is unknown: 502")
    t.eq(c.cmd("EXPN staff"), "502 5.5.1 Error: EXPN not supported", "EXPN: 502")
    t.eq(c.cmd("VRFY bob@example.net"),
         "252 2.0.0 Cannot VRFY user, but will accept message and attempt delivery", "VRFY: 252")
    rep = c.cmd("HELP")
    t.ok(rep.startswith("214 ") and "MAIL" in rep and "DATA" in rep, "HELP: 214", rep)
    t.eq(c.cmd("noop"), "250 2.0.0 Ok", "commands are case-insensitive")
    t.eq(c.cmd("MAIL FROM:<a@example.org>"), "250 2.1.0 Ok", "RSET test: MAIL")
    t.eq(c.cmd("RCPT TO:<b@example.net>"), "250 2.1.5 Ok", "RSET test: RCPT")
    t.eq(c.cmd("RSET"), "250 2.0.0 Ok", "RSET: 250")
    t.eq(c.cmd("DATA"), "503 5.5.1 Error: need MAIL command", "RSET cleared the transaction: DATA 503")
    t.eq(c.cmd("RCPT TO:<b@example.net>"), "503 5.5.1 Error: need MAIL command",
         "RSET cleared the transaction: RCPT 503")
    t.eq(c.cmd("MAIL FROM:<c@example.org>"), "250 2.1.0 Ok", "after RSET MAIL is not nested")
    t.eq(c.cmd("RCPT TO:<d@example.net>"), "250 2.1.5 Ok", "after RSET: RCPT")
    c.cmd("DATA")
    c.send(MSG + b".\r\n")
    qid = queued_id(c.reply())
    t.ok(qid is not None, "after RSET: a new message is queued")
    if qid:
        env = r.envelope(qid) or ""
        t.ok("sender=c@example.org\n" in env and "rcpt=d@example.net " in env and
             "b@example.net" not in env, "the RSET transaction left nothing behind", env)
    t.eq(c.cmd("QUIT"), "221 2.0.0 Bye", "QUIT: 221")
    t.ok(c.closed(), "QUIT closes the connection")
    c.close()

    # ---- line length ---------------------------------------------------------
    c = session(r)
    line512 = "NOOP " + "x" * (512 - 2 - 5)
    t.eq(c.cmd(line512), "250 2.0.0 Ok", "a 512-octet command line (with CRLF) is accepted")
    t.eq(c.cmd(line512 + "x"), "500 5.5.2 Error: line too long", "a 513-octet line: 500 5.5.2")
    t.eq(c.cmd("NOOP"), "250 2.0.0 Ok", "session usable after the long line")
    t.eq(c.cmd("MAIL FROM:<" + "a" * 600 + "@example.org>"), "501 5.1.7 Bad sender address syntax",
         "a 620-octet MAIL (MAIL may be 2048): its 612-octet path is a bad address")
    t.eq(c.cmd("MAIL FROM:<" + "a" * 2040 + "@example.org>"), "500 5.5.2 Error: line too long",
         "a 2064-octet MAIL: 500")
    t.eq(c.cmd("RCPT TO:<b@example.net>"), "503 5.5.1 Error: need MAIL command",
         "the long MAIL did not start a transaction")
    # A line far beyond any buffer, pipelined with a NOOP behind it: the
    # refusal must not swallow the next command.
    c.send("NOOP " + "y" * 20000 + "\r\nNOOP\r\n")
    got = []
    deadline = time.time() + 10
    c.sock.settimeout(5)
    try:
        while time.time() < deadline and len(got) < 6:
            rep = c.reply()
            if not rep:
                break
            got.append(rep)
            if not rep.startswith("500 "):
                break
    except OSError:
        pass
    t.ok(1 <= len(got) - 1 <= 3 and all(g == "500 5.5.2 Error: line too long" for g in got[:-1])
         and got[-1:] == ["250 2.0.0 Ok"],
         "a 20000-octet line: 500, then the pipelined NOOP still gets its 250", got)
    c.sock.settimeout(5)
    t.eq(safe_cmd(c, "NOOP"), "250 2.0.0 Ok", "session usable after the 20000-octet line")
    c.close()
    # A line just over the 12288-octet AUTH line buffer, nothing pipelined.
    c = session(r, timeout=5)
    c.send("NOOP " + "z" * 12290 + "\r\n")
    t.eq(replies(c, 1), ["500 5.5.2 Error: line too long"], "a 12297-octet line: 500")
    t.eq(safe_cmd(c, "NOOP"), "250 2.0.0 Ok", "the next command after a 12297-octet line is answered")
    c.close()

    # ---- bare LF, bare CR, NUL in commands -----------------------------------
    c = session(r)
    c.send("NOOP\n")
    t.eq(c.reply(), "500 5.5.2 Error: bare <LF> received", "bare LF ending a command: 500 5.5.2")
    c.send("MAIL FROM:<a@example.org>\nRCPT TO:<b@example.net>\r\n")
    t.eq(replies(c, 2), ["500 5.5.2 Error: bare <LF> received",
                         "503 5.5.1 Error: need MAIL command"],
         "MAIL ended by a bare LF is refused; the next line is its own command")
    c.send("NOOP\rQUIT\r\n")
    t.eq(c.reply(), "500 5.5.2 Error: bare <CR> received", "bare CR inside a command: 500 5.5.2")
    c.send("NO\x00OP\r\n")
    t.eq(c.reply(), "500 5.5.2 Error: NUL character in command", "NUL in a command: 500 5.5.2")
    c.send("\r\n")
    t.eq(c.reply(), "502 5.5.2 Error: command not recognized", "empty line: 502")
    t.eq(c.cmd("NOOP"), "250 2.0.0 Ok", "session usable after bare CR/LF/NUL (QUIT not run)")
    c.close()

    # ---- error limit ---------------------------------------------------------
    c = session(r)
    c.send("FOO\r\n" * 25 + "NOOP\r\n")
    got = replies(c, 30)
    t.eq(got, ["502 5.5.2 Error: command not recognized"] * 20 +
         ["421 4.7.0 Error: too many errors"],
         "error limit: 20 errors, then 421 4.7.0 and nothing more")
    t.ok(c.closed(), "error limit: the connection is closed")
    c.close()
    t.ok(r.wait_log("too many errors from unknown[127.0.0.1]"), "error limit: logged")

    # ---- SMTP smuggling in DATA ----------------------------------------------
    seqs = [b"\n.\n", b"\n.\r\n", b"\r.\r", b"\r\n.\r", b"\r.\r\n", b"\r\n.\n"]
    for seq in seqs:
        before = r.queue_ids()
        c = session(r)
        c.cmd("MAIL FROM:<real@example.org>")
        c.cmd("RCPT TO:<real@example.net>")
        t.ok(c.cmd("DATA").startswith("354 "), "smuggling %r: DATA 354" % seq)
        c.send(b"Subject: real\r\nMessage-ID: <r@x>\r\n\r\nfirst part" + seq +
               b"MAIL FROM:<x@evil.example>\r\nRCPT TO:<y@example.net>\r\nDATA\r\n"
               b"Subject: smuggled\r\n\r\nevil\r\n.\r\nNOOP\r\n")
        got = []
        c.sock.settimeout(3)
        try:
            for _ in range(8):     # until the NOOP's reply, or a silent server
                rep = c.reply()
                if not rep:
                    break
                got.append(rep)
                if rep == "250 2.0.0 Ok":
                    break
        except OSError:
            pass
        t.eq(got, ["550 5.6.0 Error: bare <CR> or <LF> in message content", "250 2.0.0 Ok"],
             "smuggling %r: one 550 5.6.0 for the whole data, then the NOOP" % seq)
        t.ok(not any(g.startswith("250 2.1.0") for g in got),
             "smuggling %r: the smuggled MAIL got no 250" % seq)
        t.eq(r.queue_ids(), before, "smuggling %r: nothing queued" % seq)
        c.sock.settimeout(10)
        t.eq(c.cmd("MAIL FROM:<again@example.org>"), "250 2.1.0 Ok",
             "smuggling %r: session back in command state" % seq)
        c.close()
    t.ok("x@evil.example" not in r.log(), "smuggling: the smuggled sender never reached the log")
    # Bare LF alone in an ordinary line of the body.
    rep = send_message(r, b"Subject: lf\r\n\r\nline with bare LF\nnext\r\n")
    t.eq(rep, "550 5.6.0 Error: bare <CR> or <LF> in message content",
         "bare LF in a body line: 550 5.6.0")

    # ---- message size --------------------------------------------------------
    c = session(r)
    t.ok("250-SIZE 10240" in c.ehlo, "EHLO advertises SIZE 10240", c.ehlo)
    t.eq(c.cmd("MAIL FROM:<a@example.org> SIZE=10241"),
         "552 5.3.4 Message size exceeds fixed limit", "MAIL SIZE= above the limit: 552 5.3.4")
    t.eq(c.cmd("MAIL FROM:<a@example.org> SIZE=99999999999999999999"),
         "552 5.3.4 Message size exceeds fixed limit",
         "MAIL SIZE= with 20 digits (RFC 1870 allows them), beyond 2^64: 552")
    t.eq(c.cmd("MAIL FROM:<a@example.org> SIZE=18446744073709551616"),
         "552 5.3.4 Message size exceeds fixed limit", "MAIL SIZE=2^64 does not wrap to 0: 552")
    t.eq(c.cmd("MAIL FROM:<a@example.org> SIZE=999999999999999999999"),
         "501 5.5.4 Bad parameter syntax", "MAIL SIZE= with 21 digits: 501")
    t.eq(c.cmd("MAIL FROM:<a@example.org> SIZE=10240"), "250 2.1.0 Ok",
         "MAIL SIZE= at the limit: 250")
    c.cmd("RCPT TO:<b@example.net>")
    before = r.queue_ids()
    c.cmd("DATA")
    big = MSG + (b"x" * 998 + b"\r\n") * 20
    c.send(big + b".\r\n")
    t.eq(c.reply(), "552 5.3.4 Message size exceeds fixed limit",
         "a 20K body over the 10K limit: 552 5.3.4 after the data")
    t.eq(r.queue_ids(), before, "the oversize message is not stored")
    t.eq(c.cmd("NOOP"), "250 2.0.0 Ok", "session usable after the oversize message")
    # The same by BDAT.
    c.cmd("MAIL FROM:<a@example.org>")
    c.cmd("RCPT TO:<b@example.net>")
    half = big[:len(big) // 2]
    rest = big[len(big) // 2:]
    c.send(b"BDAT %d\r\n" % len(half) + half + b"BDAT %d LAST\r\n" % len(rest) + rest +
           b"NOOP\r\n")
    got = replies(c, 3)
    t.ok(len(got) == 3 and got[-1] == "250 2.0.0 Ok" and
         "552 5.3.4 Message size exceeds fixed limit" in got[:2] and
         not any(QUEUED_RE.match(g) for g in got),
         "an oversize BDAT message: 552, its bytes consumed, session goes on", got)
    t.eq(r.queue_ids(), before, "the oversize BDAT message is not stored")
    c.close()
    # A chunk far beyond the limit is not read and thrown away for ever:
    # 552 and the connection closes at once.
    c = session(r)
    c.cmd("MAIL FROM:<a@example.org>")
    c.cmd("RCPT TO:<b@example.net>")
    c.send(b"BDAT 99999999999 LAST\r\n")
    t.eq(c.reply(), "552 5.3.4 Message size exceeds fixed limit",
         "BDAT of 100 GB against a 10K limit: 552")
    t.ok(c.closed(5), "... and the session closes instead of reading it")
    c.close()
    c = session(r)
    c.cmd("MAIL FROM:<a@example.org>")
    c.cmd("RCPT TO:<b@example.net>")
    c.send(b"BDAT 999999999999999999999999 LAST\r\n")
    t.ok(c.reply().startswith("501 5.5.4"), "BDAT size overflowing 64 bits: 501")
    t.ok(c.closed(5), "... and the session closes")
    c.close()
    # Exactly the limit (headers present, nothing added) is fine.
    exact = MSG + b"z" * (10240 - len(MSG) - 2) + b"\r\n"
    rep = send_message(r, exact)
    t.ok(queued_id(rep) is not None, "a message of exactly 10240 octets is queued", rep)
    # Just below the limit is fine.
    rep = send_message(r, MSG + b"y" * 5000 + b"\r\n")
    t.ok(queued_id(rep) is not None, "a 5K message under the 10K limit is queued", rep)

    # ---- recipient limit -----------------------------------------------------
    c = session(r)
    c.cmd("MAIL FROM:<a@example.org>")
    got = [c.cmd("RCPT TO:<r%d@example.net>" % i) for i in range(1, 6)]
    t.eq(got, ["250 2.1.5 Ok"] * 3 + ["452 4.5.3 Error: too many recipients"] * 2,
         "recipient_limit = 3: the 4th and 5th RCPT get 452 4.5.3")
    c.cmd("DATA")
    c.send(MSG + b".\r\n")
    qid = queued_id(c.reply())
    t.ok(qid is not None, "the message with the first 3 recipients is queued")
    env = r.envelope(qid) if qid else ""
    t.eq(re.findall(r"(?m)^rcpt=(\S+) ", env or ""),
         ["r1@example.net", "r2@example.net", "r3@example.net"], "exactly 3 recipients stored")
    c.close()

    # ---- relay policy --------------------------------------------------------
    c = session(r, source="127.0.0.2")
    t.eq(c.cmd("MAIL FROM:<a@example.org>"), "250 2.1.0 Ok", "untrusted 127.0.0.2: MAIL 250")
    t.eq(c.cmd("RCPT TO:<b@example.net>"), "554 5.7.1 Relay access denied",
         "untrusted 127.0.0.2: RCPT 554 5.7.1 Relay access denied")
    t.eq(c.cmd("DATA"), "503 5.5.1 Error: need RCPT command",
         "untrusted 127.0.0.2: DATA 503 (no recipient)")
    c.close()
    t.ok(r.wait_log("NOQUEUE: reject: RCPT from unknown[127.0.0.2]: 554 5.7.1 <b@example.net>: "
                    "Relay access denied; from=<a@example.org> to=<b@example.net> "
                    "helo=<client.example>"),
         "relay denial logged Postfix-style", r.log()[-1500:])
    rep = send_message(r, MSG)
    t.ok(queued_id(rep) is not None, "trusted 127.0.0.1 may relay", rep)
    c = session(r, port=r.port_sub)
    rep = c.ehlo
    t.ok("AUTH" not in rep, "submission without TLS offers no AUTH", rep)
    t.eq(c.cmd("MAIL FROM:<a@example.org>"), "530 5.7.0 Authentication required",
         "submission port without AUTH: MAIL 530 5.7.0 (even from a trusted address)")
    t.eq(c.cmd("RCPT TO:<b@example.net>"), "503 5.5.1 Error: need MAIL command",
         "submission port without AUTH: no transaction")
    c.close()
    c = session(r, port=r.port_sub, source="127.0.0.2")
    t.eq(c.cmd("MAIL FROM:<a@example.org>"), "530 5.7.0 Authentication required",
         "submission port without AUTH from 127.0.0.2: MAIL 530 5.7.0")
    c.close()

    # ---- hop limit -----------------------------------------------------------
    def hops(n):
        return b"".join(b"Received: from h%d.example by h%d.example; "
                        b"Mon, 2 Mar 2026 10:00:00 +0000\r\n" % (i, i + 1) for i in range(n))
    before = r.queue_ids()
    rep = send_message(r, hops(51) + MSG)
    t.eq(rep, "554 5.4.6 Error: too many hops", "51 Received: fields: 554 5.4.6")
    t.eq(r.queue_ids(), before, "the looping message is not stored")
    rep = send_message(r, b"Received: from a\r\n (folded) by b; now\r\n" * 51 + MSG)
    t.eq(rep, "554 5.4.6 Error: too many hops", "51 folded Received: fields: 554 5.4.6")
    rep = send_message(r, hops(30) + MSG)
    t.ok(queued_id(rep) is not None, "30 Received: fields are accepted", rep)
    rep = send_message(r, MSG + hops(60))
    t.ok(queued_id(rep) is not None, "Received: lines in the body do not count", rep)

    # ---- connection limit ----------------------------------------------------
    held = []
    try:
        for i in range(3):
            held.append(Client(r.port_smtp, source="127.0.0.2"))
        greets = [h.reply() for h in held]
        t.ok(all(g.startswith("220 ") for g in greets),
             "client_connection_limit = 3: three sessions from 127.0.0.2 get 220", greets)
        c4 = Client(r.port_smtp, source="127.0.0.2")
        t.eq(c4.reply(), "421 4.7.0 Error: too many connections from your address",
             "the 4th concurrent session from 127.0.0.2: 421 4.7.0")
        t.ok(c4.closed(), "the 4th session is closed")
        c4.close()
        t.ok(r.wait_log("Connection concurrency limit exceeded: 4 from unknown[127.0.0.2]"),
             "the limit is logged")
        trusted = [Client(r.port_smtp) for _ in range(5)]
        tg = [x.reply() for x in trusted]
        t.ok(all(g.startswith("220 ") for g in tg),
             "trusted 127.0.0.1 is exempt: five concurrent sessions get 220", tg)
        for x in trusted:
            x.close()
        t.eq(held[0].cmd("NOOP"), "250 2.0.0 Ok", "the held sessions are still served")
        held[0].cmd("QUIT")
        held[0].closed()
        held[0].close()
        held.pop(0)
        # Its slot is released once the server has seen it close.
        got = ""
        deadline = time.time() + 5
        while time.time() < deadline:
            x = Client(r.port_smtp, source="127.0.0.2")
            got = x.reply()
            x.close()
            if got.startswith("220 "):
                break
            time.sleep(0.1)
        t.ok(got.startswith("220 "), "after one closes, a new session from 127.0.0.2 gets 220",
             got)
    finally:
        for h in held:
            h.close()

    # ---- idle timeout (smtpd_timeout = 2s) -----------------------------------
    idle = session(rt)
    busy = session(rt)
    idle_data = session(rt)
    idle_data.cmd("MAIL FROM:<a@example.org>")
    idle_data.cmd("RCPT TO:<b@example.net>")
    idle_data.cmd("DATA")
    idle_data.send(b"Subject: stalled\r\n\r\npartial line")
    t0 = time.time()
    # The busy client keeps talking, one command every 0.4 s for 4 s.
    result = {}

    def watch(name, cl):
        cl.sock.settimeout(8)
        try:
            result[name] = (cl.reply(), time.time() - t0, cl.closed(3))
        except OSError as e:
            result[name] = (repr(e), time.time() - t0, True)

    ths = [threading.Thread(target=watch, args=(n, cl)) for n, cl in
           (("idle", idle), ("idle_data", idle_data))]
    for th in ths:
        th.start()
    lat = []
    busy_ok = True
    while time.time() - t0 < 4:
        t1 = time.time()
        if busy.cmd("NOOP") != "250 2.0.0 Ok":
            busy_ok = False
        lat.append(time.time() - t1)
        time.sleep(0.4)
    for th in ths:
        th.join(15)
    rep, when, closed = result.get("idle", ("", 0, False))
    t.eq(rep, "421 4.4.2 relayd.test Error: timeout exceeded", "idle session: 421 4.4.2")
    t.ok(1.5 <= when <= 5, "idle session: timed out after about 2 s", when)
    t.ok(closed, "idle session: closed after the 421")
    rep, when, closed = result.get("idle_data", ("", 0, False))
    t.eq(rep, "421 4.4.2 relayd.test Error: timeout exceeded", "session idle in DATA: 421 4.4.2")
    t.ok(closed and 1.5 <= when <= 5, "session idle in DATA: closed after about 2 s", when)
    t.ok(busy_ok and len(lat) >= 5 and max(lat) < 1.0,
         "an active session is served meanwhile (every NOOP 250 in under 1 s)", lat)
    t.eq(busy.cmd("NOOP"), "250 2.0.0 Ok", "the active session outlived the idle timeout")
    t.eq(rt.queue_ids(), [], "the stalled DATA stored nothing")
    t.ok(rt.wait_log("timeout after command from unknown[127.0.0.1]") and
         rt.wait_log("timeout after DATA from unknown[127.0.0.1]"), "timeouts logged")
    for cl in (idle, busy, idle_data):
        cl.close()

    # ---- BDAT errors, EHLO resets -------------------------------------------
    before = r.queue_ids()
    c = session(r)
    c.cmd("MAIL FROM:<a@example.org>")
    c.cmd("RCPT TO:<b@example.net>")
    chunk = b"Subject: a\nb\r"
    c.send(b"BDAT %d\r\n" % len(chunk) + chunk)
    t.eq(c.reply(), "550 5.6.0 Error: bare <CR> or <LF> in message content",
         "BDAT chunk with a bare LF: 550 5.6.0 at the chunk's end")
    c.send(b"BDAT 5 LAST\r\nQUIT\r")
    t.eq(c.reply(), "503 5.5.1 Error: need MAIL command",
         "the next BDAT of the refused transaction: 503, its bytes consumed")
    t.eq(c.cmd("NOOP"), "250 2.0.0 Ok", "session goes on after the refused BDAT")
    t.eq(r.queue_ids(), before, "the refused BDAT message is not stored")
    c.cmd("MAIL FROM:<a@example.org>")
    c.cmd("RCPT TO:<b@example.net>")
    c.send(b"BDAT 4\r\nSubj")
    t.ok(c.reply().startswith("250 2.0.0 Ok"), "BDAT first chunk 250")
    t.eq(c.cmd("DATA"), "503 5.5.1 Error: BDAT in progress, DATA not allowed",
         "DATA after BDAT in the same transaction: 503")
    chunk = b"ect: x\r\n\r\n"
    c.send(b"BDAT %d LAST\r\n" % len(chunk) + chunk)
    t.ok(queued_id(c.reply()) is not None, "the BDAT transaction still completes")
    c.cmd("MAIL FROM:<a@example.org>")
    c.cmd("RCPT TO:<b@example.net>")
    t.ok(c.cmd("EHLO again.example").startswith("250-relayd.test"), "EHLO again: 250")
    t.eq(c.cmd("DATA"), "503 5.5.1 Error: need MAIL command", "EHLO reset the transaction")
    c.close()

    # ---- BDAT without a size ends the session --------------------------------
    c = session(r)
    t.eq(c.cmd("BDAT abc"), "501 5.5.4 Syntax: BDAT count [LAST]", "BDAT without a count: 501")
    t.ok(c.closed(), "BDAT without a count closes the session (content boundary lost)")
    c.close()

    # ---- a client that pipelines without reading replies ---------------------
    # Each 8-octet EHLO earns a ~200-octet reply: relayd must stop answering
    # at its output bound instead of buffering them all, and go on once
    # the client reads.
    def rss_kib(pid):
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0
    c = session(r)
    rss0 = rss_kib(r.proc.pid)
    n_ehlo = 20000
    c.send(b"EHLO flood.example\r\n" * n_ehlo)
    time.sleep(1.0)
    grown = rss_kib(r.proc.pid) - rss0
    if relaydtest.SANITIZED:
        t.skip("20000 unread EHLO replies: relayd stays within its output bound",
               "RSS under ASan counts its quarantine")
    else:
        t.ok(grown < 2048, "20000 unread EHLO replies: relayd grew %d KiB (< 2 MiB)" % grown)
    c.sock.settimeout(20)
    got, tail = 0, b""
    deadline = time.time() + 20
    while got < n_ehlo and time.time() < deadline:
        chunk = c.sock.recv(1 << 16)
        if not chunk:
            break
        buf = tail + chunk
        got += buf.count(b"250 CHUNKING\r\n")
        # Keep a partial last line for the next round.
        tail = buf[buf.rfind(b"\r\n") + 2:]
    t.eq(got, n_ehlo, "once read, every one of the 20000 EHLOs is answered")
    c.close()

    # ---- still alive ---------------------------------------------------------
    rep = send_message(r, MSG)
    t.ok(queued_id(rep) is not None, "after all that the server still queues mail", rep)
    rep = send_message(rt, MSG)
    t.ok(queued_id(rep) is not None, "the timeout server still queues mail", rep)
except Exception:
    t.ok(False, "no unexpected exception", traceback.format_exc())
finally:
    for name, x in (("main", r), ("timeout", rt)):
        rc = x.stop()
        t.eq(rc, 0, "%s relayd exits 0 on SIGTERM" % name)
        t.ok(x.sanitizer_clean(), "%s relayd: no sanitizer report" % name, x.log()[-3000:])
        x.cleanup()
t.done()
