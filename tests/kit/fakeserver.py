"""Shared plumbing for the project's own small test servers (not the protocol fakes, which have their own).

A threaded HTTP/1.1 server on 127.0.0.1, a random port written to a port file, and the fault kinds of
tests/fakes/README.md, so a test can make any endpoint misbehave: http500, http503, http429 (retry_after), hang,
reset, truncate, malformed, html, redirect, slow (delay), drip (interval).
"""

import json
import os
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Faults:
    """Armed faults.  ops, if given, are the op names the server knows: arming another one is refused (ValueError),
    so that a test cannot arm a fault that never fires.  listing() reports each fault's remaining count and how often
    it fired, so that a test can check that its fault was used (tests/kit/faultmatrix.py does)."""

    def __init__(self, ops=None):
        self.lock = threading.Lock()
        self.ops = set(ops) if ops else None
        self.armed = []          # [{"op", "kind", "count", "fired", ...}]

    def arm(self, spec):
        spec = dict(spec)
        spec.setdefault("op", "*")
        spec.setdefault("count", 1)
        if self.ops is not None and spec["op"] != "*" and spec["op"] not in self.ops:
            raise ValueError("unknown op %r (known: %s)" % (spec["op"], ", ".join(sorted(self.ops))))
        spec["fired"] = 0
        with self.lock:
            self.armed.append(spec)

    def clear(self):
        with self.lock:
            self.armed.clear()

    def listing(self):
        with self.lock:
            return [dict(spec) for spec in self.armed]

    def take(self, op):
        with self.lock:
            for spec in self.armed:
                if spec["op"] in ("*", op) and spec["count"] != 0:
                    if spec["count"] > 0:
                        spec["count"] -= 1
                    spec["fired"] += 1
                    return dict(spec)
        return None


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "test-server/1"

    def log_message(self, fmt, *args):  # one line per request on stderr, as the fakes do
        os.write(2, ("%s %s\n" % (self.address_string(), fmt % args)).encode())

    def send_body(self, status, body, ctype="application/json", headers=None):
        if isinstance(body, str):
            body = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def apply_fault(self, fault, body, ctype):
        """Serve body through the armed fault.  Returns True when the fault answered (or hung) instead."""
        kind = fault["kind"]
        if kind in ("http500", "http503"):
            self.send_body(int(kind[4:]), '{"error": "injected %s"}' % kind)
        elif kind == "http429":
            self.send_body(429, '{"error": "slow down"}', headers={"Retry-After": str(fault.get("retry_after", 1))})
        elif kind == "hang":
            time.sleep(fault.get("hold", 3600))
            self.close_connection = True
        elif kind == "reset":
            self.send_response(200)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            self.close_connection = True
        elif kind == "truncate":
            self.send_response(200)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[: len(body) // 2])
            self.close_connection = True
        elif kind == "malformed":
            self.send_body(200, body[: len(body) // 2] + b"}}]]<<", ctype)
        elif kind == "html":
            self.send_body(200, fault.get("body", "<!DOCTYPE html><html><body><h1>Sign in</h1></body></html>"),
                           "text/html; charset=utf-8")
        elif kind == "redirect":
            self.send_body(302, "", "text/plain", {"Location": "https://login.example.invalid/sso"})
        elif kind == "slow":
            time.sleep(fault.get("delay", 1))
            self.send_body(200, body, ctype)
        elif kind == "drip":
            self.send_response(200)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            for i in range(len(body)):
                self.wfile.write(body[i:i + 1])
                self.wfile.flush()
                time.sleep(fault.get("interval", 1))
        else:
            return False
        return True


def serve(handler_cls, port, port_file):
    server = ThreadingHTTPServer(("127.0.0.1", port), handler_cls)
    server.daemon_threads = True
    if port_file:
        tmp = port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write(str(server.server_address[1]))
        os.rename(tmp, port_file)
    try:
        server.serve_forever(poll_interval=0.1)
    except KeyboardInterrupt:
        pass
    return server


def read_json(handler):
    n = int(handler.headers.get("Content-Length") or 0)
    return json.loads(handler.rfile.read(n) or b"{}")
