"""A strict reader of the Prometheus text exposition format (0.0.4), as node_exporter's textfile collector reads it.

parse(text) returns {metric family: {"type", "help", "samples": {(name, frozenset(labels)): float}}} and raises
ValueError naming the line for anything the format does not allow: bad metric or label names, bad escapes, a
value that is not a float, a TYPE after the family's samples or twice, a family split by another, a repeated
series, or a timestamp (the textfile collector rejects those).  If Debian's python3-prometheus-client is
installed, its parser must accept the text too.
"""

import math
import re

NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
LABEL = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
TYPES = ("counter", "gauge", "histogram", "summary", "untyped")


def _family_of(name, families):
    for suffix in ("_bucket", "_count", "_sum", "_total", ""):
        if suffix and name.endswith(suffix) and name[: -len(suffix)] in families:
            return name[: -len(suffix)]
    return name


def _labels(s, lineno):
    labels = {}
    i = 0
    while i < len(s):
        m = LABEL.match(s, i)
        if not m:
            raise ValueError("line %d: bad label name at %r" % (lineno, s[i:]))
        key = m.group(0)
        i = m.end()
        if s[i:i + 2] != '="':
            raise ValueError("line %d: expected =\" after label %s" % (lineno, key))
        i += 2
        val = []
        while True:
            if i >= len(s):
                raise ValueError("line %d: unterminated label value" % lineno)
            c = s[i]
            if c == "\\":
                if i + 1 >= len(s) or s[i + 1] not in '\\"n':
                    raise ValueError("line %d: bad escape in label value" % lineno)
                val.append({"\\": "\\", '"': '"', "n": "\n"}[s[i + 1]])
                i += 2
                continue
            if c == '"':
                i += 1
                break
            if c == "\n":
                raise ValueError("line %d: newline in label value" % lineno)
            val.append(c)
            i += 1
        if key in labels:
            raise ValueError("line %d: label %s twice" % (lineno, key))
        labels[key] = "".join(val)
        if i < len(s):
            if s[i] != ",":
                raise ValueError("line %d: expected , between labels" % lineno)
            i += 1
    return labels


def _value(s, lineno):
    if s in ("NaN", "+Inf", "-Inf", "Inf"):
        return float(s.replace("Inf", "inf").replace("NaN", "nan"))
    try:
        v = float(s)
    except ValueError:
        raise ValueError("line %d: %r is not a number" % (lineno, s))
    if math.isnan(v) or math.isinf(v):
        raise ValueError("line %d: spell NaN and Inf as the format does" % lineno)
    return v


def parse(text):
    if text and not text.endswith("\n"):
        raise ValueError("the text does not end with a newline")
    families = {}
    order = []
    done = set()
    current = None
    for lineno, line in enumerate(text.split("\n")[:-1], 1):
        if line.strip() == "":
            continue
        if line.startswith("#"):
            parts = line.split(None, 3)
            if len(parts) >= 3 and parts[1] in ("HELP", "TYPE"):
                name = parts[2]
                if not NAME.fullmatch(name):
                    raise ValueError("line %d: bad metric name %r" % (lineno, name))
                fam = families.setdefault(name, {"type": None, "help": None, "samples": {}})
                if name in done or (fam["samples"] and current != name):
                    raise ValueError("line %d: %s for %s after its samples" % (lineno, parts[1], name))
                if parts[1] == "TYPE":
                    if fam["type"] is not None:
                        raise ValueError("line %d: TYPE of %s given twice" % (lineno, name))
                    if len(parts) < 4 or parts[3] not in TYPES:
                        raise ValueError("line %d: unknown type" % lineno)
                    fam["type"] = parts[3]
                else:
                    if fam["help"] is not None:
                        raise ValueError("line %d: HELP of %s given twice" % (lineno, name))
                    fam["help"] = parts[3] if len(parts) > 3 else ""
                if current != name and current is not None:
                    done.add(current)
                current = name
                if name not in order:
                    order.append(name)
            continue
        m = NAME.match(line)
        if not m:
            raise ValueError("line %d: bad metric name in %r" % (lineno, line))
        name = m.group(0)
        rest = line[m.end():]
        labels = {}
        if rest.startswith("{"):
            end = rest.rfind("}")
            if end < 0:
                raise ValueError("line %d: unterminated label set" % lineno)
            labels = _labels(rest[1:end], lineno)
            rest = rest[end + 1:]
        if not rest.startswith(" "):
            raise ValueError("line %d: expected a space before the value" % lineno)
        fields = rest.split()
        if len(fields) != 1:
            raise ValueError("line %d: a timestamp or extra field (the textfile collector rejects them)" % lineno)
        value = _value(fields[0], lineno)
        fname = _family_of(name, families)
        if fname in done:
            raise ValueError("line %d: family %s split by another family" % (lineno, fname))
        if current is not None and current != fname:
            done.add(current)
        current = fname
        fam = families.setdefault(fname, {"type": None, "help": None, "samples": {}})
        if fname not in order:
            order.append(fname)
        key = (name, frozenset(labels.items()))
        if key in fam["samples"]:
            raise ValueError("line %d: series %s%s repeated" % (lineno, name, labels))
        fam["samples"][key] = value
    try:
        from prometheus_client.parser import text_string_to_metric_families
    except ImportError:
        pass
    else:
        list(text_string_to_metric_families(text))
    return families


def value(families, name, **labels):
    """The value of one series, or None."""
    fam = families.get(_family_of(name, families))
    if fam is None:
        return None
    return fam["samples"].get((name, frozenset(labels.items())))
