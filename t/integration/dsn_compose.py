#!/usr/bin/python3
"""dsn_compose - every report the composer makes (t/helpers/dsn_make),
parsed back with Python's email package and checked field by field and
against the RFC 3464 grammar (dsncheck); hostile replies, addresses,
ORCPT and ENVID cannot break out; a golden file pins the exact bytes.
"""
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from relaydtest import TAP, TOP_BUILD, TOP_SRC  # noqa: E402
from dsncheck import check_report  # noqa: E402

DSN_MAKE = os.path.join(TOP_BUILD, "t", "helpers", "dsn_make")
GOLDEN = os.path.join(TOP_SRC, "t", "integration", "dsn_golden")

t = TAP()
tmp = tempfile.mkdtemp(prefix="dsn_compose.")


def orig_file(name, data):
    p = os.path.join(tmp, name)
    with open(p, "wb") as f:
        f.write(data)
    return p


def make(args, rcpts):
    argv = [DSN_MAKE] + args
    for r in rcpts:
        argv += list(r)
    p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
    return p.returncode, p.stdout, p.stderr.decode()


def checked(name, args, rcpts, eightbit_ok=False, utf8=False):
    rc, out, err = make(args, rcpts)
    t.ok(rc == 0, "%s: composed" % name, err)
    problems, parsed = check_report(out, eightbit_ok=eightbit_ok, utf8=utf8)
    t.ok(not problems, "%s: valid report" % name, "\n".join(problems))
    return out, parsed, err


ORIG = (b"From: Alice <alice@example.org>\r\nTo: bob@example.com\r\n"
        b"Subject: quarterly figures\r\nMessage-ID: <1@example.org>\r\n\r\n"
        b"Hello Bob,\r\n--=_0ABCDEFGH456/1790003600/0\r\nthe figures.\r\n")
orig = orig_file("orig.eml", ORIG)
BOB = ("bob@example.com", "rfc822;bob+2Bx@example.com", "failed", "5.1.1",
       "mx.example.com", "smtp",
       "550 5.1.1 <bob@example.com>: Recipient address rejected: User unknown")
CAROL = ("carol@example.com", "-", "failed", "4.4.7", "-", "-",
         "message expired: connection timed out")

# 1. Failure, default RET: headers only, every field as given.
out, p, _ = checked("failure", ["-o", orig, "-e", "env+2B42", "alice@example.org"], [BOB, CAROL])
h = p.get("headers", {})
t.eq(h.get("from"), "Mail Delivery System <MAILER-DAEMON@relay.example.net>", "From")
t.eq(h.get("to"), "<alice@example.org>", "To: the envelope sender")
t.eq(h.get("subject"), "Undelivered Mail Returned to Sender", "Subject")
pm = p.get("per_message", {})
t.eq(pm.get("reporting-mta"), "dns; relay.example.net", "Reporting-MTA")
t.eq(pm.get("original-envelope-id"), "env+42", "Original-Envelope-Id decoded from xtext")
rs = p.get("recipients", [])
t.eq(len(rs), 2, "two recipient groups")
r0 = rs[0] if rs else {}
t.eq(r0.get("original-recipient"), "rfc822;bob+x@example.com", "Original-Recipient from ORCPT")
t.eq(r0.get("final-recipient"), "rfc822; bob@example.com", "Final-Recipient")
t.eq(r0.get("action"), "failed", "Action")
t.eq(r0.get("status"), "5.1.1", "Status")
t.eq(r0.get("remote-mta"), "dns; mx.example.com", "Remote-MTA")
t.eq(r0.get("diagnostic-code"), "smtp; " + BOB[6], "Diagnostic-Code unfolded = the reply")
t.ok("last-attempt-date" in r0, "Last-Attempt-Date")
t.ok("will-retry-until" not in r0, "no Will-Retry-Until for a failure")
r1 = rs[1] if len(rs) > 1 else {}
t.ok("remote-mta" not in r1 and "original-recipient" not in r1,
     "no Remote-MTA / Original-Recipient when unknown")
