"""admincommon - what the queue administration tests share: the tools,
a helper that injects messages with arbitrary bytes, and a way to run
them with a TAP-friendly result."""
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from relaydtest import TOP_BUILD, QUEUE_DUMP  # noqa: E402,F401

RELAYQ = os.path.join(TOP_BUILD, "tools", "relayq")
RELAYCTL = os.path.join(TOP_BUILD, "tools", "relayctl")
QUEUE_INJECT = os.path.join(TOP_BUILD, "t", "helpers", "queue_inject")


def run(argv, stdin=None, env=None, timeout=60):
    """Run a tool; returns (exit code, stdout bytes, stderr text)."""
    p = subprocess.run(argv, input=stdin, capture_output=True, timeout=timeout, env=env)
    return p.returncode, p.stdout, p.stderr.decode("utf-8", "replace")


def relayq(r, *args):
    return run([RELAYQ, "-f", r.conf_path] + list(args))


def relayctl(r, *args, stdin=None, env=None):
    return run([RELAYCTL, "-f", r.conf_path] + list(args), stdin=stdin, env=env)


def inject(r, sender, rcpts, reason=None, age=0, lease=0, nxt=3600):
    """Put a message into r's stopped queue; returns its id."""
    argv = [QUEUE_INJECT, r.queue_dir, "-a", str(age), "-n", str(nxt), "-c", str(lease)]
    if reason is not None:
        argv += ["-r", reason]
    code, out, err = run(argv + [sender] + list(rcpts))
    if code != 0:
        raise RuntimeError("queue_inject: " + err)
    return out.decode().strip()


def due(r):
    """The due index: [(id, rcpt, when)]."""
    out = subprocess.run([QUEUE_DUMP, r.queue_dir, "-D"], capture_output=True, timeout=30)
    rows = []
    for line in out.stdout.decode().split("\n"):
        if line:
            qid, rcpt, when = line.split()
            rows.append((qid, int(rcpt), int(when)))
    return rows


def jlist(r):
    """relayq -j parsed: {queue_id: object}."""
    import json
    code, out, err = relayq(r, "-j")
    if code != 0:
        raise RuntimeError("relayq -j: " + err)
    return {o["queue_id"]: o for o in (json.loads(line) for line in out.decode().split("\n") if line)}
