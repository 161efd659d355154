#!/usr/bin/python3
"""The completion mail on a real SMTP server: headers, the phase table, the summary; a mail server that is down
never fails or loses the sync, and the queued mail goes out once the server is back."""

import email.utils
import os
import re
import unittest

from harness import (Daemon, Server, SmtpSink, Workdir, base_config, reserve_port, query, runs,
                     wait_for, write_config, REPO)

ITEMS_SERVER = os.path.join(REPO, "tests", "kit", "items_server.py")


class MailTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.items = Server(ITEMS_SERVER, "--items", "23")

    @classmethod
    def tearDownClass(cls):
        cls.items.stop()

    def env(self, smtp_port, **keys):
        wd = Workdir("mail")
        k = {"url": self.items.url, "page_size": 10, "housekeeping_interval": "300ms"}
        k.update(keys)
        config = write_config(wd.file("sync.conf"), base_config(wd, smtp_port, {"test-sync": k}))
        return wd, config, os.path.join(wd.state, "ops.db")

    def test_completion_mail_headers_table_and_summary(self):
        smtp = SmtpSink()
        wd, config, ops = self.env(smtp.port)
        self.assertEqual(Daemon("test-sync", config, wd).run_once(), 0)
        m = smtp.wait(1)[0]
        msg = m["msg"]
        run = runs(ops)[0]
        self.assertEqual(str(msg["Subject"]), "[test-sync] cycle complete \u2014 23 changes")
        self.assertEqual(str(msg["From"]), "RTOpacks Sync <noreply@rtopacks.test>")
        self.assertEqual(str(msg["To"]), "ops@rtopacks.test")
        self.assertEqual(m["from"], "noreply@rtopacks.test")
        self.assertEqual(m["to"], ["ops@rtopacks.test"])
        self.assertIsNotNone(email.utils.parsedate_to_datetime(str(msg["Date"])))
        self.assertRegex(str(msg["Message-ID"]), r"^<[0-9a-f]{16}\.rtopacks-sync@[^>]+>$")
        self.assertEqual(msg.get_content_type(), "text/plain")
        body = msg.get_content().replace("\r\n", "\n")
        self.assertIn("Run ID:    %s" % run["run_id"], body)
        self.assertIn("Trigger:   manual", body)
        self.assertRegex(body, r"Duration:  \d+s")
        self.assertRegex(body, r"Phase\s+\| Status\s+\|\s+Records in \|\s+Records out")
        for phase, status, rin, rout in (("init", "complete", "-", "-"), ("fetch_items", "complete", "23", "23"),
                                         ("aggregate", "complete", "-", "4"),
                                         ("write_snapshot", "complete", "-", "-")):
            self.assertRegex(body, r"(?m)^%s\s+\| %s\s+\|\s+%s \|\s+%s$" % (phase, status, re.escape(rin),
                                                                           re.escape(rout)))
        self.assertIn("Changes: 23", body)
        self.assertIn("items added:   23", body)
        self.assertIn("+ item-0023", body)
        # The outbox row is sent, and the notify step counted one mail out.
        self.assertEqual(query(ops, "SELECT status, attempts FROM mail_outbox"), [("sent", 1)])
        self.assertEqual(query(ops, "SELECT status, records_out FROM sync_steps WHERE step = 'notify'"),
                         [("complete", 1)])
        smtp.stop()
        wd.cleanup()

    def test_mail_server_down_the_run_completes_and_the_mail_is_retried(self):
        sock = reserve_port()   # nothing listens here yet (and nothing else can take the port)
        wd, config, ops = self.env(sock.getsockname()[1])
        d = Daemon("test-sync", config, wd)
        self.assertEqual(d.run_once(), 0, d.read_log())
        self.assertEqual(runs(ops)[0]["status"], "complete")
        status, error = query(ops, "SELECT status, error FROM sync_steps WHERE step = 'notify'")[0]
        self.assertEqual(status, "failed")
        self.assertIn("mail not delivered", error)
        self.assertIn("stays queued", error)
        pending = query(ops, "SELECT status, attempts, last_error FROM mail_outbox")
        self.assertEqual(pending[0][0], "pending")
        self.assertEqual(pending[0][1], 2)       # smtp.retries = 1: two attempts during the run
        self.assertTrue(pending[0][2])
        # The server comes back; the daemon's housekeeping delivers the queued mail (once).
        smtp = SmtpSink(sock=sock)
        d.start()
        msgs = smtp.wait(1)
        self.assertEqual(str(msgs[0]["msg"]["Subject"]), "[test-sync] cycle complete \u2014 23 changes")
        wait_for(lambda: query(ops, "SELECT status FROM mail_outbox") == [("sent",)], what="the outbox row")
        self.assertEqual(d.stop(), 0)
        self.assertEqual(len(smtp.received()), 1)
        smtp.stop()
        wd.cleanup()

    def test_a_later_once_run_delivers_mail_queued_earlier(self):
        sock = reserve_port()
        wd, config, ops = self.env(sock.getsockname()[1])
        d = Daemon("test-sync", config, wd)
        self.assertEqual(d.run_once(), 0)
        self.assertEqual(query(ops, "SELECT status FROM mail_outbox"), [("pending",)])
        smtp = SmtpSink(sock=sock)
        self.assertEqual(d.run_once(), 0)
        # The first cycle's mail (queued) and the second's: each delivered once.
        subjects = sorted(str(m["msg"]["Subject"]) for m in smtp.wait(2))
        self.assertEqual(subjects, ["[test-sync] cycle complete \u2014 0 changes",
                                    "[test-sync] cycle complete \u2014 23 changes"])
        self.assertEqual(query(ops, "SELECT status FROM mail_outbox ORDER BY id"), [("sent",), ("sent",)])
        smtp.stop()
        wd.cleanup()

    def test_a_daemon_delivers_only_its_own_queued_mail(self):
        # ops.db's outbox is shared; a row queued by another daemon is that daemon's to deliver (two daemons working
        # one row could send it twice).
        smtp = SmtpSink()
        wd, config, ops = self.env(smtp.port)
        d = Daemon("test-sync", config, wd)
        self.assertEqual(d.run_once(), 0)
        smtp.wait(1)
        import sqlite3
        con = sqlite3.connect(ops)
        con.execute("INSERT INTO mail_outbox (mail_key, sync_type, subject, message, status, created_at,"
                    " next_attempt_at) VALUES ('other/x', 'tga_sync', 'not mine', 'Subject: not mine\r\n\r\nx\r\n',"
                    " 'pending', '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z')")
        con.commit()
        con.close()
        self.assertEqual(d.run_once(), 0)
        smtp.wait(2)
        self.assertEqual(query(ops, "SELECT status FROM mail_outbox WHERE mail_key = 'other/x'"), [("pending",)])
        self.assertNotIn("not mine", [str(m["msg"]["Subject"]) for m in smtp.received()])
        smtp.stop()
        wd.cleanup()

    def test_no_mail_server_configured_is_warned_and_queued(self):
        wd, config, ops = self.env(None)
        d = Daemon("test-sync", config, wd)
        self.assertEqual(d.run_once(), 0)
        self.assertIn("[smtp] url is not set", d.read_log())
        self.assertEqual(query(ops, "SELECT status FROM mail_outbox"), [("pending",)])
        wd.cleanup()

    def test_notify_can_be_turned_off(self):
        smtp = SmtpSink()
        wd, config, ops = self.env(smtp.port, notify=False)
        self.assertEqual(Daemon("test-sync", config, wd).run_once(), 0)
        self.assertEqual(query(ops, "SELECT count(*) FROM mail_outbox"), [(0,)])
        self.assertEqual(smtp.received(), [])
        smtp.stop()
        wd.cleanup()


if __name__ == "__main__":
    unittest.main(verbosity=2)
