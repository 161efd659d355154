#!/usr/bin/python3
"""Files the daemons create in their shared, group-writable directories (issue 13, item 4): the lock file, the
ballast and the metrics file.  A symbolic link, a FIFO or a file of another user planted under one of those names is
never followed, written or deleted: the lock is refused with a message naming the file (the daemon does not start),
the ballast and the metrics file are skipped with a warning, and nothing appears where a link points.  A database
is not opened through a link either; a link in a directory above it (the state directory moved to another disk)
is the administrator's, and is followed.

On the code before the fix, the daemon created the link's target (lock, ballast), wrote 1 MiB into another user's
file, and blocked on a FIFO.
"""

import os
import stat
import unittest

from harness import Daemon, Workdir, base_config, ctl, wait_for, write_config

NOBODY = 65534
EXIT_CANNOT_START = 5


@unittest.skipUnless(os.geteuid() == 0, "needs root (plants files of another user)")
class PlantedFilesTest(unittest.TestCase):
    def setUp(self):
        self.wd = Workdir("files")
        self.elsewhere = self.wd.file("elsewhere")
        os.makedirs(self.elsewhere)
        self.metrics = self.wd.file("metrics")
        os.makedirs(self.metrics)
        cfg = base_config(self.wd, None, {"test-sync": {"url": "http://127.0.0.1:9/"},
                                          "paths": {"metrics_dir": self.metrics}})
        self.config = write_config(self.wd.file("sync.conf"), cfg)
        self.d = Daemon("test-sync", self.config, self.wd)
        self.lock = os.path.join(self.wd.state, "test-sync.lock")
        self.ballast = os.path.join(self.wd.state, ".test-sync.ballast")

    def tearDown(self):
        if self.d.alive():
            self.d.stop()
        self.wd.cleanup()

    def start_refused(self, what):
        self.d.start(wait=False)
        rc = self.d.wait_exit(60)
        self.assertEqual(rc, EXIT_CANNOT_START, self.d.read_log())
        log = self.d.read_log()
        self.assertIn(self.lock, log)
        self.assertIn(what, log)
        self.assertIn("remove it", log)
        return log

    def test_lock_through_a_symlink_is_refused(self):
        victim = os.path.join(self.elsewhere, "victim")
        os.symlink(victim, self.lock)
        self.start_refused("symbolic link")
        self.assertFalse(os.path.lexists(victim), "the daemon created the file the link points to")
        self.assertTrue(os.path.islink(self.lock))

    def test_lock_of_another_user_is_refused(self):
        with open(self.lock, "w"):
            pass
        os.chown(self.lock, NOBODY, NOBODY)
        self.start_refused("belongs to uid %d" % NOBODY)

    def test_lock_with_a_second_link_is_refused(self):
        victim = os.path.join(self.elsewhere, "victim")
        with open(victim, "w"):
            pass
        os.link(victim, self.lock)
        self.start_refused("hard links")

    def test_ballast_through_a_symlink_is_not_created(self):
        victim = os.path.join(self.elsewhere, "victim")
        os.symlink(victim, self.ballast)
        self.d.start()
        self.assertFalse(os.path.lexists(victim), "the ballast was created where the link points")
        self.assertIn("no ballast file", self.d.read_log())
        self.assertIn("symbolic link", self.d.read_log())
        # Giving up the ballast removes nothing that is not ours (the link stays).
        self.assertEqual(self.d.stop(), 0, self.d.read_log())
        self.assertTrue(os.path.islink(self.ballast))

    def test_ballast_of_another_user_is_not_written(self):
        with open(self.ballast, "w"):
            pass
        os.chown(self.ballast, NOBODY, NOBODY)
        self.d.start()
        self.assertEqual(os.path.getsize(self.ballast), 0, "1 MiB was written into another user's file")
        self.assertIn("belongs to uid %d" % NOBODY, self.d.read_log())

    def test_a_fifo_as_ballast_does_not_block_start_up(self):
        os.mkfifo(self.ballast, 0o660)
        self.d.start()      # waits for the socket to answer: a blocked open() would never get there
        self.assertTrue(ctl(self.d.socket_path(), "status")["ok"])
        # O_WRONLY | O_NONBLOCK on a FIFO without a reader fails (ENXIO) instead of waiting for one.
        self.assertIn("no ballast file", self.d.read_log())
        self.assertTrue(stat.S_ISFIFO(os.lstat(self.ballast).st_mode))

    def test_metrics_file_through_a_symlink_is_not_written(self):
        victim = os.path.join(self.elsewhere, "victim")
        tmp = os.path.join(self.metrics, "rtopacks-sync-test-sync.prom.tmp")
        os.symlink(victim, tmp)
        self.d.start()
        wait_for(lambda: "symbolic link" in self.d.read_log() and tmp in self.d.read_log(),
                 what="the metrics writer to refuse the link")
        self.assertFalse(os.path.lexists(victim))
        self.assertFalse(os.path.exists(os.path.join(self.metrics, "rtopacks-sync-test-sync.prom")))

    def test_own_files_are_created_and_reused(self):
        """The checks refuse only what is not ours: a normal start and a restart keep working."""
        for _ in range(2):
            self.d.start()
            self.assertEqual(self.d.stop(), 0, self.d.read_log())
        for p in (self.lock, self.ballast):
            st = os.lstat(p)
            self.assertTrue(stat.S_ISREG(st.st_mode), p)
            self.assertEqual(st.st_uid, os.geteuid(), p)
        self.assertEqual(os.path.getsize(self.ballast), 1024 * 1024)
        self.assertTrue(os.path.exists(os.path.join(self.metrics, "rtopacks-sync-test-sync.prom")))

    def test_database_through_a_symlink_is_refused(self):
        victim = os.path.join(self.elsewhere, "ops.db")
        os.symlink(victim, os.path.join(self.wd.state, "ops.db"))
        self.d.start(wait=False)
        self.assertEqual(self.d.wait_exit(60), EXIT_CANNOT_START, self.d.read_log())
        self.assertIn("symbolic link", self.d.read_log())
        self.assertFalse(os.path.lexists(victim))


class LinkedStateDirTest(unittest.TestCase):
    """A link above the database is the administrator's (the state directory moved to another disk), not a plant."""

    def test_state_dir_behind_a_link_opens(self):
        wd = Workdir("files-linkdir")
        try:
            disk = wd.file("disk")
            os.makedirs(os.path.join(disk, "state"))
            linked = wd.file("linked")
            os.symlink(disk, linked)
            cfg = base_config(wd, None, {"test-sync": {"url": "http://127.0.0.1:9/"}})
            cfg["paths"]["state_dir"] = os.path.join(linked, "state")
            d = Daemon("test-sync", write_config(wd.file("sync.conf"), cfg), wd)
            d.start()
            try:
                self.assertNotIn("cannot open", d.read_log())
                self.assertTrue(os.path.isfile(os.path.join(disk, "state", "ops.db")))
            finally:
                d.stop()
        finally:
            wd.cleanup()


if __name__ == "__main__":
    unittest.main(verbosity=2)
