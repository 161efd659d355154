#!/usr/bin/python3
"""cricos-sync's C unit tests (value cleaning, the streaming page scanner, record cleaning): runs the selftest
binary built beside the daemons (<build>/tests/unit/cricos-sync-selftest)."""

import os
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from harness import BIN  # noqa: E402

SELFTEST = os.path.join(os.path.dirname(BIN), "tests", "unit", "cricos-sync-selftest")


class CricosUnitTest(unittest.TestCase):
    def test_selftest(self):
        self.assertTrue(os.path.exists(SELFTEST), "build %s first" % SELFTEST)
        p = subprocess.run([SELFTEST], capture_output=True, text=True, timeout=120)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn(" 0 failures", p.stdout)


if __name__ == "__main__":
    unittest.main(verbosity=2)
