"""One environment for a daemon under test; each daemon's tests subclass it with only their specifics.

An Env is a private workdir (Workdir: state/ and run/ with short paths), the daemon's config (the shared sections of
harness.base_config plus the daemon's own section), the daemon (harness.Daemon, not started), and the ways a test
reads what happened: ops.db (runs, cursor, run summaries, step details) and rtopacks.db, by polling.  The fakes and
the mail sink are started by the test (one per class, usually: start_fake(), harness.SmtpSink) and handed in.

A daemon's subclass sets `binary` (the daemon, also its config section) and `sync_type`, writes what its section
needs (secret files, keys) and calls configure(keys); what is left in its module is its fake and its oracle (how the
fake's data must look in our tables).  daemons/tga-sync/tests/tgalib.py, daemons/cricos-sync/tests/cricoslib.py and
daemons/qb-reconcile/tests/qbenv.py are the three.  The crash kit (crash.py) drives any Env.

Run one test file by hand (tests/kit/runtest.py sets the import path; ctest runs every file this way):

    RTOPACKS_BUILD_BIN=build-test/bin /usr/bin/python3 tests/kit/runtest.py daemons/cricos-sync/tests/test_paging.py
"""

import json
import os

from harness import (Daemon, Server, SmtpSink, Workdir, base_config, cursor, dump_db, query, runs, syncctl,
                     wait_for, write_config)


def start_fake(script, *args, wd=None, name=None):
    """A fake upstream (tests/fakes/<script>.py or an absolute path) on a random loopback port."""
    if not os.path.isabs(script):
        script = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "fakes", script)
    return Server(script, *args, wd=wd, name=name)


def share_upstreams(cls, start, stop=None):
    """In a setUpClass: a mail sink (cls.smtp) and a fake (cls.fake = start()) shared by the class's tests, stopped
    after them (the fake first, with stop(fake) if given), also when the rest of setUpClass fails."""
    cls.smtp = SmtpSink()
    cls.addClassCleanup(cls.smtp.stop)
    cls.fake = start()
    if stop:
        cls.addClassCleanup(stop, cls.fake)
    else:
        cls.addClassCleanup(cls.fake.stop)


class Env:
    """A workdir, a config for one daemon and the daemon; see the module's docstring."""

    binary = None       # the daemon's binary, e.g. "tga-sync" (.daemon is the harness.Daemon running it)
    section = None      # its config section, when not the binary's name
    sync_type = None    # its sync_type in ops.db, e.g. "tga_sync"

    def __init__(self, name, smtp=None, state_dir=None):
        """name: the workdir's prefix; smtp: a harness.SmtpSink or the port of one (mail goes nowhere without);
        state_dir: another folder for state/ (the fault matrices' full or read-only file systems)."""
        self.wd = Workdir(name)
        self.smtp = smtp
        self.smtp_port = smtp if isinstance(smtp, int) else (smtp.port if smtp else None)
        if state_dir:
            self.wd.state = state_dir
        self.ops = os.path.join(self.wd.state, "ops.db")
        self.corpus = os.path.join(self.wd.state, "rtopacks.db")
        self.outputs = []       # what syncctl printed (secret checks read it)
        self.daemon = None

    # --- set-up ----------------------------------------------------------------------------------------------------

    def secret_file(self, name, text):
        """A file of the workdir only its owner may read (a password, a client secret): its path."""
        path = self.wd.file(name)
        with open(path, "w") as f:
            f.write(text)
        os.chmod(path, 0o600)
        return path

    def configure(self, keys, extra=None, env=None, smtp_port=None):
        """(Re)write sync.conf: the shared sections, the daemon's `keys`, any `extra` sections (merged into the shared
        ones); the first time, make the Daemon (with `env` added to its environment)."""
        sections = {self.section or self.binary: keys}
        sections.update(extra or {})
        cfg = base_config(self.wd, smtp_port or self.smtp_port, sections)
        self.config = write_config(self.wd.file("sync.conf"), cfg)
        if self.daemon is None:
            self.daemon = Daemon(self.binary, self.config, self.wd, env=env)
        return self.config

    def warm(self):
        """Create the databases (a start and a stop, no cycle), so a fault can be armed on existing files."""
        self.daemon.start()
        assert self.daemon.stop() == 0, self.daemon.read_log()[-2000:]

    # --- running ---------------------------------------------------------------------------------------------------

    def run_once(self, *args, **kw):
        """One cycle with --once: the exit code."""
        return self.daemon.run_once(*args, **kw)

    def syncctl(self, *args, timeout=120):
        r = syncctl(self.config, *args, timeout=timeout)
        self.outputs.append(r.stdout + r.stderr)
        return r

    def wait(self, pred, timeout=15.0, interval=0.05, what="the condition"):
        return wait_for(pred, timeout=timeout, interval=interval, what=what)

    def cleanup(self):
        self.wd.cleanup()

    # --- reading ---------------------------------------------------------------------------------------------------

    def query(self, sql, params=(), db=None):
        """Rows of a read-only query of ops.db (or db: a path, e.g. self.corpus)."""
        return query(db or self.ops, sql, params)

    def runs(self):
        return runs(self.ops, self.sync_type)

    def cursor(self):
        return cursor(self.ops, self.sync_type)

    def summary(self, run_id=None):
        return run_summary(self.ops, self.sync_type, run_id)

    def corpus_dump(self, exclude_tables=(), exclude_columns=()):
        return dump_db(self.corpus, exclude_tables=exclude_tables, exclude_columns=exclude_columns)


def run_summary(ops, sync_type, run_id=None):
    """(the summary JSON of a run, its changes): the given run, or the latest of sync_type that has a summary;
    (None, None) when there is none."""
    if run_id is None:
        rows = query(ops, "SELECT summary, changes FROM sync_runs WHERE sync_type = ? AND summary IS NOT NULL"
                          " ORDER BY started_at DESC, run_id DESC LIMIT 1", (sync_type,))
    else:
        rows = query(ops, "SELECT summary, changes FROM sync_runs WHERE run_id = ?", (run_id,))
    return (json.loads(rows[0][0]), rows[0][1]) if rows and rows[0][0] else (None, None)


ITEMS_SERVER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "items_server.py")


class TestSyncEnv(Env):
    """The engine's test daemon (tests/testd: test-sync) against the items server (kit/items_server.py): `keys` are
    its [test-sync] keys after the url, `extra` other sections, `env` its environment."""

    binary = "test-sync"
    sync_type = "test_sync"

    def __init__(self, items, smtp=None, name="testd", extra=None, env=None, state_dir=None, **keys):
        super().__init__(name, smtp, state_dir)
        self.items = items
        section = {"url": items.url}
        section.update(keys)
        self.configure(section, extra=extra, env=env)

