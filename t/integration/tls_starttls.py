#!/usr/bin/python3
"""tls_starttls - STARTTLS (RFC 3207) on the submission and smtp ports,
implicit TLS (RFC 8314) on the submissions port, the STARTTLS command
injection of CVE-2011-0411, refusal of TLS 1.0/1.1, and the privilege
drop.  Clients: smtplib, openssl s_client, a raw socket.
"""
import os
import signal
import socket
import ssl
import stat
import subprocess
import sys
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from relaydtest import TAP, Relayd                      # noqa: E402
from tls_common import (TLSClient, ehlo_keywords, no_verify_ctx, plain,  # noqa: E402
                        proc_status, s_client, session, smtp, smtp_ssl,
                        finish, HOST)
import smtplib                                            # noqa: E402

t = TAP()
# 127.0.0.2 is not trusted, and may hold one session at a time.
r = Relayd(conf="trusted_networks = 127.0.0.1/32\nclient_connection_limit = 1\n")
try:
    r.start()

    # ---- STARTTLS on the submission port (smtplib) ----
    s = smtp(r.port_sub)
    code, _ = s.ehlo("client.test")
    t.eq(code, 250, "submission: EHLO 250")
    t.ok(s.has_extn("starttls"), "submission: EHLO before TLS advertises STARTTLS",
         s.ehlo_resp)
    t.ok(not s.has_extn("auth"), "submission: EHLO before TLS does not advertise AUTH",
         s.ehlo_resp)
    code, msg = s.starttls(context=no_verify_ctx())
    t.eq(code, 220, "submission: STARTTLS 220")
    t.ok(isinstance(s.sock, ssl.SSLSocket) and s.sock.version() in ("TLSv1.2", "TLSv1.3"),
         "submission: TLS 1.2+ negotiated", getattr(s.sock, "version", lambda: None)())
    # RFC 3207 §4.2: the server forgets the EHLO; MAIL must be refused.
    code, msg = s.mail("alice@example.org")
    t.ok(code == 503 and b"5.5.1" in msg,
         "submission: MAIL after STARTTLS without a new EHLO -> 503 5.5.1", (code, msg))
    code, _ = s.ehlo("client.test")
    t.eq(code, 250, "submission: EHLO after TLS 250")
    t.eq((s.esmtp_features.get("auth") or "").strip().upper(), "PLAIN LOGIN",
         "submission: EHLO after TLS advertises AUTH PLAIN LOGIN")
    t.ok(not s.has_extn("starttls"), "submission: EHLO after TLS does not advertise STARTTLS",
         s.ehlo_resp)
    code, msg = s.docmd("STARTTLS")
    t.ok(code == 554 and b"5.5.1" in msg, "submission: second STARTTLS -> 554 5.5.1",
         (code, msg))
    code, msg = s.login("alice", "secret")
    t.eq(code, 235, "submission: AUTH works after STARTTLS")
    s.quit()

    # ---- STARTTLS on the smtp port (raw client) ----
    c = TLSClient(r.port_smtp)
    greet = c.reply()
    t.ok(greet.startswith("220 "), "smtp: greeting 220", greet)
    e1 = c.cmd("EHLO client.test")
    kw = ehlo_keywords(e1)
    t.ok("STARTTLS" in kw and "AUTH" not in kw,
         "smtp: EHLO before TLS advertises STARTTLS and not AUTH", e1)
    t.ok(c.cmd("MAIL FROM:<a@example.org>").startswith("250"),
         "smtp: trusted client opens a transaction before TLS")
    st = c.starttls()
    t.ok(st.startswith("220 2.0.0"), "smtp: STARTTLS 220 2.0.0", st)
    rep = c.cmd("RCPT TO:<b@example.net>")
    t.ok(rep.startswith("503"), "smtp: the pre-TLS transaction is gone after STARTTLS (RCPT 503)",
         rep)
    rep = c.cmd("MAIL FROM:<a@example.org>")
    t.ok(rep.startswith("503 5.5.1"), "smtp: MAIL after STARTTLS without EHLO -> 503 5.5.1", rep)
    e2 = c.cmd("EHLO client.test")
    kw = ehlo_keywords(e2)
    t.ok("AUTH" in kw and "STARTTLS" not in kw,
         "smtp: EHLO after TLS advertises AUTH and not STARTTLS", e2)
    t.ok("250-AUTH PLAIN LOGIN" in e2, "smtp: AUTH line is 'AUTH PLAIN LOGIN'", e2)
    t.ok(c.cmd("QUIT").startswith("221"), "smtp: QUIT 221 over TLS")
    c.close()

    # the same with openssl s_client -starttls smtp
    rc, out, err = s_client(r.port_smtp, "-starttls", "smtp", "-quiet", "-crlf",
                            stdin="MAIL FROM:<a@example.org>\nEHLO client.test\n"
                                  "AUTH PLAIN %s\nQUIT\n" % plain("alice", "secret"))
    lines = out.splitlines()
    t.ok(rc == 0 and lines and lines[0].startswith("503 5.5.1"),
         "s_client -starttls smtp: first reply over TLS is 503 to MAIL (session reset)",
         (rc, out, err))
    t.ok("250-AUTH PLAIN LOGIN" in out and "250-STARTTLS" not in out,
         "s_client -starttls smtp: EHLO over TLS offers AUTH, not STARTTLS", out)
    t.ok("235 2.7.0" in out and "221 2.0.0" in out,
         "s_client -starttls smtp: AUTH PLAIN 235, QUIT 221", out)

    # ---- implicit TLS on the submissions port ----
    try:
        s = smtp_ssl(r.port_subs)
        t.ok(isinstance(s.sock, ssl.SSLSocket), "465: SMTP_SSL connected over TLS")
        code, msg = s.ehlo("client.test")
        t.eq(code, 250, "465: EHLO 250")
        t.ok(s.has_extn("auth") and not s.has_extn("starttls"),
             "465: EHLO advertises AUTH and not STARTTLS", s.ehlo_resp)
        code, msg = s.docmd("STARTTLS")
        t.ok(code == 554, "465: STARTTLS -> 554 (TLS already active)", (code, msg))
        code, msg = s.login("alice", "secret")
        t.eq(code, 235, "465: AUTH PLAIN 235 (smtplib)")
        s.mail("alice@example.org")
        s.rcpt("bob@example.net")
        code, msg = s.data(b"Subject: implicit\r\n\r\nhello\r\n")
        t.ok(code == 250 and b"queued as" in msg, "465: message queued", (code, msg))
        s.quit()
    except (OSError, smtplib.SMTPException) as e:
        t.ok(False, "465: SMTP_SSL session", repr(e))

    # The greeting itself comes over TLS: s_client sees it as the first
    # line of decrypted data.
    rc, out, err = s_client(r.port_subs, "-quiet", "-crlf",
                            stdin="EHLO client.test\nAUTH PLAIN %s\nQUIT\n" % plain("alice", "secret"))
    lines = out.splitlines()
    t.ok(rc == 0 and lines and lines[0].startswith("220 relayd.test"),
         "465 s_client: the 220 greeting arrives over TLS", (rc, out, err))
    t.ok("235 2.7.0" in out, "465 s_client: AUTH PLAIN 235", out)

    # A cleartext client on 465 gets no SMTP in cleartext, and is dropped.
    c = TLSClient(r.port_subs)
    c.send("EHLO client.test\r\n")
    got = c.pending(wait=2)
    t.ok("220" not in got and "250" not in got,
         "465: a cleartext client gets no cleartext SMTP", got)
    t.ok(c.closed(timeout=5), "465: a cleartext client is disconnected")
    c.close()

    # A client refused at connect (connection limit: 127.0.0.2 may hold
    # one session) must get its 421 over TLS on 465 (RFC 8314 §3.3: the
    # TLS session starts before any SMTP is exchanged).
    hold = smtp_ssl(r.port_subs, source="127.0.0.2")
    try:
        try:
            s2 = smtp_ssl(r.port_subs, source="127.0.0.2")
            t.ok(False, "465: over the connection limit -> 421 over TLS",
                 "got a session: %r" % (s2.ehlo(),))
            s2.close()
        except smtplib.SMTPConnectError as e:
            t.ok(e.smtp_code == 421, "465: over the connection limit -> 421 over TLS", repr(e))
        except (OSError, smtplib.SMTPException) as e:
            t.ok(False, "465: over the connection limit -> 421 over TLS",
                 "the client saw %r: relayd wrote its 421 in cleartext before the TLS "
                 "handshake" % (e,))
    finally:
        try:
            hold.quit()
        except (OSError, smtplib.SMTPException):
            hold.close()

    # ---- CVE-2011-0411: commands pipelined after STARTTLS ----
    for name, port in (("submission", r.port_sub), ("smtp", r.port_smtp)):
        c = TLSClient(port)
        c.reply()
        c.cmd("EHLO client.test")
        c.send("STARTTLS\r\nNOOP\r\n")          # one write, one segment
        st = c.reply()
        t.ok(st.startswith("220"), "%s injection: STARTTLS 220" % name, st)
        t.eq(c.buf, b"", "%s injection: no cleartext reply to the injected NOOP" % name)
        c.buf = b""
        try:
            c.wrap()
            first = c.cmd("EHLO client.test")
            t.ok(first.startswith("250-relayd.test"),
                 "%s injection: first reply after the handshake answers our EHLO" % name,
                 first)
            noop = c.cmd("NOOP")
            t.ok(noop.startswith("250 2.0.0"), "%s injection: NOOP answered in order" % name,
                 noop)
            extra = c.pending(wait=0.5)
            t.eq(extra, "", "%s injection: nothing else was answered" % name)
        except (OSError, ssl.SSLError) as e:
            t.ok(False, "%s injection: TLS handshake after STARTTLS+NOOP" % name, repr(e))
        c.quit()

    # ---- TLS 1.0 / 1.1 refused by the server ----
    for flag, ver in (("-tls1_1", "TLSv1.1"), ("-tls1", "TLSv1")):
        rc, out, err = s_client(r.port_subs, flag, "-cipher", "DEFAULT@SECLEVEL=0", "-msg")
        t.ok(rc not in (0, None) and "Cipher is (NONE)" in out,
             "465: a %s-only s_client fails the handshake" % ver, (rc, out[-1500:], err))
        t.ok("ClientHello" in out,
             "465: the %s ClientHello was sent (the refusal is the server's)" % ver, out[-1500:])
    rc, out, err = s_client(r.port_sub, "-starttls", "smtp", "-tls1_1",
                            "-cipher", "DEFAULT@SECLEVEL=0")
    t.ok(rc not in (0, None) and "Cipher is (NONE)" in out,
         "submission: a TLSv1.1-only s_client -starttls smtp fails the handshake",
         (rc, out[-1500:], err))
    # Control: the same client settings with TLS 1.2 succeed.
    rc, out, err = s_client(r.port_subs, "-tls1_2", "-cipher", "DEFAULT@SECLEVEL=0", "-brief")
    t.ok(rc == 0 and "Protocol version: TLSv1.2" in out + err,
         "465: control: the same s_client with -tls1_2 succeeds", (rc, out, err))
    # Python, the same way.
    try:
        sk = socket.create_connection((HOST, r.port_subs), timeout=10)
        ctx = no_verify_ctx(ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1, seclevel0=True)
        ss = ctx.wrap_socket(sk, server_hostname="relayd.test")
        t.ok(False, "465: Python TLS<=1.1 context is refused", "negotiated " + ss.version())
        ss.close()
    except (ssl.SSLError, OSError) as e:
        t.ok(True, "465: Python TLS<=1.1 context is refused (%s)" % type(e).__name__)
    try:
        sk = socket.create_connection((HOST, r.port_subs), timeout=10)
        ctx = no_verify_ctx(ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_2, seclevel0=True)
        ss = ctx.wrap_socket(sk, server_hostname="relayd.test")
        t.eq(ss.version(), "TLSv1.2", "465: control: Python TLS<=1.2 context negotiates 1.2")
        ss.close()
    except (ssl.SSLError, OSError) as e:
        t.ok(False, "465: control: Python TLS<=1.2 context negotiates 1.2", repr(e))
    # RFC 5246 App. E.1 / RFC 8446 §4.2.1: the refusal is a protocol_version
    # alert, not a silent close.
    rc, out, err = s_client(r.port_subs, "-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0", "-msg")
    t.ok("<<< " in out and "protocol_version" in out,
         "465: a TLSv1.1 ClientHello is answered with a protocol_version alert",
         "relayd closed without an alert; s_client -msg saw:\n" + "\n".join(
             l for l in out.splitlines() if l.startswith((">>>", "<<<")) or "handshake has" in l))
    # relayd is still serving after the refused handshakes.
    c = TLSClient(r.port_subs, implicit=True)
    t.ok(c.reply().startswith("220 "), "465: still serving after refused handshakes")
    c.quit()

    # ---- privilege drop ----
    pid = r.proc.pid
    out = subprocess.run(["ps", "-o", "user=", "-p", str(pid)], capture_output=True,
                         text=True, timeout=10).stdout.strip()
    t.eq(out, "relayd", "relayd runs as user relayd (ps)")
    import pwd
    pw = pwd.getpwnam("relayd")
    st = proc_status(pid)
    t.eq(st.get("Uid"), [str(pw.pw_uid)] * 4, "real/effective/saved/fs uid are relayd's")
    t.eq(st.get("Gid"), [str(pw.pw_gid)] * 4, "real/effective/saved/fs gid are relayd's")
    t.ok("0" not in (st.get("Groups") or []), "no supplementary group root",
         st.get("Groups"))
    qs = os.stat(r.queue_dir)
    t.eq(qs.st_uid, pw.pw_uid, "queue dir owned by relayd")
    t.eq(stat.S_IMODE(qs.st_mode), 0o750, "queue dir mode 0750 (the group reads the queue)")

    # ---- SIGTERM: an idle TLS session is told, over TLS ----
    c, greet, e1, st, e2 = session(r.port_sub)
    t.ok(c.cmd("AUTH PLAIN " + plain("alice", "secret")).startswith("235"),
         "idle session for SIGTERM: authenticated over TLS")
    r.signal(signal.SIGTERM)
    c.sock.settimeout(10)
    try:
        rep = c.reply()
    except OSError as e:
        rep = repr(e)
    t.ok(rep.startswith("421 4.3.2"), "SIGTERM: the idle TLS session gets 421 4.3.2 over TLS", rep)
    t.ok(c.closed(timeout=5), "SIGTERM: then the session is closed")
    c.close()
