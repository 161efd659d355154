"""Starting and stopping a fake from its tests (test_fake_*.py): README.md's start convention seen from the client.

Standard library only: the tests run under /usr/bin/python3.
"""

import json
import os
import signal
import subprocess
import time


def launch(argv, port_file, log, timeout, **popen):
    """Start the fake `argv` (which names port_file as --port-file) with its stderr in the open file `log`, and wait
    until it has written its port; returns (process, port). RuntimeError, with the log, when it exits first or takes
    longer than `timeout` seconds."""
    proc = subprocess.Popen(argv, stderr=log, **popen)
    deadline = time.time() + timeout
    while not os.path.exists(port_file):
        if proc.poll() is not None or time.time() > deadline:
            with open(log.name, errors="replace") as f:
                raise RuntimeError("fake did not start (log %s):\n%s" % (log.name, f.read()))
        time.sleep(0.02)
    with open(port_file) as f:
        return proc, int(f.read())


def terminate(proc, timeout=10):
    """SIGTERM, then wait up to `timeout` seconds for the exit status; a fake that does not stop is killed and
    subprocess.TimeoutExpired raised."""
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise


class Response:
    """One answer: status, headers (names in lower case) and body bytes."""

    def __init__(self, status, headers, body):
        self.status, self.headers, self.body = status, headers, body

    def json(self):
        return json.loads(self.body)

    def header(self, name):
        return self.headers.get(name.lower())


def exchange(conn, method, path, body=None, headers=None):
    """One request on an http.client connection, a dict or list body sent as JSON; returns (status, the response's
    header list as sent, body bytes)."""
    hdrs = dict(headers or {})
    if isinstance(body, (dict, list)):
        body = json.dumps(body)
        hdrs.setdefault("Content-Type", "application/json")
    conn.request(method, path, body=body, headers=hdrs)
    r = conn.getresponse()
    data = r.read()
    return r.status, r.getheaders(), data


class ControlClient:
    """control() for a test's fake-server object whose http(method, path, body, headers) returns (status, headers,
    body): GET /_fake/<path>, or POST it `obj` as JSON; asserts a 200 and returns the JSON answer."""

    def control(self, path, obj=None):
        st, _, body = self.http("POST" if obj is not None else "GET", "/_fake/" + path,
                                json.dumps(obj).encode() if obj is not None else None,
                                {"Content-Type": "application/json"})
        assert st == 200, (st, body)
        return json.loads(body)
