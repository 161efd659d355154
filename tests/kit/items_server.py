#!/usr/bin/python3
"""The test daemon's upstream: a tiny JSON API of "items", deterministic, mutable and faultable.

  GET /meta?size=K              {"pages": P, "items": N}
  GET /items?page=N&size=K      {"page": N, "items": [{"id", "group", "name", "value"}, ...]}
  GET /blob?bytes=N&type=T      a body of about N bytes with Content-Type T
  control (tests/fakes/README.md conventions): POST /_fake/fault (op: meta, items, blob or *; another op is refused
  with 400), GET /_fake/fault (the armed faults, each with its remaining count and "fired"), /_fake/fault/clear,
  /_fake/mutate
  ({"action": "update", "ids": [...]} | {"action": "add", "count": n} | {"action": "bad_item"}),
  GET /_fake/dump, GET /_fake/stats
"""

import argparse
import json
import os
import signal
import threading
from urllib.parse import parse_qs, urlparse

import fakeserver

STATE = {"items": [], "bad": False, "stats": {}}
LOCK = threading.Lock()
FAULTS = fakeserver.Faults(ops=("meta", "items", "blob"))


def make_items(n):
    return [{"id": i, "group": "g%d" % (i % 4), "name": "item-%04d" % i, "value": i * 7 % 101} for i in range(1, n + 1)]


class Handler(fakeserver.Handler):
    def do_GET(self):
        url = urlparse(self.path)
        q = parse_qs(url.query)
        size = int(q.get("size", ["10"])[0])
        if url.path == "/_fake/dump":
            with LOCK:
                return self.send_body(200, json.dumps({"items": STATE["items"]}))
        if url.path == "/_fake/fault":
            return self.send_body(200, json.dumps(FAULTS.listing()))
        if url.path == "/_fake/stats":
            with LOCK:
                return self.send_body(200, json.dumps(STATE["stats"]))
        op = url.path.strip("/")
        with LOCK:
            STATE["stats"][op] = STATE["stats"].get(op, 0) + 1
            items = list(STATE["items"])
            bad = STATE["bad"]
        if url.path == "/meta":
            body = json.dumps({"pages": (len(items) + size - 1) // size, "items": len(items)})
        elif url.path == "/blob":
            # A large body of a given size and type, for the HTTP layer's spool and content checks.
            n = int(q.get("bytes", ["1000"])[0])
            ctype = q.get("type", ["application/json"])[0]
            body = '{"data": "' + "x" * max(0, n - 12) + '"}'
            fault = FAULTS.take("blob")
            if fault and self.apply_fault(fault, body.encode(), ctype):
                return
            return self.send_body(200, body, ctype)
        elif url.path == "/items":
            page = int(q.get("page", ["1"])[0])
            chunk = items[(page - 1) * size: page * size]
            if bad and page == 1:
                chunk = chunk + [{"group": "g0", "name": "no-id", "value": 1}]
            body = json.dumps({"page": page, "items": chunk})
        else:
            return self.send_body(404, '{"error": "not found"}')
        fault = FAULTS.take(op)
        if fault and self.apply_fault(fault, body.encode(), "application/json"):
            return
        self.send_body(200, body)

    def do_POST(self):
        url = urlparse(self.path)
        req = fakeserver.read_json(self)
        if url.path == "/_fake/fault":
            try:
                FAULTS.arm(req)
            except ValueError as e:
                return self.send_body(400, json.dumps({"error": str(e)}))
        elif url.path == "/_fake/fault/clear":
            FAULTS.clear()
        elif url.path == "/_fake/mutate":
            with LOCK:
                items = STATE["items"]
                if req["action"] == "update":
                    for it in items:
                        if it["id"] in req["ids"]:
                            it["value"] += 1000
                elif req["action"] == "add":
                    start = max(it["id"] for it in items) + 1 if items else 1
                    for i in range(start, start + req["count"]):
                        items.append({"id": i, "group": "g%d" % (i % 4), "name": "item-%04d" % i, "value": i})
                elif req["action"] == "bad_item":
                    STATE["bad"] = True
                else:
                    return self.send_body(400, '{"error": "unknown action"}')
        else:
            return self.send_body(404, '{"error": "not found"}')
        self.send_body(200, '{"ok": true}')


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file")
    ap.add_argument("--items", type=int, default=45)
    args = ap.parse_args()
    STATE["items"] = make_items(args.items)
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    fakeserver.serve(Handler, args.port, args.port_file)


if __name__ == "__main__":
    main()
