#!/usr/bin/python3
"""config_doc - relayd.conf(5) documents every key of the parameter table.

The table is read through t/helpers/config_sample (its output is
generated from the table: "#key = default" lines, "(Not implemented
yet.)" in the comment of a key whose feature is missing).  The PARAMETERS
section of man/relayd.conf.5 must list exactly those keys, in the same
order, each with the table's default and a description, and say "Not
implemented yet" exactly for the keys the table marks so.  The shipped
etc/relayd.conf must be that output, byte for byte.
"""
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from relaydtest import TAP, TOP_BUILD, TOP_SRC     # noqa: E402

NOT_IMPL = "Not implemented yet"


def table_keys(sample):
    """[(key, default, implemented)] from config_sample's output."""
    keys, comment = [], []
    for line in sample.splitlines():
        m = re.match(r"^#([a-z_0-9]+) =(?: (.*))?$", line)
        if m:
            text = " ".join(comment)
            keys.append((m.group(1), m.group(2) or "", "(Not implemented yet.)" not in text))
            comment = []
        elif line.startswith("# "):
            comment.append(line[2:].strip())
        else:
            comment = []
    return keys


def unquote(s):
    s = s.strip()
    return s[1:-1] if len(s) >= 2 and s[0] == '"' and s[-1] == '"' else s


def man_entries(page):
    """[(key, default or None, body text)] of the PARAMETERS section."""
    m = re.search(r"^\.SH PARAMETERS\n(.*?)^\.SH ", page, re.S | re.M)
    if not m:
        return None
    entries = []
    lines = m.group(1).split("\n")
    i = 0
    while i < len(lines):
        if lines[i] != ".TP":
            i += 1
            continue
        tag = lines[i + 1] if i + 1 < len(lines) else ""
        body = []
        i += 2
        while i < len(lines) and lines[i] != ".TP":
            body.append(lines[i])
            i += 1
        t = re.match(r'^\.B (\S+)$', tag)
        if t:
            entries.append((t.group(1), None, " ".join(body)))
            continue
        t = re.match(r'^\.BR (\S+) " =(?:" (.*)| " (.*))?"?$', tag)
        if t and t.group(2) is None and t.group(3) is None:
            entries.append((t.group(1), "", " ".join(body)))
        elif t:
            entries.append((t.group(1), unquote(t.group(3) or ""), " ".join(body)))
        else:
            entries.append((tag, "?", " ".join(body)))
    return entries


t = TAP()
sample = subprocess.run([os.path.join(TOP_BUILD, "t", "helpers", "config_sample")],
                        check=True, capture_output=True, text=True).stdout
keys = table_keys(sample)
t.ok(len(keys) >= 40, "config_sample lists the table (%d keys)" % len(keys))

with open(os.path.join(TOP_SRC, "etc", "relayd.conf")) as f:
    t.ok(f.read() == sample, "etc/relayd.conf is config_sample's output (make sample)")

with open(os.path.join(TOP_SRC, "man", "relayd.conf.5")) as f:
    page = f.read()
entries = man_entries(page)
t.ok(entries is not None, "relayd.conf(5) has a PARAMETERS section")
entries = entries or []
man_names = [e[0] for e in entries]
table_names = [k[0] for k in keys]
missing = [k for k in table_names if k not in man_names]
extra = [k for k in man_names if k not in table_names]
t.ok(not missing, "every key of the table has an entry", "missing: %s" % missing)
t.ok(not extra, "every entry is a key of the table", "unknown: %s" % extra)
t.ok(man_names == table_names or missing or extra, "entries are in the table's order",
     "man: %s" % man_names)

byname = {e[0]: e for e in entries}
for name, default, implemented in keys:
    e = byname.get(name)
    if not e:
        continue
    _, mdef, body = e
    shown = "(none shown)" if mdef is None else repr(mdef)
    t.ok(mdef == default or (mdef is None and default == ""),
         "%s: default %r" % (name, default), "man page shows %s" % shown)
    words = re.sub(r"\\f[BIRP]|^\.[A-Z]+ ", "", body)
    t.ok(len(words.split()) >= 4, "%s: described" % name, body)
    t.ok((NOT_IMPL in body) == (not implemented),
         "%s: %s" % (name, "implemented" if implemented else "marked not implemented yet"),
         body)
t.done()
