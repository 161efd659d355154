"""What the fakes that run on http_wire.py (fake_tga_soap.py, fake_tga_rest.py, fake_d1.py) share above the wire:
start-up (the command line every fake takes, the port file, SIGTERM), the stats snapshot and the control endpoints
whose answer is the same in each fake.

Standard library only: the fakes run under /usr/bin/python3.
"""

import collections
import hashlib
import os
import shutil
import signal
import sys
import threading

HERE = os.path.dirname(os.path.abspath(__file__))


def say(msg):
    """A start-up or state line on stderr (the per-request lines are http_wire.Handler.log's)."""
    sys.stderr.write(msg + "\n")
    sys.stderr.flush()


# ------------------------------------------------------------------------------------------------ start-up

def add_listen_args(ap):
    """--port and --port-file: README.md's start convention."""
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file")


def add_register_args(ap, reg):
    """--scale and --seed of the synthetic register (tga_register.py, passed as `reg`)."""
    ap.add_argument("--scale", choices=sorted(reg.nrt_codes.SCALES), default="small")
    ap.add_argument("--seed", type=int, default=1)


def add_clock_cache_args(ap, reg, cache_name):
    """The fake clock, the pre-rendered cache (in /tmp/`cache_name`) and --quiet, the TGA fakes' last options."""
    ap.add_argument("--now", default=reg.DEFAULT_NOW, help="initial fake clock (UTC)")
    ap.add_argument("--frozen-clock", action="store_true", help="the clock only moves through /_fake/clock")
    ap.add_argument("--cache-dir", default=os.path.join("/tmp", cache_name),
                    help="pre-rendered full-scale responses (small scale renders in memory)")
    ap.add_argument("--rebuild-cache", action="store_true")
    ap.add_argument("--quiet", action="store_true", help="no per-request log lines")


def listen(server_class, app, args):
    """Bind 127.0.0.1:args.port and write the chosen port to args.port_file (atomically: FILE.tmp, then rename);
    returns (server, port)."""
    server = server_class(("127.0.0.1", args.port), app)
    port = server.server_address[1]
    if args.port_file:
        tmp = args.port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write("%d\n" % port)
        os.replace(tmp, args.port_file)
    return server, port


def stop_on_signals(app, server):
    """SIGTERM and SIGINT set app.stop and shut the server down (from another thread: shutdown() waits for
    serve_forever)."""
    def stop(signum, frame):
        app.stop.set()
        threading.Thread(target=server.shutdown, daemon=True).start()
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)


def serve_then_exit(app, server):
    """Serve until a signal; then exit at once. Tearing down a full-scale register object by object takes seconds;
    nothing is left to flush."""
    stop_on_signals(app, server)
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        app.stop.set()
        server.server_close()
    sys.stderr.flush()
    os._exit(0)


# ------------------------------------------------------------------------------------------------ control plane

def stats_snapshot(app):
    """app.stats as plain JSON-able dicts, read under app.stats_lock."""
    with app.stats_lock:
        return {k: (dict(v) if isinstance(v, collections.Counter) else v) for k, v in app.stats.items()}


def common_control(app, method, path):
    """The control endpoints that answer alike in the TGA fakes: GET /_fake/stats, POST /_fake/stats/reset and
    POST /_fake/fault/clear. Returns (status, JSON object), or None for any other endpoint."""
    if path == "/_fake/stats" and method == "GET":
        return 200, stats_snapshot(app)
    if path == "/_fake/stats/reset" and method == "POST":
        app.reset_stats()
        return 200, {"ok": True}
    if path == "/_fake/fault/clear" and method == "POST":
        with app.fault_lock:
            app.faults = []
        return 200, {"ok": True}
    return None


# ------------------------------------------------------------------------------------------------ full-scale cache

def cache_key(register, sources, fmt):
    """The cache folder's name for the register's scale and seed: changes with the fake's sources (files in this
    folder) and its cache format `fmt`."""
    h = hashlib.sha256()
    for name in sources:
        with open(os.path.join(HERE, name), "rb") as f:
            h.update(f.read())
    h.update(fmt.encode())
    return "%s-seed%d-%s" % (register.scale, register.seed, h.hexdigest()[:16])


def remove_stale_caches(cache_dir, register, keep, say):
    """Caches of older sources for the same scale and seed are GBs each and never used again: remove all but
    `keep`."""
    stem = "%s-seed%d-" % (register.scale, register.seed)
    for old in os.listdir(cache_dir):
        path = os.path.join(cache_dir, old)
        if old.startswith(stem) and path != keep and os.path.isdir(path):
            shutil.rmtree(path, ignore_errors=True)
            say("cache: removed stale %s" % path)


# ------------------------------------------------------------------------------------------------ the app's state

class FakeApp:
    """What the TGA fakes' apps share: the armed faults and the stats, each behind its lock, the stop event, and
    the stats counters every fake keeps. A subclass calls init_state() and says what its stats hold
    (new_stats(): a fresh dict with at least bytes_sent, bytes_by_op and control)."""

    say = staticmethod(say)

    def init_state(self):
        self.faults = []
        self.fault_lock = threading.Lock()
        self.stats_lock = threading.Lock()
        self.reset_stats()
        self.stop = threading.Event()

    def new_stats(self):
        raise NotImplementedError

    def reset_stats(self):
        with self.stats_lock:
            self.stats = self.new_stats()

    def count_bytes(self, op, delta):
        """A response sent more or fewer bytes than counted beforehand (a fault cut it short)."""
        with self.stats_lock:
            self.stats["bytes_sent"] += delta
            self.stats["bytes_by_op"][op] += delta
