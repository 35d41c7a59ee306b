#!/usr/bin/python3
"""tls_sender - sender ownership after AUTH (sender_login_map,
sender_login_policy; DESIGN §5): who may use which MAIL FROM, the 553
reply and log line, and the start-up warning when no map is set.
Clients: smtplib, swaks.  Three relayd instances, one per policy.
"""
import os
import sys
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from relaydtest import TAP, Relayd                      # noqa: E402
from tls_common import no_verify_ctx, queued_id, smtp, swaks, finish  # noqa: E402

WARNING = "any authenticated user may use any sender"
t = TAP()


def login(r, user, password):
    s = smtp(r.port_sub)
    s.ehlo("client.test")
    s.starttls(context=no_verify_ctx())
    s.ehlo("client.test")
    s.login(user, password)
    return s


def try_sender(s, addr):
    """MAIL FROM:<addr> then RSET; (code, text)."""
    code, msg = s.mail(addr)
    s.rset()
    return code, msg.decode("utf-8", "replace")


def started(r, name):
    try:
        r.start()
        return True
    except RuntimeError as e:
        t.ok(False, "%s starts" % name, str(e))
        return False


# ---- with a map ----
r = Relayd(users={"alice": "secret", "bob": "pw"},
           sender_map="alice: alice@example.org, @sales.example\n")
try:
    if started(r, "relayd with sender_login_map"):
        t.ok(WARNING not in r.log(), "map set: no 'any sender' warning at start",
             r.log()[-1500:])
        s = login(r, "alice", "secret")
        code, msg = try_sender(s, "alice@example.org")
        t.eq(code, 250, "alice may send as alice@example.org")
        code, msg = try_sender(s, "x@sales.example")
        t.eq(code, 250, "alice may send as x@sales.example (@sales.example)")
        code, msg = try_sender(s, "bob@example.org")
        t.ok(code == 553 and msg.startswith("5.7.1") and "not owned by user alice" in msg,
             "alice as bob@example.org -> 553 5.7.1 ... not owned by user alice", (code, msg))
        code, msg = try_sender(s, "alice@example.org.evil")
        t.eq(code, 553, "alice as alice@example.org.evil -> 553")
        code, msg = try_sender(s, "x@evilsales.example")
        t.eq(code, 553, "alice as x@evilsales.example -> 553 (no suffix match)")
        # After the refusal the session goes on: a full message as alice.
        s.mail("alice@example.org")
        s.rcpt("carol@example.net")
        code, msg = s.data(b"Subject: owned\r\n\r\nhi\r\n")
        t.ok(code == 250 and queued_id(msg.decode()), "alice's own sender: message queued",
             (code, msg))
        s.quit()
        t.ok(r.wait_log("NOQUEUE: reject: MAIL from unknown[127.0.0.1]: 553 5.7.1 "
                        "<bob@example.org>: Sender address rejected: not owned by user alice"),
             "log: NOQUEUE reject ... not owned by user alice", r.log()[-1500:])

        s = login(r, "bob", "pw")
        for addr in ("bob@example.org", "alice@example.org", "x@sales.example"):
            code, msg = try_sender(s, addr)
            t.ok(code == 553 and "not owned by user bob" in msg,
                 "bob (not in the map) as %s -> 553" % addr, (code, msg))
        s.quit()

        # swaks, the client an admin would use to check this
        rc, out, err = swaks(r.port_sub, "--tls", "--auth", "PLAIN", "--auth-user", "alice",
                             "--auth-password", "secret", "--from", "bob@example.org",
                             "--to", "carol@example.net")
        t.ok(rc not in (0, None) and "553 5.7.1" in out,
             "swaks as alice with MAIL FROM bob@example.org -> 553", (rc, out[-1000:], err))
except Exception:
    t.ok(False, "no unexpected exception (map)", traceback.format_exc())
finally:
    finish(t, r, "relayd with map")
    r.cleanup()

# ---- no map, default policy (map): warning, any sender ----
r = Relayd()
try:
    if started(r, "relayd without map"):
        t.ok(r.wait_log(WARNING, timeout=5),
             "no map, default policy: start-up warns that any user may use any sender",
             r.log()[-1500:])
        t.ok(any(WARNING in l and "warning" in l for l in r.log().splitlines()),
             "the start-up message is a warning")
        s = login(r, "alice", "secret")
        code, msg = try_sender(s, "bob@example.org")
        t.eq(code, 250, "no map: alice may send as bob@example.org")
        s.quit()
except Exception:
    t.ok(False, "no unexpected exception (no map)", traceback.format_exc())
finally:
    finish(t, r, "relayd without map")
    r.cleanup()

# ---- no map, sender_login_policy = any: no warning ----
r = Relayd(conf="sender_login_policy = any\n")
try:
    if started(r, "relayd with policy any"):
        r.wait_log("daemon started", timeout=5)
        t.ok(WARNING not in r.log(), "sender_login_policy = any: no warning at start",
             r.log()[-1500:])
        s = login(r, "alice", "secret")
        code, msg = try_sender(s, "anyone@example.com")
        t.eq(code, 250, "policy any: alice may send as anyone@example.com")
        s.quit()
except Exception:
    t.ok(False, "no unexpected exception (policy any)", traceback.format_exc())
finally:
    finish(t, r, "relayd with policy any")
    r.cleanup()

# ---- a map with sender_login_policy = any: the map is not enforced ----
r = Relayd(conf="sender_login_policy = any\n", users={"alice": "secret", "bob": "pw"},
           sender_map="alice: alice@example.org\n")
try:
    if started(r, "relayd with map and policy any"):
        s = login(r, "bob", "pw")
        code, msg = try_sender(s, "alice@example.org")
        t.eq(code, 250, "map + policy any: bob (not in the map) may send as alice@example.org")
        s.quit()
except Exception:
    t.ok(False, "no unexpected exception (map + any)", traceback.format_exc())
finally:
    finish(t, r, "relayd with map and policy any")
    r.cleanup()
t.done()
