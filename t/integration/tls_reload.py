#!/usr/bin/python3
"""tls_reload - SIGHUP reloads the certificate and the credentials
without dropping sessions (DESIGN §4): an open TLS session survives and
completes a message, new connections get the new certificate; a broken
certificate (garbage, or a key that does not match) is refused with a log
line and the previous certificate stays in use; a changed passwd file
takes effect.  Clients: smtplib, openssl s_client, swaks.
"""
import os
import re
import shutil
import signal
import smtplib
import sys
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from relaydtest import TAP, Relayd, crypt_hash, make_cert   # noqa: E402
from tls_common import (cert_cn_der, cert_fingerprint_der, cert_fingerprint_file,  # noqa: E402
                        no_verify_ctx, queued_id, s_client, smtp, swaks,
                        wait_count, finish)

RELOADED = "reload: configuration"
KEPT = "reload: keeping the running configuration"

t = TAP()
r = Relayd()


def new_session():
    """smtplib on the submission port, through STARTTLS and EHLO."""
    s = smtp(r.port_sub)
    s.ehlo("client.test")
    s.starttls(context=no_verify_ctx())
    s.ehlo("client.test")
    return s


def peer(s):
    der = s.sock.getpeercert(binary_form=True)
    return cert_cn_der(der), cert_fingerprint_der(der)


def s_client_cn(port, starttls):
    args = ["-starttls", "smtp"] if starttls else []
    rc, out, err = s_client(port, *args)
    m = re.search(r"^subject=.*CN\s*=\s*([^,\s]+)", out, re.M)
    return (m.group(1) if m else None), rc, out[-800:] + err


def send_message(s, subject):
    code, _ = s.mail("alice@example.org")
    if code != 250:
        return code, None
    s.rcpt("bob@example.net")
    code, msg = s.data(("Subject: %s\r\n\r\nbody\r\n" % subject).encode())
    return code, queued_id(msg.decode("utf-8", "replace"))


def alive():
    return r.proc.poll() is None


try:
    r.start()
    old_fp = cert_fingerprint_file(r.cert)

    # A session opened under the first certificate, authenticated.
    a = new_session()
    cn, fp = peer(a)
    t.ok(cn == "relayd.test" and fp == old_fp, "before reload: the certificate is CN=relayd.test",
         (cn, fp, old_fp))
    code, _ = a.login("alice", "secret")
    t.eq(code, 235, "open session: AUTH 235")

    # ---- new certificate in the same paths, SIGHUP ----
    make_cert(r.dir, "new.test")
    new_fp = cert_fingerprint_file(r.cert)
    t.ok(new_fp != old_fp, "a new certificate was written to the same paths")
    r.signal(signal.SIGHUP)
    t.ok(wait_count(r, RELOADED, 1), "log: the reload is announced", r.log()[-1500:])
    t.ok(alive(), "relayd runs after SIGHUP")

    code, qid = send_message(a, "across reload")
    t.ok(code == 250 and qid, "the session opened before SIGHUP completes a message", (code, qid))
    t.ok(qid in r.queue_ids(), "that message is queued")
    code, _ = a.noop()
    t.eq(code, 250, "the old session keeps working (NOOP)")

    b = new_session()
    cn, fp = peer(b)
    t.ok(cn == "new.test" and fp == new_fp, "a new STARTTLS connection gets the new certificate",
         (cn, fp, new_fp))
    code, _ = b.login("alice", "secret")
    t.eq(code, 235, "new connection: AUTH 235")
    b.quit()
    cn, rc, diag = s_client_cn(r.port_subs, starttls=False)
    t.eq(cn, "new.test", "465 (s_client): the new certificate")
    cn, rc, diag = s_client_cn(r.port_smtp, starttls=True)
    t.eq(cn, "new.test", "smtp port (s_client -starttls smtp): the new certificate")

    # ---- a garbage certificate: refused, the previous one stays ----
    good_cert = open(r.cert, "rb").read()
    with open(r.cert, "w") as f:
        f.write("this is not a certificate\n")
    r.signal(signal.SIGHUP)
    t.ok(wait_count(r, KEPT, 1), "garbage certificate: log says the running configuration is kept",
         r.log()[-1500:])
    t.ok(alive(), "garbage certificate: relayd still runs")
    tail = r.log().split(RELOADED)[-1]
    t.ok(any(("TLS" in l or "reload" in l) and r.cert in l for l in tail.splitlines()),
         "garbage certificate: a log line says why, naming %s" % r.cert, tail)
    try:
        c = new_session()
        cn, fp = peer(c)
        t.ok(cn == "new.test" and fp == new_fp,
             "garbage certificate: new connections still get the previous certificate", (cn, fp))
        code, _ = c.login("alice", "secret")
        t.eq(code, 235, "garbage certificate: AUTH still works")
        c.quit()
    except (OSError, smtplib.SMTPException) as e:
        t.ok(False, "garbage certificate: new connections still handshake", repr(e))
    code, qid = send_message(a, "after failed reload")
    t.ok(code == 250 and qid, "the first session still completes a message", (code, qid))

    # ---- a certificate that does not match the key ----
    other = os.path.join(r.dir, "other")
    os.mkdir(other)
    other_cert, _ = make_cert(other, "other.test")
    shutil.copyfile(other_cert, r.cert)          # key.pem stays new.test's
    r.signal(signal.SIGHUP)
    t.ok(wait_count(r, KEPT, 2), "mismatched key: log says the running configuration is kept",
         r.log()[-1500:])
    tail = r.log().split(KEPT)[-2]
    t.ok(re.search(r"TLS.*(match|mismatch)", tail),
         "mismatched key: the log line says the key does not match", tail)
    cn, rc, diag = s_client_cn(r.port_subs, starttls=False)
    t.eq(cn, "new.test", "mismatched key: 465 still serves the previous certificate")

    # ---- credentials: a changed passwd file takes effect on SIGHUP ----
    with open(r.cert, "wb") as f:
        f.write(good_cert)
    with open(r.passwd, "w") as f:
        f.write("alice:%s\ncarol:%s\n" % (crypt_hash("changed"), crypt_hash("pw2")))
    r.signal(signal.SIGHUP)
    t.ok(wait_count(r, RELOADED, 2), "passwd change: reload announced", r.log()[-1500:])
    rc, out, err = swaks(r.port_sub, "--tls", "--auth", "PLAIN", "--auth-user", "alice",
                         "--auth-password", "secret", "--quit-after", "AUTH")
    t.ok("535 5.7.8" in out, "after reload alice's old password -> 535", out[-800:])
    rc, out, err = swaks(r.port_sub, "--tls", "--auth", "PLAIN", "--auth-user", "alice",
                         "--auth-password", "changed", "--quit-after", "AUTH")
    t.ok(rc == 0 and "235 2.7.0" in out, "after reload alice's new password -> 235", out[-800:])
    rc, out, err = swaks(r.port_sub, "--tls", "--auth", "LOGIN", "--auth-user", "carol",
                         "--auth-password", "pw2", "--quit-after", "AUTH")
    t.ok(rc == 0 and "235 2.7.0" in out, "after reload the new user carol -> 235", out[-800:])
    code, _ = a.noop()
    t.eq(code, 250, "the first session survived four SIGHUPs")
    a.quit()
except Exception:
    t.ok(False, "no unexpected exception", traceback.format_exc())
finally:
    finish(t, r)
    r.cleanup()
t.done()
