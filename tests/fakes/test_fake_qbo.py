#!/usr/bin/python3
"""Raw-HTTP checks of fake_qbo.py against the reference (../shared/reference/quickbooks-online.md).

Run: /usr/bin/python3 tests/fakes/test_fake_qbo.py   (exits non-zero on failure; takes a few seconds)
"""

import base64
import hashlib
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import unittest
import urllib.parse

import fakeproc

HERE = os.path.dirname(os.path.abspath(__file__))
FAKE = os.path.join(HERE, "fake_qbo.py")
REALM = "9341453908059321"
CLIENT_ID = "ABtestclient0123456789"
SECRET = "test-secret-XYZ"
BASIC = "Basic " + base64.b64encode(("%s:%s" % (CLIENT_ID, SECRET)).encode()).decode()

TMP = tempfile.mkdtemp(prefix="fake_qbo_test_")
SERVERS = {}


def start(name, *extra):
    d = os.path.join(TMP, name)
    os.makedirs(d)
    with open(os.path.join(d, "secret"), "w") as fh:
        fh.write(SECRET + "\n")
    with open(os.path.join(d, "rt"), "w") as fh:
        fh.write("RT1-11-H0-1700000000initialtokenvalue01\n")
    port_file = os.path.join(d, "port")
    log = open(os.path.join(d, "stderr.log"), "w")
    proc, port = fakeproc.launch(
        ["/usr/bin/python3", FAKE, "--port", "0", "--port-file", port_file, "--client-id", CLIENT_ID,
         "--client-secret-file", os.path.join(d, "secret"), "--refresh-token-file", os.path.join(d, "rt"),
         "--token-state-file", os.path.join(d, "state.json"), "--realm-id", REALM] + list(extra),
        port_file, log, 15, stdout=subprocess.DEVNULL)
    with open(os.path.join(d, "state.json")) as fh:
        state = json.load(fh)
    SERVERS[name] = {"proc": proc, "port": port, "dir": d, "state": state, "log": log}
    return port


def setUpModule():
    start("main", "--no-enforce-limits", "--redirect-uri", "https://app.example.com/cb")
    start("limits")
    start("minute", "--limit-per-minute", "20", "--limit-per-second", "1000")
    start("rot", "--no-enforce-limits", "--rotate", "always", "--access-token-lifetime", "2")


def tearDownModule():
    for s in SERVERS.values():
        s["proc"].send_signal(signal.SIGTERM)
    for name, s in SERVERS.items():
        rc = s["proc"].wait(10)
        s["log"].close()
        if rc != 0:
            raise RuntimeError("fake %s exited %d on SIGTERM; logs in %s" % (name, rc, TMP))
    if not os.environ.get("FAKE_QBO_KEEP"):  # FAKE_QBO_KEEP=1 keeps the fakes' stderr logs for debugging
        shutil.rmtree(TMP, ignore_errors=True)


Response = fakeproc.Response


def call(port, method, path, body=None, headers=None, timeout=10, conn=None):
    own = conn is None
    if own:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        status, hdrs, data = fakeproc.exchange(conn, method, path, body, headers)
        resp = Response(status, {k.lower(): v for k, v in hdrs}, data)
    finally:
        if own:
            conn.close()
    # Every answer, whatever it is, carries intuit_tid (reference 3.5).
    assert resp.header("intuit_tid"), "no intuit_tid on %s %s -> %d" % (method, path, resp.status)
    return resp


def port_of(name):
    return SERVERS[name]["port"]


def ctl(name, method, path, body=None):
    r = call(port_of(name), method, "/_fake/" + path, body)
    assert r.status == 200, (path, r.status, r.body)
    return r.json()


def token_call(name, form, headers=None, auth=BASIC):
    h = {"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"}
    if auth:
        h["Authorization"] = auth
    h.update(headers or {})
    return call(port_of(name), "POST", "/oauth2/v1/tokens/bearer", urllib.parse.urlencode(form), h)


def connect(name="main"):
    """Run the authorization-code flow; returns the token response JSON."""
    code = ctl(name, "POST", "authorize", {})["code"]
    r = token_call(name, {"grant_type": "authorization_code", "code": code})
    assert r.status == 200, r.body
    return r.json()


class Api:
    def __init__(self, name="main", token=None):
        self.name = name
        self.port = port_of(name)
        self.token = token or connect(name)["access_token"]

    def req(self, method, resource, body=None, params=None, headers=None, **kw):
        params = dict(params or {})
        params.setdefault("minorversion", "75")
        path = "/v3/company/%s/%s?%s" % (REALM, resource, urllib.parse.urlencode(params))
        h = {"Authorization": "Bearer " + self.token, "Accept": "application/json"}
        h.update(headers or {})
        return call(self.port, method, path, body, h, **kw)

    def create_invoice(self, doc, amount=100, customer="1", requestid=None, **kw):
        params = {"requestid": requestid} if requestid else {}
        body = {"DocNumber": doc, "CustomerRef": {"value": customer},
                "Line": [{"Amount": amount, "DetailType": "SalesItemLineDetail",
                          "SalesItemLineDetail": {"ItemRef": {"value": "1"}}}]}
        return self.req("POST", "invoice", body, params, **kw)

    def query(self, q):
        return self.req("GET", "query", params={"query": q})


def fault_error(resp):
    return resp.json()["Fault"]["Error"][0]


_seq = [0]


def uniq(prefix="T"):
    _seq[0] += 1
    return "%s%d-%d" % (prefix, os.getpid() % 1000, _seq[0])


