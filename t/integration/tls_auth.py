#!/usr/bin/python3
"""tls_auth - SMTP AUTH PLAIN and LOGIN (RFC 4954, 4616) under TLS: the
replies for good, bad, unknown, malformed and cancelled credentials, AUTH
before TLS, a message submitted after AUTH (log line and Received:
header), and the relay policy for an untrusted address on port 25.
Clients: swaks, smtplib, a raw socket.
"""
import os
import re
import sys
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from relaydtest import TAP, Relayd                      # noqa: E402
from tls_common import (TLSClient, b64, ehlo_keywords, no_verify_ctx,  # noqa: E402
                        plain, queued_id, session, smtp, swaks, finish)

t = TAP()
# Only 127.0.0.1 is trusted, so 127.0.0.2 plays an outside client.
r = Relayd(conf="trusted_networks = 127.0.0.1/32\n")
FAIL = "535 5.7.8 Error: authentication failed: authentication failure"
try:
    r.start()

    # ---- before TLS: AUTH neither offered nor accepted ----
    for name, port in (("submission", r.port_sub), ("smtp", r.port_smtp)):
        c = TLSClient(port)
        c.reply()
        e = c.cmd("EHLO client.test")
        t.ok("AUTH" not in ehlo_keywords(e), "%s: AUTH not advertised before TLS" % name, e)
        rep = c.cmd("AUTH PLAIN " + plain("alice", "secret"))
        t.ok(rep.startswith("538 5.7.11"), "%s: AUTH PLAIN before TLS -> 538 5.7.11" % name, rep)
        rep = c.cmd("AUTH LOGIN")
        t.ok(rep.startswith("538 5.7.11"), "%s: AUTH LOGIN before TLS -> 538 5.7.11" % name, rep)
        rep = c.cmd("MAIL FROM:<alice@example.org>")
        if name == "submission":
            t.ok(rep.startswith("530 5.7.0"), "submission: MAIL without AUTH -> 530 5.7.0", rep)
        c.quit()

    # ---- AUTH PLAIN ----
    c, greet, e1, st, e2 = session(r.port_sub)
    t.ok(st.startswith("220") and "250-AUTH PLAIN LOGIN" in e2,
         "submission: STARTTLS then EHLO offers AUTH PLAIN LOGIN", e2)
    rep = c.cmd("AUTH PLAIN " + plain("alice", "wrong"))
    t.eq(rep, FAIL, "PLAIN bad password -> 535 5.7.8")
    rep = c.cmd("AUTH PLAIN " + plain("nosuchuser", "secret"))
    t.eq(rep, FAIL, "PLAIN unknown user -> the same 535 text (no enumeration)")
    rep = c.cmd("AUTH PLAIN !!!!")
    t.ok(rep.startswith("501 5.5.2"), "PLAIN malformed base64 (bad alphabet) -> 501 5.5.2", rep)
    rep = c.cmd("AUTH PLAIN YWxpY2U")
    t.ok(rep.startswith("501 5.5.2"), "PLAIN malformed base64 (bad length) -> 501 5.5.2", rep)
    rep = c.cmd("AUTH PLAIN")
    t.ok(rep in ("334 ", "334"), "PLAIN without initial response -> empty 334", repr(rep))
    rep = c.cmd("*")
    t.ok(rep.startswith("501"), "PLAIN: '*' cancels -> 501", rep)
    rep = c.cmd("AUTH PLAIN " + plain("alice", "secret", authzid="bob"))
    t.ok(not rep.startswith("235"), "PLAIN: alice may not authorize as bob", rep)
    rep = c.cmd("AUTH CRAM-MD5")
    t.ok(rep.startswith("504"), "unsupported mechanism -> 504", rep)
    rep = c.cmd("AUTH PLAIN")
    t.ok(rep.startswith("334"), "PLAIN without initial response: 334", rep)
    rep = c.cmd(plain("alice", "secret"))
    t.ok(rep.startswith("235 2.7.0"), "PLAIN: response after 334 -> 235 2.7.0", rep)
    rep = c.cmd("AUTH PLAIN " + plain("alice", "secret"))
    t.ok(rep.startswith("503 5.5.1"), "AUTH twice -> 503 5.5.1", rep)
    rep = c.cmd("EHLO client.test")
    t.ok(rep.startswith("250"), "EHLO after AUTH still 250", rep)
    c.quit()

    c, *_ = session(r.port_sub)
    rep = c.cmd("AUTH PLAIN " + plain("alice", "secret"))
    t.ok(rep.startswith("235 2.7.0"), "PLAIN with initial response -> 235 2.7.0", rep)
    c.quit()

    # AUTH after STARTTLS but before the new EHLO
    c = TLSClient(r.port_sub)
    c.reply()
    c.cmd("EHLO client.test")
    c.starttls()
    rep = c.cmd("AUTH PLAIN " + plain("alice", "secret"))
    t.ok(rep.startswith("503 5.5.1"), "AUTH after STARTTLS without a new EHLO -> 503 5.5.1", rep)
    c.quit()

    # ---- AUTH LOGIN ----
    c, *_ = session(r.port_sub)
    rep = c.cmd("AUTH LOGIN")
    t.eq(rep, "334 VXNlcm5hbWU6", "LOGIN prompts 334 VXNlcm5hbWU6 (Username:)")
    rep = c.cmd(b64("alice"))
    t.eq(rep, "334 UGFzc3dvcmQ6", "LOGIN prompts 334 UGFzc3dvcmQ6 (Password:)")
    rep = c.cmd(b64("wrong"))
    t.eq(rep, FAIL, "LOGIN bad password -> 535 5.7.8")
    c.cmd("AUTH LOGIN")
    c.cmd(b64("nosuchuser"))
    rep = c.cmd(b64("secret"))
    t.eq(rep, FAIL, "LOGIN unknown user -> the same 535 text")
    c.cmd("AUTH LOGIN")
    rep = c.cmd("%%%%")
    t.ok(rep.startswith("501 5.5.2"), "LOGIN malformed base64 username -> 501 5.5.2", rep)
    c.cmd("AUTH LOGIN")
    c.cmd(b64("alice"))
    rep = c.cmd("*")
    t.ok(rep.startswith("501"), "LOGIN: '*' at the password prompt cancels -> 501", rep)
    rep = c.cmd("NOOP")
    t.ok(rep.startswith("250"), "session usable after a cancelled AUTH", rep)
    rep = c.cmd("AUTH LOGIN " + b64("alice"))
    t.eq(rep, "334 UGFzc3dvcmQ6", "LOGIN with the username as initial response -> Password prompt")
    rep = c.cmd(b64("secret"))
    t.ok(rep.startswith("235 2.7.0"), "LOGIN good credentials -> 235 2.7.0", rep)
    rep = c.cmd("AUTH LOGIN")
    t.ok(rep.startswith("503 5.5.1"), "LOGIN after AUTH -> 503 5.5.1", rep)
    c.quit()

    # ---- swaks ----
    rc, out, err = swaks(r.port_sub, "--tls", "--auth", "PLAIN", "--auth-user", "alice",
                         "--auth-password", "secret", "--quit-after", "AUTH")
    t.ok(rc == 0 and "235 2.7.0" in out, "swaks --tls --auth PLAIN -> 235", (rc, out[-1500:], err))
    rc, out, err = swaks(r.port_sub, "--tls", "--auth", "LOGIN", "--auth-user", "alice",
                         "--auth-password", "secret", "--quit-after", "AUTH")
    t.ok(rc == 0 and "334 VXNlcm5hbWU6" in out and "334 UGFzc3dvcmQ6" in out and "235 2.7.0" in out,
         "swaks --tls --auth LOGIN -> Username/Password prompts, 235", (rc, out[-1500:], err))
    rc, out, err = swaks(r.port_sub, "--tls", "--auth", "PLAIN", "--auth-user", "alice",
                         "--auth-password", "wrong", "--quit-after", "AUTH")
    t.ok(rc not in (0, None) and "535 5.7.8" in out, "swaks bad password -> 535 5.7.8, failure exit",
         (rc, out[-1500:], err))
    rc, out, err = swaks(r.port_subs, "--tlsc", "--auth", "LOGIN", "--auth-user", "alice",
                         "--auth-password", "secret", "--quit-after", "AUTH")
    t.ok(rc == 0 and "<~  220 " in out and "235 2.7.0" in out,
         "swaks --tlsc (465): greeting over TLS, AUTH LOGIN 235", (rc, out[-1500:], err))
    # A whole message with LOGIN: the log names the method.
    rc, out, err = swaks(r.port_sub, "--tls", "--auth", "LOGIN", "--auth-user", "alice",
                         "--auth-password", "secret", "--from", "alice@example.org",
                         "--to", "bob@example.net")
    qid_login = queued_id(out)
    t.ok(rc == 0 and qid_login, "swaks AUTH LOGIN message queued", (rc, out[-1500:], err))
    t.ok(qid_login and r.wait_log("%s: client=unknown[127.0.0.1], sasl_method=LOGIN, "
                                  "sasl_username=alice" % qid_login),
         "log: client=..., sasl_method=LOGIN, sasl_username=alice", r.log()[-2000:])

    # ---- a message after AUTH PLAIN on the submission port (smtplib) ----
    s = smtp(r.port_sub)
    s.ehlo("client.test")
    s.starttls(context=no_verify_ctx())
    s.ehlo("client.test")
    code, msg = s.login("alice", "secret")          # smtplib picks PLAIN
    t.eq(code, 235, "smtplib login (PLAIN) -> 235")
    code, _ = s.mail("alice@example.org")
    t.eq(code, 250, "MAIL after AUTH 250")
    code, _ = s.rcpt("bob@example.net")
    t.eq(code, 250, "RCPT after AUTH 250")
    code, msg = s.data(b"From: alice@example.org\r\nTo: bob@example.net\r\n"
                       b"Subject: tls auth\r\n\r\nbody\r\n")
    qid = queued_id(msg.decode())
    t.ok(code == 250 and qid, "DATA after AUTH: 250 queued as ID", (code, msg))
    s.quit()
    t.ok(qid in r.queue_ids(), "the message is in the queue", r.queue_ids())
    line = "%s: client=unknown[127.0.0.1], sasl_method=PLAIN, sasl_username=alice" % qid
    t.ok(r.wait_log(line), "log: " + line, r.log()[-2000:])
    body = (r.body(qid) or b"").decode("utf-8", "replace")
    hdr = body.split("\r\n\r\n", 1)[0]
    t.ok("(using TLSv1.3 with cipher" in hdr, "Received: has (using TLSv1.3 with cipher ...)", hdr)
    t.ok(re.search(r"with ESMTPSA id %s" % qid, hdr), "Received: says with ESMTPSA", hdr)
    t.ok(body.startswith("Received: from client.test (unknown [127.0.0.1])"),
         "Received: is the first header, from client.test (unknown [127.0.0.1])", hdr)
    env = r.envelope(qid) or ""
    t.ok("auth=alice" in env, "the envelope records auth=alice", env)

    # ---- AUTH pipelined with MAIL: MAIL waits for the password check ----
    c, *_ = session(r.port_sub)
    c.send("AUTH PLAIN %s\r\nMAIL FROM:<alice@example.org>\r\n" % plain("alice", "secret"))
    r1, r2 = c.reply(), c.reply()
    t.ok(r1.startswith("235") and r2.startswith("250"),
         "pipelined AUTH (good) + MAIL -> 235 then 250", (r1, r2))
    c.quit()
    c, *_ = session(r.port_sub)
    c.send("AUTH PLAIN %s\r\nMAIL FROM:<alice@example.org>\r\n" % plain("alice", "bad"))
    r1, r2 = c.reply(), c.reply()
    t.ok(r1 == FAIL and r2.startswith("530"),
         "pipelined AUTH (bad) + MAIL -> 535 then 530", (r1, r2))
    c.quit()

    # ---- AUTH line length (RFC 4954 §4: 12288 octets) ----
    c, *_ = session(r.port_sub)
    c.sock.settimeout(5)
    rep = c.cmd("AUTH PLAIN " + b64("\0alice\0" + "x" * 9000))
    t.eq(rep, FAIL, "AUTH PLAIN with a 12018-octet initial response is read (535)")
    rep = c.cmd("AUTH PLAIN " + "A" * 12300)
    t.ok(rep.startswith("500 5.5.2"), "AUTH line over 12288 octets -> 500 5.5.2", rep)
    try:
        rep = c.cmd("NOOP")
    except OSError as e:
        rep = "no reply (%r)" % (e,)
    t.ok(rep.startswith("250"),
         "the command after an over-long AUTH line is answered (not swallowed)", rep)
    c.quit()

    # ---- relay policy on the smtp port for an untrusted address ----
    c = TLSClient(r.port_smtp, source="127.0.0.2")
    c.reply()
    c.cmd("EHLO outside.test")
    rep = c.cmd("MAIL FROM:<someone@outside.test>")
    t.ok(rep.startswith("250"), "127.0.0.2 on smtp: MAIL 250", rep)
    rep = c.cmd("RCPT TO:<victim@example.net>")
    t.eq(rep, "554 5.7.1 Relay access denied", "127.0.0.2 on smtp: RCPT -> 554 5.7.1 Relay access denied")
    c.quit()
    t.ok(r.wait_log("NOQUEUE: reject: RCPT from unknown[127.0.0.2]: 554 5.7.1 <victim@example.net>: "
                    "Relay access denied"), "log: NOQUEUE reject ... Relay access denied",
         r.log()[-2000:])
    # The same client after STARTTLS + AUTH may relay.
    c, greet, e1, st, e2 = session(r.port_smtp, ehlo="outside.test", source="127.0.0.2")
    rep = c.cmd("AUTH PLAIN " + plain("alice", "secret"))
    t.ok(rep.startswith("235"), "127.0.0.2 on smtp: STARTTLS + AUTH -> 235", rep)
    t.ok(c.cmd("MAIL FROM:<alice@example.org>").startswith("250"), "127.0.0.2 authenticated: MAIL 250")
    rep = c.cmd("RCPT TO:<victim@example.net>")
    t.ok(rep.startswith("250"), "127.0.0.2 authenticated: RCPT 250 (may relay)", rep)
    rep = c.cmd("DATA")
    t.ok(rep.startswith("354"), "127.0.0.2 authenticated: DATA 354", rep)
    rep = c.cmd("Subject: relayed\r\n\r\nhi\r\n.")
    qid2 = queued_id(rep)
    t.ok(rep.startswith("250") and qid2, "127.0.0.2 authenticated: message queued", rep)
    c.quit()
    t.ok(qid2 and r.wait_log("%s: client=unknown[127.0.0.2], sasl_method=PLAIN, sasl_username=alice"
                             % qid2), "log: the relayed message names 127.0.0.2 and alice",
         r.log()[-2000:])
    # Without AUTH, the submission port refuses MAIL from anyone.
    c = TLSClient(r.port_sub, source="127.0.0.2")
    c.reply()
    c.cmd("EHLO outside.test")
    rep = c.cmd("MAIL FROM:<someone@outside.test>")
    t.ok(rep.startswith("530 5.7.0"), "127.0.0.2 on submission without AUTH: MAIL -> 530", rep)
    c.quit()

    # The failed checks above were logged in fail2ban's format.
    log = r.log()
    t.ok("warning: unknown[127.0.0.1]: SASL PLAIN authentication failed" in log,
         "log: warning: unknown[127.0.0.1]: SASL PLAIN authentication failed")
    t.ok("warning: unknown[127.0.0.1]: SASL LOGIN authentication failed" in log,
         "log: warning: unknown[127.0.0.1]: SASL LOGIN authentication failed")
    t.ok("secret" not in log and "wrong" not in log, "log: no password appears in the log")

    # ---- clients leaving while their password is checked or delayed ----
    # Last: if relayd dies here, the checks above have run.  Each client
    # sends AUTH and closes at once; relayd's reply (after the check, or
    # after the failure delay) then meets a closed socket.
    import time
    for i in range(3):
        try:
            c, *_ = session(r.port_sub)
            c.send("AUTH PLAIN %s\r\n" % plain("alice", "secret" if i == 0 else "bad%d" % i))
            c.close()
        except OSError:
            pass
        time.sleep(0.5)
    alive = r.proc.poll() is None
    t.ok(alive, "relayd survives clients that leave during the password check",
         "relayd exited with status %s (-13: killed by SIGPIPE)" % r.proc.poll())
    try:
        c, *_ = session(r.port_sub)
        rep = c.cmd("AUTH PLAIN " + plain("alice", "secret"))
        c.quit()
    except OSError as e:
        rep = repr(e)
    t.ok(rep.startswith("235"), "AUTH works after clients left mid-check", rep)
except Exception:
    t.ok(False, "no unexpected exception", traceback.format_exc())
finally:
    finish(t, r)
    r.cleanup()
t.done()
