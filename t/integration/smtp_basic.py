#!/usr/bin/python3
"""smtp_basic - relayd's SMTP server accepts and stores mail correctly.

Real clients (smtplib, swaks, raw sockets) send single- and multi-recipient
mail, pipelined commands, 8BITMIME and SMTPUTF8 mail, dot-stuffed lines,
DSN parameters and BDAT chunks; the stored queue entry (body and envelope,
read with t/helpers/queue_dump) and the Postfix-format log lines are
checked.
"""
import email.utils
import os
import re
import smtplib
import subprocess
import sys
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from relaydtest import TAP, Relayd, Client, queued_id  # noqa: E402

ID_RE = re.compile(r"^[0-9A-Z]{12}$")

t = TAP()



def smtplib_id(code_resp):
    """Queue id from smtplib's (code, resp) of DATA."""
    code, resp = code_resp
    return queued_id("%d %s" % (code, resp.decode("utf-8", "replace")))


def split_received(body):
    """(first Received: field incl. its folded lines, the rest)."""
    if body is None or not body.startswith(b"Received: "):
        return None, body
    pos = 0
    while True:
        eol = body.find(b"\r\n", pos)
        if eol < 0:
            return None, body
        pos = eol + 2
        if body[pos:pos + 1] not in (b" ", b"\t"):
            return body[:pos], body[pos:]


def parse_env(text):
    """queue_dump -e output as (dict of fields, list of rcpt dicts)."""
    env, rcpts = {}, []
    for line in (text or "").splitlines():
        if line.startswith("rcpt="):
            d = {}
            # "rcpt=ADDR state=N notify=N orcpt=..." (orcpt may hold '=').
            m = re.match(r"rcpt=(.*) state=(\d+) notify=(\d+) orcpt=(.*)$", line)
            if m:
                d = {"rcpt": m.group(1), "state": int(m.group(2)),
                     "notify": int(m.group(3)), "orcpt": m.group(4)}
            rcpts.append(d)
        elif "=" in line:
            k, v = line.split("=", 1)
            env[k] = v
    return env, rcpts


def check_exact(r, qid, sent, name, rcpt=None):
    """The stored body is our Received: plus exactly `sent`."""
    body = r.body(qid)
    rec, rest = split_received(body)
    t.ok(rec is not None, name + ": stored body starts with a Received: field",
         repr(body[:300]) if body else body)
    if rec is None:
        return
    rec_s = rec.decode("utf-8", "replace")
    t.ok(("id %s" % qid) in rec_s and "[127.0.0.1]" in rec_s,
         name + ": Received: names the queue id and the client IP", rec_s)
    if rcpt is not None:
        t.ok(("for <%s>" % rcpt) in rec_s, name + ": Received: has 'for <rcpt>'", rec_s)
    t.eq(rest, sent, name + ": stored body after Received: is byte-exact")


def headers_of(body):
    """The header section (bytes before the first empty line)."""
    i = body.find(b"\r\n\r\n")
    return body[:i + 2] if i >= 0 else body


def ehlo(c, name="client.example"):
    rep = c.cmd("EHLO " + name)
    return rep


