#!/usr/bin/python3
"""relay-sendmail against a live relayd on loopback that queues and does
not deliver: recipients from arguments and from To/Cc/Bcc (-t), Bcc
stripped, -i and the lone dot, -f/-r, -F, -C, the headers it adds, the
content stored byte for byte (LF to CRLF, dot-stuffing, bare CR, 8-bit,
a body large enough to spill to a temporary file), DSN options, a relayd
that takes fewer recipients per message, the sysexits code of every
failure, and a run as an unprivileged user.
"""
import os
import pwd
import re
import shutil
import socket
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from relaydtest import TAP, TOP_BUILD, NO_DELIVERY, Relayd, free_port  # noqa: E402

SENDMAIL = os.path.join(TOP_BUILD, "tools", "relay-sendmail")
EX_OK, EX_USAGE, EX_DATAERR, EX_NOUSER = 0, 64, 65, 67
EX_TEMPFAIL, EX_CONFIG = 75, 78

t = TAP()
sanitizer_reports = []
r = Relayd(conf=NO_DELIVERY + "recipient_limit = 10\n", tls=False)


def run(args, data=b"", conf=None, user=None, binary=SENDMAIL, timeout=30):
    cmd = [binary, "-C", conf or r.conf_path] + args
    if user:
        cmd = ["setpriv", "--reuid=" + user, "--regid=nogroup", "--clear-groups"] + cmd
    p = subprocess.run(cmd, input=data, capture_output=True, timeout=timeout)
    err = p.stderr.decode("utf-8", "replace")
    if any(m in err for m in ("AddressSanitizer", "runtime error:", "LeakSanitizer")):
        sanitizer_reports.append(err)
    return p.returncode, err


class Fake:
    """A scripted SMTP server on loopback for the replies relayd never
    gives: replies maps a verb (GREETING, EHLO, MAIL, RCPT, DATA, END) to
    the reply text, or None to close the connection there.  lines: what
    the client sent."""
    EHLO = "250-fake.test\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n250 SIZE 1000000"

    def __init__(self, **replies):
        self.replies = dict(GREETING="220 fake.test ESMTP", EHLO=self.EHLO, HELO="250 fake.test",
                            MAIL="250 2.1.0 Ok",
                            RCPT="250 2.1.5 Ok", DATA="354 go on",
                            END="250 2.0.0 Ok: queued as 0123456789AB", QUIT="221 bye")
        self.replies.update(replies)
        self.lines = []
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(1)
        self.sock.settimeout(20)
        self.port = self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def say(self, conn, verb):
        text = self.replies.get(verb)
        if text is None:
            return False
        conn.sendall(text.encode() + b"\r\n")
        return True

    def serve(self):
        try:
            conn, _ = self.sock.accept()
        except OSError:
            return
        conn.settimeout(20)
        f = conn.makefile("rb")
        try:
            if not self.say(conn, "GREETING"):
                return
            in_data = False
            for line in f:
                line = line.decode("utf-8", "replace").rstrip("\r\n")
                if in_data:
                    if line == ".":
                        in_data = False
                        if not self.say(conn, "END"):
                            return
                    continue
                self.lines.append(line)
                verb = line.split(" ")[0].split(":")[0].upper()
                if not self.say(conn, verb if verb in self.replies else "QUIT"):
                    return
                in_data = verb == "DATA" and self.replies["DATA"].startswith("354")
                if verb == "QUIT":
                    return
        except OSError:
            pass
        finally:
            conn.close()
            self.sock.close()

    def conf(self):
        path = os.path.join(r.dir, "fake.conf")
        with open(r.conf_path) as f:
            text = f.read()
        with open(path, "w") as f:
            f.write(re.sub(r"(?m)^smtp_listen = .*$", "smtp_listen = 127.0.0.1:%d" % self.port, text))
        return path


def new_ids(before):
    return [q for q in r.queue_ids() if q not in before]