except Exception:
    t.ok(False, "no unexpected exception", traceback.format_exc())
finally:
    finish(t, r)
    r.cleanup()

# ---- without tls_cert_file / tls_key_file: no STARTTLS, no AUTH, no 465 ----
r = Relayd(tls=False)
try:
    r.start()
    c = TLSClient(r.port_sub)
    c.reply()
    kw = ehlo_keywords(c.cmd("EHLO client.test"))
    t.ok("STARTTLS" not in kw and "AUTH" not in kw,
         "no certificate: EHLO offers neither STARTTLS nor AUTH", kw)
    rep = c.cmd("STARTTLS")
    t.ok(rep.startswith("502"), "no certificate: STARTTLS -> 502", rep)
    rep = c.cmd("AUTH PLAIN " + plain("alice", "secret"))
    t.ok(rep.startswith("502"), "no certificate: AUTH -> 502", rep)
    rep = c.cmd("MAIL FROM:<alice@example.org>")
    t.ok(rep.startswith("530"), "no certificate: submission MAIL still needs AUTH (530)", rep)
    c.quit()
    try:
        socket.create_connection((HOST, r.port_subs), timeout=5).close()
        t.ok(False, "no certificate: nothing listens on the submissions port")
    except OSError:
        t.ok(True, "no certificate: nothing listens on the submissions port")
    t.ok("submissions_listen needs tls_cert_file" in r.log(),
         "no certificate: the log says why 465 is not served", r.log()[-1500:])
except Exception:
    t.ok(False, "no unexpected exception (no TLS)", traceback.format_exc())
finally:
    finish(t, r, "relayd without TLS")
    r.cleanup()
t.done()
