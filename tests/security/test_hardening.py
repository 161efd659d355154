#!/usr/bin/python3
"""Release binaries are built with Debian's hardening flags (issue 13, item 9).

A Release build (what the .deb is made from; tests/systemd/test_deb.py checks the installed binaries the same way)
of syncctl and tga-sync is checked with readelf: stack protector, _FORTIFY_SOURCE, -z relro -z now, PIE, -O2 and
not -O3.  The checker itself is shown to catch each flaw on a small program built without them.

On the code before the fix the Release build had no stack protector, no _FORTIFY_SOURCE, no BIND_NOW, and -O3.
"""

import os
import shutil
import subprocess
import tempfile
import unittest

from harness import REPO
import hardening

PROGRAM = r"""
#include <stdio.h>
#include <string.h>
int main(int argc, char **argv)
{
	char buf[64];
	size_t n = strlen(argv[0]);
	memcpy(buf, argv[0], n < sizeof buf ? n : sizeof buf - 1);
	buf[sizeof buf - 1] = '\0';
	fprintf(stderr, "%s %d\n", buf, argc);
	return 0;
}
"""


@unittest.skipUnless(shutil.which("readelf") and shutil.which("cmake"), "needs readelf and cmake")
class HardeningTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="rs-harden-")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def run_ok(self, cmd, **kw):
        p = subprocess.run(cmd, capture_output=True, text=True, **kw)
        self.assertEqual(p.returncode, 0, "%s:\n%s%s" % (" ".join(cmd), p.stdout[-3000:], p.stderr[-3000:]))
        return p

    def test_release_binaries_are_hardened(self):
        build = os.path.join(self.tmp, "release")
        self.run_ok(["cmake", "-S", REPO, "-B", build, "-DCMAKE_BUILD_TYPE=Release", "-DRTOPACKS_TESTS=OFF",
                     "-DRTOPACKS_SANITIZE=OFF"])
        self.run_ok(["cmake", "--build", build, "-j", str(os.cpu_count() or 2), "--target", "syncctl", "tga-sync"])
        for prog in ("syncctl", "tga-sync"):
            with self.subTest(prog):
                self.assertEqual(hardening.problems(os.path.join(build, "bin", prog)), [])

    def test_the_check_catches_an_unhardened_binary(self):
        src = os.path.join(self.tmp, "p.c")
        with open(src, "w") as f:
            f.write(PROGRAM)
        bad = os.path.join(self.tmp, "bad")
        self.run_ok(["cc", "-O3", "-frecord-gcc-switches", "-fno-stack-protector", "-U_FORTIFY_SOURCE",
                     "-fno-pie", "-no-pie", "-Wl,-z,lazy", "-Wl,-z,norelro", "-o", bad, src])
        got = " | ".join(hardening.problems(bad))
        for want in ("stack protector", "_FORTIFY_SOURCE", "BIND_NOW", "RELRO", "not PIE", "-O3"):
            self.assertIn(want, got)
        good = os.path.join(self.tmp, "good")
        self.run_ok(["cc", "-O2", "-frecord-gcc-switches", "-fstack-protector-all", "-D_FORTIFY_SOURCE=2", "-fPIE",
                     "-pie", "-Wl,-z,relro", "-Wl,-z,now", "-o", good, src])
        self.assertEqual(hardening.problems(good), [])


if __name__ == "__main__":
    unittest.main(verbosity=2)
