#!/usr/bin/python3
"""reload_privs - SIGHUP after the privilege drop, with the secrets in
their documented production modes (relayd.conf(5)): key and passwd file
0640 root:relayd, the certificate 0644.  The test runs as root; relayd
drops to the relayd user and must still re-read them.

  * a replaced certificate and passwd file take effect (python ssl sees
    the new certificate; the new password works, the old one fails);
  * the supplementary groups of `user` are kept (initgroups): a key that
    is 0640 root:GROUP, GROUP a supplementary group of relayd (as
    ssl-cert is on Debian), reloads;
  * a configured passwd file that is missing, unreadable by relayd,
    empty or half-written at reload keeps the running credentials (AUTH
    stays on, the log says why); a half-written one that is completed
    within the settle time is picked up without another SIGHUP;
  * at start, a secret relayd could not read later is warned about.
"""
import grp
import os
import pwd
import signal
import subprocess
import sys
import tempfile
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from relaydtest import TAP, Relayd, crypt_hash, make_cert   # noqa: E402
from tls_common import (cert_cn_der, no_verify_ctx, smtp, swaks,  # noqa: E402
                        wait_count, finish)

RELOADED = "reload: configuration"
KEPT = "reload: keeping the running configuration"

t = TAP()
if os.geteuid() != 0:
    print("1..0 # SKIP needs root (relayd must drop privileges)")
    sys.exit(0)
try:
    relayd_gid = pwd.getpwnam("relayd").pw_gid
except KeyError:
    print("1..0 # SKIP no relayd user")
    sys.exit(0)

group = "relaydt%d" % os.getpid()
made_group = False
# A run killed before its clean-up left its group: remove it.
for g in grp.getgrall():
    if g.gr_name.startswith("relaydt") and g.gr_name[7:].isdigit() \
            and not os.path.exists("/proc/" + g.gr_name[7:]):
        subprocess.run(["groupdel", g.gr_name], check=False, capture_output=True)
r = Relayd()


def set_mode(path, mode, gid):
    os.chown(path, 0, gid)
    os.chmod(path, mode)


def rewrite(path, data):
    """Truncate and write in place: owner and mode stay."""
    with open(path, "w") as f:
        f.write(data)


def auth(user, password):
    rc, out, err = swaks(r.port_sub, "--tls", "--auth", "PLAIN", "--auth-user", user,
                         "--auth-password", password, "--quit-after", "AUTH")
    return out


def auth_ok(user, password):
    return "235 2.7.0" in auth(user, password)


def served_cn():
    """The certificate CN a new STARTTLS connection gets (python ssl)."""
    s = smtp(r.port_sub)
    try:
        s.ehlo("client.test")
        s.starttls(context=no_verify_ctx())
        return cert_cn_der(s.sock.getpeercert(binary_form=True))
    finally:
        try:
            s.quit()
        except Exception:
            pass


def new_cert(cn):
    d = tempfile.mkdtemp(prefix="relayd-cert-")
    cert, key = make_cert(d, cn)
    data = (open(cert).read(), open(key).read())
    subprocess.run(["rm", "-rf", d], check=False)
    return data


def hup_and_wait(needle, n, timeout=10):
    r.signal(signal.SIGHUP)
    return wait_count(r, needle, n, timeout)