class OAuthTests(unittest.TestCase):
    def test_state_file_seeds_a_client(self):
        st = SERVERS["main"]["state"]
        for k in ("access_token", "refresh_token", "expires_in", "x_refresh_token_expires_in",
                  "x_refresh_token_hard_expires_in", "realm_id", "obtained_at"):
            self.assertIn(k, st)
        self.assertEqual(st["expires_in"], 3600)
        self.assertEqual(st["x_refresh_token_expires_in"], 8726400)
        self.assertEqual(st["refresh_token"], "RT1-11-H0-1700000000initialtokenvalue01")

    def test_refresh_daily_rotation_and_reuse(self):
        # Own chain on the main fake; the initial one is used by test_state_file... only for reading.
        tok = connect("main")
        rt = tok["refresh_token"]
        r = token_call("main", {"grant_type": "refresh_token", "refresh_token": rt})
        self.assertEqual(r.status, 200, r.body)
        body = r.json()
        self.assertEqual(body["token_type"], "bearer")
        self.assertEqual(body["refresh_token"], rt, "within 24 h the same value comes back")
        self.assertNotEqual(body["access_token"], tok["access_token"])
        self.assertEqual(r.header("cache-control"), "no-cache, no-store")
        ctl("main", "POST", "clock", {"advance": 25 * 3600})
        r = token_call("main", {"grant_type": "refresh_token", "refresh_token": rt})
        self.assertEqual(r.status, 200)
        new_rt = r.json()["refresh_token"]
        self.assertNotEqual(new_rt, rt, "after 24 h the value rotates")
        r = token_call("main", {"grant_type": "refresh_token", "refresh_token": rt})
        self.assertEqual(r.status, 400)
        self.assertEqual(r.json()["error"], "invalid_grant")
        r = token_call("main", {"grant_type": "refresh_token", "refresh_token": new_rt})
        self.assertEqual(r.status, 200)
        stats = ctl("main", "GET", "stats")
        self.assertGreaterEqual(stats["refreshes"], 4)
        text = json.dumps(stats)
        self.assertNotIn(rt, text)
        self.assertNotIn(new_rt, text)
        self.assertIn(hashlib.sha256(rt.encode()).hexdigest()[:12], text)
        with open(os.path.join(SERVERS["main"]["dir"], "stderr.log")) as fh:
            log = fh.read()
        self.assertNotIn(rt, log)
        self.assertNotIn(new_rt, log)

    def test_refresh_always_rotates(self):
        seen = [connect("rot")["refresh_token"]]
        for _ in range(3):
            r = token_call("rot", {"grant_type": "refresh_token", "refresh_token": seen[-1]})
            self.assertEqual(r.status, 200, r.body)
            seen.append(r.json()["refresh_token"])
        self.assertEqual(len(set(seen)), 4)
        for old in seen[:-1]:
            r = token_call("rot", {"grant_type": "refresh_token", "refresh_token": old})
            self.assertEqual((r.status, r.json()["error"]), (400, "invalid_grant"))

    def test_lost_token_response_kills_old_value(self):
        # The refresh is committed (value rotated) but the answer never arrives: the old value is now dead.
        rt = connect("rot")["refresh_token"]
        ctl("rot", "POST", "fault", {"op": "token", "kind": "lost_response"})
        with self.assertRaises((http.client.HTTPException, ConnectionError)):
            token_call("rot", {"grant_type": "refresh_token", "refresh_token": rt})
        r = token_call("rot", {"grant_type": "refresh_token", "refresh_token": rt})
        self.assertEqual((r.status, r.json()["error"]), (400, "invalid_grant"))

    def test_rolling_and_hard_expiry(self):
        rt = connect("rot")["refresh_token"]
        ctl("rot", "POST", "clock", {"advance": 8726400 + 1})
        r = token_call("rot", {"grant_type": "refresh_token", "refresh_token": rt})
        self.assertEqual(r.status, 400, "unused for longer than the rolling life")
        rt = connect("rot")["refresh_token"]
        hdr = {"x-include-refresh-token-hard-expires-in": "true"}
        last = None
        for _ in range(30):  # refresh every ~92 days: the rolling life keeps extending, the hard cap does not
            ctl("rot", "POST", "clock", {"advance": 8000000})
            r = token_call("rot", {"grant_type": "refresh_token", "refresh_token": rt}, hdr)
            if r.status != 200:
                break
            last = r.json()
            rt = last["refresh_token"]
            self.assertLessEqual(last["x_refresh_token_expires_in"], last["x_refresh_token_hard_expires_in"])
        self.assertEqual((r.status, r.json()["error"]), (400, "invalid_grant"))
        self.assertLess(last["x_refresh_token_hard_expires_in"], 8000000)

    def test_hard_expiry_opt_in_header(self):
        rt = connect("main")["refresh_token"]
        r = token_call("main", {"grant_type": "refresh_token", "refresh_token": rt},
                       {"x-include-refresh-token-hard-expires-in": "true"})
        self.assertIn("x_refresh_token_hard_expires_in", r.json())
        self.assertGreater(r.json()["x_refresh_token_hard_expires_in"], 150000000)
        r = token_call("main", {"grant_type": "refresh_token", "refresh_token": rt})
        self.assertNotIn("x_refresh_token_hard_expires_in", r.json())
        self.assertEqual(r.json()["x_refresh_token_expires_in"], 8726400)

    def test_auth_code_single_use_and_authorize_redirect(self):
        q = urllib.parse.urlencode({"client_id": CLIENT_ID, "response_type": "code",
                                    "scope": "com.intuit.quickbooks.accounting",
                                    "redirect_uri": "https://app.example.com/cb",
                                    "state": "security_token=abc&url=https://app.example.com/cb"})
        r = call(port_of("main"), "GET", "/connect/oauth2?" + q)
        self.assertEqual(r.status, 302)
        loc = urllib.parse.urlsplit(r.header("location"))
        params = urllib.parse.parse_qs(loc.query)
        self.assertEqual(params["realmId"], [REALM])
        self.assertEqual(params["state"], ["security_token=abc&url=https://app.example.com/cb"])
        code = params["code"][0]
        bad = token_call("main", {"grant_type": "authorization_code", "code": code,
                                  "redirect_uri": "https://evil.example.com/"})
        self.assertEqual((bad.status, bad.json()["error"]), (400, "invalid_grant"))
        # the failed attempt above did not consume the code
        form = {"grant_type": "authorization_code", "code": code, "redirect_uri": "https://app.example.com/cb"}
        r = token_call("main", form)
        self.assertEqual(r.status, 200, r.body)
        for k in ("access_token", "refresh_token", "expires_in", "x_refresh_token_expires_in", "token_type"):
            self.assertIn(k, r.json())
        r = token_call("main", form)
        self.assertEqual((r.status, r.json()["error"]), (400, "invalid_grant"))
        # denial and bad scope come back on the redirect
        ctl("main", "POST", "fault", {"op": "authorize", "kind": "access_denied"})
        r = call(port_of("main"), "GET", "/connect/oauth2?" + q)
        self.assertIn("error=access_denied", r.header("location"))
        r = call(port_of("main"), "GET", "/connect/oauth2?" + q.replace("com.intuit.quickbooks.accounting", "x"))
        self.assertIn("error=invalid_scope", r.header("location"))

    def test_invalid_client(self):
        rt = SERVERS["main"]["state"]["refresh_token"]
        wrong = "Basic " + base64.b64encode(("%s:nope" % CLIENT_ID).encode()).decode()
        for auth in (wrong, None):
            r = token_call("main", {"grant_type": "refresh_token", "refresh_token": rt}, auth=auth)
            self.assertEqual(r.status, 401)
            self.assertEqual(r.json()["error"], "invalid_client")

    def test_revoke_kills_chain(self):
        tok = connect("main")
        api = Api("main", tok["access_token"])
        self.assertEqual(api.req("GET", "item/1").status, 200)
        r = call(port_of("main"), "POST", "/v2/oauth2/tokens/revoke", {"token": tok["refresh_token"]},
                 {"Authorization": BASIC, "Accept": "application/json"})
        self.assertEqual(r.status, 200)
        r = token_call("main", {"grant_type": "refresh_token", "refresh_token": tok["refresh_token"]})
        self.assertEqual((r.status, r.json()["error"]), (400, "invalid_grant"))
        self.assertEqual(api.req("GET", "item/1").status, 401)
        # the QuickBooks-side disconnect does the same
        tok = connect("main")
        self.assertTrue(ctl("main", "POST", "mutate", {"action": "revoke"})["revoked"])
        r = token_call("main", {"grant_type": "refresh_token", "refresh_token": tok["refresh_token"]})
        self.assertEqual(r.status, 400)

    def test_invalid_grant_fault_is_transient(self):
        tok = connect("main")
        ctl("main", "POST", "fault", {"op": "token", "kind": "invalid_grant"})
        r = token_call("main", {"grant_type": "refresh_token", "refresh_token": tok["refresh_token"]})
        self.assertEqual(r.status, 400)
        self.assertEqual(r.body, b'{"error_description":"Token invalid","error":"invalid_grant"}')
        r = token_call("main", {"grant_type": "refresh_token", "refresh_token": tok["refresh_token"]})
        self.assertEqual(r.status, 200)


