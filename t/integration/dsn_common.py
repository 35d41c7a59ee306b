"""dsn_common - helpers for the end-to-end report tests (dsn_deliver.py,
dsn_notice.py, dsn_mixed.py): submit with DSN parameters, and pick the
reports about one message out of what a sink received.

Not a test itself: run directly it prints a TAP skip plan.
"""
import re

from relaydtest import session

SENDER = "sender@client.test"
# DESIGN §6, and Postfix's line for a copy to the postmaster.
NOTE_RE = re.compile(r"relayd/bounce\[\d+\]: ([0-9A-Z]{12}): (sender|postmaster) "
                     r"(non-delivery|delay|delivery status) notification: ([0-9A-Z]{12})$",
                     re.M)


def submit(r, rcpts, mail_params="", sender=SENDER, subject="test", body=None):
    """rcpts: [(address, "NOTIFY=... ORCPT=..." or "")]; the queue id."""
    c = session(r)
    c.cmd(("MAIL FROM:<%s> %s" % (sender, mail_params)).rstrip())
    for a, params in rcpts:
        c.cmd(("RCPT TO:<%s> %s" % (a, params)).rstrip())
    c.cmd("DATA")
    data = body or ("From: <%s>\r\nTo: <%s>\r\nSubject: %s\r\n\r\nHello.\r\n" %
                    (sender, rcpts[0][0], subject))
    c.send(data.encode("utf-8"))
    c.send(b".\r\n")
    last = c.reply() or ""
    c.cmd("QUIT")
    c.close()
    m = re.search(r"queued as ([0-9A-Z]{12})", last)
    return m.group(1) if m else None


def reports(sink, orig_id=None):
    """Reports the sink received: (message dict, raw bytes, parsed)."""
    out = []
    for m in sink.messages:
        if m["from"] not in ("", "<>"):
            continue
        raw = m["content"]
        mid = re.search(rb"^Message-ID: <([0-9A-Z]{12})\.([0-9A-Z]{12})@", raw, re.M)
        if orig_id and not (mid and mid.group(2).decode() == orig_id):
            continue
        out.append((m, raw))
    return out


def notes(r, qid, who="sender"):
    """(kind, new id) of each report about qid the log names, to who."""
    return [(k, n) for q, w, k, n in NOTE_RE.findall(r.log()) if q == qid and w == who]


if __name__ == "__main__":
    print("1..0 # SKIP helper module, not a test")
