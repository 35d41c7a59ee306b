#!/usr/bin/python3
"""log_client_line - "QUEUEID: client=HOST[IP]" is logged with the first
recipient accepted, as Postfix does, never for a transaction whose
recipients were all refused: log summaries (pflogsumm) count that line
as a received message, and the refusal already counts as a rejection.
"""
import os
import re
import sys
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from relaydtest import TAP, Relayd, NO_DELIVERY, session   # noqa: E402

CLIENT_RE = re.compile(r"relayd/smtpd\[\d+\]: ([0-9A-Z]{12}): client=([^\s,]+)", re.M)

t = TAP()
r = Relayd(conf=NO_DELIVERY + "trusted_networks = 127.0.0.1/32\n", tls=False)
try:
    r.start()
    # Not trusted: MAIL is taken, the only RCPT refused, then RSET.
    c = session(r, source="127.0.0.3")
    t.ok(c.cmd("MAIL FROM:<a@client.test>").startswith("250"), "MAIL from 127.0.0.3 taken")
    t.ok(c.cmd("RCPT TO:<b@elsewhere.test>").startswith("554 5.7.1"), "RCPT refused: relaying")
    c.cmd("RSET")
    # Trusted: two recipients, then RSET before DATA.
    c2 = session(r)
    c2.cmd("MAIL FROM:<a@client.test>")
    t.ok(c2.cmd("RCPT TO:<b@elsewhere.test>").startswith("250"), "trusted RCPT taken")
    c2.cmd("RCPT TO:<c@elsewhere.test>")
    c2.cmd("RSET")
    for x in (c, c2):
        x.cmd("QUIT")
        x.close()
    t.ok(r.wait_log("disconnect from unknown[127.0.0.1]"), "both sessions over", r.log()[-1500:])
    log = r.log()
    t.ok(re.search(r"relayd/smtpd\[\d+\]: NOQUEUE: reject: RCPT from unknown\[127\.0\.0\.3\]: "
                   r"554 5\.7\.1 <b@elsewhere\.test>: Relay access denied; ", log),
         "the refusal is logged as NOQUEUE: reject: RCPT", log[-1500:])
    clients = CLIENT_RE.findall(log)
    t.eq([host for _, host in clients], ["unknown[127.0.0.1]"],
         "one client= line: for the transaction with a recipient, once")
except Exception:
    t.ok(False, "no unexpected exception", traceback.format_exc() + r.log()[-1500:])
finally:
    r.cleanup()
t.done()
