#!/usr/bin/python3
"""The .deb: built by CPack from a fresh Release build with the Debian prefix (/usr), installed with dpkg -i on
this (throwaway) test machine, checked (dpkg -L lists the units, binaries and sample configuration; the users and
directories exist with the designed ownership; the installed units verify; the installed programs agree with the
installed layout; the installed binaries are hardened), then purged.

Runs only as root on a machine with dpkg and cpack (CI and `scripts/test` are both); elsewhere it is skipped.
Set RTOPACKS_SKIP_DEB=1 to skip it on a machine whose /usr must not be touched.
"""

import grp
import os
import pwd
import re
import shutil
import stat
import subprocess
import tempfile
import unittest

from harness import REPO
import hardening

PKG = "rtopacks-sync"
DAEMONS = ("tga-sync", "cricos-sync", "qb-reconcile")


def run(cmd, **kw):
    p = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if p.returncode != 0:
        raise AssertionError("%s failed (%d):\n%s%s" % (" ".join(cmd), p.returncode, p.stdout[-4000:],
                                                       p.stderr[-4000:]))
    return p


@unittest.skipUnless(os.geteuid() == 0 and shutil.which("dpkg") and shutil.which("cpack"),
                     "needs root, dpkg and cpack (it installs the package on this machine)")
@unittest.skipIf(os.environ.get("RTOPACKS_SKIP_DEB") == "1", "RTOPACKS_SKIP_DEB=1")
class DebTest(unittest.TestCase):
    def test_build_install_purge(self):
        build = tempfile.mkdtemp(prefix="rs-deb-")
        had_state = os.path.exists("/var/lib/rtopacks-sync")
        try:
            run(["cmake", "-S", REPO, "-B", build, "-DCMAKE_INSTALL_PREFIX=/usr", "-DCMAKE_BUILD_TYPE=Release",
                 "-DRTOPACKS_TESTS=OFF", "-DRTOPACKS_SANITIZE=OFF"])
            run(["cmake", "--build", build, "-j", str(os.cpu_count() or 2)])
            run(["cpack", "-G", "DEB"], cwd=build)
            debs = [f for f in os.listdir(build) if f.startswith(PKG + "_") and f.endswith(".deb")]
            self.assertEqual(len(debs), 1, os.listdir(build))
            deb = os.path.join(build, debs[0])
            built = [d for d in DAEMONS if os.path.exists(os.path.join(build, "bin", d))]
            self.assertTrue(built, "no daemon was built")

            info = run(["dpkg-deb", "--info", deb]).stdout
            for field in ("Package: rtopacks-sync", "Depends:", "systemd", "postinst", "postrm", "prerm"):
                self.assertIn(field, info)

            self.addCleanup(lambda: subprocess.run(["dpkg", "--purge", PKG], capture_output=True))
            run(["dpkg", "-i", deb])
            files = set(run(["dpkg", "-L", PKG]).stdout.split())
            want = {"/usr/bin/syncctl", "/usr/lib/sysusers.d/rtopacks-sync.conf",
                    "/usr/lib/tmpfiles.d/rtopacks-sync.conf", "/usr/share/rtopacks-sync/sync.conf.sample",
                    "/usr/share/doc/rtopacks-sync/install.md"}
            for d in built:
                want |= {"/usr/sbin/" + d, "/usr/lib/systemd/system/%s.service" % d,
                         "/usr/lib/systemd/system/%s-run.service" % d, "/usr/lib/systemd/system/%s-run.timer" % d,
                         "/usr/share/rtopacks-sync/schedules/%s.schedule" % d}
            self.assertEqual(sorted(want - files), [], "missing from dpkg -L")
            # Every page install.md sends the reader to is shipped beside it.
            with open(os.path.join(REPO, "docs", "install.md")) as f:
                pages = set(re.findall(r"`([A-Za-z0-9_.-]+\.md)`", f.read()))
            self.assertGreaterEqual(len(pages), 7, pages)
            docs = {"/usr/share/doc/rtopacks-sync/" + p for p in pages}
            self.assertEqual(sorted(docs - files), [], "install.md points to pages the package does not ship")

            # postinst: users, the shared group, directories and the configuration file.
            gid = grp.getgrnam("rtopacks-sync").gr_gid
            for d in DAEMONS:
                self.assertEqual(pwd.getpwnam(d).pw_gid, gid, d)
            grp.getgrnam("rtopacks-ops")
            for path, mode in (("/var/lib/rtopacks-sync", 0o2770), ("/run/rtopacks-sync", 0o3770),
                               ("/etc/rtopacks-sync", 0o750), ("/var/lib/rtopacks-sync/ops.db", 0o664),
                               ("/etc/rtopacks-sync/sync.conf", 0o640)):
                st = os.stat(path)
                self.assertEqual((stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid), (mode, 0, gid), path)
            with open("/etc/rtopacks-sync/sync.conf") as f, \
                    open(os.path.join(REPO, "etc", "sync.conf.sample")) as g:
                self.assertEqual(f.read(), g.read())

            # An upgrade (the same package again: postinst configure <version>) keeps the configuration and the
            # databases, and brings the layout back to what tmpfiles.d says.
            with open("/etc/rtopacks-sync/sync.conf", "a") as f:
                f.write("# edited by the operator\n")
            os.chmod("/run/rtopacks-sync", 0o2770)
            run(["dpkg", "-i", deb])
            with open("/etc/rtopacks-sync/sync.conf") as f:
                self.assertTrue(f.read().endswith("# edited by the operator\n"), "the upgrade kept sync.conf")
            self.assertEqual(stat.S_IMODE(os.stat("/run/rtopacks-sync").st_mode), 0o3770)
            self.assertTrue(os.path.exists("/var/lib/rtopacks-sync/ops.db"))

            # The installed programs carry Debian's hardening flags (readelf; tests/security/hardening.py).
            for prog in ["/usr/bin/syncctl"] + ["/usr/sbin/" + d for d in built]:
                self.assertEqual(hardening.problems(prog), [], prog)

            # The installed programs and units agree with the installed layout.
            run(["/usr/bin/syncctl", "--help"])
            for d in built:
                out = run(["/usr/sbin/" + d, "--help-config"]).stdout
                self.assertIn(";schedules_dir = /usr/share/rtopacks-sync/schedules", out)
            units = ["/usr/lib/systemd/system/" + u for d in built
                     for u in (d + ".service", d + "-run.service", d + "-run.timer")]
            p = run(["systemd-analyze", "verify"] + units)
            self.assertEqual((p.stdout + p.stderr).strip(), "")

            run(["dpkg", "--purge", PKG])
            self.assertFalse(os.path.exists("/usr/bin/syncctl"))
            self.assertFalse(os.path.exists("/usr/lib/systemd/system/%s.service" % built[0]))
            self.assertFalse(os.path.exists("/etc/rtopacks-sync"), "purge removes the configuration it created")
            self.assertTrue(os.path.exists("/var/lib/rtopacks-sync/ops.db"), "purge keeps the databases")
        finally:
            if not had_state:
                shutil.rmtree("/var/lib/rtopacks-sync", ignore_errors=True)
            shutil.rmtree(build, ignore_errors=True)


if __name__ == "__main__":
    unittest.main(verbosity=2)
