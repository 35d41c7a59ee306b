#!/usr/bin/python3
"""metrics - the Prometheus endpoint on metrics_listen, scraped with curl:
the exposition parses, counters move by what a session did (messages,
replies by class, AUTH results, TLS sessions, accept latency), queue
gauges see the queued mail, other paths get 404 and other methods 405,
an oversize request is refused, sixty idle connections neither stop a
second scrape nor the SMTP server, and an idle connection times out.
Recipients by state: scheduled, in flight (a next hop that never greets
holds one) and held_or_done (after relayctl hold) match the queue.
"""
import json
import os
import re
import shutil
import signal
import smtplib
import socket
import subprocess
import sys
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from relaydtest import TAP, TOP_SRC, Relayd, free_port, queued_id  # noqa: E402
from admincommon import relayctl                     # noqa: E402
from tls_common import no_verify_ctx, plain           # noqa: E402

t = TAP()
if not shutil.which("curl"):
    print("1..0 # SKIP curl is not installed (tools/install-deps test)")
    sys.exit(0)

SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([a-zA-Z_]+)="((?:[^"\\]|\\.)*)"\})? (\S+)$')


def curl(port, path="/metrics", extra=()):
    """(status, headers, body) of one request; status 0 when curl failed."""
    out = subprocess.run(["curl", "-sS", "--max-time", "5", "-D", "-", *extra,
                          "http://127.0.0.1:%d%s" % (port, path)],
                         capture_output=True, timeout=20)
    text = out.stdout.decode("utf-8", "replace")
    head, _, body = text.partition("\r\n\r\n")
    m = re.match(r"HTTP/1\.1 (\d{3})", head)
    return (int(m.group(1)) if m else 0), head, body


def parse(body):
    """{(name, label value or None): float}, or raise on a bad line."""
    values, typed = {}, set()
    for line in body.splitlines():
        if line.startswith("# TYPE "):
            typed.add(line.split()[2])
            continue
        if line.startswith("#"):
            continue
        m = SAMPLE.match(line)
        if not m:
            raise ValueError("bad exposition line: %r" % line)
        name = m.group(1)
        base = re.sub(r"_(bucket|sum|count)$", "", name)
        if name not in typed and base not in typed:
            raise ValueError("sample before its TYPE: %r" % line)
        key = (name, m.group(4))
        if key in values:
            raise ValueError("duplicate sample: %r" % line)
        values[key] = float(m.group(5))
    return values


def scrape(port):
    status, head, body = curl(port)
    if status != 200:
        raise RuntimeError("scrape: status %d\n%s" % (status, head))
    return head, parse(body)


def send(port, n):
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as s:
        s.ehlo("client.test")
        for i in range(n):
            s.sendmail("a@example.org", ["b@example.net"],
                       "Subject: metrics %d\r\n\r\nhello\r\n" % i)


def send_one(port, rcpts):
    """One message to rcpts; its queue id."""
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as s:
        s.ehlo("client.test")
        s.mail("a@example.org")
        for rc in rcpts:
            s.rcpt(rc)
        code, reply = s.data("Subject: by state\r\n\r\nhello\r\n")
    return queued_id("%d %s" % (code, reply.decode("utf-8", "replace")))


def by_state(values):
    """relayd_queue_recipients as (scheduled, in_flight, held_or_done)."""
    return tuple(values.get(("relayd_queue_recipients", st))
                 for st in ("scheduled", "in_flight", "held_or_done"))


def scrape_until(port, want, what, timeout=10):
    """Scrape until what(values) == want (bounded); the last values."""
    deadline = time.time() + timeout
    while True:
        _, values = scrape(port)
        if what(values) == want or time.time() > deadline:
            return values
        time.sleep(0.2)


def auth_session(port):
    """STARTTLS, one failed AUTH and one that succeeds."""
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as s:
        s.ehlo("client.test")
        s.starttls(context=no_verify_ctx())
        s.ehlo("client.test")
        code, _ = s.docmd("AUTH", "PLAIN " + plain("alice", "wrong"))
        if code != 535:
            raise RuntimeError("AUTH with a wrong password: %d" % code)
        code, _ = s.docmd("AUTH", "PLAIN " + plain("alice", "secret"))
        if code != 235:
            raise RuntimeError("AUTH: %d" % code)


