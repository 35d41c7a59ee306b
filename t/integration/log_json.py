#!/usr/bin/python3
"""log_json - log_format = json: every line relayd writes during a real
run (start, a plain and an authenticated submission, a refused command,
a failed AUTH, reload, stop) is one JSON object carrying the syslog
header's fields, and the mail records carry their fields (queue_id,
client, sasl_username, from, size, nrcpt) beside the whole message.
"""
import json
import os
import signal
import smtplib
import sys
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from relaydtest import TAP, Relayd                 # noqa: E402
from tls_common import no_verify_ctx, plain        # noqa: E402

t = TAP()
r = Relayd(conf="log_format = json\n")
try:
    r.start()
    with smtplib.SMTP("127.0.0.1", r.port_smtp, timeout=10) as s:
        s.ehlo("client.test")
        s.docmd("VRFY")                                 # a refusal, logged or not
        s.sendmail("a@example.org", ["b@example.net"], "Subject: x\r\n\r\nhi\r\n")
    with smtplib.SMTP("127.0.0.1", r.port_sub, timeout=10) as s:
        s.ehlo("client.test")
        s.starttls(context=no_verify_ctx())
        s.ehlo("client.test")
        s.docmd("AUTH", "PLAIN " + plain("alice", "wrong"))
        code, _ = s.docmd("AUTH", "PLAIN " + plain("alice", "secret"))
        if code != 235:
            raise RuntimeError("AUTH failed: %d" % code)
        s.sendmail("alice@example.org", ["c@example.net", "d@example.net"],
                   "Subject: y\r\n\r\nhi\r\n")
    r.signal(signal.SIGHUP)
    r.wait_log("reload: configuration")
    t.eq(r.stop(), 0, "relayd stops with exit 0")

    lines = r.log().splitlines()
    objs, bad = [], []
    for line in lines:
        try:
            o = json.loads(line)
            if not isinstance(o, dict):
                raise ValueError("not an object")
            objs.append(o)
        except ValueError:
            bad.append(line)
    t.ok(len(lines) >= 10, "the run logged lines (%d)" % len(lines))
    t.ok(not bad, "every line is one JSON object", "\n".join(bad[:5]))
    keys = ("time", "host", "ident", "service", "pid", "severity", "message")
    t.ok(all(all(k in o for k in keys) for o in objs),
         "every object has %s" % ", ".join(keys))
    t.ok(all(o["ident"] == "relayd/" + o["service"] for o in objs),
         "ident is syslog_name/service")
    t.ok(len({o["pid"] for o in objs}) == 1 and objs[0]["pid"] == r.proc.pid,
         "pid is the daemon's")
    t.ok(any(o["severity"] == "warning" and "authentication failed" in o["message"]
             for o in objs), "the failed AUTH is a warning with Postfix's text")
    queued = [o for o in objs if o["message"].endswith("(queue active)")]
    t.eq(len(queued), 2, "two 'queue active' records")
    t.ok(all(o.get("queue_id") and o["message"].startswith(o["queue_id"] + ": ")
             for o in queued), "queue records carry queue_id")
    t.eq(sorted((o.get("from"), o.get("nrcpt")) for o in queued),
         [("a@example.org", 1), ("alice@example.org", 2)], "from and nrcpt fields")
    t.ok(all(isinstance(o.get("size"), int) and o["size"] > 0 for o in queued), "size is a number")
    clients = [o for o in objs if o["message"].startswith(o.get("queue_id", "-") + ": client=")]
    t.eq(len(clients), 2, "two client= records")
    t.ok(any(o.get("sasl_username") == "alice" and o.get("sasl_method") == "PLAIN"
             for o in clients), "the authenticated one has sasl_method and sasl_username")
    t.ok(all(o.get("client", "").endswith("[127.0.0.1]") for o in clients), "client field")
    conns = [o for o in objs if o["message"].startswith("connect from ")]
    t.ok(len(conns) >= 2 and all(o.get("client") == "unknown[127.0.0.1]" for o in conns),
         "connect lines carry client")
    t.ok(any(o["message"].startswith("reload: ") for o in objs), "the reload is logged")
    t.ok(r.sanitizer_clean(), "no sanitizer report")
except Exception:
    t.ok(False, "no unexpected exception", traceback.format_exc() + r.log()[-2000:])
finally:
    r.cleanup()
t.done()
