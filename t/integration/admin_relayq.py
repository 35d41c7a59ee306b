#!/usr/bin/python3
"""admin_relayq - relayq lists the queue mailq-style, as JSON lines and as
a summary, with the daemon running and stopped.

The mailq layout is checked column by column; addresses and reasons with
an ESC, quotes and invalid UTF-8 (put in with t/helpers/queue_inject)
come out escaped in the text listing and as valid JSON (python's json)
with -j; held, in-flight, deferred and new mail show their queue names.
"""
import json
import os
import re
import smtplib
import sys
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from relaydtest import TAP, Relayd, NO_DELIVERY  # noqa: E402
from admincommon import relayq, relayctl, inject, run, RELAYQ  # noqa: E402


def relayq_conf(path):
    return run([RELAYQ, "-f", path])

t = TAP()
HEADER = "----Queue ID----- --Size-- ---Arrival Time---- --Sender/Recipient------"
HOSTILE_REASON = b'451 4.4.1 \x1b[31mred "quoted" \\ \xff\xfe caf\xc3\xa9'
HOSTILE_RCPT = b'"we\x1bird\xff"@example.com'
HOSTILE_SENDER = b'"q\\"uote\x07"@example.org'


def check_text(out, msgs, now):
    """Check the mailq listing line by line against -j's view."""
    lines = out.split("\n")
    t.eq(lines[0], HEADER, "the heading")
    t.eq(lines[-1], "", "ends with a newline")
    total = sum(m["message_size"] for m in msgs.values())
    want_total = "-- %d Kbytes in %d Request%s." % (total // 1024, len(msgs),
                                                   "" if len(msgs) == 1 else "s")
    t.eq(lines[-2], want_total, "the total line")
    t.eq(lines[-3], "", "a blank line before it")
    i, seen, bad = 1, 0, []
    while i < len(lines) - 3:
        line = lines[i]
        m = re.match(r"^([0-9A-Z]{12})([*!]?)", line)
        if not m or m.group(1) not in msgs:
            bad.append("not a message line: %r" % line)
            break
        o = msgs[m.group(1)]
        mark = {"hold": "!", "active": "*"}.get(o["queue_name"], "")
        want = "%-17s %8d %19.19s %s" % (o["queue_id"] + mark, o["message_size"],
                                         time.strftime("%a %b %e %H:%M:%S",
                                                       time.localtime(o["arrival_time"])),
                                         o["sender"] or "MAILER-DAEMON")
        if "\\x" not in want and "\x1b" not in want and "\x07" not in want and line != want:
            bad.append("message line %r != %r" % (line, want))
        i += 1
        last = ""
        for rc in o["recipients"]:
            why = rc.get("delay_reason", "")
            if why != last:
                if not re.match(r"^ *\(.*\)$", lines[i]):
                    bad.append("reason line %r" % lines[i])
                elif len(lines[i].encode()) != 78 and len(why.encode()) < 70:
                    bad.append("reason not right-aligned to column 78: %r" % lines[i])
                last = why
                i += 1
            if not lines[i].startswith(" " * 47) or lines[i][47] == " ":
                bad.append("recipient line %r" % lines[i])
            elif "\\x" not in rc["address"] and lines[i][47:] != rc["address"]:
                bad.append("recipient %r != %r" % (lines[i][47:], rc["address"]))
            i += 1
        seen += 1
        if lines[i] != "":
            bad.append("no blank line after a message: %r" % lines[i])
        i += 1
    t.ok(not bad, "every message and recipient line in mailq's columns", "\n".join(bad))
    t.eq(seen, len(msgs), "every message listed")