class ApiAuthTests(unittest.TestCase):
    def test_401_lower_case_fault(self):
        api = Api("main", "x" * 30)
        r = api.req("GET", "invoice/1")
        self.assertEqual(r.status, 401)
        f = r.json()["fault"]["error"][0]
        self.assertEqual(f["code"], "3200")
        self.assertEqual(f["message"], "message=AuthenticationFailed; errorCode=003200; statusCode=401")
        self.assertIsInstance(r.json()["time"], int)
        # expiry of a real token (rot fake: 2 s access tokens)
        tok = connect("rot")
        api = Api("rot", tok["access_token"])
        self.assertEqual(api.req("GET", "item/1").status, 200)
        ctl("rot", "POST", "clock", {"advance": 3})
        r = api.req("GET", "item/1")
        self.assertEqual(r.status, 401)
        self.assertTrue(r.json()["fault"]["error"][0]["detail"].startswith("Token expired"))
        # auth_401 fault: once, token still good afterwards
        api = Api("main")
        ctl("main", "POST", "fault", {"op": "invoice.read", "kind": "auth_401"})
        self.assertEqual(api.req("GET", "item/1").status, 200, "fault is for invoice.read only")
        self.assertEqual(api.req("GET", "invoice/999999").status, 401)
        self.assertEqual(api.req("GET", "invoice/999999").status, 400)

    def test_wrong_realm_is_403(self):
        api = Api("main")
        path = "/v3/company/123/item/1?minorversion=75"
        r = call(api.port, "GET", path, headers={"Authorization": "Bearer " + api.token})
        self.assertEqual(r.status, 403)
        self.assertEqual(r.json()["fault"]["error"][0]["code"], "3100")


