#!/usr/bin/python3
"""etc/sync.conf.sample documents every key of every section exactly as the programs know them.

The key lines and their help come from `<daemon> --help-config`; this test regenerates the sample from every daemon
the build made and fails on any difference (fix: `cmake --build <build> --target sync-conf-sample`).  It also loads
the sample, with its keys uncommented as documented, through each daemon's own `-n` check.
"""

import os
import re
import shutil
import subprocess
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
from harness import BIN, REPO
import sample_config

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
        # -n checks what start-up checks, secrets included (issue 13, item 8): what every site adds to the sample
        # is the TGA account and the secrets.  Without the account, -n says so.
        creds = tempfile.mkdtemp(prefix="rs-sample-creds-")
        for name in ("tga-password", "qb-client-secret"):
            fd = os.open(os.path.join(creds, name), os.O_WRONLY | os.O_CREAT, 0o600)
            os.write(fd, b"sample-secret-value\n")
            os.close(fd)
        env = dict(os.environ, CREDENTIALS_DIRECTORY=creds)
        paths = []
        try:
            for name, text in (("bare", out), ("site", [l for line in out for l in (
                    [line, "username = x"] if line == "[tga-sync]" else [line])])):
                with tempfile.NamedTemporaryFile("w", suffix="-%s.conf" % name, delete=False) as f:
                    f.write("\n".join(text) + "\n")
                    paths.append(f.name)
            p = subprocess.run([os.path.join(BIN, "tga-sync"), "-n", "-c", paths[0]], capture_output=True, text=True,
                               env=env)
            self.assertEqual(p.returncode, 5, p.stdout + p.stderr)
            self.assertIn("[tga-sync] username (not set): required with source = soap", p.stderr)
            for d in DAEMONS:
                p = subprocess.run([os.path.join(BIN, d), "-n", "-c", paths[1]], capture_output=True, text=True,
                                   env=env)
                self.assertEqual(p.returncode, 0, "%s -n on the uncommented sample:\n%s" % (d, p.stdout + p.stderr))
        finally:
            for path in paths:
                os.unlink(path)
            shutil.rmtree(creds)


if __name__ == "__main__":
    unittest.main(verbosity=2)
