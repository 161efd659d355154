#!/usr/bin/python3
"""The protocol and parser layers of tga-sync on their own: daemons/tga-sync/selftest.c (DateTimeOffset and
instants, request envelopes in XSD order, the streaming parsers on good and hostile responses)."""

import os
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from harness import BIN  # noqa: E402

SELFTEST = os.path.join(os.path.dirname(BIN), "tests", "unit", "tga-sync-selftest")


class Units(unittest.TestCase):
    def test_selftest(self):
        self.assertTrue(os.path.exists(SELFTEST), "%s is not built" % SELFTEST)
        p = subprocess.run([SELFTEST], capture_output=True, text=True, timeout=120)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn(" 0 failures", p.stdout)


if __name__ == "__main__":
    unittest.main(verbosity=2)