mport = free_port()
r = Relayd(conf="metrics_listen = 127.0.0.1:%d\n" % mport)
idle = []
try:
    r.start()
    t.ok(r.wait_log("metrics on http://127.0.0.1:%d/metrics" % mport),
         "the log says where the metrics are", r.log()[-1000:])
    t.ok("warning: metrics" not in r.log(), "the endpoint starts without a warning",
         r.log()[-1000:])
    head, before = scrape(mport)
    t.ok("text/plain; version=0.0.4" in head, "Content-Type is the text format 0.0.4", head)
    for name in ("relayd_smtpd_connections_total", "relayd_smtpd_messages_received_total",
                 "relayd_smtpd_sessions", "relayd_queue_messages",
                 "relayd_queue_oldest_message_age_seconds", "relayd_queue_map_used_bytes",
                 "relayd_queue_map_size_bytes", "relayd_smtpd_accept_latency_seconds_count"):
        t.ok((name, None) in before, "first scrape has %s" % name)
    t.ok(("relayd_delivery_recipients_total", "sent") in before and
         ("relayd_delivery_latency_seconds_count", None) in before,
         "the delivery engine registered its series")
    t.eq(before.get(("relayd_queue_map_size_bytes", None)), 256.0 * 1024 * 1024,
         "map size is queue_map_size")

    send(r.port_smtp, 2)
    auth_session(r.port_sub)
    head, after = scrape(mport)

    def moved(key):
        return after.get(key, 0) - before.get(key, 0)

    t.eq(moved(("relayd_smtpd_messages_received_total", None)), 2, "messages received +2")
    t.eq(moved(("relayd_smtpd_connections_total", None)), 2, "connections +2")
    t.ok(moved(("relayd_smtpd_replies_total", "2xx")) >= 10,
         "2xx replies moved (greeting, EHLO, MAIL, RCPT, 250 after DATA...)",
         str(moved(("relayd_smtpd_replies_total", "2xx"))))
    t.eq(moved(("relayd_smtpd_replies_total", "3xx")), 2, "3xx replies +2 (354 twice)")
    t.eq(moved(("relayd_smtpd_replies_total", "5xx")), 1, "5xx replies +1 (the 535)")
    t.eq(moved(("relayd_smtpd_auth_total", "success")), 1, "AUTH success +1")
    t.eq(moved(("relayd_smtpd_auth_total", "failure")), 1, "AUTH failure +1")
    t.eq(moved(("relayd_tls_sessions_total", "server")), 1, "TLS server sessions +1")
    t.eq(moved(("relayd_smtpd_accept_latency_seconds_count", None)), 2,
         "accept latency observed twice")
    t.eq(after.get(("relayd_smtpd_accept_latency_seconds_bucket", "+Inf")),
         after.get(("relayd_smtpd_accept_latency_seconds_count", None)),
         "the +Inf bucket equals the count")
    t.ok(0 < moved(("relayd_smtpd_accept_latency_seconds_sum", None)) < 5,
         "accept latency sum is a plausible number of seconds",
         str(moved(("relayd_smtpd_accept_latency_seconds_sum", None))))
    t.eq(after.get(("relayd_queue_messages", None)), 2.0, "queue gauge: 2 messages")
    # NO_DELIVERY's relayhost refuses: the first attempt is deferred (and
    # the destination backed off as a whole, so the other may wait)
    deadline = time.time() + 10
    while moved(("relayd_delivery_recipients_total", "deferred")) < 1 and time.time() < deadline:
        time.sleep(0.2)
        head, after = scrape(mport)
    t.ok(1 <= moved(("relayd_delivery_recipients_total", "deferred")) <= 2,
         "delivery: recipients deferred counted")
    t.eq(moved(("relayd_delivery_latency_seconds_count", None)), 0,
         "delivery latency: nothing final yet")
    # Recipients by state: the two first wait for their next attempt (or
    # the backed-off destination), a third message adds two more, and a
    # hold moves those two out of the due index.
    qid = send_one(r.port_smtp, ["c@example.net", "d@example.net"])
    t.ok(qid is not None, "a message of two recipients queued", str(qid))
    got = scrape_until(mport, (4.0, 0.0, 0.0), by_state)
    t.eq(got.get(("relayd_queue_messages", None)), 3.0, "queue gauge: 3 messages")
    t.eq(by_state(got), (4.0, 0.0, 0.0),
         "recipients: 4 scheduled, 0 in flight, 0 held or done")
    code, out, err = relayctl(r, "hold", qid)
    t.ok(code == 0, "relayctl hold the third message", err)
    got = scrape_until(mport, (2.0, 0.0, 2.0), by_state)
    t.eq(by_state(got), (2.0, 0.0, 2.0),
         "after the hold: 2 scheduled, 0 in flight, 2 held or done")
    t.eq(got.get(("relayd_queue_messages", None)), 3.0, "still 3 messages")
    t.ok(after.get(("relayd_queue_oldest_message_age_seconds", None), -1) > 0,
         "oldest message age > 0")
    t.ok(after.get(("relayd_queue_map_used_bytes", None), 0) > 0, "map use > 0")
    # The high-water mark LMDB itself reports: pages used (the last page
    # number + 1) times the page size.
    stat_out = subprocess.run(["mdb_stat", "-e", r.queue_dir], capture_output=True,
                              text=True, timeout=10)
    env = stat_out.stdout
    psize = re.search(r"Page size: (\d+)", env)
    used = re.search(r"Number of pages used: (\d+)", env)
    want = float(int(used.group(1)) * int(psize.group(1))) if psize and used else None
    got = after.get(("relayd_queue_map_used_bytes", None))
    t.ok(got == want, "map use is LMDB's last page used, in bytes (mdb_stat -e)",
         "got %r, want %r\n%s" % (got, want, env + stat_out.stderr))

    # The shipped dashboard queries only series relayd exposes.
    with open(os.path.join(TOP_SRC, "contrib", "grafana", "relayd-dashboard.json")) as f:
        dash = json.load(f)
    exprs = [tg["expr"] for p in dash["panels"] for tg in p.get("targets", [])]
    exprs += [v["query"] for v in dash["templating"]["list"]]
    queried = {re.sub(r"_(bucket|sum|count)$", "", n)
               for e in exprs for n in re.findall(r"\brelayd_[a-z0-9_]+", e)}
    exposed = {re.sub(r"_(bucket|sum|count)$", "", n) for n, _ in after}
    t.ok(len(exprs) >= 9 and queried, "the dashboard has queries (%d)" % len(exprs))
    t.ok(queried <= exposed, "every metric the dashboard queries is exposed",
         "missing: %s" % sorted(queried - exposed))

    status, _, _ = curl(mport, "/")
    t.eq(status, 404, "GET / -> 404")
    status, _, _ = curl(mport, "/metrics/x")
    t.eq(status, 404, "GET /metrics/x -> 404")
    status, head, _ = curl(mport, "/metrics", ["-X", "POST", "--data", "x=1"])
    t.eq(status, 405, "POST /metrics -> 405")
    status, _, _ = curl(mport, "/metrics", ["-H", "X-Big: " + "a" * 40000])
    t.ok(400 <= status < 500, "a 40 KB header is refused with 4xx", str(status))
    status, _, _ = curl(mport, "/" + "a" * 40000)
    t.ok(400 <= status < 500, "a 40 KB URL is refused with 4xx", str(status))

    # Idle connections, half of them mid-request, must not hold up the
    # loop: a scrape and an SMTP session are still answered at once.
    for i in range(60):
        s = socket.create_connection(("127.0.0.1", mport), timeout=5)
        if i % 2:
            s.sendall(b"GET /metr")
        idle.append(s)
    t0 = time.time()
    status, _, body = curl(mport)
    t.eq(status, 200, "a scrape with 60 idle connections open -> 200")
    t.ok(time.time() - t0 < 2, "... answered within 2 s", "%.2f s" % (time.time() - t0))
    t0 = time.time()
    send(r.port_smtp, 1)
    t.ok(time.time() - t0 < 2, "SMTP is served meanwhile", "%.2f s" % (time.time() - t0))
    for s in idle[1:]:
        s.close()
    # The first waited idle since; the endpoint's timeout (10 s) ends it.
    idle[0].settimeout(15)
    t0 = time.time()
    try:
        closed = idle[0].recv(1) == b""
    except OSError:
        closed = True
    t.ok(closed and time.time() - t0 < 14, "an idle connection is closed by the timeout",
         "%.1f s" % (time.time() - t0))
    idle = []

    # A reload keeps the endpoint (bound as root) and says a change waits.
    with open(r.conf_path) as f:
        conf = f.read()
    r.write_conf(conf.replace("metrics_listen = 127.0.0.1:%d" % mport,
                              "metrics_listen = 127.0.0.1:%d" % free_port()))
    r.signal(signal.SIGHUP)
    t.ok(r.wait_log("reload: metrics_listen takes effect at the next restart"),
         "a reload that changes metrics_listen warns", r.log()[-800:])
    t.ok(r.wait_log("reload: configuration"), "... and reloads the rest")
    status, _, _ = curl(mport)
    t.eq(status, 200, "the running endpoint still answers after the reload")
    t.eq(r.stop(), 0, "relayd stops cleanly (exit 0) with the endpoint open")
    t.ok(r.sanitizer_clean(), "no sanitizer report", r.log()[-2000:])
