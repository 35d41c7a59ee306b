#!/usr/bin/python3
"""tls_throttle - the AUTH brute-force throttle (DESIGN §7): failed AUTH
replies come slower as failures from one address grow; after
AUTH_FAIL_LIMIT (10, relayd/auth.h) failures the reply is 421 4.7.0 and
the connection closes; the address is then refused at connect on the
submission ports and refused AUTH on the smtp port; other addresses are
not affected; every failure is logged in fail2ban's (Postfix's) format.
Clients: smtplib, swaks, a raw socket.  Runs in well under 30 s.
"""
import os
import smtplib
import socket
import sys
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from relaydtest import TAP, Relayd                      # noqa: E402
from tls_common import (b64, no_verify_ctx, plain, session, smtp, smtp_ssl,  # noqa: E402
                        swaks, finish)

AUTH_FAIL_LIMIT = 10

t = TAP()
r = Relayd()
t0 = time.time()
try:
    r.start()
    s = smtp(r.port_sub)
    s.ehlo("client.test")
    s.starttls(context=no_verify_ctx())
    s.ehlo("client.test")

    # Failures 1..9: PLAIN and LOGIN, known and unknown users all count.
    times, codes = [], []
    for i in range(1, AUTH_FAIL_LIMIT):
        user = "alice" if i % 2 else "mallory"
        start = time.monotonic()
        if i in (5, 6):
            s.docmd("AUTH", "LOGIN")
            s.docmd(b64(user))
            code, msg = s.docmd(b64("bad%d" % i))
        else:
            code, msg = s.docmd("AUTH", "PLAIN " + plain(user, "bad%d" % i))
        times.append(time.monotonic() - start)
        codes.append((code, msg.decode(errors="replace")))
    t.diag("failure reply times (s): " + ", ".join("%.3f" % x for x in times))
    t.ok(all(c == 535 and m.startswith("5.7.8") for c, m in codes),
         "failures 1..%d -> 535 5.7.8" % (AUTH_FAIL_LIMIT - 1), codes)
    t.ok(times[0] >= 0.05, "the first failure is already delayed (%.3f s)" % times[0])
    t.ok(times[-1] >= times[0] + 0.5,
         "the 9th failure is answered much later than the 1st (%.3f s vs %.3f s)"
         % (times[-1], times[0]))
    t.ok(all(times[i + 1] >= times[i] - 0.09 for i in range(len(times) - 1)),
         "reply delays do not shrink as failures grow", times)

    # Failure 10: refused, and the connection closes.
    code, msg = s.docmd("AUTH", "PLAIN " + plain("alice", "bad10"))
    t.ok(code == 421 and msg.startswith(b"4.7.0"),
         "failure %d -> 421 4.7.0" % AUTH_FAIL_LIMIT, (code, msg))
    try:
        code, msg = s.noop()
        closed = code == -1
    except (smtplib.SMTPServerDisconnected, OSError):
        closed = True
    t.ok(closed, "the connection is closed after the 421")
    s.close()

    log = r.log()
    n = (log.count("warning: unknown[127.0.0.1]: SASL PLAIN authentication failed")
         + log.count("warning: unknown[127.0.0.1]: SASL LOGIN authentication failed"))
    t.eq(n, AUTH_FAIL_LIMIT, "log: one fail2ban-format warning per failure")
    t.ok("warning: unknown[127.0.0.1]: SASL PLAIN authentication failed" in log
         and "warning: unknown[127.0.0.1]: SASL LOGIN authentication failed" in log,
         "log: 'warning: unknown[127.0.0.1]: SASL PLAIN|LOGIN authentication failed'")
    t.ok("too many authentication failures" in log, "log: the refusal is logged")

    # Now refused at connect on the submission port...
    try:
        s = smtp(r.port_sub)
        t.ok(False, "submission: new connection -> 421 at connect", s.ehlo())
        s.close()
    except smtplib.SMTPConnectError as e:
        t.ok(e.smtp_code == 421 and e.smtp_error.startswith(b"4.7.0"),
             "submission: new connection -> 421 4.7.0 at connect", repr(e))
    rc, out, err = swaks(r.port_sub, "--tls", "--auth", "PLAIN", "--auth-user", "alice",
                         "--auth-password", "secret", "--quit-after", "AUTH")
    t.ok(rc not in (0, None) and "<** 421 4.7.0" in out.replace("<**  ", "<** "),
         "swaks: submission refused with 421 4.7.0 at connect", (rc, out[-800:], err))
    # ...and on 465, where the 421 must come over TLS.
    try:
        s = smtp_ssl(r.port_subs)
        t.ok(False, "465: new connection -> 421 over TLS", s.ehlo())
        s.close()
    except smtplib.SMTPConnectError as e:
        t.ok(e.smtp_code == 421, "465: new connection -> 421 over TLS", repr(e))
    except OSError as e:
        raw = b""
        try:
            with socket.create_connection(("127.0.0.1", r.port_subs), timeout=5) as k:
                raw = k.recv(200)        # before any ClientHello
        except OSError:
            pass
        t.ok(False, "465: new connection -> 421 over TLS",
             "the client saw %r: relayd wrote its 421 in cleartext before the TLS "
             "handshake; a raw connection reads %r" % (e, raw))

    # The smtp port still greets (trusted relays need no AUTH), but AUTH
    # is refused even with the right password.
    c, greet, e1, st, e2 = session(r.port_smtp)
    t.ok(greet.startswith("220 "), "smtp port: still greets the throttled address", greet)
    rep = c.cmd("AUTH PLAIN " + plain("alice", "secret"))
    t.ok(rep.startswith("421 4.7.0"), "smtp port: AUTH (right password) while blocked -> 421 4.7.0",
         rep)
    t.ok(c.closed(timeout=5), "smtp port: closed after the 421")
    c.close()

    # Another address is not affected.
    s = smtp(r.port_sub, source="127.0.0.2")
    s.ehlo("client.test")
    s.starttls(context=no_verify_ctx())
    s.ehlo("client.test")
    code, msg = s.login("alice", "secret")
    t.eq(code, 235, "127.0.0.2 may still AUTH (the throttle is per address)")
    s.quit()

    # A valid login does not wipe an address's failures: with one good
    # account an attacker must not get unlimited guesses at the others.
    def fail_once(src):
        k = smtp(r.port_sub, source=src)
        k.ehlo("client.test")
        k.starttls(context=no_verify_ctx())
        k.ehlo("client.test")
        code, _ = k.docmd("AUTH", "PLAIN " + plain("mallory", "guess"))
        try:
            k.quit()
        except (smtplib.SMTPServerDisconnected, OSError):
            pass
        return code

    codes = [fail_once("127.0.0.3") for _ in range(5)]
    k = smtp(r.port_sub, source="127.0.0.3")
    k.ehlo("client.test")
    k.starttls(context=no_verify_ctx())
    k.ehlo("client.test")
    t.eq(k.login("alice", "secret")[0], 235, "127.0.0.3: a valid login after 5 failures")
    k.quit()
    codes += [fail_once("127.0.0.3") for _ in range(AUTH_FAIL_LIMIT - 5)]
    t.eq(codes[:-1], [535] * (AUTH_FAIL_LIMIT - 1),
         "127.0.0.3: failures before and after the login -> 535")
    t.eq(codes[-1], 421, "127.0.0.3: the %dth failure is still refused with 421 "
         "(the login did not reset the count)" % AUTH_FAIL_LIMIT)

    elapsed = time.time() - t0
    t.ok(elapsed < 40, "throttle test took %.1f s (< 40 s)" % elapsed)
except Exception:
    t.ok(False, "no unexpected exception", traceback.format_exc())
finally:
    finish(t, r)
    r.cleanup()
t.done()
