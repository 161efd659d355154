"""The HTTP/1.1 wire layer shared by the fake TGA servers (fake_tga_soap.py and fake_tga_rest.py).

Each fake subclasses Handler with its own routing (serve()) and the few things that differ on the wire: the headers
it adds, the tail the "malformed" fault appends, the pace of the "drip" fault and the shape of its file-range parts.
Server binds an app (the fake's state) to the handler; the handler expects app.stop (an Event), app.quiet,
app.stats["control"] and app.stats_lock.

A response body is a list of parts: bytes, or tuples naming a range of an open file (file_range() turns a fake's
tuple into (fd, offset, count)), which go out with sendfile.

Standard library only: the fakes run under /usr/bin/python3.
"""

import os
import select
import socket
import socketserver
import struct
import sys
import time
import traceback


class Handler(socketserver.BaseRequestHandler):
    """HTTP/1.1 with keep-alive, a thread per connection. Hand-rolled rather than http.server because its header
    parsing costs more than serving a pre-rendered response (more than the whole SOAP request at full scale)."""

    name = "fake"                # names the fake in the 500 a bug in it turns into
    reasons = {}                 # status -> reason phrase
    malformed_suffix = b""       # the "malformed" fault: the first half of the body, then this
    drip_interval = 0.5          # the "drip" fault: seconds between writes unless the fault gives "interval"

    # -------------------------------------------------------------------------------------------- hooks

    def serve(self, method, target, headers, body, keep, t0):
        """Answer one request; returns whether the connection may stay open."""
        raise NotImplementedError

    def extra_headers(self, status, control):
        """Header lines ("Name: value") after Content-Length and before Connection."""
        return []

    def file_range(self, part):
        """(fd, offset, count) of a tuple body part."""
        return part

    def drip_pace(self, fault):
        """(seconds between writes, bytes per write) for the "drip" fault: one byte at a time by default."""
        return float(fault.spec.get("interval", self.drip_interval)), 1

    # -------------------------------------------------------------------------------------------- requests

    def setup(self):
        self.sock = self.request
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.rfile = self.sock.makefile("rb", buffering=65536)

    def finish(self):
        try:
            self.rfile.close()
        except OSError:
            pass

    def handle(self):
        app = self.server.app
        while not app.stop.is_set():
            try:
                line = self.rfile.readline(65537)
            except (OSError, ValueError):
                return
            if not line:
                return
            if line in (b"\r\n", b"\n"):
                continue
            t0 = time.monotonic()
            try:
                method, target, version = line.decode("latin-1").split()
            except ValueError:
                self.send_simple(400, b"bad request line")
                return
            headers = {}
            while True:
                h = self.rfile.readline(65537)
                if h in (b"\r\n", b"\n", b""):
                    break
                k, _, v = h.decode("latin-1").partition(":")
                headers[k.strip().lower()] = v.strip()
            if headers.get("expect", "").lower() == "100-continue":
                self.sock.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
            body = self.read_body(headers)
            if body is None:
                return
            conn = headers.get("connection", "").lower()
            keep = (version == "HTTP/1.1" and conn != "close") or (version == "HTTP/1.0" and conn == "keep-alive")
            try:
                ok = self.serve(method, target, headers, body, keep, t0)
            except Exception:
                # A bug in the fake must show up as a server error, not as a silently dropped connection.
                traceback.print_exc()
                self.send_simple(500, b"%s internal error (see its log)" % self.name.encode())
                return
            if not ok or not keep:
                return

    def read_body(self, headers):
        if headers.get("transfer-encoding", "").lower() == "chunked":
            out = []
            while True:
                size_line = self.rfile.readline()
                if not size_line:
                    return None
                size = int(size_line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(out)
                out.append(self.rfile.read(size))
                self.rfile.readline()
        n = int(headers.get("content-length", "0") or 0)
        return self.rfile.read(n) if n else b""

    # -------------------------------------------------------------------------------------------- responses

    def materialise(self, parts):
        for p in parts:
            if isinstance(p, tuple):
                fd, offset, count = self.file_range(p)
                yield os.pread(fd, count, offset)
            else:
                yield p

    def render(self, status, headers, parts, keep, kind, control):
        """(head bytes, body parts) of a response, with the body already spoilt when the fault `kind` needs it."""
        if kind in ("reset", "truncate", "malformed", "drip"):
            parts = [b"".join(self.materialise(parts))]
        if kind == "malformed":
            whole = parts[0]
            parts = [whole[:max(1, len(whole) // 2)] + self.malformed_suffix]
        length = sum(self.file_range(p)[2] if isinstance(p, tuple) else len(p) for p in parts)
        head = ["HTTP/1.1 %d %s" % (status, self.reasons.get(status, "Unknown"))]
        for k, v in headers:
            head.append("%s: %s" % (k, v))
        head.append("Content-Length: %d" % length)
        head.extend(self.extra_headers(status, control))
        if not keep:
            head.append("Connection: close")
        return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1"), parts

    def planned_bytes(self, hbytes, parts):
        """What a response will send when nothing goes wrong. The fakes count a request with this figure *before*
        writing it: a client that has read the answer and asks /_fake/stats at once must see it counted."""
        return len(hbytes) + sum(self.file_range(p)[2] if isinstance(p, tuple) else len(p) for p in parts)

    def write(self, hbytes, parts, fault, keep):
        """Write a rendered response, honouring the connection faults (reset, truncate, drip); returns (bytes
        sent, whether the connection may stay open). The body of a faulted response is one materialised part."""
        app = self.server.app
        kind = fault.kind if fault is not None else None
        sent = len(hbytes)
        try:
            if kind in ("reset", "truncate"):
                whole = parts[0]
                cut = whole[:max(1, len(whole) // 2)]
                self.sock.sendall(hbytes + cut)
                sent += len(cut)
                if kind == "reset":
                    self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                else:
                    self.sock.shutdown(socket.SHUT_WR)
                self.sock.close()
                keep = False
            elif kind == "drip":
                self.sock.sendall(hbytes)
                interval, step = self.drip_pace(fault)
                data = parts[0]
                for i in range(0, len(data), step):
                    if app.stop.is_set():
                        break
                    self.sock.sendall(data[i:i + step])
                    sent += len(data[i:i + step])
                    time.sleep(interval)
            else:
                sent += self.send_parts(hbytes, parts)
        except OSError:
            keep = False
        return sent, keep

    def respond(self, status, headers, parts, keep, fault, control, count, recount, head_only=False):
        """Render and write a response, counted before it is written (see planned_bytes): a control request in
        stats["control"], any other with count(planned bytes), then recount(sent - planned) when what went out
        differs. A HEAD answer (head_only) has no body. Returns (bytes sent, whether the connection may stay
        open)."""
        kind = fault.kind if fault is not None else None
        hbytes, parts = self.render(status, headers, parts, keep, kind, control)
        if head_only:
            parts = []
        planned = self.planned_bytes(hbytes, parts)
        if control:
            self.count_control()
        else:
            count(planned)
        sent, keep = self.write(hbytes, parts, fault, keep)
        if not control and sent != planned:
            recount(sent - planned)
        return sent, keep

    def send_parts(self, hbytes, parts):
        """Coalesce adjacent byte parts into one write; file ranges go out with sendfile."""
        sent = 0
        buf = [hbytes]
        for p in parts:
            if isinstance(p, tuple):
                if buf:
                    self.sock.sendall(b"".join(buf))
                    buf = []
                fd, offset, count = self.file_range(p)
                while count > 0:
                    try:
                        n = os.sendfile(self.sock.fileno(), fd, offset, count)
                    except BlockingIOError:
                        select.select([], [self.sock], [], 30)
                        continue
                    if n == 0:
                        raise BrokenPipeError("sendfile sent nothing")
                    offset += n
                    count -= n
                    sent += n
            else:
                buf.append(p)
                sent += len(p)
        if buf:
            self.sock.sendall(b"".join(buf))
        return sent

    def send_simple(self, status, text):
        try:
            self.sock.sendall(b"HTTP/1.1 %d %s\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s"
                              % (status, self.reasons.get(status, "Error").encode(), len(text), text))
        except OSError:
            pass

    def stream_dump(self, register, lock, scopes, keep, t0):
        """The register's canonical dump (the same from both fakes), streamed in 1 MB chunks under `lock`, the
        lock that mutations of the register hold."""
        app = self.server.app
        sent = 0
        try:
            self.sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json; charset=utf-8\r\n"
                              b"Transfer-Encoding: chunked\r\n%s\r\n" % (b"" if keep else b"Connection: close\r\n"))
            with lock:
                buf, size = [], 0
                for chunk in register.dump_chunks(app.clock.now(), scopes):
                    data = chunk.encode("utf-8")
                    buf.append(data)
                    size += len(data)
                    if size >= 1 << 20:
                        blob = b"".join(buf)
                        self.sock.sendall(b"%x\r\n%s\r\n" % (len(blob), blob))
                        sent += len(blob)
                        buf, size = [], 0
                blob = b"".join(buf)
                if blob:
                    self.sock.sendall(b"%x\r\n%s\r\n" % (len(blob), blob))
                    sent += len(blob)
                self.sock.sendall(b"0\r\n\r\n")
        except OSError:
            return False
        self.count_control()
        self.log("GET", "/_fake/dump", "control", 200, sent, t0)
        return keep

    def count_control(self):
        app = self.server.app
        with app.stats_lock:
            app.stats["control"] += 1

    def log(self, method, target, what, status, nbytes, t0, note=None):
        if self.server.app.quiet:
            return
        sys.stderr.write("%s %s %s %s %s %dB %.1fms%s\n" % (
            time.strftime("%H:%M:%S"), method, target, what, status, nbytes, (time.monotonic() - t0) * 1000,
            " [%s]" % note if note else ""))


class Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256
    handler = Handler            # the fake's subclass

    def __init__(self, addr, app):
        self.app = app
        super().__init__(addr, self.handler)