except Exception:
    t.ok(False, "no unexpected exception", traceback.format_exc() + r.log()[-2000:])
finally:
    for s in idle:
        s.close()
    r.cleanup()

# In flight: a next hop that accepts the connection and never greets holds
# the delivery (smtp_helo_timeout is 300 s) until relayd stops.
mute = socket.socket()
mute.bind(("127.0.0.1", 0))
mute.listen(4)
mport = free_port()
r = Relayd(conf="relayhost = [127.0.0.1]:%d\nmetrics_listen = 127.0.0.1:%d\n"
           % (mute.getsockname()[1], mport))
try:
    r.start()
    qid = send_one(r.port_smtp, ["e@example.net"])
    got = scrape_until(mport, (1.0, 1.0, 0.0), by_state)
    t.eq(by_state(got), (1.0, 1.0, 0.0),
         "a delivery waiting for a greeting: 1 scheduled, 1 in flight, 0 held or done")
    t.eq(r.stop(), 0, "relayd stops cleanly with a delivery in flight")
    t.ok(r.sanitizer_clean(), "no sanitizer report (in flight)", r.log()[-2000:])
except Exception:
    t.ok(False, "no unexpected exception (in flight)", traceback.format_exc() + r.log()[-2000:])
finally:
    mute.close()
    r.cleanup()
t.done()