class InvoiceTests(unittest.TestCase):
    def setUp(self):
        self.api = Api("main")

    def ledger(self, doc):
        return ctl("main", "GET", "ledger")["doc_numbers"].get(doc, {"created": 0})

    def test_create_shape_and_ledger(self):
        doc = uniq("C")
        r = self.api.req("POST", "invoice", {
            "DocNumber": doc, "CustomerRef": {"value": "1"}, "TxnDate": "2026-03-01",
            "Line": [{"Amount": 150.0, "DetailType": "SalesItemLineDetail", "Description": "Sewing Service",
                      "SalesItemLineDetail": {"ItemRef": {"value": "1"}, "Qty": 2, "UnitPrice": 75}},
                     {"Amount": 20.5, "DetailType": "SalesItemLineDetail",
                      "SalesItemLineDetail": {"ItemRef": {"value": "2"}}}]},
            {"requestid": uniq("rq")})
        self.assertEqual(r.status, 200, r.body)
        self.assertTrue(r.header("content-type").startswith("application/json"))
        doc_json = r.json()
        self.assertIn("time", doc_json)
        inv = doc_json["Invoice"]
        self.assertEqual(inv["TotalAmt"], 170.5)
        self.assertEqual(inv["Balance"], 170.5)
        self.assertEqual(inv["SyncToken"], "0")
        self.assertIsInstance(inv["Id"], str)
        self.assertEqual(inv["Line"][-1], {"Amount": 170.5, "DetailType": "SubTotalLineDetail",
                                           "SubTotalLineDetail": {}})
        self.assertEqual(inv["Line"][0]["SalesItemLineDetail"]["ItemRef"], {"value": "1", "name": "Services"})
        self.assertEqual(inv["DueDate"], "2026-03-31")
        self.assertRegex(inv["MetaData"]["CreateTime"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d-0[78]:00$")
        self.assertRegex(doc_json["time"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}-0[78]:00$")
        self.assertEqual(self.ledger(doc)["created"], 1)
        got = self.api.req("GET", "invoice/" + inv["Id"]).json()["Invoice"]
        self.assertEqual(got, inv)

    def test_validation_errors(self):
        r = self.api.create_invoice("X" * 22)
        self.assertEqual((r.status, fault_error(r)["code"]), (400, "2050"))
        r = self.api.create_invoice(uniq(), customer="99999")
        self.assertEqual(fault_error(r)["code"], "2500")
        r = self.api.req("POST", "invoice", {"DocNumber": uniq(), "CustomerRef": {"value": "1"}})
        self.assertEqual((fault_error(r)["code"], fault_error(r)["element"]), ("2020", "Line"))
        r = self.api.req("POST", "invoice", {"DocNumber": uniq(), "CustomerRef": {"value": "1"},
                                             "Line": [{"Amount": 5, "SalesItemLineDetail": {}}]})
        self.assertEqual(fault_error(r)["Detail"], "Required parameter Line.DetailType is missing in the request")
        r = self.api.req("POST", "invoice", {"Invoice": {"DocNumber": "x"}})
        self.assertEqual(fault_error(r)["code"], "2010")
        r = self.api.req("POST", "invoice", "{not json")
        self.assertEqual(fault_error(r)["code"], "2010")
        r = self.api.req("GET", "invoice/987654")
        self.assertEqual(fault_error(r)["code"], "610")

    def test_requestid_replay(self):
        doc, rid = uniq("R"), uniq("rid")
        a = self.api.create_invoice(doc, requestid=rid)
        b = self.api.create_invoice(doc, requestid=rid)
        self.assertEqual(a.status, 200)
        self.assertEqual(a.body, b.body)
        self.assertEqual(self.ledger(doc)["created"], 1)
        # an error is replayed too, even after the cause is gone
        rid2 = uniq("rid")
        e1 = self.api.create_invoice(doc, requestid=rid2)
        self.assertEqual(fault_error(e1)["code"], "6140")
        inv = a.json()["Invoice"]
        self.api.req("POST", "invoice", {"Id": inv["Id"], "SyncToken": inv["SyncToken"]},
                     {"operation": "delete"})
        e2 = self.api.create_invoice(doc, requestid=rid2)
        self.assertEqual(e1.body, e2.body)
        stats = ctl("main", "GET", "stats")
        self.assertGreaterEqual(stats["api"]["replays"], 2)

    def test_lost_response_then_replay(self):
        doc, rid = uniq("L"), uniq("rid")
        ctl("main", "POST", "fault", {"op": "invoice.create", "kind": "lost_response"})
        with self.assertRaises((http.client.HTTPException, ConnectionError)):
            self.api.create_invoice(doc, requestid=rid)
        self.assertEqual(self.ledger(doc)["created"], 1, "the create was committed")
        r = self.api.create_invoice(doc, requestid=rid)
        self.assertEqual(r.status, 200)
        self.assertEqual(r.json()["Invoice"]["DocNumber"], doc)
        self.assertEqual(self.ledger(doc)["created"], 1)
        # without requestid the retry is a duplicate attempt -> 6140 naming the committed one
        r2 = self.api.create_invoice(doc, requestid=uniq("rid"))
        self.assertIn("TxnId=%s" % r.json()["Invoice"]["Id"], fault_error(r2)["Detail"])

    def test_6140_detail_and_dup_fault(self):
        doc = uniq("D")
        first = self.api.create_invoice(doc).json()["Invoice"]
        r = self.api.create_invoice(doc)
        self.assertEqual(r.status, 400)
        e = fault_error(r)
        self.assertEqual((e["code"], e["Message"], r.json()["Fault"]["type"]),
                         ("6140", "Duplicate Document Number Error", "ValidationFault"))
        self.assertEqual(e["Detail"], "Duplicate Document Number Error : You must specify a different number. "
                                      "This number has already been used. DocNumber=%s is assigned to "
                                      "TxnType=Invoice with TxnId=%s" % (doc, first["Id"]))
        # include=allowduplicatedocnum bypasses the check (and the ledger shows the duplicate)
        r = self.api.req("POST", "invoice", {"DocNumber": doc, "CustomerRef": {"value": "1"},
                                             "Line": [{"Amount": 1, "DetailType": "SalesItemLineDetail",
                                                       "SalesItemLineDetail": {"ItemRef": {"value": "1"}}}]},
                         {"include": "allowduplicatedocnum"})
        self.assertEqual(r.status, 200)
        self.assertEqual(ctl("main", "GET", "ledger")["duplicates"][doc], 2)
        # dup_6140: the number turns out to exist already (e.g. an earlier lost attempt)
        doc2 = uniq("D")
        ctl("main", "POST", "fault", {"op": "invoice.create", "kind": "dup_6140"})
        r = self.api.create_invoice(doc2)
        m = re.search(r"DocNumber=(\S+) is assigned to TxnType=(\w+) with TxnId=(\d+)$", fault_error(r)["Detail"])
        self.assertEqual(m.group(1, 2), (doc2, "Invoice"))
        q = self.api.query("select * from Invoice where DocNumber = '%s'" % doc2).json()["QueryResponse"]
        self.assertEqual(q["Invoice"][0]["Id"], m.group(3))
        self.assertEqual(self.ledger(doc2)["created"], 1)

    def test_5010_on_stale_sparse_update(self):
        inv = self.api.create_invoice(uniq("S")).json()["Invoice"]
        upd = {"Id": inv["Id"], "SyncToken": "0", "sparse": True, "DueDate": "2030-01-01"}
        r = self.api.req("POST", "invoice", upd)
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual((r.json()["Invoice"]["SyncToken"], r.json()["Invoice"]["DueDate"]), ("1", "2030-01-01"))
        self.assertEqual(r.json()["Invoice"]["TotalAmt"], 100.0, "sparse keeps lines")
        r = self.api.req("POST", "invoice", upd)
        e = fault_error(r)
        self.assertEqual((r.status, e["code"], e["Message"]), (400, "5010", "Stale Object Error"))
        self.assertRegex(e["Detail"], r"^Stale Object Error : You and .+ were working on this at the same time\.")
        # injected stale: a concurrent edit bumps the token once; re-GET and retry works
        ctl("main", "POST", "fault", {"op": "invoice.update", "kind": "stale_5010"})
        upd["SyncToken"] = "1"
        self.assertEqual(fault_error(self.api.req("POST", "invoice", upd))["code"], "5010")
        cur = self.api.req("GET", "invoice/" + inv["Id"]).json()["Invoice"]["SyncToken"]
        self.assertEqual(cur, "2")
        upd["SyncToken"] = cur
        self.assertEqual(self.api.req("POST", "invoice", upd).status, 200)

    def test_payment_reduces_balance(self):
        inv = self.api.create_invoice(uniq("P"), amount=100).json()["Invoice"]
        r = self.api.req("POST", "payment", {"CustomerRef": {"value": "1"}, "TotalAmt": 40.0,
                                             "Line": [{"Amount": 40.0, "LinkedTxn": [
                                                 {"TxnId": inv["Id"], "TxnType": "Invoice"}]}]},
                         {"requestid": uniq("rid")})
        self.assertEqual(r.status, 200, r.body)
        pay = r.json()["Payment"]
        self.assertEqual((pay["TotalAmt"], pay["UnappliedAmt"]), (40.0, 0))
        got = self.api.req("GET", "invoice/" + inv["Id"]).json()["Invoice"]
        self.assertEqual((got["Balance"], got["SyncToken"]), (60.0, "1"))
        self.assertEqual(got["LinkedTxn"], [{"TxnId": pay["Id"], "TxnType": "Payment"}])
        # overpaying the invoice is refused
        r = self.api.req("POST", "payment", {"CustomerRef": {"value": "1"}, "TotalAmt": 70,
                                             "Line": [{"Amount": 70, "LinkedTxn": [
                                                 {"TxnId": inv["Id"], "TxnType": "Invoice"}]}]})
        self.assertEqual(fault_error(r)["code"], "6000")
        # a person records the rest in QuickBooks
        out = ctl("main", "POST", "mutate", {"action": "payment", "invoice_id": inv["Id"]})
        self.assertEqual((out["Invoice"]["Balance"], out["Invoice"]["SyncToken"]), (0, "2"))
        row = [i for i in ctl("main", "GET", "ledger")["invoices"] if i["Id"] == inv["Id"]][0]
        self.assertEqual(row["status"], "paid")
        # deleting the payment restores the balance
        ctl("main", "POST", "mutate", {"action": "delete_payment", "payment_id": out["Payment"]["Id"]})
        got = self.api.req("GET", "invoice/" + inv["Id"]).json()["Invoice"]
        self.assertEqual(got["Balance"], 60.0)

    def test_void_and_delete(self):
        inv = self.api.create_invoice(uniq("V"), amount=80).json()["Invoice"]
        r = self.api.req("POST", "invoice", {"Id": inv["Id"], "SyncToken": "0"}, {"operation": "void"})
        self.assertEqual(r.status, 200, r.body)
        v = r.json()["Invoice"]
        self.assertEqual((v["TotalAmt"], v["Balance"], v["SyncToken"], v["PrivateNote"]), (0, 0, "1", "Voided"))
        r = self.api.req("POST", "invoice", {"Id": inv["Id"], "SyncToken": "1"}, {"operation": "delete"})
        self.assertEqual(r.json()["Invoice"], {"status": "Deleted", "domain": "QBO", "Id": inv["Id"]})
        self.assertEqual(fault_error(self.api.req("GET", "invoice/" + inv["Id"]))["code"], "610")
        row = [i for i in ctl("main", "GET", "ledger")["invoices"] if i["Id"] == inv["Id"]][0]
        self.assertEqual(row["status"], "deleted")

    def test_mutate_edit_and_adoption(self):
        doc = uniq("M")
        out = ctl("main", "POST", "mutate", {"action": "create_invoice", "doc_number": doc,
                                             "customer_name": "Cool Cars", "amount": 55.5})
        inv = out["Invoice"]
        self.assertEqual(inv["TotalAmt"], 55.5)
        q = self.api.query("select * from Invoice where DocNumber = '%s'" % doc).json()["QueryResponse"]
        self.assertEqual([i["Id"] for i in q["Invoice"]], [inv["Id"]])
        out = ctl("main", "POST", "mutate", {"action": "edit_invoice", "doc_number": doc, "amount": 70})
        self.assertEqual((out["Invoice"]["TotalAmt"], out["Invoice"]["SyncToken"]), (70.0, "1"))
        ctl("main", "POST", "mutate", {"action": "delete_invoice", "doc_number": doc})
        r = self.api.query("select * from Invoice where DocNumber = '%s'" % doc)
        self.assertEqual(set(r.json()), {"QueryResponse", "time"})
        self.assertEqual(r.json()["QueryResponse"], {})

    def test_customer_6240_and_lookup(self):
        name = "O'Brien Training %s" % uniq()
        r = self.api.req("POST", "customer", {"DisplayName": name}, {"requestid": uniq("rid")})
        self.assertEqual(r.status, 200, r.body)
        cid = r.json()["Customer"]["Id"]
        r = self.api.req("POST", "customer", {"DisplayName": name})
        e = fault_error(r)
        self.assertEqual((e["code"], e["Message"]), ("6240", "Duplicate Name Exists Error"))
        q = "select * from Customer where DisplayName = '%s'" % name.replace("'", "\\'")
        got = self.api.query(q).json()["QueryResponse"]["Customer"]
        self.assertEqual([c["Id"] for c in got], [cid])


    def test_dup_6240_fault_and_batch(self):
        name = "Batch Client %s" % uniq()
        ctl("main", "POST", "fault", {"op": "customer.create", "kind": "dup_6240"})
        r = self.api.req("POST", "customer", {"DisplayName": name})
        self.assertEqual(fault_error(r)["code"], "6240")
        q = "select * from Customer where DisplayName = '%s'" % name
        cid = self.api.query(q).json()["QueryResponse"]["Customer"][0]["Id"]
        doc = uniq("B")
        r = self.api.req("POST", "batch", {"BatchItemRequest": [
            {"bId": "1", "Query": "select * from Invoice where DocNumber = '%s'" % doc},
            {"bId": "2", "operation": "create", "Invoice": {
                "DocNumber": doc, "CustomerRef": {"value": cid},
                "Line": [{"Amount": 9, "DetailType": "SalesItemLineDetail",
                          "SalesItemLineDetail": {"ItemRef": {"value": "1"}}}]}},
            {"bId": "3", "operation": "create", "Customer": {"DisplayName": name}}]})
        self.assertEqual(r.status, 200, r.body)
        items = r.json()["BatchItemResponse"]
        self.assertEqual(items[0], {"bId": "1", "QueryResponse": {}})
        self.assertEqual(items[1]["Invoice"]["DocNumber"], doc)
        self.assertEqual(items[2]["Fault"]["Error"][0]["code"], "6240")


class QueryCdcTests(unittest.TestCase):
    def setUp(self):
        self.api = Api("main")

    def test_escaping_and_errors(self):
        r = self.api.query("select * from Customer where DisplayName = 'Amy\\'s Bird Sanctuary'")
        self.assertEqual(r.status, 200, r.body)
        qr = r.json()["QueryResponse"]
        self.assertEqual((qr["startPosition"], qr["maxResults"]), (1, 1))
        self.assertEqual(qr["Customer"][0]["DisplayName"], "Amy's Bird Sanctuary")
        r = self.api.query("select * from Customer where DisplayName = 'Amy's Bird Sanctuary'")
        e = fault_error(r)
        self.assertEqual((e["code"], e["Message"]), ("4000", "Error parsing query"))
        self.assertTrue(e["Detail"].startswith('QueryParserError: Encountered " <IDENTIFIER> "s "" at line 1'))
        self.assertNotIn("element", e)
        r = self.api.query("select * from Customer where DisplayName = 'Amy\u2019s Bird Sanctuary'")
        self.assertIn('Lexical error at line 1, column 48.  Encountered: "\\u2019" (8217), after : "\\\'Amy"',
                      fault_error(r)["Detail"])
        r = self.api.query("select * from Invoice MAXRESULTS 1001")
        self.assertEqual(fault_error(r)["Detail"], "QueryValidationError: value 1001 is too large. Max allowed "
                                                   "value is 1000")
        r = self.api.query("select * from Invoice STARTPOSITION 0")
        self.assertEqual(fault_error(r)["code"], "4001")
        r = self.api.query("select * from Invoice where Foo = '1'")
        self.assertEqual(fault_error(r)["code"], "4001")
        r = self.api.query("select * from Invoice where DocNumber = 'no-such-doc'")
        self.assertEqual(r.json()["QueryResponse"], {})

    def test_paging_count_in_and_lastupdated(self):
        prefix = uniq("Q")
        t0 = ctl("main", "GET", "clock")["qbo_time"]
        ctl("main", "POST", "clock", {"advance": 2})
        ids = [self.api.create_invoice("%s-%02d" % (prefix, i), amount=10 + i).json()["Invoice"]["Id"]
               for i in range(12)]
        where = "where Id IN (%s)" % ", ".join("'%s'" % i for i in ids)
        self.assertEqual(self.api.query("select count(*) from Invoice " + where).json()["QueryResponse"],
                         {"totalCount": 12})
        pages = []
        for start in (1, 6, 11):
            qr = self.api.query("select * from Invoice %s ORDERBY Id STARTPOSITION %d MAXRESULTS 5"
                                % (where, start)).json()["QueryResponse"]
            self.assertEqual(qr["startPosition"], start)
            pages.append([i["Id"] for i in qr["Invoice"]])
        self.assertEqual([len(p) for p in pages], [5, 5, 2])
        self.assertEqual(sum(pages, []), ids)
        docs = ["%s-%02d" % (prefix, i) for i in (3, 7)]
        qr = self.api.query("select * from Invoice where DocNumber IN ('%s')" % "', '".join(docs)).json()
        self.assertEqual(sorted(i["DocNumber"] for i in qr["QueryResponse"]["Invoice"]), docs)
        qr = self.api.query("select * from Invoice where MetaData.LastUpdatedTime > '%s' ORDERBY Id DESC "
                            "MAXRESULTS 1000" % t0).json()["QueryResponse"]
        got = [i["Id"] for i in qr["Invoice"]]
        self.assertTrue(set(ids) <= set(got))
        self.assertEqual(got, sorted(got, key=int, reverse=True))
        qr = self.api.query("select Id, DocNumber from Invoice where Id = '%s'" % ids[0]).json()["QueryResponse"]
        self.assertEqual(set(qr["Invoice"][0]), {"Id", "DocNumber", "domain", "sparse"})

    def test_cdc_with_deleted(self):
        ctl("main", "POST", "clock", {"advance": 5})
        since = ctl("main", "GET", "clock")["qbo_time"]
        a = self.api.create_invoice(uniq("CD")).json()["Invoice"]
        b = self.api.create_invoice(uniq("CD"), amount=30).json()["Invoice"]
        ctl("main", "POST", "clock", {"advance": 1})
        self.api.req("POST", "invoice", {"Id": a["Id"], "SyncToken": "0"}, {"operation": "delete"})
        ctl("main", "POST", "mutate", {"action": "payment", "invoice_id": b["Id"], "amount": 10})
        r = self.api.req("GET", "cdc", params={"entities": "Invoice,Payment", "changedSince": since})
        self.assertEqual(r.status, 200, r.body)
        blocks = r.json()["CDCResponse"][0]["QueryResponse"]
        invs = blocks[0]["Invoice"]
        self.assertEqual(blocks[0]["maxResults"], len(invs))
        self.assertEqual([i["Id"] for i in invs], [b["Id"], a["Id"]], "deleted after active")
        self.assertEqual(invs[1]["status"], "Deleted")
        self.assertEqual(set(invs[1]), {"status", "domain", "Id", "MetaData"})
        self.assertEqual(invs[0]["Balance"], 20.0)
        self.assertEqual(len(blocks[1]["Payment"]), 1)
        old = ctl("main", "GET", "clock")["epoch"] - 31 * 86400
        old_s = time.strftime("%Y-%m-%dT%H:%M:%S-00:00", time.gmtime(old))
        r = self.api.req("GET", "cdc", params={"entities": "Invoice", "changedSince": old_s})
        self.assertEqual(r.status, 400)
        self.assertIn("older than fixed days", fault_error(r)["Detail"])


class FaultTests(unittest.TestCase):
    def setUp(self):
        self.api = Api("main")

    def arm(self, **spec):
        ctl("main", "POST", "fault", spec)

    def test_http_status_faults(self):
        self.arm(op="item.read", kind="http500")
        r = self.api.req("GET", "item/1")
        e = fault_error(r)
        self.assertEqual((r.status, e["code"], r.json()["Fault"]["type"]), (500, "10000", "SystemFault"))
        self.arm(op="item.read", kind="http503", retry_after=7)
        r = self.api.req("GET", "item/1")
        self.assertEqual((r.status, r.header("retry-after")), (503, "7"))
        self.arm(op="item.read", kind="http429", retry_after=60)
        r = self.api.req("GET", "item/1")
        self.assertEqual((r.status, r.header("retry-after")), (429, "60"))
        self.assertTrue(r.header("content-type").startswith("application/xml"))
        self.assertIn(b'<Error code="3001">', r.body)
        self.assertIn(b"statusCode=429", r.body)
        self.arm(op="item.read", kind="html")
        r = self.api.req("GET", "item/1")
        self.assertEqual(r.status, 200)
        self.assertTrue(r.header("content-type").startswith("text/html"))
        self.arm(op="item.read", kind="redirect")
        r = self.api.req("GET", "item/1")
        self.assertEqual(r.status, 302)
        self.assertIn("/login", r.header("location"))
        self.assertEqual(call(self.api.port, "GET", urllib.parse.urlsplit(r.header("location")).path).status, 200)
        self.arm(op="item.read", kind="xml_error")
        r = self.api.req("GET", "item/1")
        self.assertEqual(r.status, 401)
        self.assertIn(b'<Fault type="AuthenticationFault">', r.body)
        self.arm(op="query", kind="throttle", status=403)
        r = self.api.query("select * from Item")
        self.assertEqual(r.status, 403)
        self.assertIn(b"message=ThrottleExceeded; errorCode=003001; statusCode=403", r.body)
        self.arm(op="item.read", kind="xml_error", code="10000")
        r = self.api.req("GET", "item/1")
        self.assertEqual(r.status, 500)
        self.assertIn(b'<Fault type="SystemFault">', r.body)
        self.assertEqual(self.api.req("GET", "item/1").status, 200, "faults were one-shot")
        self.assertEqual(ctl("main", "GET", "stats")["faults_fired"]["xml_error"], 2)

    def test_http500_on_token_endpoint(self):
        tok = connect("main")
        self.arm(op="token", kind="http500")
        r = token_call("main", {"grant_type": "refresh_token", "refresh_token": tok["refresh_token"]})
        self.assertEqual(r.status, 500)
        r = token_call("main", {"grant_type": "refresh_token", "refresh_token": tok["refresh_token"]})
        self.assertEqual(r.status, 200, "a 500 before processing did not consume the token")

    def test_transport_faults(self):
        self.arm(op="item.read", kind="hang")
        with self.assertRaises(socket.timeout):
            self.api.req("GET", "item/1", timeout=0.5)
        for kind in ("reset", "truncate", "lost_response"):
            self.arm(op="item.read", kind=kind)
            with self.assertRaises((http.client.HTTPException, ConnectionError), msg=kind):
                self.api.req("GET", "item/1")
        self.arm(op="item.read", kind="malformed")
        r = self.api.req("GET", "item/1")
        self.assertEqual(r.status, 200)
        with self.assertRaises(ValueError):
            r.json()
        self.arm(op="item.read", kind="slow", delay=0.4)
        t = time.monotonic()
        self.assertEqual(self.api.req("GET", "item/1").status, 200)
        self.assertGreaterEqual(time.monotonic() - t, 0.4)
        self.arm(op="token", kind="drip", interval=0.01)
        t = time.monotonic()
        r = token_call("main", {"grant_type": "password"})
        self.assertEqual(r.json()["error"], "unsupported_grant_type")
        self.assertGreaterEqual(time.monotonic() - t, 0.2)
        self.assertEqual(self.api.req("GET", "item/1").status, 200)

    def test_truncated_create_is_committed(self):
        doc, rid = uniq("TR"), uniq("rid")
        self.arm(op="invoice.create", kind="truncate")
        with self.assertRaises((http.client.HTTPException, ConnectionError)):
            self.api.create_invoice(doc, requestid=rid)
        self.assertEqual(self.api.create_invoice(doc, requestid=rid).status, 200)
        self.assertEqual(ctl("main", "GET", "ledger")["doc_numbers"][doc]["created"], 1)

    def test_fault_count_skip_and_clear(self):
        self.arm(op="item.*", kind="http500", count=-1, skip=1)
        self.assertEqual(self.api.req("GET", "item/1").status, 200)
        self.assertEqual(self.api.req("GET", "item/2").status, 500)
        self.assertEqual(self.api.req("GET", "item/3").status, 500)
        self.assertEqual(len(ctl("main", "GET", "fault")["armed"]), 1)
        ctl("main", "POST", "fault/clear")
        self.assertEqual(self.api.req("GET", "item/1").status, 200)
        r = call(self.api.port, "POST", "/_fake/fault", {"kind": "nope"})
        self.assertEqual(r.status, 400)


class LimitTests(unittest.TestCase):
    def test_per_second_limit(self):
        api = Api("limits")
        time.sleep(1.1)
        conn = http.client.HTTPConnection("127.0.0.1", api.port, timeout=5)
        statuses = []
        for _ in range(15):
            r = call(api.port, "GET", "/v3/company/%s/item/1?minorversion=75" % REALM,
                     headers={"Authorization": "Bearer " + api.token, "Accept": "application/json"}, conn=conn)
            statuses.append(r.status)
            if r.status == 429:
                self.assertIn(b"ThrottleExceeded; errorCode=003001; statusCode=429", r.body)
        conn.close()
        self.assertEqual(statuses[:10], [200] * 10)
        self.assertIn(429, statuses[10:])
        st = ctl("limits", "GET", "stats")
        self.assertGreaterEqual(st["throttled_by"].get("per_second", 0), 1)
        self.assertEqual(st["peak"]["per_second"], 10)

    def test_concurrency_limit(self):
        api = Api("limits")
        time.sleep(1.1)
        ctl("limits", "POST", "fault", {"op": "item.read", "kind": "slow", "delay": 1.2, "count": 10})
        results = []
        threads = [threading.Thread(target=lambda: results.append(api.req("GET", "item/1").status))
                   for _ in range(10)]
        for t in threads:
            t.start()
        time.sleep(0.5)
        r = api.req("GET", "item/2")
        for t in threads:
            t.join()
        self.assertEqual(r.status, 429)
        self.assertEqual(results, [200] * 10)
        self.assertGreaterEqual(ctl("limits", "GET", "stats")["throttled_by"]["concurrent"], 1)

    def test_per_minute_limit(self):
        api = Api("minute")
        statuses = [api.req("GET", "item/1").status for _ in range(22)]
        self.assertEqual(statuses[:20], [200] * 20)
        self.assertEqual(statuses[20:], [429, 429])
        self.assertEqual(ctl("minute", "GET", "stats")["throttled_by"]["per_minute"], 2)


class ControlTests(unittest.TestCase):
    def test_dump_and_misc(self):
        r = call(port_of("main"), "GET", "/_fake/dump")
        d = r.json()
        for k in ("Customer", "Invoice", "Payment", "Item", "CompanyInfo", "deleted", "realm_id"):
            self.assertIn(k, d)
        self.assertEqual(r.body, json.dumps(d, sort_keys=True, separators=(",", ":"),
                                            ensure_ascii=False).encode())
        self.assertEqual(d["Item"][0]["Name"], "Services")
        tok = ctl("main", "GET", "tokens")
        self.assertTrue(any(c["current"] for c in tok["chains"]))
        self.assertNotIn(SERVERS["main"]["state"]["refresh_token"], json.dumps(tok))
        # unknown paths still carry intuit_tid (checked inside call)
        self.assertEqual(call(port_of("main"), "GET", "/nope").status, 404)
        api = Api("main")
        self.assertEqual(api.req("GET", "companyinfo/" + REALM).json()["CompanyInfo"]["Id"], "1")
        inv = ctl("main", "POST", "mutate", {"action": "create_invoice", "customer_id": "2", "amount": 10})["Invoice"]
        r = call(port_of("main"), "POST", "/_fake/mutate",
                 {"action": "payment", "invoice_id": inv["Id"], "amount": "x"})
        self.assertEqual(r.status, 400)
        self.assertIn("InvalidOperation", r.json()["error"])
        r = api.req("GET", "widget/1")
        self.assertEqual(fault_error(r)["code"], "500")


if __name__ == "__main__":
    unittest.main(verbosity=2)
