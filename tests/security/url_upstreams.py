"""Small hostile upstreams for the security tests (in-process threads; loopback only).

  Recorder     an HTTP or HTTPS server that answers 200 to everything and keeps every connection and request
               (method, path, headers, body): "another host" is 127.0.0.2, and a test asserts it saw nothing;
  Redirector   an HTTP server on 127.0.0.1 that answers every request with a redirect built from a rule, except the
               paths it serves itself (a same-origin target), which it records like a Recorder;
  make_cert()  a throw-away certificate for 127.0.0.2 (openssl), so that a daemon given it as ca_file would really
               complete the TLS handshake: a redirect is refused by policy, not by a certificate error.
"""

import os
import ssl
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def make_cert(directory, ip="127.0.0.2"):
    cert, key = os.path.join(directory, "upstream-cert.pem"), os.path.join(directory, "upstream-key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert,
                    "-days", "1", "-subj", "/CN=%s" % ip, "-addext", "subjectAltName=IP:%s" % ip],
                   check=True, capture_output=True, timeout=60)
    return cert, key


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, addr, handler, owner):
        self.owner = owner
        super().__init__(addr, handler)

    def verify_request(self, request, client_address):
        with self.owner.lock:
            self.owner.connections += 1
        return True


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def _read_body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n > 0 else b""

    def _answer(self, status, body=b"", ctype="text/xml; charset=utf-8", headers=()):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def _handle(self):
        body = self._read_body()
        self.server.owner.handle(self, body)

    do_GET = do_POST = do_PUT = do_DELETE = _handle


class _Base:
    def __init__(self, host, tls=None):
        self.lock = threading.Lock()
        self.connections = 0
        self.requests = []
        self.server = _Server((host, 0), _Handler, self)
        if tls is not None:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(*tls)
            self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self.url = "%s://%s:%d" % ("https" if tls else "http", host, self.port)
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
        self.thread.start()

    def record(self, h, body):
        with self.lock:
            self.requests.append({"method": h.command, "path": h.path, "headers": dict(h.headers.items()),
                                  "body": body})

    def seen(self):
        """Everything that reached this server, as bytes (to search for a secret)."""
        with self.lock:
            return b"\n".join(("%s %s %r" % (r["method"], r["path"], r["headers"])).encode() + b"\n" + r["body"]
                              for r in self.requests)

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


class Recorder(_Base):
    def __init__(self, host="127.0.0.2", tls=None, body=b"<ok/>"):
        self.body = body
        super().__init__(host, tls)

    def handle(self, h, body):
        self.record(h, body)
        h._answer(200, self.body)


class Redirector(_Base):
    """rule(path) -> (status, location) or None to serve the path itself (recorded, 200 with `body`)."""

    def __init__(self, rule, host="127.0.0.1", body=b"<ok/>"):
        self.rule = rule
        self.body = body
        super().__init__(host)

    def handle(self, h, body):
        r = self.rule(h.path)
        if r is None:
            self.record(h, body)
            h._answer(200, self.body)
            return
        status, location = r
        h._answer(status, b"moved", "text/plain", [("Location", location)])
