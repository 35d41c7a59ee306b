"""dsncheck - parse a delivery status notification back and check it.

check_report(raw, ...) parses a report with Python's email package and
checks it against RFC 6522 (multipart/report), RFC 3464 (the
message/delivery-status grammar: required fields, groups separated by
exactly one blank line, field syntax) and RFC 6533 for the global types;
plus what relayd promises: CRLF line endings, lines of at most 998
octets, 7-bit unless 8-bit is allowed, a boundary that occurs nowhere but
on its delimiter lines.  It returns (problems, parsed): problems a list
of strings (empty when all is well), parsed a dict with the top-level
headers, the per-message fields, the per-recipient groups and the
returned original.
"""
import email
import email.policy
import email.utils
import re

ACTIONS = {"failed", "delayed", "delivered", "relayed", "expanded"}
STATUS_RE = re.compile(r"^[245]\.\d{1,3}\.\d{1,3}(\s*\(.*\))?$")
ATOM_RE = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+$")
FIELD_RE = re.compile(rb"^([\x21-\x39\x3b-\x7e]+):[ \t]*(.*)$", re.S)
PER_MESSAGE = {"reporting-mta", "dsn-gateway", "received-from-mta",
               "arrival-date", "original-envelope-id"}
PER_RCPT = {"original-recipient", "final-recipient", "action", "status",
            "remote-mta", "diagnostic-code", "last-attempt-date",
            "final-log-id", "will-retry-until"}


def _date_ok(v):
    try:
        return email.utils.parsedate_to_datetime(v) is not None
    except (TypeError, ValueError):
        return False


def _groups(body, problems):
    """Split a delivery-status body into groups of (name, value) fields,
    checking the blank-line structure and the field syntax."""
    if not body.endswith(b"\r\n"):
        problems.append("delivery-status does not end with CRLF")
    lines = body.split(b"\r\n")
    if lines and lines[-1] == b"":
        lines.pop()
    groups, cur, blank = [], [], 0
    for i, line in enumerate(lines):
        if line == b"":
            blank += 1
            if blank > 1:
                problems.append("two blank lines in a row at line %d" % i)
            if not cur:
                problems.append("a group starts with a blank line at line %d" % i)
            if cur:
                groups.append(cur)
            cur = []
            continue
        blank = 0
        if line[:1] in (b" ", b"\t"):
            if not cur:
                problems.append("continuation without a field at line %d" % i)
                continue
            name, value = cur[-1]
            cur[-1] = (name, value + b" " + line.strip())
            continue
        m = FIELD_RE.match(line)
        if not m:
            problems.append("not a field: %r" % line[:80])
            continue
        cur.append((m.group(1).decode("ascii").lower(), m.group(2)))
    if cur:
        groups.append(cur)
    if blank:
        problems.append("delivery-status ends with a blank line")
    return groups


def _typed(v, problems, what):
    """'type; value' with an atom type."""
    if b";" not in v:
        problems.append("%s without a type: %r" % (what, v))
        return None, v
    t, rest = v.split(b";", 1)
    t = t.strip().decode("ascii", "replace")
    if not ATOM_RE.match(t):
        problems.append("%s type is not an atom: %r" % (what, t))
    return t.lower(), rest.strip()


def _check_ds(groups, problems, global_ok):
    per_msg, rcpts = {}, []
    if len(groups) < 2:
        problems.append("delivery-status needs a per-message and a per-recipient group")
        return per_msg, rcpts
    for gi, g in enumerate(groups):
        d = {}
        allowed = PER_MESSAGE if gi == 0 else PER_RCPT
        for name, value in g:
            if name in d:
                problems.append("field %s twice in group %d" % (name, gi))
            if name not in allowed and not name.startswith("x-"):
                problems.append("field %s not allowed in group %d" % (name, gi))
            if not global_ok and any(b >= 0x80 for b in value):
                problems.append("8-bit %s in message/delivery-status" % name)
            d[name] = value.decode("utf-8", "replace")
        if gi == 0:
            if "reporting-mta" not in d:
                problems.append("no Reporting-MTA")
            per_msg = d
            continue
        for req in ("final-recipient", "action", "status"):
            if req not in d:
                problems.append("recipient group %d lacks %s" % (gi, req))
        if d.get("action", "").lower() not in ACTIONS:
            problems.append("bad Action %r" % d.get("action"))
        if not STATUS_RE.match(d.get("status", "")):
            problems.append("bad Status %r" % d.get("status"))
        rcpts.append(d)
    for name, value in list(per_msg.items()) + [kv for r in rcpts for kv in r.items()]:
        raw = value.encode("utf-8")
        if name in ("reporting-mta", "remote-mta", "received-from-mta"):
            t, _ = _typed(raw, problems, name)
            if t != "dns":
                problems.append("%s is not dns-typed: %r" % (name, value))
        elif name in ("final-recipient", "original-recipient", "diagnostic-code"):
            _typed(raw, problems, name)
        elif name in ("arrival-date", "last-attempt-date", "will-retry-until"):
            if not _date_ok(value):
                problems.append("bad date in %s: %r" % (name, value))
    return per_msg, rcpts


