#!/usr/bin/python3
"""common/ and ctl/ name no daemon (issue 15): outside comments, no file there says tga, cricos, qb, quickbooks or
the name or sync type of any daemon registered with rtopacks_daemon() (daemons/*/CMakeLists.txt,
tests/CMakeLists.txt).  A daemon's own code lives in its folder and reaches the shared code through hooks
(docs/CONTRIBUTING-DAEMONS.md).  A failure names each FILE:LINE."""

import glob
import os
import re
import unittest

from harness import REPO

# The short names the daemons go by besides their registered ones.
NICKNAMES = ("tga", "cricos", "qb", "quickbooks", "intuit")
# Names of things outside this program that merely contain a daemon's name, as string literals: the live
# Observatory's step log in D1 is called tga_sync_steps and is shared by every sync worker (issue 14 names it as the
# default of [d1] steps_table).  Each entry is a whole quoted string; nothing else is excused.
EXTERNAL_NAMES = ('"tga_sync_steps"',)
REGISTER = re.compile(r"rtopacks_daemon\(\s*NAME\s+(\S+)\s+SYNC_TYPE\s+(\S+)")


def registered_names():
    names = set()
    for cm in glob.glob(os.path.join(REPO, "daemons", "*", "CMakeLists.txt")) + \
            [os.path.join(REPO, "tests", "CMakeLists.txt")]:
        with open(cm) as f:
            for m in REGISTER.finditer(strip_hash_comments(f.read())):
                names.update(m.groups())
    return names


def name_pattern(names):
    words = sorted(set(NICKNAMES) | set(names), key=len, reverse=True)
    # A name is a word of its own: "qb_connection" and "QuickBooks" count, "sqbuf" does not.
    return re.compile(r"(?<![A-Za-z0-9])(%s)(?![A-Za-z0-9])" % "|".join(map(re.escape, words)), re.IGNORECASE)


def strip_c_comments(text):
    """The text with /* */ and // comments blanked (newlines kept, so line numbers stay); strings are code."""
    out, i, n = [], 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j == -1 else j + 2
            out.append("".join(ch if ch == "\n" else " " for ch in text[i:j]))
            i = j
        elif text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j == -1 else j
            out.append(" " * (j - i))
            i = j
        elif c in "\"'":
            j = i + 1
            while j < n and text[j] != c and text[j] != "\n":
                j += 2 if text[j] == "\\" else 1
            out.append(text[i:j + 1])
            i = j + 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def strip_hash_comments(text):
    """CMake: '#' to the end of the line (outside a quoted argument)."""
    lines = []
    for line in text.split("\n"):
        quoted = False
        for k, ch in enumerate(line):
            if ch == '"':
                quoted = not quoted
            elif ch == "#" and not quoted:
                line = line[:k]
                break
        lines.append(line)
    return "\n".join(lines)


def shared_files():
    for top in ("common", "ctl"):
        for dirpath, _, names in os.walk(os.path.join(REPO, top)):
            for name in sorted(names):
                if name.endswith((".c", ".h")) or name == "CMakeLists.txt":
                    yield os.path.join(dirpath, name)


def findings(path, pattern):
    with open(path, encoding="utf-8", errors="replace") as f:
        text = f.read()
    code = strip_hash_comments(text) if path.endswith("CMakeLists.txt") else strip_c_comments(text)
    for external in EXTERNAL_NAMES:
        code = code.replace(external, '""')
    rel = os.path.relpath(path, REPO)
    return ["%s:%d: %s" % (rel, no, line.strip()) for no, line in enumerate(code.split("\n"), 1)
            if pattern.search(line)]


class DaemonNamesTest(unittest.TestCase):
    def test_the_scanner_sees_code_not_comments(self):
        pattern = name_pattern({"tga-sync", "tga_sync"})
        code = strip_c_comments('x = 1; /* tga-sync\n qb */ y = "QuickBooks"; // cricos\nif (qb_ok) z;\n'
                                "s = \"a \\\" tga_sync\"; t = '/'; /* \"qb\" */ u = sqbuf;\n")
        hits = [no for no, line in enumerate(code.split("\n"), 1) if pattern.search(line)]
        self.assertEqual(hits, [2, 3, 4])
        self.assertEqual(code.count("\n"), 4)
        self.assertNotIn("cricos", code)
        self.assertEqual(strip_hash_comments('set(x "a#b") # tga\n'), 'set(x "a#b") \n')

    def test_the_daemons_are_registered(self):
        names = registered_names()
        for n in ("tga-sync", "tga_sync", "cricos-sync", "qb-reconcile", "test-sync", "test_sync"):
            self.assertIn(n, names)

    def test_common_and_ctl_name_no_daemon(self):
        pattern = name_pattern(registered_names())
        found = []
        for path in shared_files():
            found += findings(path, pattern)
        self.assertEqual(found, [], "daemon names in common/ or ctl/ (move the code into the daemon's folder, "
                         "behind a hook: docs/CONTRIBUTING-DAEMONS.md):\n" + "\n".join(found))


if __name__ == "__main__":
    unittest.main(verbosity=2)
