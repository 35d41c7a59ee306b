#!/usr/bin/python3
"""TLS and AUTH on the way out: a relayhost with AUTH over STARTTLS;
tls_policy 'encrypt' against a hop without STARTTLS defers; 'verify'
against a self-signed hop defers, against a hop whose certificate comes
from the test CA (tls_ca_file) delivers; the policy file is read again
at a reload."""
import os
import signal
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from relaydtest import TAP, Relayd, free_port  # noqa: E402
from smtpc_common import Sink, make_ca, make_leaf, make_self_signed  # noqa: E402
from deliver_common import submit, wait_for, records, removed  # noqa: E402
import dnstest  # noqa: E402

ZONE = """
plain A 127.0.0.51
self A 127.0.0.52
good A 127.0.0.53
"""

t = TAP()
tmp = tempfile.mkdtemp(prefix="relayd-dtls-")
os.chmod(tmp, 0o755)
ca = make_ca(tmp)
leaf = make_leaf(tmp, ca, "good.test")
selfc = make_self_signed(tmp, "self.test")
for f in os.listdir(tmp):
    os.chmod(os.path.join(tmp, f), 0o644)
hops, relays = [], []
dns = dnstest.DNS(ZONE)
try:
    # relayhost with AUTH over TLS
    auth = Sink("127.0.0.2", tls=selfc, auth=("bob", "pw"), require_auth=True).start()
    hops.append(auth)
    r = Relayd(conf="relayhost = [127.0.0.2]:%d\nrelayhost_auth = bob:pw\n" % auth.port)
    relays.append(r)
    r.start()
    q = submit(r, ["a@x.test"])
    t.ok(wait_for(lambda: removed(r, q)), "sent through the relayhost", r.log()[-2000:])
    m = auth.messages[0] if auth.messages else {}
    t.ok(m.get("tls") and m.get("auth"), "over TLS, authenticated")
    t.eq([x[1:3] for x in auth.logins], [("bob", "pw")], "the relayhost_auth credentials")
    t.eq(r.stop(), 0, "clean stop")

    port = free_port("127.0.0.51")
    plain = Sink("127.0.0.51", port=port).start()
    selfhop = Sink("127.0.0.52", port=port, tls=selfc).start()
    good = Sink("127.0.0.53", port=port, tls=leaf).start()
    hops += [plain, selfhop, good]
    policy = os.path.join(tmp, "tls_policy")
    with open(policy, "w") as f:
        f.write("# test policy\nplain.test encrypt\nself.test verify\ngood.test verify\n")
    os.chmod(policy, 0o644)
    r = Relayd(conf="dns_servers = 127.0.0.1:%d\ndelivery_port = %d\ntls_policy = %s\n"
               "tls_ca_file = %s\nretry_min = 1s\nretry_max = 1s\n" % (dns.port, port, policy, ca[0]))
    relays.append(r)
    r.start()
    qp = submit(r, ["u@plain.test"])
    qs = submit(r, ["u@self.test"])
    qg = submit(r, ["u@good.test"])
    t.ok(wait_for(lambda: removed(r, qg)), "verify: CA-signed hop delivered", r.log()[-2000:])
    t.ok(good.messages and good.messages[0]["tls"], "over TLS")
    t.ok(wait_for(lambda: records(r, qp) and records(r, qs)), "the other two attempted")
    rp, rs = records(r, qp), records(r, qs)
    t.ok(rp and rp[0][4] == "deferred" and rp[0][3].startswith("4.7"),
         "encrypt without STARTTLS: deferred 4.7.x", rp[:1])
    t.ok(rs and rs[0][4] == "deferred", "verify against a self-signed hop: deferred", rs[:1])
    t.eq((len(plain.messages), len(selfhop.messages)), (0, 0), "nothing sent to either")
    # reload: the policy no longer asks for encryption of plain.test
    with open(policy, "w") as f:
        f.write("self.test verify\n")
    r.signal(signal.SIGHUP)
    t.ok(wait_for(lambda: removed(r, qp), timeout=20), "after the reload plain.test gets it",
         r.log()[-2000:])
    t.ok(r.sanitizer_clean(), "no sanitizer report")
    t.eq(r.stop(), 0, "clean stop")
finally:
    for x in relays:
        x.cleanup()
    for h in hops:
        h.stop()
    dns.stop()
t.done()
