#!/usr/bin/python3
"""IPv6 trouble falls back to IPv4 in the same attempt: an MX whose IPv6
address answers MAIL with a 5xx about reverse DNS (PTR) gets the message
over its IPv4 address instead of bouncing it."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from relaydtest import TAP, Relayd, free_port  # noqa: E402
from smtpc_common import Sink  # noqa: E402
from deliver_common import submit, wait_for, records, removed, RELAY_RE  # noqa: E402
import dnstest  # noqa: E402

ZONE = """
dual MX 10 mx.dual
mx.dual AAAA ::1
mx.dual A 127.0.0.16
"""

t = TAP()
dns = dnstest.DNS(ZONE)
port = free_port("127.0.0.16")
hops = []
r = None
try:
    v6 = Sink("::1", port=port,
              replies={"MAIL": "550 5.7.1 IPv6 sender has no PTR record (reverse DNS)"}).start()
    hops.append(v6)
    v4 = Sink("127.0.0.16", port=port).start()
    hops.append(v4)
    r = Relayd(conf="dns_servers = 127.0.0.1:%d\ndelivery_port = %d\n" % (dns.port, port))
    r.env = dict(os.environ, RELAYD_PREFER_IPV6="1")
    r.start()
    q = submit(r, ["u@dual.test"])
    t.ok(wait_for(lambda: removed(r, q)), "delivered", r.log()[-2000:])
    t.ok(v6.mails, "IPv6 was tried first")
    rec = records(r, q)
    t.ok(len(rec) == 1 and rec[0][4] == "sent" and
         RELAY_RE.match(rec[0][2]).group(2) == "127.0.0.16",
         "sent over IPv4 to the same MX, not bounced", rec)
    t.eq(len(v4.messages), 1, "one copy over IPv4")
    t.ok(r.sanitizer_clean(), "no sanitizer report")
    t.eq(r.stop(), 0, "clean stop")
finally:
    if r:
        r.cleanup()
    for h in hops:
        h.stop()
    dns.stop()
t.done()
