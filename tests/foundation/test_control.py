#!/usr/bin/python3
"""The control socket: one run however many triggers, hostile input answered and survived, peer credentials,
cancel, watch, and a second instance refused."""

import concurrent.futures
import os
import socket
import stat
import subprocess
import time
import unittest

import oskit
from harness import (CtlConn, Daemon, Server, SmtpSink, Workdir, base_config, ctl, cursor, query, runs,
                     wait_for, write_config, REPO, BIN)

ITEMS_SERVER = os.path.join(REPO, "tests", "kit", "items_server.py")
NOBODY = 65534


def as_user(uid, gids, fn):
    """Run fn() in a child process with another uid (and supplementary groups); return what it returns."""
    def become():
        os.setgroups(gids)
        os.setgid(gids[0] if gids else NOBODY)
        os.setuid(uid)
    return oskit.in_child(become, fn, lambda e: {"child_error": repr(e)})


class ControlTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.items = Server(ITEMS_SERVER, "--items", "60")
        cls.smtp = SmtpSink()

    @classmethod
    def tearDownClass(cls):
        cls.items.stop()
        cls.smtp.stop()

    def setUp(self):
        self.wd = Workdir("ctl")
        keys = {"url": self.items.url, "page_size": 10, "step_backoff": "50ms"}
        self.config = write_config(self.wd.file("sync.conf"),
                                   base_config(self.wd, self.smtp.port, {"test-sync": keys,
                                                                         "control": {"operators_group": "users",
                                                                                     "max_clients_per_uid": 16}}))
        self.ops = os.path.join(self.wd.state, "ops.db")
        self.d = Daemon("test-sync", self.config, self.wd).start()
        self.sock = self.d.socket_path()
        self.items.post("/_fake/fault/clear")

    def tearDown(self):
        self.items.post("/_fake/fault/clear")
        if self.d.alive():
            self.assertEqual(self.d.stop(), 0, self.d.read_log())
        self.wd.cleanup()

    def assert_serving(self):
        r = ctl(self.sock, "status")
        self.assertTrue(r["ok"], r)
        self.assertEqual(r["v"], 1)
        return r["result"]

    def test_concurrent_triggers_make_exactly_one_run(self):
        self.items.fault("items", "slow", count=-1, delay=0.3)
        with concurrent.futures.ThreadPoolExecutor(12) as pool:
            replies = list(pool.map(lambda _: ctl(self.sock, "trigger"), range(12)))
        started = [r for r in replies if r["ok"]]
        already = [r for r in replies if not r["ok"]]
        self.assertEqual(len(started), 1, replies)
        run_id = started[0]["result"]["run_id"]
        self.assertEqual(len(already), 11)
        for r in already:
            self.assertEqual(r["code"], "already_running")
            self.assertEqual(r["run_id"], run_id)
            self.assertIn("already running", r["error"])
        self.assertEqual(len(runs(self.ops)), 1)
        self.items.post("/_fake/fault/clear")
        wait_for(lambda: runs(self.ops)[0]["status"] == "complete", timeout=30, what="the run to complete")
        self.assertEqual(len(runs(self.ops)), 1)

    def test_bad_input_gets_an_error_reply_and_the_daemon_keeps_serving(self):
        cases = [
            ("oversize", b"{" + b"x" * (70 * 1024) + b"}\n", "line_too_long"),
            ("oversize without newline", b"x" * (70 * 1024), "line_too_long"),
            ("bad json", b"{not json\n", "bad_request"),
            ("not an object", b"[1, 2, 3]\n", "bad_request"),
            ("no version", b'{"cmd": "status"}\n', "bad_version"),
            ("wrong version", b'{"v": 2, "cmd": "status"}\n', "bad_version"),
            ("no command", b'{"v": 1}\n', "bad_request"),
            ("unknown command", b'{"v": 1, "cmd": "rm -rf"}\n', "unknown_command"),
            ("invalid utf-8", b'{"v": 1, "cmd": "\xff\xfe\xc3"}\n', "unknown_command"),
            ("args not an object", b'{"v": 1, "cmd": "trigger", "args": 5}\n', "bad_request"),
        ]
        for name, raw, code in cases:
            with self.subTest(case=name):
                c = CtlConn(self.sock)
                c.send_raw(raw)
                reply = c.recv()
                self.assertIsNotNone(reply, name)
                self.assertFalse(reply["ok"])
                self.assertEqual(reply["code"], code, reply)
                self.assertEqual(reply["v"], 1)
                self.assertTrue(c.closed_by_peer(), "connection left open after %s" % name)
                c.close()
                self.assert_serving()
        # Several requests on one connection are fine.
        c = CtlConn(self.sock)
        for _ in range(3):
            c.send({"v": 1, "cmd": "status"})
            self.assertTrue(c.recv()["ok"])
        c.close()

    def test_peer_with_another_uid_is_refused_but_an_operator_is_served(self):
        # The socket is 0660: another user cannot even connect.  Open it up to prove the daemon checks the peer too.
        self.assertEqual(stat.S_IMODE(os.stat(self.sock).st_mode), 0o660)
        for d in (self.wd.path, self.wd.run):
            os.chmod(d, 0o755)      # the test's private directories: let the other user reach the socket
        os.chmod(self.sock, 0o666)

        def request():
            from harness import ctl as c
            return c(self.sock, "status")

        refused = as_user(NOBODY, [NOBODY], request)
        self.assertIn("ok", refused, refused)
        self.assertFalse(refused["ok"], refused)
        self.assertEqual(refused["code"], "permission_denied")
        self.assertIn("uid 65534", refused["error"])
        self.assert_serving()
        # A member of [control] operators_group ("users", gid 100 on Debian) is served.
        import grp
        gid = grp.getgrnam("users").gr_gid
        served = as_user(NOBODY, [gid], request)
        self.assertTrue(served["ok"], served)
        self.assertIn("refused uid 65534", self.d.read_log())

    def test_connection_caps(self):
        conns = [CtlConn(self.sock) for _ in range(16)]
        extra = CtlConn(self.sock)
        reply = extra.recv()
        self.assertEqual(reply["code"], "busy", reply)
        self.assertTrue(extra.closed_by_peer())
        extra.close()
        for c in conns:
            c.close()
        wait_for(lambda: ctl(self.sock, "status").get("ok"), what="the daemon to serve again")

    def test_slow_and_stuck_clients_never_block_the_daemon(self):
        slow = CtlConn(self.sock)
        slow.send_raw(b'{"v": 1, ')          # half a request, then silence
        stuck = CtlConn(self.sock)
        stuck.send({"v": 1, "cmd": "watch"})  # and never read what comes
        latencies = []
        for _ in range(20):
            t0 = time.monotonic()
            self.assert_serving()
            latencies.append(time.monotonic() - t0)
        self.assertLess(max(latencies), 0.5, latencies)
        # The half-finished request is given up on.
        self.assertTrue(slow.closed_by_peer(timeout=15))
        slow.close()
        stuck.close()

    def test_cancel_stops_at_a_step_boundary_and_the_next_trigger_resumes(self):
        self.items.fault("items", "slow", count=-1, delay=0.4)
        self.assertTrue(ctl(self.sock, "trigger")["ok"])
        wait_for(lambda: (cursor(self.ops, "test_sync") or {}).get("phase_cursor") == "page=2",
                 what="the first page to commit")
        r = ctl(self.sock, "cancel")
        self.assertTrue(r["ok"], r)
        wait_for(lambda: runs(self.ops)[-1]["status"] == "cancelled", what="the run to stop")
        self.assertIn("cancelled by uid 0", runs(self.ops)[-1]["error"])
        cur = cursor(self.ops, "test_sync")
        self.assertEqual(cur["cycle_phase"], "fetch_items")
        self.assertTrue(cur["phase_cursor"].startswith("page="))
        self.assertEqual(ctl(self.sock, "cancel")["code"], "not_running")
        self.items.post("/_fake/fault/clear")
        r = ctl(self.sock, "trigger")
        self.assertTrue(r["ok"])
        wait_for(lambda: runs(self.ops)[-1]["status"] == "complete", timeout=30, what="the resumed run")
        self.assertEqual(runs(self.ops)[-1]["trigger"], "resume")
        self.assertEqual(query(os.path.join(self.wd.state, "rtopacks.db"), "SELECT count(*) FROM test_items"),
                         [(60,)])

    def test_watch_streams_the_run_until_it_ends(self):
        self.items.fault("items", "slow", count=2, delay=0.2)
        c = CtlConn(self.sock, timeout=30)
        c.send({"v": 1, "cmd": "trigger", "args": {"watch": True}})
        reply = c.recv()
        self.assertTrue(reply["ok"])
        run_id = reply["result"]["run_id"]
        events = []
        while True:
            m = c.recv()
            self.assertIsNotNone(m, "stream ended before run_end")
            self.assertEqual(m["v"], 1)
            events.append(m["event"])
            self.assertEqual(m["data"]["run_id"], run_id)
            if m["event"] == "run_end":
                self.assertEqual(m["data"]["status"], "complete")
                break
        c.close()
        self.assertIn("phase", events)
        self.assertIn("progress", events)
        self.assertEqual(events[-1], "run_end")

    def test_second_instance_refuses_to_start_and_a_stale_socket_is_taken_over(self):
        second = subprocess.run([os.path.join(BIN, "test-sync"), "-f", "-c", self.config], capture_output=True,
                                text=True, timeout=30)
        self.assertEqual(second.returncode, 5)
        self.assertIn("already running", second.stderr)
        self.assert_serving()
        # A killed daemon leaves its socket file behind; the next one probes it, finds no one, and takes over.
        self.d.kill()
        self.assertTrue(os.path.exists(self.sock))
        self.d.start()
        self.assert_serving()


if __name__ == "__main__":
    unittest.main(verbosity=2)