t.eq(r1.get("status"), "4.4.7", "expired: 4.4.7 kept")
t.eq(p.get("orig_type"), "text/rfc822-headers", "headers by default")
t.ok(p.get("orig", b"").startswith(b"From: Alice") and b"Hello" not in p.get("orig", b""),
     "headers only, no body")
t.ok("bob@example.com" in p.get("text", "") and "User unknown" in p.get("text", ""),
     "the explanation names the recipient and the server's words")

# Golden: the exact bytes of the failure report.
with open(os.path.join(GOLDEN, "failure.eml"), "rb") as f:
    t.ok(out == f.read(), "failure report matches dsn_golden/failure.eml")

# 2. RET=FULL: the whole original; the boundary avoids the one inside it.
out, p, err = checked("ret-full", ["-F", "-o", orig, "alice@example.org"], [BOB])
t.eq(p.get("orig_type"), "message/rfc822", "RET=FULL: message/rfc822")
t.eq(p.get("orig"), ORIG, "RET=FULL: the original byte for byte")
t.ok("full=1" in err, "reported as full")

# 3. RET=FULL over the size limit: headers only.
out, p, err = checked("ret-full-big", ["-F", "-l", "65540", "-o", orig, "alice@example.org"],
                      [BOB])
t.eq(p.get("orig_type"), "text/rfc822-headers", "too large: headers only")

# 4. Hostile reply: CR/LF, ESC, a fake boundary and header, 8-bit bytes.
evil = ("550 5.7.1 spam\r\nX-Injected: yes\r\n\r\n--=_0ABCDEFGH456/1790003600/0\r\n"
        "\x1b[2J " + "A" * 1200)
out, p, _ = checked("hostile", ["-o", orig, "alice@example.org"],
                    [("bob@example.com", "rfc822;+0D+0AX-Bad:+20x", "failed", "5.7.1;x",
                      "mx.example.com\r\nX: y", "smtp", evil)])
t.ok(b"\r\nX-Injected" not in out and b"\r\nX-Bad" not in out and b"\r\nX: y" not in out,
     "nothing injected as a field")
t.ok(b"\x1b" not in out, "no raw ESC")
r0 = (p.get("recipients") or [{}])[0]
t.eq(r0.get("status"), "5.0.0", "malformed status replaced")
t.ok("remote-mta" not in r0, "a host name with CR/LF is left out")
t.eq(r0.get("original-recipient"), "rfc822;+0D+0AX-Bad:+20x",
     "an ORCPT decoding to controls is kept in xtext")

# 5. 8-bit original without SMTPUTF8: report parts stay 7-bit, the returned
#    original is declared 8bit and the report flagged 8-bit.
orig8 = orig_file("orig8.eml", b"From: J\xc3\xb6rg <j@example.org>\r\nSubject: \xe9t\xe9\r\n\r\n"
                  b"caf\xe9\r\n")
out, p, err = checked("8bit", ["-F", "-o", orig8, "j@example.org"], [BOB], eightbit_ok=True)
t.ok("eightbit=1" in err, "8-bit content flagged (queued 8BITMIME)")
t.ok(b"Content-Transfer-Encoding: 8bit" in out, "8bit declared")

# 6. SMTPUTF8 original: global types, UTF-8 address kept.
out, p, err = checked("smtputf8", ["-u", "-o", orig8, "j\u00f6rg@b\u00fccher.example"],
                      [("\u7528\u6237@\u4f8b\u5b50.example", "-", "failed", "5.1.1",
                        "mx.example.com", "smtp", "550 5.1.1 unbekannt \u00fc")],
                      eightbit_ok=True, utf8=True)
r0 = (p.get("recipients") or [{}])[0]
t.eq(r0.get("final-recipient"), "utf-8; \u7528\u6237@\u4f8b\u5b50.example",
     "RFC 6533 utf-8 Final-Recipient")
t.eq(p.get("orig_type"), "message/global-headers", "message/global-headers")

# 7. Non-ASCII address in a 7-bit report: utf-8-addr-xtext.
out, p, _ = checked("utf8-addr-7bit", ["-o", orig, "alice@example.org"],
                    [("b\u00f8b@example.com", "-", "failed", "5.1.1", "-", "-", "x")])
