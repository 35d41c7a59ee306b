#!/usr/bin/python3
"""tls_user_throttle - AUTH failures also count per user name, across
addresses (credential stuffing from many IPs): after
AUTH_USER_FAIL_LIMIT (30, relayd/auth_throttle.h) failures for one name
from 10 addresses, each far below its own limit, the name is refused
with "454 4.7.0" even with the right password, from any address; other
names are not affected; the block is logged.  (The cap on how long a
name can be held refused is in t/unit/test_auth.)
Runs in about 10 s: the failures go through 10 sessions in parallel.
"""
import os
import sys
import threading
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from relaydtest import TAP, Relayd                      # noqa: E402
from tls_common import finish, plain, session           # noqa: E402

AUTH_USER_FAIL_LIMIT = 30
SOURCES = ["127.0.10.%d" % i for i in range(1, 11)]


def fail_some(port, src, n, codes):
    c, greet, _, _, _ = session(port, source=src)
    for i in range(n):
        codes.append(c.cmd("AUTH PLAIN " + plain("alice", "guess-%s-%d" % (src, i)))[:3])
    c.quit()


def login(port, src, user, password):
    c, greet, _, _, _ = session(port, source=src)
    rep = c.cmd("AUTH PLAIN " + plain(user, password))
    c.quit()
    return rep


t = TAP()
r = Relayd(users={"alice": "secret", "bob": "hunter2"})
t0 = time.time()
try:
    r.start()
    t.ok(login(r.port_sub, "127.0.11.1", "alice", "secret").startswith("235"),
         "alice may log in before the attack")
    per = AUTH_USER_FAIL_LIMIT // len(SOURCES)
    codes = []
    threads = [threading.Thread(target=fail_some, args=(r.port_sub, src, per, codes))
               for src in SOURCES]
    for th in threads:
        th.start()
    for th in threads:
        th.join(60)
    t.eq(codes, ["535"] * AUTH_USER_FAIL_LIMIT,
         "%d failures for alice from %d addresses (%d each): all 535"
         % (AUTH_USER_FAIL_LIMIT, len(SOURCES), per))
    t.ok(r.wait_log("too many authentication failures for user alice"),
         "log: the user name's block")
    rep = login(r.port_sub, "127.0.11.2", "alice", "secret")
    t.ok(rep.startswith("454 4.7.0"),
         "alice, right password, from a fresh address -> 454 4.7.0", rep)
    t.ok(r.wait_log("AUTH refused: user alice is blocked"), "log: the refusal")
    rep = login(r.port_sub, "127.0.11.3", "bob", "hunter2")
    t.ok(rep.startswith("235"), "bob is not affected", rep)
    rep = login(r.port_sub, SOURCES[0], "bob", "hunter2")
    t.ok(rep.startswith("235"),
         "an address with %d failures is not blocked by the name's block" % per, rep)
    elapsed = time.time() - t0
    t.ok(elapsed < 40, "test took %.1f s (< 40 s)" % elapsed)
except Exception:
    t.ok(False, "no unexpected exception", traceback.format_exc())
finally:
    finish(t, r)
    r.cleanup()
t.done()