r = Relayd(tls=False)
try:
    r.start()
    PID = r.proc.pid

    # ---- 1. smtplib, single recipient, Message-ID/Date present -------------
    msg1 = (b"From: Alice <alice@example.org>\r\n"
            b"To: Bob <bob@example.net>\r\n"
            b"Subject: single\r\n"
            b"Message-ID: <single.1@example.org>\r\n"
            b"Date: Mon, 02 Mar 2026 10:00:00 +0000\r\n"
            b"\r\n"
            b"Hello Bob.\r\n"
            b"Second line.\r\n")
    s = smtplib.SMTP("127.0.0.1", r.port_smtp, local_hostname="client.example", timeout=10)
    code, feat = s.ehlo()
    t.eq(code, 250, "smtplib: EHLO 250")
    for ext in ("pipelining", "size", "8bitmime", "smtputf8", "chunking", "dsn",
                "enhancedstatuscodes"):
        t.ok(s.has_extn(ext), "EHLO offers %s" % ext.upper(), feat)
    t.eq(s.mail("alice@example.org"), (250, b"2.1.0 Ok"), "smtplib: MAIL 250 2.1.0 Ok")
    t.eq(s.rcpt("bob@example.net"), (250, b"2.1.5 Ok"), "smtplib: RCPT 250 2.1.5 Ok")
    res = s.data(msg1)
    id1 = smtplib_id(res)
    t.ok(id1 is not None, "smtplib: DATA reply is '250 2.0.0 Ok: queued as <12 x [0-9A-Z]>'", res)
    s.quit()
    t.ok(id1 in r.queue_ids(), "single: queue id is in the queue")
    env, rc = parse_env(r.envelope(id1))
    t.eq(env.get("sender"), "alice@example.org", "single: envelope sender")
    t.eq([x.get("rcpt") for x in rc], ["bob@example.net"], "single: envelope recipients")
    t.eq(env.get("flags"), "128", "single: SCANNED only (7-bit, no SMTPUTF8/8BITMIME)")
    t.eq(env.get("client"), "unknown[127.0.0.1]", "single: envelope client")
    t.eq(env.get("helo"), "client.example", "single: envelope helo")
    check_exact(r, id1, msg1, "single", rcpt="bob@example.net")
    body1 = r.body(id1)
    t.eq(env.get("size"), str(len(body1)) if body1 else None,
         "single: envelope size equals the stored body length")

    # Log lines of that session.
    t.ok(r.wait_log("relayd/smtpd[%d]: disconnect from unknown[127.0.0.1] ehlo=1 mail=1 "
                    "rcpt=1 data=1 quit=1 commands=5" % PID),
         "log: disconnect line with command counts", r.log()[-2000:])
    log = r.log()
    t.ok("relayd/smtpd[%d]: connect from unknown[127.0.0.1]" % PID in log,
         "log: connect from unknown[127.0.0.1]")
    t.ok("relayd/smtpd[%d]: %s: client=unknown[127.0.0.1]\n" % (PID, id1) in log,
         "log: ID: client=unknown[127.0.0.1]")
    m = re.search(r"relayd/qmgr\[%d\]: %s: from=<alice@example\.org>, size=(\d+), "
                  r"nrcpt=1 \(queue active\)" % (PID, id1), log)
    t.ok(m is not None, "log: qmgr ID: from=<sender>, size=N, nrcpt=1 (queue active)",
         log[-2000:])
    # Postfix logs the queue file's message size, which includes the
    # Received: header it prepended; relayq shows the stored size too.
    t.eq(int(m.group(1)) if m else None, len(body1) if body1 else None,
         "log: qmgr size= equals the stored message size")

    # ---- 2. smtplib sendmail, several recipients --------------------------
    rcpts = ["r1@example.net", "r2@example.com", "r3@sub.example.org"]
    msg2 = (b"Subject: multi\r\nMessage-ID: <multi@example.org>\r\n"
            b"Date: Mon, 02 Mar 2026 10:00:00 +0000\r\n\r\nto three\r\n")
    s = smtplib.SMTP("127.0.0.1", r.port_smtp, local_hostname="client.example", timeout=10)
    s.ehlo()
    s.mail("multi@example.org")
    for a in rcpts:
        s.rcpt(a)
    id2 = smtplib_id(s.data(msg2))
    s.quit()
    t.ok(id2 is not None and id2 in r.queue_ids(), "multi: queued and in the queue")
    env, rc = parse_env(r.envelope(id2))
    t.eq([x.get("rcpt") for x in rc], rcpts, "multi: all recipients stored, in order")
    check_exact(r, id2, msg2, "multi")
    rec, _ = split_received(r.body(id2))
    t.ok(rec is not None and b"for <" not in rec,
         "multi: Received: has no 'for <...>' with several recipients", rec)
    t.ok(r.wait_log("relayd/qmgr[%d]: %s: from=<multi@example.org>, size=" % (PID, id2)) and
         re.search(r"%s: from=<multi@example\.org>, size=\d+, nrcpt=3 \(queue active\)" % id2,
                   r.log()) is not None, "multi: log nrcpt=3")

    # ---- 3. pipelining by hand --------------------------------------------
    c = Client(r.port_smtp)
    t.ok(c.reply().startswith("220 relayd.test"), "raw: greeting 220 relayd.test")
    c.send("EHLO pipe.example\r\nMAIL FROM:<pipe@example.org>\r\n"
           "RCPT TO:<p1@example.net>\r\nRCPT TO:<p2@example.net>\r\nDATA\r\n")
    replies = [c.reply() for _ in range(5)]
    t.ok(replies[0].startswith("250-relayd.test") and "250-PIPELINING" in replies[0]
         and replies[0].split("\n")[-1].startswith("250 "),
         "pipelined: EHLO reply first, multi-line", replies)
    t.eq(replies[1:], ["250 2.1.0 Ok", "250 2.1.5 Ok", "250 2.1.5 Ok",
                       "354 End data with <CR><LF>.<CR><LF>"],
         "pipelined: MAIL, RCPT, RCPT, DATA replies in order")
    msg3 = b"Subject: pipelined\r\nMessage-ID: <p@x>\r\nDate: Mon, 2 Mar 2026 10:00:00 +0000\r\n\r\nbody\r\n"
    msg3b = b"Subject: pipelined 2\r\nMessage-ID: <p2@x>\r\nDate: Mon, 2 Mar 2026 10:00:00 +0000\r\n\r\nbody 2\r\n"
    # The content, its end, and a whole second transaction in one write.
    c.send(msg3 + b".\r\nMAIL FROM:<pipe2@example.org>\r\nRCPT TO:<p3@example.net>\r\n"
           b"DATA\r\n" + msg3b + b".\r\nNOOP\r\nQUIT\r\n")
    replies = [c.reply() for _ in range(7)]
    id3, id3b = queued_id(replies[0]), queued_id(replies[4])
    t.ok(id3 is not None, "pipelined: first message queued", replies)
    t.eq(replies[1:4], ["250 2.1.0 Ok", "250 2.1.5 Ok", "354 End data with <CR><LF>.<CR><LF>"],
         "pipelined: second transaction's MAIL, RCPT, DATA replies in order after the 250")
    t.ok(id3b is not None and id3b != id3, "pipelined: second message queued with a new id",
         replies)
    t.eq(replies[5:], ["250 2.0.0 Ok", "221 2.0.0 Bye"], "pipelined: NOOP, QUIT replies")
    t.ok(c.closed(), "pipelined: connection closed after QUIT")
    c.close()
    ids = r.queue_ids()
    t.ok(id3 in ids and id3b in ids, "pipelined: both ids are in the queue")
    if id3:
        env, rc = parse_env(r.envelope(id3))
        t.eq([x.get("rcpt") for x in rc], ["p1@example.net", "p2@example.net"],
             "pipelined: recipients of the first message")
        check_exact(r, id3, msg3, "pipelined 1")
    if id3b:
        check_exact(r, id3b, msg3b, "pipelined 2", rcpt="p3@example.net")

    # ---- 4. 8-bit body, BODY=8BITMIME --------------------------------------
    msg4 = ("Subject: =?utf-8?q?gr=C3=BC=C3=9Fe?=\r\nMessage-ID: <8bit@example.org>\r\n"
            "Date: Mon, 02 Mar 2026 10:00:00 +0000\r\nMIME-Version: 1.0\r\n"
            "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n"
            "\r\nGrüße aus Köln – ½ € ✓\r\n\xa0 latin-1 is not UTF-8: ").encode("utf-8") \
        + b"\xe9\xff\x80\r\n"
    s = smtplib.SMTP("127.0.0.1", r.port_smtp, local_hostname="client.example", timeout=10)
    s.ehlo()
    code, resp = s.mail("eight@example.org", ["BODY=8BITMIME"])
    t.eq(code, 250, "8bit: MAIL with BODY=8BITMIME accepted")
    s.rcpt("bob@example.net")
    id4 = smtplib_id(s.data(msg4))
    s.quit()
    t.ok(id4 is not None and id4 in r.queue_ids(), "8bit: queued and in the queue")
    env, _ = parse_env(r.envelope(id4))
    t.eq(env.get("flags"), "194", "8bit: envelope flags = 8BITMIME|8BITDATA|SCANNED")
    check_exact(r, id4, msg4, "8bit")

    # ---- 5. SMTPUTF8 -------------------------------------------------------
    u_from, u_to = "jösé@exämple.org", "用户@例子.广告"
    msg5 = ("Subject: utf8\r\nFrom: jösé@exämple.org\r\nTo: 用户@例子.广告\r\n"
            "Message-ID: <utf8@example.org>\r\nDate: Mon, 02 Mar 2026 10:00:00 +0000\r\n"
            "\r\nÜnïcödé body\r\n").encode("utf-8")
    s = smtplib.SMTP("127.0.0.1", r.port_smtp, local_hostname="client.example", timeout=10)
    s.ehlo()
    t.eq(s.mail(u_from, ["SMTPUTF8", "BODY=8BITMIME", "RET=FULL"])[0], 250,
         "utf8: MAIL FROM non-ASCII with SMTPUTF8 accepted")
    t.eq(s.rcpt(u_to)[0], 250, "utf8: RCPT TO non-ASCII accepted")
    id5 = smtplib_id(s.data(msg5))
    s.quit()
    t.ok(id5 is not None and id5 in r.queue_ids(), "utf8: queued and in the queue")
    env, rc = parse_env(r.envelope(id5))
    t.eq(env.get("sender"), u_from, "utf8: envelope sender (UTF-8)")
    t.eq([x.get("rcpt") for x in rc], [u_to], "utf8: envelope recipient (UTF-8)")
    t.eq(env.get("flags"), "195", "utf8: envelope flags = SMTPUTF8|8BITMIME|8BITDATA|SCANNED")
    t.eq(env.get("ret"), "2", "utf8: RET=FULL stored")
    check_exact(r, id5, msg5, "utf8", rcpt=u_to)
    rec, _ = split_received(r.body(id5))
    t.ok(rec is not None and b"with UTF8SMTP id" in rec, "utf8: Received: says 'with UTF8SMTP'",
         rec)

    # ---- 6. DSN parameters -------------------------------------------------
    c = Client(r.port_smtp)
    c.reply()
    ehlo(c)
    t.eq(c.cmd("MAIL FROM:<dsn@example.org> RET=HDRS ENVID=env-id.42"), "250 2.1.0 Ok",
         "dsn: MAIL with RET=HDRS ENVID accepted")
    t.eq(c.cmd("RCPT TO:<d1@example.net> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;d1@example.net"),
         "250 2.1.5 Ok", "dsn: RCPT with NOTIFY=SUCCESS,FAILURE ORCPT accepted")
    t.eq(c.cmd("RCPT TO:<d2@example.net> NOTIFY=NEVER"), "250 2.1.5 Ok",
         "dsn: RCPT NOTIFY=NEVER accepted")
    t.eq(c.cmd("RCPT TO:<d3@example.net> NOTIFY=DELAY"), "250 2.1.5 Ok",
         "dsn: RCPT NOTIFY=DELAY accepted")
    t.eq(c.cmd("RCPT TO:<d4@example.net>"), "250 2.1.5 Ok", "dsn: RCPT without NOTIFY accepted")
    t.ok(c.cmd("DATA").startswith("354"), "dsn: DATA 354")
    id6 = queued_id(c.cmd("Subject: dsn\r\n\r\nx\r\n."))
    t.ok(id6 is not None, "dsn: queued")
    c.cmd("QUIT")
    c.close()
    env, rc = parse_env(r.envelope(id6))
    t.eq(env.get("ret"), "1", "dsn: RET=HDRS stored")
    t.eq(env.get("envid"), "env-id.42", "dsn: ENVID stored")
    t.eq([(x.get("rcpt"), x.get("notify"), x.get("orcpt")) for x in rc],
         [("d1@example.net", 6, "rfc822;d1@example.net"), ("d2@example.net", 1, ""),
          ("d3@example.net", 8, ""), ("d4@example.net", 0, "")],
         "dsn: NOTIFY and ORCPT stored per recipient")

    # ---- 7. dot-stuffing ---------------------------------------------------
    # What the client means, and the stuffed form it sends.
    msg7 = (b"Subject: dots\r\nMessage-ID: <dots@example.org>\r\n"
            b"Date: Mon, 02 Mar 2026 10:00:00 +0000\r\n\r\n"
            b".\r\n..\r\n.leading dot\r\n..two dots\r\n...\r\nmid.dle\r\n. \r\n.\t.\r\nend\r\n")
    stuffed = b"".join((b"." if ln.startswith(b".") else b"") + ln + b"\r\n"
                       for ln in msg7.split(b"\r\n")[:-1])
    c = Client(r.port_smtp)
    c.reply()
    ehlo(c)
    c.cmd("MAIL FROM:<dots@example.org>")
    c.cmd("RCPT TO:<dots@example.net>")
    c.cmd("DATA")
    c.send(stuffed + b".\r\n")
    id7 = queued_id(c.reply())
    t.ok(id7 is not None, "dots: raw dot-stuffed message queued")
    t.eq(c.cmd("QUIT"), "221 2.0.0 Bye", "dots: session continues after the message")
    c.close()
    if id7:
        check_exact(r, id7, msg7, "dots (raw)")
    # The same through smtplib, which stuffs by itself.
    s = smtplib.SMTP("127.0.0.1", r.port_smtp, local_hostname="client.example", timeout=10)
    s.ehlo()
    s.mail("dots@example.org")
    s.rcpt("dots@example.net")
    id7b = smtplib_id(s.data(msg7))
    s.quit()
    t.ok(id7b is not None, "dots: smtplib message queued")
    if id7b:
        check_exact(r, id7b, msg7, "dots (smtplib)")

    # ---- 8. missing Message-ID / Date are added ---------------------------
    def send_raw_msg(content, sender="add@example.org"):
        c = Client(r.port_smtp)
        c.reply()
        ehlo(c)
        c.cmd("MAIL FROM:<%s>" % sender)
        c.cmd("RCPT TO:<add@example.net>")
        c.cmd("DATA")
        c.send(content + b".\r\n")
        qid = queued_id(c.reply())
        c.cmd("QUIT")
        c.close()
        return qid

    msg8 = b"From: a@example.org\r\nSubject: no id, no date\r\n\r\nbody line\r\n"
    id8 = send_raw_msg(msg8)
    t.ok(id8 is not None, "add: message without Message-ID/Date queued")
    body8 = r.body(id8) if id8 else b""
    _, rest8 = split_received(body8)
    rest8 = rest8 or b""
    hdr8 = headers_of(rest8).decode("utf-8", "replace")
    mid = re.findall(r"(?im)^Message-ID: <([^>]+)>\r$", hdr8)
    t.ok(len(mid) == 1 and mid[0].endswith("@relayd.test"),
         "add: one Message-ID: <...@relayd.test> added in the header section", hdr8)
    dates = re.findall(r"(?im)^Date: (.+)\r$", hdr8)
    ok_date = False
    if len(dates) == 1:
        try:
            dt = email.utils.parsedate_to_datetime(dates[0].split(" (")[0])
            ok_date = abs(dt.timestamp() - time.time()) < 120
        except (TypeError, ValueError):
            ok_date = False
    t.ok(ok_date, "add: one RFC 5322 Date: of now added in the header section", hdr8)
    t.ok(rest8.startswith(b"From: a@example.org\r\nSubject: no id, no date\r\n") and
         rest8.endswith(b"\r\n\r\nbody line\r\n"),
         "add: the client's header fields and body are kept", rest8)
    t.ok(len(rest8.split(b"\r\n\r\n")) == 2, "add: still one header/body separator", rest8)

    # Only Date missing: Message-ID not duplicated; lower-case names count.
    msg8b = b"message-id: <lower@example.org>\r\nSubject: only date missing\r\n\r\nb\r\n"
    id8b = send_raw_msg(msg8b)
    _, rest = split_received(r.body(id8b) if id8b else b"")
    hdr = headers_of(rest or b"").decode("utf-8", "replace")
    t.ok(len(re.findall(r"(?im)^message-id:", hdr)) == 1 and
         len(re.findall(r"(?im)^date:", hdr)) == 1,
         "add: lower-case message-id: is seen; only Date: is added", hdr)
    msg8c = b"dAtE: Mon, 02 Mar 2026 10:00:00 +0000\r\nMESSAGE-ID: <u@x>\r\n\r\nb\r\n"
    id8c = send_raw_msg(msg8c)
    if id8c:
        check_exact(r, id8c, msg8c, "add: both present in odd case, nothing added")

    # No header section at all: the fields and the separator are supplied.
    msg8d = b"just a body line\r\nand another\r\n"
    id8d = send_raw_msg(msg8d)
    _, rest = split_received(r.body(id8d) if id8d else b"")
    rest = rest or b""
    t.ok(re.match(rb"^Message-ID: <[^>]+@relayd\.test>\r\nDate: [^\r\n]+\r\n\r\n"
                  rb"just a body line\r\nand another\r\n$", rest) is not None,
         "add: headerless message gets Message-ID, Date and an empty line before the body",
         rest)

    # Null reverse-path (bounces).
    c = Client(r.port_smtp)
    c.reply()
    ehlo(c)
    t.eq(c.cmd("MAIL FROM:<>"), "250 2.1.0 Ok", "null sender: MAIL FROM:<> accepted")
    c.cmd("RCPT TO:<null@example.net>")
    c.cmd("DATA")
    c.send(msg1 + b".\r\n")
    idn = queued_id(c.reply())
    c.cmd("QUIT")
    c.close()
    t.ok(idn is not None, "null sender: queued")
    if idn:
        env, _ = parse_env(r.envelope(idn))
        t.eq(env.get("sender"), "", "null sender: envelope sender is empty")
        t.ok(r.wait_log("%s: from=<>, size=" % idn), "null sender: logged as from=<>")

    # ---- 8b. the header section is kept as it is -----------------------------
    date_mid = b"Message-ID: <h@example.org>\r\nDate: Mon, 02 Mar 2026 10:00:00 +0000\r\n"
    hcases = [
        ("folded fields", date_mid + b"X-Folded: a\r\n b\r\n\tc\r\n\r\nbody\r\n"),
        ("header section only, no body", b"Subject: only headers\r\n" + date_mid),
        ("a body line with a colon, no empty line",
         b"Subject: s\r\n" + date_mid + b"\r\nnot: a header\r\n"),
        # RFC 5322 field names may be long (only the 998-octet line limit).
        ("a 150-character field name",
         b"X-" + b"L" * 148 + b": value\r\nSubject: after the long one\r\n" + date_mid +
         b"\r\nbody\r\n"),
        # RFC 5322 4.5 (obs-optional) allows WSP before the colon; 3.1: "when
        # interpreting messages, these tokens MUST be honored".
        ("obsolete 'Subject : x' (WSP before the colon)",
         b"Subject : spaced\r\n" + date_mid + b"\r\nbody\r\n"),
    ]
    for name, content in hcases:
        qid = send_raw_msg(content)
        t.ok(qid is not None, "headers, %s: queued" % name)
        if qid:
            check_exact(r, qid, content, "headers, " + name)

    # ---- 9. swaks ----------------------------------------------------------
    def swaks(*args):
        p = subprocess.run(["/usr/bin/swaks", "--server", "127.0.0.1", "--port",
                            str(r.port_smtp), "--helo", "swaks.example",
                            "--timeout", "10"] + list(args),
                           capture_output=True, timeout=30)
        return p.returncode, p.stdout.decode("utf-8", "replace") + p.stderr.decode(
            "utf-8", "replace")

    rc_, out = swaks("--from", "sw@example.org", "--to", "sw1@example.net",
                     "--header", "Subject: swaks single")
    m = re.search(r"<-\s+250 2\.0\.0 Ok: queued as ([0-9A-Z]{12})\s*$", out, re.M)
    t.ok(rc_ == 0 and m is not None, "swaks: single recipient queued", out[-1500:])
    if m:
        env, rc = parse_env(r.envelope(m.group(1)))
        t.eq((env.get("sender"), [x.get("rcpt") for x in rc]),
             ("sw@example.org", ["sw1@example.net"]), "swaks: envelope of the single message")
    rc_, out = swaks("--pipeline", "--from", "sw@example.org", "--to",
                     "sw1@example.net,sw2@example.net,sw3@example.net",
                     "--header", "Subject: swaks multi")
    m = re.search(r"<-\s+250 2\.0\.0 Ok: queued as ([0-9A-Z]{12})\s*$", out, re.M)
    t.ok(rc_ == 0 and m is not None and "PIPELINING" in out,
         "swaks --pipeline: three recipients queued", out[-1500:])
    if m:
        env, rc = parse_env(r.envelope(m.group(1)))
        t.eq([x.get("rcpt") for x in rc], ["sw1@example.net", "sw2@example.net",
                                           "sw3@example.net"],
             "swaks --pipeline: the three recipients are stored")
        t.ok(m.group(1) in r.queue_ids(), "swaks --pipeline: id is in the queue")

    # ---- 10. BDAT / CHUNKING ----------------------------------------------
    chunks = [b"Subject: chunked\r\nMessage-ID: <chunk@example.org>\r\n"
              b"Date: Mon, 02 Mar 2026 10:00:00 +0000\r\n\r\nline one\r",
              b"\n.line with a leading dot, not unstuffed\r\n..two\r\n.\r\n",
              b"last chunk, DATA terminator inside: \r\n.\r\nQUIT\r\nend\r\n"]
    c = Client(r.port_smtp)
    c.reply()
    ehlo(c)
    c.cmd("MAIL FROM:<chunk@example.org>")
    c.cmd("RCPT TO:<chunk@example.net>")
    got = []
    for i, ch in enumerate(chunks):
        last = " LAST" if i == len(chunks) - 1 else ""
        c.send(b"BDAT %d%s\r\n" % (len(ch), last.encode()) + ch)
        got.append(c.reply())
    t.ok(all(re.match(r"^250 2\.0\.0 Ok: \d+ octets received$", g) for g in got[:2]),
         "bdat: the two non-LAST chunks get '250 2.0.0 Ok: N octets received'", got)
    id10 = queued_id(got[2])
    t.ok(id10 is not None, "bdat: BDAT n LAST gets 250 queued as ID", got)
    t.eq(c.cmd("NOOP"), "250 2.0.0 Ok", "bdat: session continues")
    if id10:
        check_exact(r, id10, b"".join(chunks), "bdat 3 chunks (raw, no unstuffing)",
                    rcpt="chunk@example.net")
    # BDAT n, BDAT n, BDAT 0 LAST.
    chunks2 = [b"Subject: zero last\r\nMessage-ID: <z@x>\r\nDate: Mon, 2 Mar 2026 10:00:00 +0000\r\n",
               b"\r\nbody\r\n"]
    c.cmd("MAIL FROM:<chunk@example.org>")
    c.cmd("RCPT TO:<chunk@example.net>")
    c.send(b"BDAT %d\r\n%sBDAT %d\r\n%sBDAT 0 LAST\r\n" % (len(chunks2[0]), chunks2[0],
                                                          len(chunks2[1]), chunks2[1]))
    got = [c.reply() for _ in range(3)]
    id10b = queued_id(got[2])
    t.ok(got[0].startswith("250 ") and got[1].startswith("250 ") and id10b is not None,
         "bdat: BDAT n, BDAT n, BDAT 0 LAST (pipelined) queued", got)
    if id10b:
        check_exact(r, id10b, b"".join(chunks2), "bdat 0 LAST")
    # BDAT without MAIL: the bytes are consumed, 503, the session goes on.
    junk = b"MAIL FROM:<evil@example.org>\r\nRCPT TO:<x@example.net>\r\n"
    c.send(b"BDAT %d\r\n" % len(junk) + junk + b"NOOP\r\n")
    got = [c.reply(), c.reply()]
    t.eq(got, ["503 5.5.1 Error: need MAIL command", "250 2.0.0 Ok"],
         "bdat without MAIL: 503, its bytes are not read as commands, session continues")
    c.send(b"MAIL FROM:<after@example.org>\r\nRCPT TO:<after@example.net>\r\n"
           b"BDAT 10 LAST\r\nSubject: a")
    got = [c.reply() for _ in range(3)]
    id10c = queued_id(got[2])
    t.ok(got[:2] == ["250 2.1.0 Ok", "250 2.1.5 Ok"] and id10c is not None,
         "bdat: a transaction after the refused BDAT works", got)
    t.eq(c.cmd("QUIT"), "221 2.0.0 Bye", "bdat: QUIT")
    c.close()
    t.ok(r.wait_log("disconnect from unknown[127.0.0.1] ehlo=1 mail=3 rcpt=3 bdat=7/8 "
                    "noop=2 quit=1 commands=17/18"),
         "bdat: disconnect line counts bdat=7/8", r.log()[-1500:])

    # ---- all the ids are distinct and well-formed --------------------------
    ids = r.queue_ids()
    t.ok(all(ID_RE.match(x) for x in ids) and len(set(ids)) == len(ids),
         "queue ids are unique, 12 chars of [0-9A-Z]", ids)
    t.eq(ids, sorted(ids), "queue ids increase with arrival time")
except Exception:
    t.ok(False, "no unexpected exception", traceback.format_exc())
finally:
    rc = r.stop()
    t.eq(rc, 0, "relayd exits 0 on SIGTERM")
    t.ok(r.sanitizer_clean(), "no sanitizer report in the log", r.log()[-3000:])
    r.cleanup()
t.done()