def _parts_raw(body, boundary, problems):
    """The raw bytes of each body part, split on the delimiter lines."""
    delim = b"--" + boundary
    if body.count(delim) != body.count(b"\r\n" + delim) + (1 if body.startswith(delim) else 0):
        problems.append("the boundary occurs outside a delimiter line")
    pieces = body.split(b"\r\n" + delim)
    parts = []
    for p in pieces[1:]:
        if p.startswith(b"--"):
            if p not in (b"--", b"--\r\n"):
                problems.append("text after the close delimiter: %r" % p[:40])
            break
        if not p.startswith(b"\r\n"):
            problems.append("delimiter line not followed by CRLF")
        parts.append(p[2:])
    else:
        problems.append("no close delimiter")
    return parts


def check_report(raw, eightbit_ok=False, utf8=False):
    problems = []
    parsed = {}
    # Line discipline.
    if re.search(rb"(?<!\r)\n", raw) or re.search(rb"\r(?!\n)", raw):
        problems.append("bare CR or LF")
    if not raw.endswith(b"\r\n"):
        problems.append("does not end with CRLF")
    for line in raw.split(b"\r\n"):
        if len(line) > 998:
            problems.append("line over 998 octets")
            break
    if not eightbit_ok and any(b >= 0x80 for b in raw):
        problems.append("8-bit bytes in a 7-bit report")
    msg = email.message_from_bytes(raw, policy=email.policy.compat32)
    for h in ("From", "Date", "Message-ID", "Subject", "MIME-Version", "Auto-Submitted",
              "Content-Type"):
        if msg[h] is None:
            problems.append("no %s header" % h)
    parsed["headers"] = {k.lower(): str(v) for k, v in msg.items()}
    if msg["Date"] and not _date_ok(msg["Date"]):
        problems.append("bad Date")
    if msg["Auto-Submitted"] != "auto-replied":
        problems.append("Auto-Submitted is %r" % msg["Auto-Submitted"])
    if msg.get_content_type() != "multipart/report" or \
            msg.get_param("report-type") != "delivery-status":
        problems.append("not multipart/report; report-type=delivery-status")
        return problems, parsed
    boundary = msg.get_boundary()
    if not boundary or len(boundary) > 70:
        problems.append("bad boundary %r" % boundary)
        return problems, parsed
    head_end = raw.find(b"\r\n\r\n")
    body = raw[head_end + 2:]
    parts_raw = _parts_raw(body, boundary.encode("ascii"), problems)
    parts = msg.get_payload()
    if not isinstance(parts, list) or len(parts) not in (2, 3) or len(parts_raw) != len(parts):
        problems.append("expected 2 or 3 parts, got %r/%r" % (
            len(parts) if isinstance(parts, list) else parts, len(parts_raw)))
        return problems, parsed
    text_t = parts[0].get_content_type()
    if text_t != "text/plain":
        problems.append("first part is %s" % text_t)
    parsed["text"] = parts[0].get_payload(decode=True).decode("utf-8", "replace")
    ds_t = parts[1].get_content_type()
    want_ds = "message/global-delivery-status" if utf8 else "message/delivery-status"
    if ds_t != want_ds:
        problems.append("second part is %s, want %s" % (ds_t, want_ds))
    ds_raw = parts_raw[1]
    ds_body = ds_raw[ds_raw.find(b"\r\n\r\n") + 4:]
    groups = _groups(ds_body, problems)
    parsed["per_message"], parsed["recipients"] = _check_ds(groups, problems, utf8)
    if len(parts) == 3:
        parsed["orig_type"] = parts[2].get_content_type()
        o = parts_raw[2]
        parsed["orig"] = o[o.find(b"\r\n\r\n") + 4:]
        ok_types = ({"message/global", "message/global-headers"} if utf8 else
                    {"message/rfc822", "text/rfc822-headers"})
        if parsed["orig_type"] not in ok_types:
            problems.append("third part is %s" % parsed["orig_type"])
        cte = (parts[2]["Content-Transfer-Encoding"] or "7bit").lower()
        if any(b >= 0x80 for b in parsed["orig"]) and cte != "8bit":
            problems.append("8-bit original without Content-Transfer-Encoding: 8bit")
    return problems, parsed