def send(args, data, **kw):
    """Run relay-sendmail; returns (exit code, stderr, [(envelope, body)])
    for the messages it queued."""
    before = set(r.queue_ids())
    rc, err = run(args, data, **kw)
    msgs = [(r.envelope(q), r.body(q)) for q in new_ids(before)]
    return rc, err, msgs


def rcpts(env):
    return re.findall(r"^rcpt=(.*?) state=", env, re.M)


def field(env, name):
    m = re.search(r"^%s=(.*)$" % name, env, re.M)
    return m.group(1) if m else None


def content(body):
    """The stored message without relayd's own Received: field."""
    assert body.startswith(b"Received: ")
    lines = body.split(b"\r\n")
    i = 1
    while lines[i].startswith(b"\t"):
        i += 1
    return b"\r\n".join(lines[i:])


def headers(body):
    """The header section, with LF line ends for matching."""
    return content(body).split(b"\r\n\r\n", 1)[0].replace(b"\r\n", b"\n")


def one(res, name):
    rc, err, msgs = res
    if not t.ok(rc == 0 and len(msgs) == 1, name, "rc=%s stderr=%s msgs=%d" % (rc, err, len(msgs))):
        return None, None
    return msgs[0]


try:
    r.start()
    me = pwd.getpwuid(os.getuid()).pw_name + "@relayd.test"

    # -- recipients as arguments --
    env, body = one(send(["bob@example.org", "Carol <carol@example.net>, dave@example.com"],
                         b"Subject: args\n\nhi\n"), "recipients as arguments queued")
    if env:
        t.eq(rcpts(env), ["bob@example.org", "carol@example.net", "dave@example.com"],
             "argument recipients, address lists included, in the envelope")
        t.eq(field(env, "sender"), me,
             "sender defaults to the invoking user @ hostname")
        t.eq(field(env, "client"), "unknown[127.0.0.1]", "submitted over loopback")
        h = headers(body)
        t.ok(re.search(rb"^From: .*<?" + re.escape(me.encode()) + rb">?$", h, re.M) is not None,
             "From: added", h)
        t.ok(re.search(rb"^Date: \w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d [+-]\d{4}$", h, re.M)
             is not None, "Date: added", h)
        t.ok(re.search(rb"^Message-ID: <[^@>]+@relayd\.test>$", h, re.M) is not None,
             "Message-ID: with the hostname added", h)
        t.eq(h.count(b"Message-ID:") + h.count(b"Date:"), 2,
             "relayd adds no second Date:/Message-ID:")

    # -- -t: To, Cc, Bcc (folded, groups, comments, quoted local parts) --
    msg = (b"From: Sender <s@example.org>\n"
           b"To: \"Doe, John\" <john@example.org>, alice@example.org (Alice)\n"
           b"Cc: Team: x@example.org,\n"
           b"  \"odd local\"@example.org;\n"
           b"Bcc: hidden@example.org,\n"
           b"\tsecret@example.org\n"
           b"Subject: -t\n"
           b"Date: Mon, 1 Jan 2024 00:00:00 +0000\n"
           b"Message-ID: <fixed@example.org>\n"
           b"\n"
           b"Bcc: this is body, not a header\n")
    env, body = one(send(["-t", "extra@example.org"], msg), "-t queued")
    if env:
        t.eq(sorted(rcpts(env)),
             sorted(["extra@example.org", "john@example.org", "alice@example.org",
                     "x@example.org", '"odd local"@example.org', "hidden@example.org",
                     "secret@example.org"]),
             "-t: To, folded Cc with a group, Bcc, and argument recipients")
        c = content(body)
        want = msg.replace(b"Bcc: hidden@example.org,\n\tsecret@example.org\n", b"")
        t.eq(c, want.replace(b"\n", b"\r\n"), "-t: Bcc stripped, nothing else changed or added")
    rc, err, msgs = send(["-t"], b"To: a@example.org\nResent-To: r@example.org\n"
                         b"Resent-Bcc: rb@example.org\n\nx\n")
    t.ok(rc == 0 and len(msgs) == 1 and sorted(rcpts(msgs[0][0])) ==
         ["r@example.org", "rb@example.org"] and b"Resent-Bcc" not in msgs[0][1],
         "-t with Resent-*: the resent recipients only, Resent-Bcc stripped", (rc, err))
    rc, err, msgs = send(["-t"], b"To: a@example.org, a@EXAMPLE.org\nCc: a@example.org\n\nx\n")
    t.ok(rc == 0 and len(msgs) == 1 and rcpts(msgs[0][0]) == ["a@example.org"],
         "repeated recipients sent once", (rc, err))

    # -- the lone dot and -i --
    data = b"Subject: dots\n\nbefore\n.\nafter\n"
    env, body = one(send(["d@example.org"], data), "lone dot: queued")
    if env:
        t.ok(content(body).endswith(b"\r\n\r\nbefore\r\n"), "without -i a lone dot ends the message",
             body)
    for flag in ("-i", "-oi"):
        env, body = one(send([flag, "d@example.org"], data), flag + ": queued")
        if env:
            t.ok(content(body).endswith(b"\r\n\r\nbefore\r\n.\r\nafter\r\n"),
                 flag + ": a lone dot is content", body)

    # -- content byte for byte --
    data = (b"Subject: bytes\nFrom: f@example.org\nDate: x\nMessage-ID: <m@x>\n\n"
            b".leading dot\n..two dots\n.\r\nwindows\r\nmac\rlast line without newline")
    env, body = one(send(["-i", "b@example.org"], data), "byte-exact: queued")
    if env:
        want = (b"Subject: bytes\r\nFrom: f@example.org\r\nDate: x\r\nMessage-ID: <m@x>\r\n\r\n"
                b".leading dot\r\n..two dots\r\n.\r\nwindows\r\nmac\r\n"
                b"last line without newline\r\n")
        t.eq(content(body), want, "LF to CRLF, dots kept (stuffed on the wire), bare CR a line end")
        t.eq(int(field(env, "flags")) & 0x43, 0,
             "7-bit content: no BODY=8BITMIME (nor 8-bit data, nor SMTPUTF8)")
    data = b"Subject: 8bit\n\n\xc3\xa9t\xc3\xa9 \xff\n"
    env, body = one(send(["e@example.org"], data), "8-bit body queued")
    if env:
        t.eq(int(field(env, "flags")) & 2, 2, "8-bit body sent with BODY=8BITMIME")
        t.ok(content(body).endswith(b"\r\n\r\n\xc3\xa9t\xc3\xa9 \xff\r\n"), "8-bit body intact")
    env, body = one(send(["j\u00f6rg@b\u00fcro.example"], b"Subject: utf8\n\nx\n"),
                    "UTF-8 recipient queued")
    if env:
        t.eq(int(field(env, "flags")) & 1, 1, "UTF-8 address sent with SMTPUTF8")
        t.eq(rcpts(env), ["j\u00f6rg@b\u00fcro.example"], "UTF-8 address intact")
    big = b"".join(b"line %07d .........................................................\n" % i
                   for i in range(60000))
    env, body = one(send(["-i", "big@example.org"], b"Subject: big\n\n" + big + b".\n"),
                    "4 MB message (spilled to a temporary file) queued")
    if env:
        t.ok(content(body).endswith(b"\r\n\r\n" + big.replace(b"\n", b"\r\n") + b".\r\n"),
             "4 MB message stored byte for byte")

    # -- sender and name --
    env, body = one(send(["-f", "bounces@example.org", "-F", "Ops Team", "x@example.org"],
                         b"Subject: f\n\nx\n"), "-f queued")
    if env:
        t.eq(field(env, "sender"), "bounces@example.org", "-f sets the envelope sender")
        t.ok(b"\nFrom: Ops Team <bounces@example.org>\n" in headers(body), "-F names the added From:",
             headers(body))
    env, body = one(send(["-r", "other@example.org", "x@example.org"], b"From: me@x.example\n\nx\n"),
                    "-r queued")
    if env:
        t.eq(field(env, "sender"), "other@example.org", "-r is -f")
        t.eq(headers(body).count(b"From:"), 1, "an existing From: is kept, none added")
    env, body = one(send(["-f", "<>", "x@example.org"], b"Subject: null\n\nx\n"), "-f <> queued")
    if env:
        t.eq(field(env, "sender"), "", "-f <> is the null sender")
    env, body = one(send(["-F", "Evil\r\nBcc: injected@example.org", "x@example.org"],
                         b"Subject: inj\n\nx\n"), "-F with CR LF queued")
    if env:
        t.ok(b"\r\nBcc:" not in body and rcpts(env) == ["x@example.org"],
             "-F cannot add a header line", headers(body))

    # -- DSN options and ignored flags --
    env, body = one(send(["-N", "success,delay", "-R", "hdrs", "-V", "env+id 1",
                          "x@example.org"], b"Subject: dsn\n\nx\n"), "-N -R -V queued")
    if env:
        t.ok(re.search(r"notify=10 ", env) is not None, "-N success,delay as NOTIFY", env)
        t.eq(field(env, "ret"), "1", "-R hdrs as RET=HDRS")
        t.eq(field(env, "envid"), "env+2Bid+201", "-V as ENVID, xtext-encoded")
    rc, err, msgs = send(["-odi", "-oem", "-oee", "-B", "8BITMIME", "-B7BIT", "-m", "-n",
                          "-v", "-bm", "-h", "10", "x@example.org"], b"Subject: flags\n\nx\n")
    t.ok(rc == 0 and len(msgs) == 1, "common sendmail flags accepted", (rc, err))
    t.ok("<<< 250 2.0.0 Ok: queued as" in err and ">>> RCPT TO:<x@example.org>" in err,
         "-v shows the dialogue", err)
    rc, err = run(["-bi"])
    t.eq(rc, EX_OK, "-bi (newaliases) succeeds with nothing to do")

    # -- more recipients than relayd takes per message (recipient_limit = 10) --
    many = ["m%d@example.org" % i for i in range(23)]
    rc, err, msgs = send(many, b"Subject: many\n\nx\n")
    got = sorted(a for env, body in msgs for a in rcpts(env))
    t.ok(rc == 0 and len(msgs) == 3 and got == sorted(many),
         "452 4.5.3: the rest go in further transactions (10 + 10 + 3)", (rc, err, len(msgs)))

    # -- refused recipients --
    rc, err, msgs = send(["ok@example.org", "bad@-bad-.example"], b"Subject: part\n\nx\n")
    t.ok(rc == EX_NOUSER and len(msgs) == 1 and rcpts(msgs[0][0]) == ["ok@example.org"],
         "one recipient refused: sent to the others, exit EX_NOUSER", (rc, err, len(msgs)))
    t.ok("bad@-bad-.example" in err and "refused" in err, "the refused recipient is named", err)
    rc, err, msgs = send(["bad@-bad-.example"], b"Subject: all\n\nx\n")
    t.ok(rc == EX_NOUSER and not msgs, "every recipient refused: EX_NOUSER, nothing queued",
         (rc, err))

    # -- exit codes --
    rc, err, msgs = send([], b"Subject: none\n\nx\n")
    t.ok(rc == EX_USAGE and not msgs and "no recipients" in err, "no recipients: EX_USAGE",
         (rc, err))
    rc, err, msgs = send(["-t"], b"Subject: none\n\nx\n")
    t.ok(rc == EX_DATAERR and not msgs, "-t without recipient fields: EX_DATAERR", (rc, err))
    rc, err, msgs = send(["-t"], b"To: \"unterminated@example.org\n\nx\n")
    t.ok(rc == EX_DATAERR and not msgs and "To" in err,
         "-t with a broken To: EX_DATAERR naming the field", (rc, err))
    rc, err, msgs = send(["Name <broken@example.org"], b"Subject: x\n\nx\n")
    t.ok(rc == EX_NOUSER and not msgs, "invalid recipient address: EX_NOUSER", (rc, err))
    rc, err, msgs = send(["-f", "a@b@c", "x@example.org"], b"Subject: x\n\nx\n")
    t.ok(rc == EX_NOUSER and not msgs, "invalid -f address: EX_NOUSER", (rc, err))
    rc, err = run(["-f", "evil\x1b[2J@@", "x@example.org"], b"Subject: x\n\nx\n")
    t.ok(rc == EX_NOUSER and "\x1b" not in err and "\\x1B[2J" in err,
         "an address in a message is escaped, no terminal control passes", (rc, err))
    for bad in (["-Z"], ["-bs"], ["-q"], ["-N", "sometimes"], ["-R", "all"], ["-f"]):
        rc, err = run(bad + ["x@example.org"])
        t.ok(rc == EX_USAGE and "usage:" in err, "%s: EX_USAGE" % " ".join(bad), (rc, err))

    small = os.path.join(r.dir, "small.conf")
    with open(r.conf_path) as f:
        conf = f.read()
    with open(small, "w") as f:
        f.write(conf + "message_size_limit = 1000\n")
    os.chmod(small, 0o644)
    rc, err, msgs = send(["x@example.org"], b"Subject: big\n\n" + b"x" * 2000 + b"\n", conf=small)
    t.ok(rc == EX_DATAERR and not msgs and "message_size_limit" in err,
         "over message_size_limit: EX_DATAERR before sending", (rc, err))
    rc, err, msgs = send(["x@example.org"], b"Subject: big\n\n" + b"x" * 900 + b"\n", conf=small)
    t.ok(rc == EX_DATAERR and not msgs, "under it but over with the added headers: EX_DATAERR",
         (rc, err))

    rc, err = run(["x@example.org"], conf=os.path.join(r.dir, "missing.conf"))
    t.eq(rc, EX_CONFIG, "missing configuration: EX_CONFIG")
    for name, extra in (("no loopback listener", "smtp_listen =\n"),
                        ("loopback not trusted", "trusted_networks = 192.0.2.0/24\n"),
                        ("unknown key", "no_such_key = 1\n")):
        path = os.path.join(r.dir, "cfg.conf")
        with open(path, "w") as f:
            f.write(conf + extra)
        rc, err = run(["x@example.org"], b"Subject: x\n\nx\n", conf=path)
        t.ok(rc == EX_CONFIG and err, "%s: EX_CONFIG with a message" % name, (rc, err))

    down = os.path.join(r.dir, "down.conf")
    with open(down, "w") as f:
        f.write(re.sub(r"(?m)^smtp_listen = .*$", "smtp_listen = 127.0.0.1:%d" % free_port(), conf))
    rc, err = run(["x@example.org"], b"Subject: x\n\nx\n", conf=down)
    t.ok(rc == EX_TEMPFAIL and "cannot connect" in err, "relayd down: EX_TEMPFAIL", (rc, err))

    # A listener that never answers: the configured timeout, then EX_TEMPFAIL.
    mute = socket.socket()
    mute.bind(("127.0.0.1", 0))
    mute.listen(5)
    with open(down, "w") as f:
        f.write(re.sub(r"(?m)^smtp_listen = .*$", "smtp_listen = 0.0.0.0:%d"
                       % mute.getsockname()[1], conf) + "smtpd_timeout = 2s\n")
    start = time.time()
    rc, err = run(["x@example.org"], b"Subject: x\n\nx\n", conf=down)
    took = time.time() - start
    mute.close()
    t.ok(rc == EX_TEMPFAIL and "timed out" in err and took < 10,
         "a silent server: timed out in %.1fs, EX_TEMPFAIL" % took, (rc, err))

    # -- what relayd does not say, from a scripted server --
    for name, replies, want in (
            ("421 greeting", dict(GREETING="421 4.3.2 busy"), EX_TEMPFAIL),
            ("554 greeting", dict(GREETING="554 5.3.2 not now"), EX_TEMPFAIL),
            ("EHLO and HELO refused", dict(EHLO="550 no", HELO="550 no"), EX_TEMPFAIL),
            ("451 to MAIL", dict(MAIL="451 4.3.0 later"), EX_TEMPFAIL),
            ("553 to MAIL", dict(MAIL="553 5.1.8 bad sender"), EX_DATAERR),
            ("451 to RCPT", dict(RCPT="451 4.3.0 later"), EX_TEMPFAIL),
            ("554 to DATA", dict(DATA="554 5.5.1 no"), EX_DATAERR),
            ("451 to the end of data", dict(END="451 4.3.0 disk"), EX_TEMPFAIL),
            ("552 to the end of data", dict(END="552 5.3.4 too big"), EX_DATAERR),
            ("connection closed before the 250", dict(END=None), EX_TEMPFAIL),
            ("a reply that is no reply", dict(MAIL="hello there"), EX_TEMPFAIL)):
        fake = Fake(**replies)
        rc, err = run(["x@example.org"], b"Subject: x\n\nx\n", conf=fake.conf())
        t.ok(rc == want and err, "%s: exit %d" % (name, want), (rc, err))
    fake = Fake(EHLO="250-fake.test\r\n250 SIZE 1000")
    rc, err = run(["j\u00f6rg@example.org"], b"Subject: x\n\n\xc3\xa9\n", conf=fake.conf())
    fake.thread.join(5)
    t.ok(rc == EX_DATAERR and "SMTPUTF8" in err and not any(l.startswith("MAIL") for l in fake.lines),
         "UTF-8 address, no SMTPUTF8 offered: EX_DATAERR, nothing sent", (rc, err, fake.lines))
    fake = Fake(EHLO="250-fake.test\r\n250 SIZE 1000")
    rc, err = run(["x@example.org"], b"Subject: x\n\n\xc3\xa9\n", conf=fake.conf())
    fake.thread.join(5)
    t.ok(rc == 0 and any(re.match(r"MAIL FROM:<[^>]+> SIZE=\d+$", l) for l in fake.lines) and
         not any("BODY=" in l for l in fake.lines),
         "8-bit content, no 8BITMIME offered: sent without BODY=", (rc, err, fake.lines))
    fake = Fake(EHLO="500 what")
    rc, err = run(["x@example.org"], b"Subject: x\n\nx\n", conf=fake.conf())
    fake.thread.join(5)
    t.ok(rc == 0 and any(l.startswith("HELO ") for l in fake.lines) and
         not any("SIZE=" in l for l in fake.lines),
         "EHLO refused: HELO, and no ESMTP parameters", (rc, err, fake.lines))

    # -- an unprivileged user, who cannot touch the queue --
    if os.getuid() != 0:
        t.skip("as nobody", "needs root to switch user")
    else:
        t.ok(subprocess.run(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
                             "test", "-w", r.queue_dir]).returncode != 0,
             "nobody cannot write the queue directory")
        # A copy nobody can reach, wherever the build tree lives.
        copy = os.path.join(r.dir, "relay-sendmail")
        shutil.copy(SENDMAIL, copy)
        os.chmod(copy, 0o755)
        rc, err, msgs = send(["-t"], b"To: someone@example.org\nSubject: nobody\n\nx\n",
                             user="nobody", binary=copy)
        t.ok(rc == 0 and len(msgs) == 1, "as nobody: queued", (rc, err))
        if msgs:
            t.eq(field(msgs[0][0], "sender"), "nobody@relayd.test",
                 "as nobody: sender nobody@hostname")
        secret = os.path.join(r.dir, "secret.conf")
        shutil.copy(r.conf_path, secret)
        os.chmod(secret, 0o600)
        rc, err = run(["x@example.org"], b"Subject: x\n\nx\n", conf=secret, user="nobody",
                      binary=copy)
        t.ok(rc == EX_CONFIG and "secret.conf" in err,
             "as nobody, an unreadable configuration: EX_CONFIG naming it", (rc, err))
    t.ok(r.sanitizer_clean(), "relayd log clean")
    t.ok(not sanitizer_reports, "relay-sendmail: no sanitizer report", "\n".join(sanitizer_reports))
finally:
    r.cleanup()
t.done()
