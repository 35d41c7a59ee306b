#!/usr/bin/python3
"""tls_auth_flood - password checks in flight and waiting are bounded
(relayd/auth_queue.h): 30 sessions from one address sending AUTH at the
same moment get at most 8 checks waiting for that address; the rest are
answered "454 4.7.0 Temporary authentication failure" at once, without
a check; meanwhile a valid user from another address logs in; nothing
hangs.  Runs in a few seconds.
"""
import os
import sys
import threading
import time
import traceback
import warnings

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from relaydtest import TAP, Relayd                      # noqa: E402
from tls_common import finish, plain, session           # noqa: E402

SESSIONS = 30
PER_CLIENT = 8                  # waiting checks per client

t = TAP()
# The per-client bound follows client_connection_limit (at least 8).
r = Relayd(conf="client_connection_limit = %d\n" % PER_CLIENT)
clients = []
try:
    # A slow hash (about 0.1 s a check), so the 30 AUTHs all arrive
    # while the first checks run, however slow this build is.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import crypt
    with open(r.passwd, "w") as f:
        f.write("alice:%s\n" % crypt.crypt("secret", "$6$rounds=200000$floodtest"))
    r.start()
    for _ in range(SESSIONS):
        c, greet, _, _, e2 = session(r.port_sub, source="127.0.20.1")
        clients.append(c)
    t.ok(len(clients) == SESSIONS, "%d TLS sessions from 127.0.20.1" % SESSIONS)
    barrier = threading.Barrier(SESSIONS)
    replies = [None] * SESSIONS

    def guess(i):
        c = clients[i]
        barrier.wait(10)
        try:
            start = time.monotonic()
            rep = c.cmd("AUTH PLAIN " + plain("user%d" % i, "guess"))
            replies[i] = (rep, time.monotonic() - start)
        except OSError as e:
            replies[i] = ("error %s" % e, 0)

    threads = [threading.Thread(target=guess, args=(i,)) for i in range(SESSIONS)]
    for th in threads:
        th.start()
    c, greet, _, _, _ = session(r.port_sub, source="127.0.21.1")
    start = time.monotonic()
    rep = c.cmd("AUTH PLAIN " + plain("alice", "secret"))
    took = time.monotonic() - start
    c.quit()
    for th in threads:
        th.join(30)
    t.ok(rep.startswith("235"), "a valid user from another address logs in (%.3f s)" % took, rep)
    codes = [x[0][:9] for x in replies if x]
    busy = [x for x in replies if x and x[0].startswith("454 4.7.0 Temporary authentication failure")]
    t.eq(len(codes), SESSIONS, "every flooding session got a reply")
    t.ok(len(busy) >= SESSIONS - PER_CLIENT - 4,
         "at most %d checks waiting (plus those in flight): %d of %d refused with 454 4.7.0"
         % (PER_CLIENT, len(busy), SESSIONS), sorted(codes))
    t.ok(all(x[1] < 1.0 for x in busy), "the 454s come at once, without a check",
         [round(x[1], 3) for x in busy])
    t.ok(all(x[0][:3] in ("454", "535", "421") for x in replies if x),
         "the others are checked and fail (535, or 421 once the address is blocked)",
         sorted(codes))
    t.ok(r.wait_log("AUTH refused: too many password checks waiting"), "log: the refusals")
    for c in clients:
        c.close()
except Exception:
    t.ok(False, "no unexpected exception", traceback.format_exc())
finally:
    for c in clients:
        c.close()
    finish(t, r)
    r.cleanup()

# An application server opening 20 connections at once with the right
# password is not a flood: with the default client_connection_limit every
# login waits its turn and succeeds, none gets 454.
BURST = 20
r2 = Relayd()
burst = []
try:
    with open(r2.passwd, "w") as f:
        f.write("app:%s\n" % crypt.crypt("secret", "$6$rounds=200000$bursttest"))
    r2.start()
    for _ in range(BURST):
        c, _, _, _, _ = session(r2.port_sub, source="127.0.22.1")
        burst.append(c)
    barrier2 = threading.Barrier(BURST)
    answers = [None] * BURST

    def login(i):
        barrier2.wait(10)
        try:
            answers[i] = burst[i].cmd("AUTH PLAIN " + plain("app", "secret"))
        except OSError as e:
            answers[i] = "error %s" % e

    threads = [threading.Thread(target=login, args=(i,)) for i in range(BURST)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(60)
    t.ok(all(a and a.startswith("235") for a in answers),
         "%d simultaneous logins of one valid user from one address: all 235" % BURST,
         sorted(str(a)[:9] for a in answers))
except Exception:
    t.ok(False, "no unexpected exception (burst)", traceback.format_exc())
finally:
    for c in burst:
        c.close()
    finish(t, r2)
    r2.cleanup()
t.done()
