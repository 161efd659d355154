#!/usr/bin/python3
"""etc/sync.conf.sample documents every key of every section exactly as the programs know them.

The key lines and their help come from `<daemon> --help-config`; this test regenerates the sample from every daemon
the build made and fails on any difference (fix: `cmake --build <build> --target sync-conf-sample`).  It also loads
the sample, with its keys uncommented as documented, through each daemon's own `-n` check.
"""

import os
import re
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
sys.path.insert(0, HERE)
from harness import BIN, REPO  # noqa: E402
import sample_config  # noqa: E402

SAMPLE = os.path.join(REPO, "etc", "sync.conf.sample")
DAEMONS = [d for d in sample_config.DAEMONS if os.path.exists(os.path.join(BIN, d))]


class SampleConfigTest(unittest.TestCase):
    def programs(self):
        progs = [os.path.join(BIN, d) for d in DAEMONS]
        if not progs:
            # No product daemon built yet: the shared sections can still be checked against the test daemon.
            progs = [os.path.join(BIN, "test-sync")]
        return progs

    def test_sample_matches_the_programs(self):
        p = subprocess.run(["/usr/bin/python3", os.path.join(HERE, "sample_config.py"), "--check", SAMPLE]
                           + self.programs(), capture_output=True, text=True)
        self.assertEqual(p.returncode, 0, "etc/sync.conf.sample is out of date; run "
                         "`cmake --build <build> --target sync-conf-sample`:\n" + p.stdout + p.stderr)

    def test_every_daemon_has_a_section(self):
        with open(SAMPLE, encoding="utf-8") as f:
            text = f.read()
        for section in sample_config.SHARED + tuple(DAEMONS):
            self.assertIn("\n[%s]\n" % section, text)

    def test_uncommented_sample_is_valid(self):
        """Every documented default, uncommented, passes each daemon's configuration check."""
        with open(SAMPLE, encoding="utf-8") as f:
            lines = f.read().splitlines()
        out = []
        required = False
        for line in lines:
            m = re.match(r"^;([a-z0-9_]+) =(?: (.+))?$", line)
            if m and m.group(2) is not None and m.group(1) != "schedules_dir":
                out.append("%s = %s" % (m.group(1), m.group(2)))
            elif m and required:
                # A required key has no default: give one of the right kind.
                out.append("%s = %s" % (m.group(1), "https://example.invalid/" if "url" in m.group(1) else "x"))
            else:
                out.append(line)
            required = line.startswith("# (required)")
        with tempfile.NamedTemporaryFile("w", suffix=".conf", delete=False) as f:
            f.write("\n".join(out) + "\n")
            path = f.name
        try:
            for d in DAEMONS:
                p = subprocess.run([os.path.join(BIN, d), "-n", "-c", path], capture_output=True, text=True)
                self.assertEqual(p.returncode, 0, "%s -n on the uncommented sample:\n%s" % (d, p.stdout + p.stderr))
        finally:
            os.unlink(path)


if __name__ == "__main__":
    unittest.main(verbosity=2)
