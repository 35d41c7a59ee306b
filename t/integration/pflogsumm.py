#!/usr/bin/python3
"""pflogsumm - Postfix's log summariser reads relayd's log with only the
syslog name changed: a known run through a relayhost sink (messages
delivered, deferred by a 450, bounced by a 550, recipients refused by
relayd itself for relaying) gives pflogsumm --syslog-name=relayd the
counts the test made happen: received, delivered, deferred, bounced,
rejected.

The log is what relayd writes in the foreground, "Mon DD HH:MM:SS host
relayd/service[pid]: text", the syslog format pflogsumm parses.
"""
import os
import re
import shutil
import subprocess
import sys
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from relaydtest import TAP, Relayd, session                  # noqa: E402
from smtpc_common import Sink                                 # noqa: E402
from deliver_common import submit, wait_for, records, removed  # noqa: E402

N_SENT, N_DEFER, N_BOUNCE, N_REJECT = 5, 2, 3, 4

t = TAP()
if not shutil.which("pflogsumm"):
    print("1..0 # SKIP pflogsumm is not installed (tools/install-deps test)")
    sys.exit(0)


def summary(log_text):
    """pflogsumm's Grand Totals for the log: {received: n, ...}."""
    out = subprocess.run(["pflogsumm", "--syslog-name=relayd", "--problems-first"],
                         input=log_text, capture_output=True, text=True, timeout=60)
    totals = {}
    for n, unit, what in re.findall(r"(?m)^\s*(\d+)([km]?)\s+(received|delivered|deferred|"
                                    r"bounced|rejected)\b", out.stdout):
        totals.setdefault(what, int(n) * {"": 1, "k": 1024, "m": 1024 * 1024}[unit])
    return totals, out.stdout + out.stderr


sink = Sink("127.0.0.2", replies={"RCPT": {}}).start()
r = Relayd(conf="relayhost = [127.0.0.2]:%d\nretry_min = 1h\nretry_max = 2h\n"
           "trusted_networks = 127.0.0.1/32\n" % sink.port)
try:
    r.start()
    ids = {"sent": [], "deferred": [], "bounced": []}
    for i in range(N_DEFER):
        sink.replies["RCPT"]["soft%d@dest.test" % i] = "450 4.2.0 mailbox busy"
        ids["deferred"].append(submit(r, ["soft%d@dest.test" % i]))
    for i in range(N_BOUNCE):
        sink.replies["RCPT"]["hard%d@dest.test" % i] = "550 5.1.1 no such user"
        ids["bounced"].append(submit(r, ["hard%d@dest.test" % i]))
    for i in range(N_SENT):
        ids["sent"].append(submit(r, ["ok%d@dest.test" % i]))
    t.ok(all(all(v) for v in ids.values()), "%d messages queued" % (N_SENT + N_DEFER + N_BOUNCE),
         ids)

    # 127.0.0.3 is not in trusted_networks: relaying is refused at RCPT.
    for i in range(N_REJECT):
        c = session(r, source="127.0.0.3")
        c.cmd("MAIL FROM:<spam%d@client.test>" % i)
        rep = c.cmd("RCPT TO:<victim%d@elsewhere.test>" % i)
        t.ok(rep.startswith("554 5.7.1"), "relaying from 127.0.0.3 refused (%d)" % i, rep)
        c.cmd("QUIT")
        c.close()

    def settled():
        recs = records(r)
        by = {st: {x[0] for x in recs if x[4] == st} for st in ("sent", "deferred", "bounced")}
        done = (set(ids["sent"]) <= by["sent"] and set(ids["deferred"]) <= by["deferred"] and
                set(ids["bounced"]) <= by["bounced"] and
                all(removed(r, q) for q in ids["sent"] + ids["bounced"]))
        return by if done else None
    by = wait_for(settled, timeout=60, step=0.2)
    t.ok(by, "every message reached its outcome", r.log()[-3000:])
    # Reports relayd sends back to the senders of the bounced mail go out
    # through the same sink, each one more delivery: wait until only the
    # deferred messages are left, so that every report is logged and sent.
    t.ok(wait_for(lambda: sorted(r.queue_ids()) == sorted(ids["deferred"]), timeout=30,
                  step=0.2), "only the deferred messages stay queued", r.log()[-3000:])
    t.eq(r.stop(), 0, "relayd stops cleanly")
    notices = re.findall(r"relayd/bounce\[\d+\]: [0-9A-Z]{12}: sender non-delivery "
                         r"notification: ([0-9A-Z]{12})$", r.log(), re.M)
    t.ok(len(notices) in (0, N_BOUNCE) and all(removed(r, q) for q in notices),
         "no reports, or one per bounced message, delivered (%d)" % len(notices),
         r.log()[-3000:])

    log = r.log()
    t.ok(re.search(r"(?m)^[A-Z][a-z]{2} [ 1-3][0-9] \d\d:\d\d:\d\d \S+ relayd/smtpd\[\d+\]: ",
                   log), "the log is in syslog format", log[:500])
    totals, text = summary(log)
    want = {"received": N_SENT + N_DEFER + N_BOUNCE,
            "delivered": N_SENT + len(notices),
            "deferred": N_DEFER,
            "bounced": N_BOUNCE,
            "rejected": N_REJECT}
    for what in ("received", "delivered", "deferred", "bounced", "rejected"):
        t.eq(totals.get(what), want[what], "pflogsumm: %d %s" % (want[what], what))
    if totals != want:
        t.diag(text[:3000])
    t.ok(re.search(r"(?m)^\s*%d\s+deferred\s+\(%d\s+deferrals\)" % (N_DEFER, N_DEFER), text),
         "pflogsumm: one deferral per deferred message", text[:1500])
    t.ok("Relay access denied" in text, "pflogsumm lists the relay refusals", text[-3000:])
except Exception:
    t.ok(False, "no unexpected exception", traceback.format_exc() + r.log()[-2000:])
finally:
    r.cleanup()
    sink.stop()
t.done()
