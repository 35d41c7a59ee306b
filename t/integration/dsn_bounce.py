#!/usr/bin/python3
"""dsn_bounce - the report service (relayd/bounce) against a real queue,
driven the way the scheduler drives it (t/helpers/bounce_drive): NOTIFY
per recipient, the report queued from <> with QUEUE_F_BOUNCE and its
recipient NOTIFY=NEVER in the same atomic group as the recipients'
states and the original's removal; ENVID and ORCPT echoed; RET=FULL and
HDRS; 8-bit and SMTPUTF8 originals.  Every report is read back from the
queue and checked with dsncheck.
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from relaydtest import TAP, TOP_BUILD  # noqa: E402
from dsncheck import check_report  # noqa: E402

DRIVE = os.path.join(TOP_BUILD, "t", "helpers", "bounce_drive")
F_8BITMIME, F_BOUNCE, F_SMTPUTF8 = 0x02, 0x08, 0x01
NOTIFY_NEVER = 1

t = TAP()
tmp = tempfile.mkdtemp(prefix="dsn_bounce.")
conf = os.path.join(tmp, "relayd.conf")
with open(conf, "w") as f:
    f.write("hostname = relay.test\nqueue_dir = %s\n" % os.path.join(tmp, "q"))
body = os.path.join(tmp, "body.eml")
ORIG = (b"From: Alice <alice@example.org>\r\nSubject: report\r\n\r\nline one\r\n"
        b"line two\r\n")
with open(body, "wb") as f:
    f.write(ORIG)
body8 = os.path.join(tmp, "body8.eml")
with open(body8, "wb") as f:
    f.write(b"From: J\xc3\xb6rg <j@example.org>\r\nSubject: caf\xc3\xa9\r\n\r\n\xc3\xa9t\xc3\xa9\r\n")
n = [0]


def drive(rcpts, kind="failure", opts=(), sender="alice@example.org", b=body):
    n[0] += 1
    out = os.path.join(tmp, "report%d.eml" % n[0])
    argv = [DRIVE, "-c", conf, "-d", os.path.join(tmp, "q"), "-s", sender, "-b", b,
            "-k", kind, "-O", out] + list(opts) + list(rcpts)
    p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    res = {"rc": p.returncode, "stdout": p.stdout.decode(), "stderr": p.stderr.decode()}
    m = re.search(r"^report (\w+) flags=0x(\w+) sender=<(.*)> rcpt=<(.*)> notify=(\d+) "
                  r"nrcpt=(\d+)$", res["stdout"], re.M)
    res["report"] = None
    if m:
        res["report"] = {"id": m.group(1), "flags": int(m.group(2), 16), "sender": m.group(3),
                         "rcpt": m.group(4), "notify": int(m.group(5)),
                         "nrcpt": int(m.group(6))}
        with open(out, "rb") as f:
            res["raw"] = f.read()
    res["orig_left"] = "orig-left 1" in res["stdout"]
    return res


def report_ok(name, res, **kw):
    t.ok(res["rc"] == 0 and res["report"] is not None, "%s: a report is queued" % name,
         res["stdout"] + res["stderr"])
    if not res["report"]:
        return {}
    problems, parsed = check_report(res["raw"], **kw)
    t.ok(not problems, "%s: the queued report is valid" % name, "\n".join(problems))
    return parsed


# 550 at RCPT / after DATA for every recipient: one bounce, the original gone.
r = drive(["bob@example.com/-/failed/rfc822;bob@example.com/550 5.1.1 <bob@example.com>: no such user",
           "carol@example.com/failure,delay/failed/-/554 5.7.1 rejected after DATA"],
          opts=["-e", "ENV+2B1"])
p = report_ok("failure", r)
rep = r["report"] or {}
t.eq(rep.get("sender"), "", "from the null sender")
t.eq(rep.get("rcpt"), "alice@example.org", "to the original's sender")
t.eq(rep.get("notify"), NOTIFY_NEVER, "its recipient NOTIFY=NEVER")
t.ok(rep.get("flags", 0) & F_BOUNCE, "flagged QUEUE_F_BOUNCE")
t.ok(not (rep.get("flags", 0) & F_8BITMIME), "7-bit: no 8BITMIME")
t.ok(not r["orig_left"], "the original is removed in the same group")
t.eq(p.get("per_message", {}).get("original-envelope-id"), "ENV+1", "ENVID echoed")
rs = p.get("recipients", [])
t.eq([x.get("final-recipient") for x in rs],
     ["rfc822; bob@example.com", "rfc822; carol@example.com"], "both failures reported")
t.eq((rs or [{}])[0].get("original-recipient"), "rfc822;bob@example.com", "ORCPT echoed")
t.eq((rs or [{}])[0].get("diagnostic-code"),
     "smtp; 550 5.1.1 <bob@example.com>: no such user", "the remote reply")
t.eq(p.get("orig_type"), "text/rfc822-headers", "RET default: headers")

# NOTIFY=NEVER for every failed recipient: no report, still removed.
r = drive(["bob@example.com/never/failed/-/550 no"])
t.ok(r["rc"] == 0 and "report none" in r["stdout"], "NOTIFY=NEVER: no report", r["stdout"])
t.ok(not r["orig_left"], "NOTIFY=NEVER: the original is removed all the same")

# Mixed: one failed, one NEVER, one delayed (the message stays).
r = drive(["bob@example.com/-/failed/-/550 no", "carol@example.com/never/failed/-/550 no",
           "dave@example.com/-/delayed/-/451 later"])
p = report_ok("mixed", r)
t.eq([x.get("final-recipient") for x in p.get("recipients", [])],
     ["rfc822; bob@example.com", "rfc822; dave@example.com"], "NEVER left out of a mixed report")
t.ok(r["orig_left"], "a live recipient keeps the original")

# NOTIFY=FAILURE only: no delay warning.
r = drive(["bob@example.com/failure/delayed/-/451 later"], kind="delay")
t.ok("report none" in r["stdout"], "NOTIFY=FAILURE: no delay warning", r["stdout"])
# Default NOTIFY: delay warning.
r = drive(["bob@example.com/-/delayed/-/451 4.4.1 later"], kind="delay")
p = report_ok("delay", r)
t.eq(p.get("headers", {}).get("subject"), "Delayed Mail (still being retried)", "delay subject")
t.ok("will-retry-until" in (p.get("recipients") or [{}])[0], "Will-Retry-Until")

# NOTIFY=SUCCESS: relayed reported, delivered (hop took NOTIFY) not, default not.
r = drive(["bob@example.com/success/relayed/-/250 2.0.0 Ok"], kind="success")
p = report_ok("success", r)
t.eq((p.get("recipients") or [{}])[0].get("action"), "relayed", "Action: relayed")
r = drive(["bob@example.com/success/delivered/-/250 2.0.0 Ok"], kind="success")
t.ok("report none" in r["stdout"], "DSN-capable hop took NOTIFY: relayd sends none")
r = drive(["bob@example.com/-/relayed/-/250 2.0.0 Ok"], kind="success")
t.ok("report none" in r["stdout"], "no NOTIFY: no success notice")

# RET=FULL: the original returned byte for byte.
r = drive(["bob@example.com/-/failed/-/550 no"], opts=["-F"])
p = report_ok("ret-full", r)
t.eq(p.get("orig_type"), "message/rfc822", "RET=FULL: message/rfc822")
t.eq(p.get("orig"), ORIG, "RET=FULL: the original, read from the queue in pieces")

# 8-bit original: the report queued 8BITMIME.
r = drive(["bob@example.com/-/failed/-/550 no"], opts=["-F"], b=body8)
p = report_ok("8bit", r, eightbit_ok=True)
t.ok((r["report"] or {}).get("flags", 0) & F_8BITMIME, "8-bit original: 8BITMIME")

# SMTPUTF8 original: global types, SMTPUTF8 kept.
r = drive(["\u7528\u6237@\u4f8b\u5b50.example/-/failed/-/550 no"], opts=["-U"],
          sender="j\u00f6rg@example.org", b=body8)
p = report_ok("smtputf8", r, eightbit_ok=True, utf8=True)
t.ok((r["report"] or {}).get("flags", 0) & F_SMTPUTF8, "SMTPUTF8 original: SMTPUTF8 report")

# A message from the null sender: never a report to <> (no notice recipient).
r = drive(["bob@example.com/-/failed/-/550 no"], sender="")
t.ok(r["rc"] == 0 and "report none" in r["stdout"], "null sender: no bounce of a bounce",
     r["stdout"] + r["stderr"])
t.ok(not r["orig_left"], "null sender: the message is dropped")

# bounce_notice_recipient set: the failure is copied there.
with open(conf, "a") as f:
    f.write("bounce_notice_recipient = postmaster@relay.test\n")
r = drive(["bob@example.com/-/failed/-/550 no"], sender="")
p = report_ok("notice", r)
t.eq((r["report"] or {}).get("rcpt"), "postmaster@relay.test", "copied to bounce_notice_recipient")

shutil.rmtree(tmp, ignore_errors=True)
t.done()