try:
    # A supplementary group of relayd, like Debian's ssl-cert.
    subprocess.run(["groupadd", "--system", group], check=True, capture_output=True)
    made_group = True
    subprocess.run(["gpasswd", "-a", "relayd", group], check=True, capture_output=True)
    gid_extra = grp.getgrnam(group).gr_gid

    set_mode(r.key, 0o640, relayd_gid)
    set_mode(r.passwd, 0o640, relayd_gid)
    set_mode(r.cert, 0o644, 0)
    r.start()
    t.ok("running as user relayd" in r.log(), "relayd dropped to user relayd")
    t.ok("SIGHUP will not be able" not in r.log(),
         "start: no warning with the production modes", r.log()[-1500:])
    t.ok(auth_ok("alice", "secret"), "start: alice/secret -> 235")
    t.eq(served_cn(), "relayd.test", "start: the certificate is CN=relayd.test")
    st = {}
    try:
        with open("/proc/%d/status" % r.proc.pid) as f:
            st = dict(l.split(":", 1) for l in f if ":" in l)
    except OSError:
        pass
    groups = st.get("Groups", "").split()
    t.ok(str(gid_extra) in groups,
         "relayd keeps the supplementary groups of user relayd (initgroups)", groups)

    # ---- replace the certificate, the key and the passwd file ----
    cert, key = new_cert("new.test")
    rewrite(r.cert, cert)
    rewrite(r.key, key)
    rewrite(r.passwd, "alice:%s\n" % crypt_hash("changed"))
    t.ok(hup_and_wait(RELOADED, 1), "0640 root:relayd: the reload succeeds", r.log()[-1500:])
    t.eq(served_cn(), "new.test", "0640 root:relayd: the new certificate is served")
    t.ok(auth_ok("alice", "changed"), "0640 root:relayd: the new password -> 235")
    t.ok("535 5.7.8" in auth("alice", "secret"), "0640 root:relayd: the old password -> 535")

    # ---- a key readable only through a supplementary group ----
    cert, key = new_cert("group.test")
    rewrite(r.cert, cert)
    rewrite(r.key, key)
    set_mode(r.key, 0o640, gid_extra)
    t.ok(hup_and_wait(RELOADED, 2), "key 0640 root:%s (a supplementary group): reload succeeds"
         % group, r.log()[-1500:])
    t.eq(served_cn(), "group.test", "supplementary group: the new certificate is served")

    # ---- an unreadable key: kept, and the log says who cannot read what ----
    set_mode(r.key, 0o600, 0)
    t.ok(hup_and_wait(KEPT, 1), "key 0600 root:root: the running certificate is kept",
         r.log()[-1500:])
    tail = r.log().split(RELOADED)[-1]
    t.ok("user relayd cannot read %s" % r.key in tail,
         "unreadable key: the log names the user and the file", tail[-1500:])
    t.eq(served_cn(), "group.test", "unreadable key: the previous certificate is still served")
    set_mode(r.key, 0o640, relayd_gid)

    # ---- the passwd file missing at reload: AUTH stays on ----
    os.rename(r.passwd, r.passwd + ".away")
    t.ok(hup_and_wait(KEPT, 2), "passwd missing: the running credentials are kept",
         r.log()[-1500:])
    tail = r.log().split(KEPT)[-2]
    t.ok(r.passwd in tail and "No such file" in tail, "passwd missing: the log says so",
         tail[-1000:])
    t.ok(auth_ok("alice", "changed"), "passwd missing: AUTH still works (alice/changed)")
    os.rename(r.passwd + ".away", r.passwd)

    # ---- unreadable by relayd ----
    set_mode(r.passwd, 0o600, 0)
    t.ok(hup_and_wait(KEPT, 3), "passwd 0600 root:root: the running credentials are kept")
    tail = r.log().split(KEPT)[-2]
    t.ok("user relayd cannot read %s" % r.passwd in tail,
         "unreadable passwd: the log names the user, the file and its mode", tail[-1000:])
    t.ok(auth_ok("alice", "changed"), "unreadable passwd: AUTH still works")
    set_mode(r.passwd, 0o640, relayd_gid)

    # ---- empty (a rewrite that has truncated but not yet written) ----
    third = "alice:%s\n" % crypt_hash("third")
    rewrite(r.passwd, "")
    t.ok(hup_and_wait(KEPT, 4), "empty passwd: refused, the running credentials kept")
    # ... the writer finishes within the settle time: picked up, no SIGHUP.
    rewrite(r.passwd, third)
    t.ok("empty" in r.log().split(KEPT)[-2], "empty passwd: the log says it is empty")
    t.ok(wait_count(r, RELOADED, 3, timeout=10),
         "empty passwd completed within the settle time: reloaded without another SIGHUP",
         r.log()[-1500:])
    t.ok(auth_ok("alice", "third"), "after the settle: the completed file's password -> 235")

    # ---- half-written: no newline at the end ----
    h = crypt_hash("fourth")
    rewrite(r.passwd, "alice:%s\nbob:%s" % (h, h[:10]))
    t.ok(hup_and_wait(KEPT, 6, timeout=15),
         "half-written passwd: refused, and refused again after the settle",
         r.log()[-2000:])
    t.ok("no newline at the end" in r.log().split(RELOADED)[-1],
         "half-written passwd: the log says why")
    t.ok(auth_ok("alice", "third"), "half-written passwd: the running password still works")
    t.ok("535 5.7.8" in auth("alice", "fourth"), "half-written passwd: not used")
    t.ok(r.proc.poll() is None, "relayd still runs")

    # ---- the configuration itself turns TLS off: said, not silent ----
    with open(r.conf_path) as f:
        conf = f.read()
    r.write_conf("".join(l for l in conf.splitlines(True) if not l.startswith("tls_")))
    n = r.log().count(RELOADED)
    t.ok(hup_and_wait(RELOADED, n + 1), "tls_cert_file removed: the reload succeeds")
    # The warning comes before the reload's own line.
    t.ok("tls_cert_file is not set: STARTTLS and AUTH are now off"
         in r.log().split(RELOADED)[-2],
         "tls_cert_file removed: the log says TLS and AUTH are now off", r.log()[-1000:])
    r.write_conf(conf)

    # ---- at start: a secret relayd cannot read is warned about ----
    r.stop()
    set_mode(r.passwd, 0o600, 0)
    rewrite(r.passwd, "alice:%s\n" % crypt_hash("secret"))
    r.start()
    text = r.log().split("daemon started")[-2]
    t.ok("SIGHUP will not be able to reload %s: user relayd cannot read" % r.passwd in text,
         "start: passwd 0600 root:root is warned about (a reload would fail)", text[-1500:])
    t.ok(auth_ok("alice", "secret"), "start: read as root, AUTH works")
except Exception:
    t.ok(False, "no unexpected exception", traceback.format_exc())
finally:
    finish(t, r)
    r.cleanup()
    if made_group:
        subprocess.run(["groupdel", group], check=False, capture_output=True)
t.done()
