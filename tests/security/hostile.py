"""A hostile upstream for the security tests: a reverse proxy in front of one of the fakes (tests/fakes/) that lets
every request through except those an armed rule matches, which get a hostile answer instead.

    h = Hostile(fake.url)                       # listens on 127.0.0.1, h.url takes the fake's place in a config
    h.arm(lambda req: b"SearchByModifiedDate" in req.body, Stream(prefix, b" ", total=2 << 30))
    ...
    h.hits                                      # how many requests the armed rule answered

Answers (each streams quickly, from a pre-built chunk, and stops when the client hangs up):
    Body(data, status, ctype, gzip)             a fixed body (gzip: sent with Content-Encoding: gzip)
    Stream(prefix, filler, total, suffix)       prefix, then filler repeated to total bytes (None: endlessly,
                                                chunked), then suffix; Content-Length announced when total is set
    Bomb(prefix, decoded, suffix)               a gzip bomb: a small compressed body that decodes to prefix, decoded
                                                bytes of white space, suffix
    Rewrite(fn)                                 the upstream's own answer with its body passed through fn
Runs in a thread of the test process (Debian's python3 only).
"""

import http.client
import http.server
import socketserver
import threading
import urllib.parse
import zlib

CHUNK = 1 << 20


class Request:
    def __init__(self, method, path, headers, body):
        self.method, self.path, self.headers, self.body = method, path, headers, body


class Body:
    def __init__(self, data, status=200, ctype="application/json", gzip=False):
        self.data, self.status, self.ctype, self.gzip = data, status, ctype, gzip

    def send(self, h):
        data = self.data
        h.send_response(self.status)
        h.send_header("Content-Type", self.ctype)
        if self.gzip:
            data = gzip_of(data)
            h.send_header("Content-Encoding", "gzip")
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        h.wfile.write(data)


class Stream:
    def __init__(self, prefix, filler, total=None, suffix=b"", status=200, ctype="application/json"):
        self.prefix, self.suffix, self.total, self.status, self.ctype = prefix, suffix, total, status, ctype
        self.chunk = (filler * (CHUNK // len(filler) + 1))[:CHUNK - CHUNK % len(filler)]

    def send(self, h):
        h.send_response(self.status)
        h.send_header("Content-Type", self.ctype)
        if self.total is None:
            h.send_header("Transfer-Encoding", "chunked")
        else:
            h.send_header("Content-Length", str(self.total))
        h.end_headers()
        chunked = self.total is None

        def out(b):
            if chunked:
                h.wfile.write(b"%x\r\n%s\r\n" % (len(b), b))
            else:
                h.wfile.write(b)

        out(self.prefix)
        sent = len(self.prefix)
        while self.total is None or sent + len(self.chunk) + len(self.suffix) <= self.total:
            out(self.chunk)
            sent += len(self.chunk)
        rest = self.total - sent - len(self.suffix)
        out(self.chunk[:rest] + self.suffix)


class Rewrite:
    """The upstream's own answer, its body passed through fn (bytes -> bytes)."""

    def __init__(self, fn):
        self.fn = fn

    def send(self, h):
        h.proxy.forward(h, h.req, self.fn)


_bombs = {}


class Bomb:
    def __init__(self, prefix, decoded=256 << 20, suffix=b"", status=200, ctype="application/json"):
        key = (prefix, decoded, suffix)
        if key not in _bombs:
            c = zlib.compressobj(6, zlib.DEFLATED, 31)
            parts = [c.compress(prefix)]
            spaces = b" " * CHUNK
            for _ in range(decoded // CHUNK):
                parts.append(c.compress(spaces))
            parts += [c.compress(suffix), c.flush()]
            _bombs[key] = b"".join(parts)
        self.data, self.status, self.ctype = _bombs[key], status, ctype

    def send(self, h):
        h.send_response(self.status)
        h.send_header("Content-Type", self.ctype)
        h.send_header("Content-Encoding", "gzip")
        h.send_header("Content-Length", str(len(self.data)))
        h.end_headers()
        h.wfile.write(self.data)


def gzip_of(data):
    c = zlib.compressobj(6, zlib.DEFLATED, 31)
    return c.compress(data) + c.flush()


class _Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class Hostile:
    def __init__(self, upstream):
        u = urllib.parse.urlsplit(upstream)
        self.up_host, self.up_port = u.hostname, u.port
        self.rules = []
        self.hits = 0
        self.log = []           # (method, path, first bytes of the body) of every request
        self.lock = threading.Lock()
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def handle_any(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else b""
                req = Request(self.command, self.path, self.headers, body)
                self.proxy, self.req = proxy, req
                answer = proxy.match(req)
                try:
                    if answer is not None:
                        self.close_connection = True
                        answer.send(self)
                    else:
                        proxy.forward(self, req)
                except (BrokenPipeError, ConnectionResetError):
                    self.close_connection = True     # the daemon stopped reading: what we want of it

            do_GET = do_POST = do_PUT = do_DELETE = handle_any

        self.server = _Server(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.url = "http://127.0.0.1:%d" % self.port
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def arm(self, match, answer, count=-1):
        """Answer requests for which match(req) is true with answer (count times; -1: every time)."""
        with self.lock:
            self.rules = [[match, answer, count]]
            self.hits = 0

    def clear(self):
        with self.lock:
            self.rules = []

    def match(self, req):
        with self.lock:
            self.log.append((req.method, req.path, req.body[:200]))
            for rule in self.rules:
                if rule[2] != 0 and rule[0](req):
                    rule[2] -= 1
                    self.hits += 1
                    return rule[1]
        return None

    def forward(self, h, req, transform=None):
        c = http.client.HTTPConnection(self.up_host, self.up_port, timeout=60)
        headers = {k: v for k, v in req.headers.items() if k.lower() not in ("host", "connection",
                                                                             "accept-encoding")}
        c.request(req.method, req.path, body=req.body or None, headers=headers)
        r = c.getresponse()
        data = r.read()
        if transform is not None:
            data = transform(data)
        h.send_response(r.status)
        for k, v in r.getheaders():
            if k.lower() not in ("transfer-encoding", "connection", "content-length", "content-encoding"):
                h.send_header(k, v)
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        h.wfile.write(data)
        c.close()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()
