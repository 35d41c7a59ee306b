"""deliver_common - helpers for the delivery engine's tests (deliver_*.py):
submit mail to a relayd under test, wait for it at a next hop, and the
DESIGN §6 log-line regexes the records are checked against.

Not a test itself: run directly it prints a TAP skip plan.
"""
import re
import time

from relaydtest import session

# DESIGN §6, exactly.
SMTP_RE = re.compile(
    r"relayd/smtp\[\d+\]: ([0-9A-Z]{12}): to=<([^>]*)>, relay=(\S+), delay=[0-9.]+, "
    r"delays=[0-9.]+/[0-9.]+/[0-9.]+/[0-9.]+, dsn=(\d\.\d{1,3}\.\d{1,3}), "
    r"status=(sent|deferred|bounced) \((.*)\)$", re.M)
REMOVED_RE = re.compile(r"relayd/qmgr\[\d+\]: ([0-9A-Z]{12}): removed$", re.M)
ACTIVE_RE = re.compile(
    r"relayd/qmgr\[\d+\]: ([0-9A-Z]{12}): from=<([^>]*)>, size=\d+, nrcpt=\d+ \(queue active\)$",
    re.M)
RELAY_RE = re.compile(r"^([^\[\]]+)\[([0-9a-fA-F.:]+)\]:(\d+)$")


def submit(r, rcpts, sender="sender@client.test", body=None, subject="test"):
    """Send one message through relayd's smtp port; its queue id."""
    c = session(r)
    c.cmd("MAIL FROM:<%s>" % sender)
    for a in rcpts:
        c.cmd("RCPT TO:<%s>" % a)
    c.cmd("DATA")
    data = body or ("From: <%s>\r\nTo: <%s>\r\nSubject: %s\r\n\r\nHello.\r\n" %
                    (sender, rcpts[0], subject))
    c.send(data.encode() if isinstance(data, str) else data)
    c.send(b".\r\n")
    last = c.reply() or ""
    c.cmd("QUIT")
    c.close()
    m = re.search(r"queued as ([0-9A-Z]{12})", last)
    return m.group(1) if m else None


def wait_for(cond, timeout=20, step=0.05):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = cond()
        if v:
            return v
        time.sleep(step)
    return cond()


def records(r, qid=None):
    """(id, rcpt, relay, dsn, status, reason) of every delivery line."""
    out = SMTP_RE.findall(r.log())
    return [x for x in out if qid is None or x[0] == qid]


def removed(r, qid):
    return qid in REMOVED_RE.findall(r.log())


if __name__ == "__main__":
    print("1..0 # SKIP helper module, not a test")
