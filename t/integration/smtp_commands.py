#!/usr/bin/python3
"""smtp_commands - command lines and what client text reaches the logs.

MAIL and RCPT may be as long as their DSN parameters make them (2,048
octets), every other command stays at 512; a longer line is refused with
500 and the session stays in step.  RCPT after BDAT content has begun is
out of order.  HELO/EHLO arguments are printable ASCII; hostile bytes from
the client (ESC sequences, bidi controls, C1 controls) reach neither the
log nor the Received: header raw, while legitimate UTF-8 stays readable.
"""
import base64
import os
import re
import smtplib
import sys
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from relaydtest import (TAP, Relayd, NO_DELIVERY, queued_id, session,  # noqa: E402
                        replies)
from tls_common import b64, plain, session as tls_session  # noqa: E402

t = TAP()

MSG = (b"Subject: test\r\nMessage-ID: <t@example.org>\r\n"
       b"Date: Mon, 02 Mar 2026 10:00:00 +0000\r\n\r\nbody\r\n")


def xtext(s):
    """RFC 3461 §4 xtext of an ASCII string."""
    return "".join(c if 33 <= ord(c) <= 126 and c not in "+=" else "+%02X" % ord(c)
                   for c in s)


# A long but valid address: a 64-octet local part of '+' and '=' (which
# xtext triples), a domain of four long labels; 250 octets in all.
LOCAL = "+=" * 32
DOMAIN = ".".join(["d" * 45, "e" * 45, "f" * 45, "g" * 45]) + ".example"
LONG_ADDR = LOCAL + "@" + DOMAIN[:250 - len(LOCAL) - 1]

