#!/usr/bin/python3
"""The resolver's cache against a real server (unbound), in one process
(t/helpers/dns_query): answers are reused within their TTL and asked
again after it, negative answers are kept for the SOA's negative TTL,
temporary failures are not kept, and concurrent lookups of one name
share one query.
"""
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from relaydtest import TAP, TOP_BUILD  # noqa: E402
import dnstest  # noqa: E402

DNS_QUERY = os.path.join(TOP_BUILD, "t", "helpers", "dns_query")
t = TAP()
dns = dnstest.DNS("long 300 A 127.0.0.51\nsame 300 A 127.0.0.52\n"
                  "_25._tcp.mx 300 TLSA 3 1 1 " + "ab" * 32 + "\n"
                  "short 1 A 127.0.0.50\n")


def run(*ops):
    p = subprocess.run([DNS_QUERY, "127.0.0.1:%d" % dns.port] + list(ops),
                       capture_output=True, text=True, timeout=30)
    lines = p.stdout.splitlines()
    return p.returncode, lines[:-1], lines[-1] if lines else ""


try:
    rc, ans, stats = run("long.test/A", "long.test/A")
    t.eq(stats, "queries=1 hits=1", "a second lookup within the TTL is a cache hit")
    t.eq(ans[0], "long.test A NOERROR n=1 ttl=300", "the answer carries its TTL")

    rc, ans, stats = run("short.test/A", "short.test/A", "sleep:1300", "short.test/A")
    t.eq(stats, "queries=2 hits=1", "after its TTL (1 s) the name is asked again")

    rc, ans, stats = run("nx.test/MX", "nx.test/MX")
    t.eq(ans, ["nx.test MX NXDOMAIN n=0 ttl=60"] * 2,
         "NXDOMAIN cached for the SOA's negative TTL (min of TTL and MINIMUM)")
    t.eq(stats, "queries=1 hits=1", "... so the second lookup is a hit")

    rc, ans, stats = run("long.test/MX", "long.test/MX")
    t.eq((ans[0], stats), ("long.test MX NODATA n=0 ttl=60", "queries=1 hits=1"), "NODATA cached too")

    rc, ans, stats = run("x.broken.example/MX", "x.broken.example/MX")
    t.eq((ans, stats), (["x.broken.example MX TEMPFAIL n=0 ttl=0"] * 2, "queries=2 hits=0"),
         "a temporary failure is not cached")

    rc, ans, stats = run("_25._tcp.mx.test/TLSA")
    t.eq(ans, ["_25._tcp.mx.test TLSA NOERROR n=1 ttl=300"], "TLSA records (for DANE) come through")

    rc, ans, stats = run("x50:same.test/A")
    t.eq((len(ans), stats), (50, "queries=1 hits=0"),
         "50 concurrent lookups of one name share one query")
    t.ok(all(a == "same.test A NOERROR n=1 ttl=300" for a in ans), "... and all get its answer")
finally:
    dns.stop()
t.done()