r0 = (p.get("recipients") or [{}])[0]
t.eq(r0.get("final-recipient"), "utf-8; b\\x{F8}b@example.com", "escaped as \\x{F8}")

# 8. Delay warning and success notice.
out, p, _ = checked("delay", ["-k", "delay", "-o", orig, "alice@example.org"],
                    [("bob@example.com", "-", "delayed", "4.4.1", "mx.example.com", "smtp",
                      "421 4.4.1 try later")])
t.eq(p.get("headers", {}).get("subject"), "Delayed Mail (still being retried)", "delay subject")
r0 = (p.get("recipients") or [{}])[0]
t.eq(r0.get("action"), "delayed", "Action: delayed")
t.ok("will-retry-until" in r0, "Will-Retry-Until")
out, p, _ = checked("success", ["-k", "success", "-F", "-o", orig, "alice@example.org"],
                    [("bob@example.com", "-", "relayed", "2.0.0", "mx.example.com", "smtp",
                      "250 2.0.0 Ok")])
t.eq(p.get("headers", {}).get("subject"), "Successful Mail Delivery Report", "success subject")
t.eq((p.get("recipients") or [{}])[0].get("action"), "relayed", "Action: relayed")
t.eq(p.get("orig_type"), "text/rfc822-headers", "a success notice returns headers only")

# 9. Many recipients, no original (read failure path not here): still valid.
many = [("u%d@example.com" % i, "-", "failed", "5.1.1", "mx.example.com", "smtp",
         "550 5.1.1 no") for i in range(200)]
out, p, _ = checked("200 recipients", ["alice@example.org"], many)
t.eq(len(p.get("recipients", [])), 200, "200 recipient groups")

# Golden: a delay warning and an RFC 6533 report, byte for byte.
origu = orig_file("origu.eml", b"From: J\xc3\xb6rg <j\xc3\xb6rg@b\xc3\xbccher.example>\r\n"
                  b"Subject: gr\xc3\xbc\xc3\x9fe\r\n\r\nhi\r\n")
for name, args, rc, kw in (
        ("delay.eml", ["-k", "delay", "-o", orig, "alice@example.org"],
         ("bob@example.com", "-", "delayed", "4.4.1", "mx.example.com", "smtp",
          "421 4.4.1 mx.example.com: connection timed out, try again later"), {}),
        ("smtputf8.eml", ["-u", "-o", origu, "j\u00f6rg@b\u00fccher.example"],
         ("\u7528\u6237@\u4f8b\u5b50.example", "-", "failed", "5.1.1", "mx.example.com",
          "smtp", "550 5.1.1 unbekannter Empf\u00e4nger"), {"eightbit_ok": True, "utf8": True})):
    out, p, _ = checked("golden " + name, args, [rc], **kw)
    with open(os.path.join(GOLDEN, name), "rb") as f:
        t.ok(out == f.read(), "matches dsn_golden/" + name)

# 10. The checker itself rejects broken reports (so the checks above can fail).
with open(os.path.join(GOLDEN, "failure.eml"), "rb") as f:
    good = f.read()
broken = {
    "bare LF": good.replace(b"Action: failed\r\n", b"Action: failed\n", 1),
    "no blank line between groups": good.replace(
        b"+0000\r\n\r\nOriginal-Recipient", b"+0000\r\nOriginal-Recipient", 1),
    "two blank lines": good.replace(b"\r\n\r\nFinal-Recipient: rfc822; carol",
                                    b"\r\n\r\n\r\nFinal-Recipient: rfc822; carol", 1),
    "no Status": good.replace(b"Status: 5.1.1\r\n", b"", 1),
    "bad Action": good.replace(b"Action: failed", b"Action: gone", 1),
    "boundary in the text": good.replace(b"Your message", b"--=_0ABCDEFGH456/1790003600/0", 1),
    "8-bit": good.replace(b"Your message", b"Y\xc3\xb6ur message", 1),
    "no Reporting-MTA": good.replace(b"Reporting-MTA: dns; relay.example.net\r\n", b"", 1),
}
for name, raw in broken.items():
    t.ok(raw != good and check_report(raw)[0], "the checker rejects: " + name)

t.done()