r = Relayd(tls=False, conf=NO_DELIVERY + "trusted_networks = 127.0.0.1/32\n")
ra = Relayd(conf=NO_DELIVERY)
try:
    r.start()

    # ---- MAIL and RCPT carry their parameters beyond 512 octets --------------
    orcpt = "rfc822;" + xtext(LONG_ADDR)
    rcpt_line = "RCPT TO:<%s> NOTIFY=SUCCESS,FAILURE,DELAY ORCPT=%s" % (LONG_ADDR, orcpt)
    t.ok(len(orcpt) <= 500 and 600 < len(rcpt_line) + 2 <= 2048,
         "the DSN RCPT line is %d octets, its ORCPT %d" % (len(rcpt_line) + 2, len(orcpt)))
    s = smtplib.SMTP("127.0.0.1", r.port_smtp, local_hostname="client.example", timeout=10)
    try:
        s.ehlo()
        code, _ = s.mail("sender@example.org", ["RET=HDRS", "ENVID=" + "E" * 100, "SIZE=100"])
        t.eq(code, 250, "smtplib: MAIL with RET, ENVID and SIZE: 250")
        code, resp = s.rcpt(LONG_ADDR, ["NOTIFY=SUCCESS,FAILURE,DELAY", "ORCPT=" + orcpt])
        t.eq((code, resp), (250, b"2.1.5 Ok"),
             "smtplib: RCPT of %d octets with NOTIFY and ORCPT: 250" % (len(rcpt_line) + 2))
        code, resp = s.data(MSG)
        qid = queued_id("%d %s" % (code, resp.decode()))
        t.ok(qid is not None, "the DSN message is queued", resp)
        env = r.envelope(qid) if qid else ""
        # state 0 (pending) or 1 (deferred: the scheduler may have tried it)
        t.ok(re.search(r"rcpt=%s state=[01] notify=" % re.escape(LONG_ADDR), env or "") and
             ("orcpt=%s\n" % orcpt) in (env or ""),
             "the long recipient and its ORCPT are stored whole", env)
        s.quit()
    except smtplib.SMTPException as e:
        t.ok(False, "smtplib: the DSN transaction completes", repr(e))
    finally:
        s.close()

    c = session(r)
    # Exactly 2,048 octets with CRLF: a MAIL with a 500-octet AUTH= (RFC
    # 4954 §5), a 100-octet ENVID and the rest, padded with blanks.
    head = "MAIL FROM:<a@example.org> AUTH=" + "x" * 500 + " ENVID=" + "e" * 100
    mail2048 = head + " " * (2048 - 2 - len(head) - 9) + " RET=HDRS"
    t.eq(c.cmd(mail2048), "250 2.1.0 Ok", "a 2048-octet MAIL line is accepted")
    head = "RCPT TO:<b@example.net> ORCPT=rfc822;" + "y" * 490 + " NOTIFY=NEVER"
    t.eq(c.cmd(head + " " * (2048 - 2 - len(head))), "250 2.1.5 Ok",
         "a 2048-octet RCPT line is accepted")
    t.eq(c.cmd("RSET"), "250 2.0.0 Ok", "RSET")
    t.eq(c.cmd(mail2048 + "x"), "500 5.5.2 Error: line too long",
         "a 2049-octet MAIL line: 500 5.5.2")
    t.eq(c.cmd("RCPT TO:<b@example.net>"), "503 5.5.1 Error: need MAIL command",
         "the refused MAIL started no transaction")
    t.eq(c.cmd("rcpt TO:<b@example.net> " + "z" * 3000), "500 5.5.2 Error: line too long",
         "a 3030-octet RCPT line: 500 5.5.2")
    # Other commands keep the 512 of RFC 5321.
    t.eq(c.cmd("NOOP " + "n" * (512 - 2 - 5)), "250 2.0.0 Ok", "a 512-octet NOOP: 250")
    t.eq(c.cmd("NOOP " + "n" * (512 - 2 - 4)), "500 5.5.2 Error: line too long",
         "a 513-octet NOOP: 500")
    t.eq(c.cmd("VRFY " + "v" * 600), "500 5.5.2 Error: line too long", "a 607-octet VRFY: 500")
    t.eq(c.cmd("EHLO " + "h" * 1000), "500 5.5.2 Error: line too long",
         "a 1007-octet EHLO: 500 (only MAIL and RCPT are longer)")
    t.eq(c.cmd("MAILX " + "m" * 600), "500 5.5.2 Error: line too long",
         "MAILX is not MAIL: 500 at 512")
    # Pipelined: an overlong MAIL between two good commands, in one write.
    c.send("NOOP\r\nMAIL FROM:<a@example.org> " + "p" * 2100 + "\r\n"
           "MAIL FROM:<ok@example.org>\r\nRCPT TO:<b@example.net>\r\n")
    t.eq(replies(c, 4), ["250 2.0.0 Ok", "500 5.5.2 Error: line too long", "250 2.1.0 Ok",
                         "250 2.1.5 Ok"],
         "pipelined: the overlong MAIL is refused once, the commands around it are answered")
    c.close()

    # An overlong MAIL sent in pieces, without its line end for a while:
    # refused once it passes 2,048 octets, the rest dropped as it comes.
    c = session(r)
    c.send("MAIL FROM:<a@example.org> " + "q" * 2100)
    c.sock.settimeout(5)
    t.eq(replies(c, 1), ["500 5.5.2 Error: line too long"],
         "a MAIL line past 2048 octets is refused before its end arrives")
    for _ in range(5):
        c.send("q" * 4000)
    c.send("\r\nNOOP\r\n")
    t.eq(replies(c, 1), ["250 2.0.0 Ok"],
         "the rest of that line is dropped without another reply; the NOOP after it is answered")
    c.close()
    # A NOOP line without its end is refused at 512, not left to grow.
    c = session(r)
    c.send("NOOP " + "w" * 600)
    c.sock.settimeout(5)
    t.eq(replies(c, 1), ["500 5.5.2 Error: line too long"],
         "an unfinished 605-octet NOOP is refused at once")
    c.send("\r\nNOOP\r\n")
    t.eq(replies(c, 1), ["250 2.0.0 Ok"], "... and the session goes on")
    c.close()

    # ---- RCPT after BDAT content has begun ----------------------------------
    c = session(r)
    c.cmd("MAIL FROM:<a@example.org>")
    c.cmd("RCPT TO:<first@example.net>")
    chunk = b"Subject: chunked\r\n"
    c.send(b"BDAT %d\r\n" % len(chunk) + chunk)
    t.ok(c.reply().startswith("250 2.0.0 Ok"), "BDAT first chunk: 250")
    t.eq(c.cmd("RCPT TO:<late@example.net>"), "503 5.5.1 Error: BDAT in progress, RCPT not allowed",
         "RCPT after a BDAT chunk: 503 5.5.1")
    chunk = b"\r\nbody\r\n"
    c.send(b"BDAT %d LAST\r\n" % len(chunk) + chunk)
    qid = queued_id(c.reply())
    t.ok(qid is not None, "the BDAT transaction still completes")
    env = r.envelope(qid) if qid else ""
    t.ok("rcpt=first@example.net " in (env or "") and "late@example.net" not in (env or ""),
         "only the recipient given before the content is stored", env)
    body = r.body(qid) if qid else b""
    t.ok(b"for <first@example.net>" in (body or b""),
         "the Received: names the one recipient", body)
    # Pipelined in one write: BDAT, RCPT, the last BDAT.
    c.cmd("MAIL FROM:<a@example.org>")
    c.cmd("RCPT TO:<first@example.net>")
    c.send(b"BDAT 4\r\nS: xRCPT TO:<late@example.net>\r\nBDAT 2 LAST\r\n\r\n")
    got = replies(c, 3)
    t.ok(len(got) == 3 and got[0].startswith("250 2.0.0 Ok") and
         got[1] == "503 5.5.1 Error: BDAT in progress, RCPT not allowed" and
         queued_id(got[2]) is not None,
         "pipelined BDAT, RCPT, BDAT LAST: 250, 503, queued", got)
    c.close()

    # ---- HELO / EHLO arguments are printable ASCII ---------------------------
    c = session(r, ehlo=None)
    bad_helos = [
        (b"EHLO a\x1b[31mred", "ESC sequence"),
        (b"HELO host\tname", "TAB"),
        (b"EHLO del\x7f.example", "DEL"),
        (b"EHLO b\xc3\xbccher.example", "UTF-8 (U-label)"),
        (b"EHLO \xe2\x80\xaeelpmaxe.evil", "RLO U+202E"),
        (b"HELO \xc2\x9b" b"2J.example", "C1 CSI U+009B"),
        (b"EHLO \x9b" b"2J.example", "raw C1 byte"),
    ]
    for line, what in bad_helos:
        c.send(line + b"\r\n")
        t.eq(c.reply(), "501 5.5.2 Error: invalid hostname", "HELO/EHLO with %s: 501 5.5.2" % what)
    t.eq(c.cmd("MAIL FROM:<a@example.org>"), "503 5.5.1 Error: send HELO/EHLO first",
         "no refused HELO/EHLO counts as a greeting")
    t.ok(c.cmd("EHLO [127.0.0.1]").startswith("250-relayd.test"), "EHLO [127.0.0.1]: 250")
    t.ok(c.cmd("EHLO Mail-1.example.org").startswith("250-relayd.test"), "EHLO of a plain name: 250")
    c.close()

    # ---- client text in the log and the Received: header ---------------------
    RLO = "\u202e"
    sender = "j\u00f6rg" + RLO + "txt.exe@example.org"        # jörg<RLO>txt.exe
    c = session(r, source="127.0.0.2")
    t.eq(c.cmd("MAIL FROM:<%s> SMTPUTF8" % sender), "250 2.1.0 Ok",
         "SMTPUTF8 sender with a bidi control: 250")
    t.eq(c.cmd("RCPT TO:<\u2066v\u2069@example.net>"), "554 5.7.1 Relay access denied",
         "untrusted 127.0.0.2, recipient with isolates: 554")
    c.close()
    t.ok(r.wait_log("NOQUEUE: reject: RCPT from unknown[127.0.0.2]: 554 5.7.1 "
                    "<\\u2066v\\u2069@example.net>: Relay access denied; "
                    "from=<j\u00f6rg\\u202Etxt.exe@example.org> to=<\\u2066v\\u2069@example.net> "
                    "helo=<client.example>"),
         "relay refusal logged with the bidi controls escaped, the \u00f6 kept",
         r.log()[-1500:])
    c = session(r)
    t.eq(c.cmd("MAIL FROM:<%s> SMTPUTF8" % sender), "250 2.1.0 Ok", "trusted: the same sender, 250")
    t.eq(c.cmd("RCPT TO:<\u0085nel\u202d@example.net>"), "250 2.1.5 Ok",
         "recipient with a C1 control and LRO: 250")
    t.ok(c.cmd("DATA").startswith("354"), "DATA 354")
    c.send(MSG + b".\r\n")
    qid = queued_id(c.reply())
    t.ok(qid is not None, "the message is queued")
    c.close()
    body = r.body(qid) if qid else b""
    received = (body or b"").split(b"\r\n\r\n")[0].split(b"Subject:")[0]
    t.ok(b"\tfor <\\u0085nel\\u202D@example.net>;" in received,
         "Received: names the recipient with C1 and LRO escaped", received)
    t.ok(not any(b in received for b in (b"\xc2\x85", b"\xe2\x80\xad", b"\x1b")),
         "no raw control in the Received: header", received)
    env = r.envelope(qid) if qid else ""
    t.ok(("rcpt=\u0085nel\u202d@example.net ") in (env or ""),
         "the queue keeps the real address for delivery", env)
    t.ok(r.wait_log("%s: from=<j\u00f6rg\\u202Etxt.exe@example.org>, size=" % qid),
         "qmgr from=<> escaped, UTF-8 readable", r.log()[-1500:])

    # ---- AUTH user names -----------------------------------------------------
    ra.start()
    c, _, _, st, _ = tls_session(ra.port_sub, ehlo="client.example")
    t.ok(st.startswith("220"), "STARTTLS 220")
    evil = "\x1b[31mroot\r\nrelayd/smtpd[1]: forged \u202egol"
    t.eq(c.cmd("AUTH PLAIN " + plain(evil, "wrong")),
         "535 5.7.8 Error: authentication failed: authentication failure",
         "AUTH PLAIN with ESC, CR LF and RLO in the user name: 535")
    t.eq(c.cmd("AUTH LOGIN " + b64("\u009b2J\x7f\u2067")), "334 UGFzc3dvcmQ6",
         "AUTH LOGIN with C1 CSI, DEL and FSI in the user name: 334")
    t.eq(c.cmd(b64("wrong")), "535 5.7.8 Error: authentication failed: authentication failure",
         "... and a wrong password: 535")
    t.eq(c.cmd("AUTH LOGIN " + b64("ali\x00ce")), "501 5.5.2 Error: malformed base64 response",
         "AUTH LOGIN with a NUL in the user name: 501")
    t.ok(c.cmd("AUTH PLAIN " + plain("alice", "secret")).startswith("235"), "alice: 235")
    c.quit()
    t.ok(ra.wait_log("warning: unknown[127.0.0.1]: SASL PLAIN authentication failed: "
                     "authentication failure, sasl_username=\\x1B[31mroot\\x0D\\x0A"
                     "relayd/smtpd[1]: forged \\u202Egol\n"),
         "PLAIN failure logged with the user name escaped, on one line", ra.log()[-1500:])
    t.ok(ra.wait_log("SASL LOGIN authentication failed: authentication failure, "
                     "sasl_username=\\u009B2J\\x7F\\u2067\n"),
         "LOGIN failure logged with the user name escaped", ra.log()[-1500:])
    t.ok("relayd/smtpd[1]: forged" not in ra.log().replace(
        "\\x0D\\x0Arelayd/smtpd[1]: forged", ""), "no forged log line")

    # ---- no raw control byte reached either log ------------------------------
    for name, x in (("plain", r), ("tls", ra)):
        with open(x.log_path, "rb") as f:
            raw = f.read()
        lines = raw.split(b"\n")
        bad = [ln for ln in lines if any(b < 0x20 and b != 0x09 for b in ln) or
               any(seq in ln for seq in (b"\xe2\x80\xae", b"\xe2\x80\xad", b"\xe2\x81\xa6",
                                         b"\xe2\x81\xa7", b"\xe2\x81\xa9", b"\xc2\x85",
                                         b"\xc2\x9b"))]
        t.ok(not bad, "%s relayd log: no raw control, C1 or bidi byte in %d lines" %
             (name, len(lines)), bad[:5])
        t.ok(b"j\xc3\xb6rg" in raw or name == "tls", "%s relayd log: UTF-8 kept readable" % name)

    # ---- still alive ---------------------------------------------------------
    c = session(r)
    t.eq(c.cmd("NOOP"), "250 2.0.0 Ok", "the server still answers")
    c.close()
except Exception:
    t.ok(False, "no unexpected exception", traceback.format_exc())
finally:
    for name, x in (("plain", r), ("tls", ra)):
        rc = x.stop()
        t.eq(rc, 0, "%s relayd exits 0 on SIGTERM" % name)
        t.ok(x.sanitizer_clean(), "%s relayd: no sanitizer report" % name, x.log()[-3000:])
        x.cleanup()
t.done()
