#!/usr/bin/python3
"""The REST source's JSON layers on their own: daemons/tga-sync/rest-selftest.c (the jscan tokenizer on valid and
hostile texts; REST answers mapped onto the stage records the SOAP parser fills, with the same scope row hash)."""

import os
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from harness import BIN  # noqa: E402

SELFTEST = os.path.join(os.path.dirname(BIN), "tests", "unit", "tga-sync-rest-selftest")


class RestUnits(unittest.TestCase):
    def test_selftest(self):
        self.assertTrue(os.path.exists(SELFTEST), "%s is not built" % SELFTEST)
        p = subprocess.run([SELFTEST], capture_output=True, text=True, timeout=120)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn(" 0 failures", p.stdout)


if __name__ == "__main__":
    unittest.main(verbosity=2)
