#!/usr/bin/python3
"""Client names through the resolver: the SMTP server logs
"connect from HOST[IP]" with the forward-confirmed reverse name (PTR, then
the name's A record must hold the address), "unknown" otherwise, and
stores the same name with the queued message.  A DNS server that never
answers delays the banner by a bounded time only; a client that leaves or
a stop while a lookup is pending harms nothing.  Clients connect from
several 127.0.0.0/8 source addresses, each with its own PTR case.
"""
import os
import signal
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from relaydtest import TAP, Relayd, Client, NO_DELIVERY, queued_id  # noqa: E402
import dnstest  # noqa: E402

t = TAP()
dns = dnstest.DNS("ok A 127.0.0.2\nliar A 127.0.0.99\n",
                  ptr={"127.0.0.2": "ok.test", "127.0.0.3": "liar.test"})
silent = dnstest.Silent()
r = Relayd(tls=False, peername_lookup=True,
           conf=NO_DELIVERY + "dns_servers = 127.0.0.1:%d\n" % dns.port)
rs = Relayd(tls=False, peername_lookup=True,
            conf=NO_DELIVERY + "dns_servers = 127.0.0.1:%d\ndns_timeout = 10s\n" % silent.port)


def connect(relayd, source):
    """(client, banner, seconds to the banner)"""
    start = time.time()
    c = Client(relayd.port_smtp, source=source)
    banner = c.reply()
    return c, banner, time.time() - start


def send_message(c):
    c.cmd("EHLO client.example")
    c.cmd("MAIL FROM:<a@example.org>")
    c.cmd("RCPT TO:<b@example.net>")
    c.cmd("DATA")
    rep = c.cmd("Subject: x\r\n\r\nhello\r\n.")
    c.cmd("QUIT")
    c.close()
    return queued_id(rep)


try:
    r.start()
    rs.start()

    c, banner, secs = connect(r, "127.0.0.2")
    t.ok(banner.startswith("220 "), "PTR confirmed: banner", banner)
    t.ok(r.wait_log("connect from ok.test[127.0.0.2]"), "connect from ok.test[127.0.0.2]",
         r.log()[-2000:])
    qid = send_message(c)
    t.ok(qid is not None, "message queued")
    t.ok(r.wait_log("%s: client=ok.test[127.0.0.2]" % qid), "client= line has the name")
    env = r.envelope(qid) or ""
    t.ok("ok.test[127.0.0.2]" in env, "the queued message stores the name", env)

    # The same client again: answered from the cache, before the session
    # even returns to the loop.
    c, banner, secs = connect(r, "127.0.0.2")
    t.ok(banner.startswith("220 "), "cached name: banner")
    c.cmd("QUIT")
    c.close()
    r.wait_log("disconnect from ok.test[127.0.0.2] quit=1")
    t.eq(r.log().count(": connect from ok.test[127.0.0.2]"), 2, "cached name: logged again")

    c, banner, secs = connect(r, "127.0.0.3")
    t.ok(banner.startswith("220 "), "PTR not confirmed: banner")
    c.cmd("QUIT")
    c.close()
    t.ok(r.wait_log("connect from unknown[127.0.0.3]"), "PTR not confirmed by A: unknown")
    t.ok(r.wait_log("warning: hostname liar.test does not resolve to address 127.0.0.3"),
         "... with Postfix's warning")

    c, banner, secs = connect(r, "127.0.0.4")
    t.ok(banner.startswith("220 ") and secs < 1, "no PTR: banner at once (%.2fs)" % secs)
    c.cmd("QUIT")
    c.close()
    t.ok(r.wait_log("connect from unknown[127.0.0.4]"), "no PTR: unknown")

    # A server that never answers: the banner waits 1.5 s, not the 10 s
    # of dns_timeout; a command sent too early is answered after it.
    start = time.time()
    c = Client(rs.port_smtp)
    c.send("EHLO early.example\r\n")
    banner = c.reply()
    secs = time.time() - start
    t.ok(banner.startswith("220 ") and 1.0 <= secs < 3,
         "PTR lookup timing out: banner after a bounded wait (%.2fs)" % secs, banner)
    t.ok(c.reply().startswith("250-"), "a command sent before the banner is answered after it")
    qid = send_message(c)
    t.ok(rs.wait_log("connect from unknown[127.0.0.1]"), "timed out: connect from unknown")
    t.ok(qid and rs.wait_log("%s: client=unknown[127.0.0.1]" % qid), "timed out: client=unknown")

    # Fifty clients at once, all waiting on the silent server: each gets
    # its banner after the same bounded wait, none after another's.
    start = time.time()
    many = [Client(rs.port_smtp) for _ in range(50)]
    banners = [c.reply() for c in many]
    secs = time.time() - start
    for c in many:
        c.close()
    t.ok(all(b.startswith("220 ") for b in banners) and secs < 3.5,
         "50 concurrent clients with pending lookups: all greeted in %.2fs" % secs)

    # Clients that leave while their lookup is pending.
    for i in range(5):
        s = socket.create_connection(("127.0.0.1", rs.port_smtp), timeout=5)
        s.close()
    time.sleep(2)
    c, banner, secs = connect(rs, "127.0.0.5")
    t.ok(banner.startswith("220 "), "daemon serves on after clients left mid-lookup")
    c.close()
    t.ok(rs.wait_log("disconnect from unknown[127.0.0.1]"), "... and they were logged out")

    # A stop while a lookup is pending ends promptly and cleanly.
    s = socket.create_connection(("127.0.0.1", rs.port_smtp), timeout=5)
    time.sleep(0.2)
    start = time.time()
    code = rs.stop(signal.SIGTERM)
    t.ok(code == 0 and time.time() - start < 5,
         "SIGTERM with a lookup pending: exit 0 in %.1fs" % (time.time() - start))
    s.close()
    # dns_servers is read at start: a reload that changes it says so,
    # and lookups go on to the server the daemon started with.
    with open(r.conf_path) as f:
        text = f.read()
    r.write_conf(text.replace("dns_servers = 127.0.0.1:%d" % dns.port,
                              "dns_servers = 127.0.0.1:%d" % silent.port))
    r.signal(signal.SIGHUP)
    t.ok(r.wait_log("reload: dns_servers and dns_timeout take effect at the next restart"),
         "reload with other dns_servers: warned that it needs a restart")
    c, banner, secs = connect(r, "127.0.0.2")
    c.close()
    t.ok(banner.startswith("220 ") and secs < 1, "... and the running resolver is kept")
    t.ok(r.stop() == 0, "first daemon stops cleanly")
    t.ok(r.sanitizer_clean() and rs.sanitizer_clean(), "no sanitizer report")
finally:
    r.cleanup()
    rs.cleanup()
    silent.stop()
    dns.stop()
t.done()