def check_all(r, label):
    code, out, err = relayq(r)
    t.eq(code, 0, "%s: relayq exits 0" % label)
    raw = out
    t.ok(b"\x1b" not in raw and b"\x07" not in raw, "%s: no ESC or BEL reaches the terminal" % label)
    try:
        text = raw.decode("utf-8")
        t.ok(True, "%s: the listing is valid UTF-8" % label)
    except UnicodeDecodeError as e:
        t.ok(False, "%s: the listing is valid UTF-8" % label, str(e))
        text = raw.decode("utf-8", "replace")
    t.ok(all(c == "\n" or ord(c) >= 0x20 for c in text), "%s: no control characters" % label)
    code, jout, err = relayq(r, "-j")
    t.eq(code, 0, "%s: relayq -j exits 0" % label)
    msgs, ok = {}, True
    for line in jout.decode("utf-8").split("\n")[:-1]:
        try:
            o = json.loads(line)
            msgs[o["queue_id"]] = o
        except ValueError as e:
            ok = False
            t.diag("bad JSON line %r: %s" % (line, e))
    t.ok(ok and jout.endswith(b"\n"), "%s: every -j line is a JSON object" % label)
    check_text(text, msgs, time.time())
    return msgs


r = Relayd(conf=NO_DELIVERY, tls=False)
try:
    r.start()
    code, out, err = relayq(r)
    t.eq((code, out), (0, b"Mail queue is empty\n"), "an empty queue, daemon running")
    code, out, err = relayq(r, "-j")
    t.eq((code, out), (0, b""), "-j prints nothing for an empty queue")
    r.stop()
    code, out, err = relayq(r)
    t.eq((code, out), (0, b"Mail queue is empty\n"), "an empty queue, daemon stopped")
    code, out, err = relayq(r, "-s")
    t.ok(code == 0 and err == "" and b"TOTAL" in out, "-s on an empty queue: a zero table", err)
    # Put in while the daemon is down: a scheduler would try them at once.
    inject(r, "a@example.org", ["b@example.net", "c@Example.NET", "d@other.org"])
    inject(r, "", ["x@example.net"])
    now = int(time.time())
    hostile = inject(r, HOSTILE_SENDER, [HOSTILE_RCPT, b"plain@example.com"],
                     reason=HOSTILE_REASON, age=1000)
    deferred = inject(r, "d@example.org", ["r1@slow.example", "r2@slow.example"],
                      reason="421 4.4.2 too busy", age=7200, nxt=1800)
    active = inject(r, "e@example.org", ["f@busy.example"], lease=3600)
    held = inject(r, "h@example.org", ["i@held.example"])
    code, out, err = relayctl(r, "hold", held)
    t.ok(code == 0, "relayctl hold (daemon stopped)", err)

    msgs = check_all(r, "stopped")
    t.eq({q: o["queue_name"] for q, o in msgs.items() if q in (hostile, deferred, active, held)},
         {hostile: "deferred", deferred: "deferred", active: "active", held: "hold"},
         "queue names: deferred, active (claimed), hold")
    new = [o for o in msgs.values() if o["sender"] == "a@example.org"][0]
    t.eq(new["queue_name"], "incoming", "never tried: incoming")
    t.eq([x["address"] for x in new["recipients"]], ["b@example.net", "c@Example.NET", "d@other.org"],
         "recipients in order")
    t.ok(new["message_size"] == len("Subject: injected\r\n\r\nhello\r\n") and
         abs(new["arrival_time"] - now) < 60, "message_size and arrival_time (epoch seconds)")
    h = msgs[hostile]
    t.eq(h["sender"], '"q\\"uote\x07"@example.org', "a sender with quotes and BEL: exact in JSON")
    t.eq(h["recipients"][0]["address"], '"we\x1bird\\xFF"@example.com',
         "an address with ESC and invalid UTF-8: \\xFF for the bad byte")
    reason = '451 4.4.1 \x1b[31mred "quoted" \\ \\xFF\\xFE caf\u00e9'
    t.eq(h["recipients"][0]["delay_reason"], reason, "delay_reason: escaped the same way")
    rc0 = h["recipients"][0]
    t.eq(rc0["attempts"], 1, "attempts")
    t.ok(abs(rc0["next_attempt_time"] - (now + 3600)) < 60, "next_attempt_time", str(rc0))
    hist = rc0["attempt_history"]
    t.ok(len(hist) == 1 and hist[0]["next_hop"] == "mx.example.net[127.0.0.2]:25" and
         hist[0]["reply"] == reason and hist[0]["dsn"] == "4.4.1" and
         abs(hist[0]["time"] - now) < 60, "attempt_history: time, next hop, dsn, reply", str(hist))
    t.ok("delay_reason" not in new["recipients"][0], "no delay_reason before any attempt")

    code, out, err = relayq(r)
    text = out.decode()
    t.ok("(451 4.4.1 \\x1B[31mred \"quoted\" \\ \\xFF\\xFE caf\u00e9)" in text,
         "text listing: the reason with \\xHH escapes", text)
    t.ok("%s!" % held in text and "%s*" % active in text, "! for held, * for in flight")
    t.ok(("(421 4.4.2 too busy)\n" + " " * 47 + "r1@slow.example\n" + " " * 47 +
          "r2@slow.example\n") in text, "one reason line for recipients sharing it")
    t.ok(" " * (76 - len("421 4.4.2 too busy")) + "(421 4.4.2 too busy)\n" in text,
         "the reason ends at column 78")

    code, out, err = relayq(r, "-s")
    lines = out.decode().split("\n")
    t.eq(code, 0, "-s exits 0")
    t.eq(lines[0].split(), ["T", "5", "10", "20", "40", "80", "160", "320", "640", "1280",
                            "1280+"], "-s: the age buckets")
    rows = {ln.split()[0]: [int(x) for x in ln.split()[1:]] for ln in lines[1:]
            if ln.strip() and ln.split()[0] not in ("state",) and len(ln.split()) == 12}
    t.ok(rows.get("TOTAL", [0])[0] == 10, "-s: 10 recipients in all", out.decode())
    t.eq(rows.get("example.net"), [3, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0],
         "-s: example.net (domains folded to lower case), all under 5 minutes")
    t.eq(rows.get("slow.example"), [2, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0],
         "-s: a 2-hour-old message in the 80-160 minute bucket")
    t.eq(rows.get("example.com"), [2, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0],
         "-s: 1000 s old in the 10-20 minute bucket")
    states = {ln.split()[0]: [int(x) for x in ln.split()[1:]] for ln in lines
              if ln.split() and ln.split()[0] in ("incoming", "active", "deferred", "hold", "total")}
    t.eq(states.get("hold"), [1, 1, 0], "-s: messages, recipients and Kbytes on hold")
    t.eq(states.get("deferred", [0])[0], 2, "-s: 2 deferred messages")
    t.eq(states.get("total", [0])[0], 6, "-s: 6 messages in all")

    r.start()
    # A scheduler tries what is due as it starts: list once that settles.
    settled, last = False, None
    for i in range(100):
        code, cur, err = relayq(r, "-j")
        if cur == last:
            settled = True
            break
        last = cur
        time.sleep(0.5)
    t.ok(settled, "the listing settles once the daemon runs")
    msgs2 = check_all(r, "running")
    t.eq(sorted(msgs2), sorted(msgs), "the same messages with the daemon running")

    code, out, err = relayq(r, "-x")
    t.eq(code, 2, "an unknown option: exit 2")
    code, out, err = relayq(r, "-j", "-s")
    t.eq(code, 2, "-j with -s: exit 2")
    code, out, err = relayq(r, "extra")
    t.eq(code, 2, "an argument: exit 2")
    t.eq(r.stop(), 0, "the daemon stops cleanly")
    t.ok(r.sanitizer_clean(), "no sanitizer report", r.log())
    code, out, err = relayq_conf("/nonexistent/relayd.conf")
    t.ok(code == 1 and "relayq:" in err, "a missing configuration: exit 1 and a message", err)
except Exception:
    t.ok(False, "exception", traceback.format_exc())
finally:
    r.cleanup()
t.done()
