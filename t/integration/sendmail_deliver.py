#!/usr/bin/python3
"""relay-sendmail -t, run by an unprivileged user, all the way out: the
message reaches the next hop with every To/Cc/Bcc recipient in the
envelope, without its Bcc header, and relayd logs it sent and removed."""
import os
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from relaydtest import TAP, TOP_BUILD, Relayd  # noqa: E402
from smtpc_common import Sink  # noqa: E402
from deliver_common import wait_for, records, removed  # noqa: E402

SENDMAIL = os.path.join(TOP_BUILD, "tools", "relay-sendmail")

t = TAP()
if os.getuid() != 0:
    t.skip("relay-sendmail as nobody through a sink", "needs root to switch user")
    t.done()

sink = Sink("127.0.0.2").start()
r = Relayd(conf="relayhost = [127.0.0.2]:%d\nretry_min = 1h\nretry_max = 2h\n" % sink.port,
           tls=False)
try:
    r.start()
    # A copy nobody can reach, wherever the build tree lives.
    copy = os.path.join(r.dir, "relay-sendmail")
    shutil.copy(SENDMAIL, copy)
    os.chmod(copy, 0o755)
    msg = (b"To: Ann <ann@dest.test>\nCc: bob@dest.test\nBcc: secret@dest.test\n"
           b"Subject: from cron\n\nline one\n..leading dot\nline three\n")
    p = subprocess.run(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
                        copy, "-C", r.conf_path, "-t"], input=msg, capture_output=True,
                       timeout=30)
    t.eq(p.returncode, 0, "relay-sendmail -t as nobody exits 0")
    t.ok(wait_for(lambda: len(sink.messages) >= 1), "the next hop got the message",
         r.log()[-2000:])
    m = sink.messages[0] if sink.messages else {}
    t.eq(sorted(m.get("rcpts", [])), ["ann@dest.test", "bob@dest.test", "secret@dest.test"],
         "envelope: To, Cc and Bcc recipients")
    t.ok((m.get("from") or "").startswith("nobody@"),
         "envelope sender: the invoking user", m.get("from"))
    content = m.get("content", b"")
    t.ok(b"\nBcc:" not in content and not content.startswith(b"Bcc:"),
         "no Bcc header delivered", content[:400])
    t.ok(b"Subject: from cron\r\n" in content and
         b"\r\nline one\r\n..leading dot\r\nline three\r\n" in content,
         "headers and body delivered with CRLF line ends, dots intact", content[-200:])
    qids = {x[0] for x in records(r)}
    t.ok(len(qids) == 1 and all(x[4] == "sent" for x in records(r)),
         "relayd logged every recipient sent", records(r))
    t.ok(qids and wait_for(lambda: removed(r, next(iter(qids)))), "and removed the message")
    t.ok(r.sanitizer_clean(), "no sanitizer report")
finally:
    rc = r.stop()
    t.eq(rc, 0, "clean stop")
    sink.stop()
    r.cleanup()
t.done()
