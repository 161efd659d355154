#!/usr/bin/python3
"""qb-reconcile's QuickBooks parsers on the real fixtures of ../shared/samples/qbo/ and the documented variants:
JSON Fault and lower-case fault, XML faults (throttle 403/429, SystemFault, 6240), OAuth errors, the 6140 detail,
QuickBooks times, money to cents; and hostile input (truncated, huge, binary) that must not crash them."""

import json
import os
import subprocess
import tempfile
import unittest

from harness import BIN, SHARED

TOOL = os.path.join(BIN, "qbr-parse")
SAMPLES = os.path.join(SHARED, "samples", "qbo")


def run(*args):
    p = subprocess.run([TOOL] + list(args), capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


def fault_of(text):
    with tempfile.NamedTemporaryFile("w", suffix=".body", delete=False) as f:
        f.write(text)
    try:
        return run("fault", f.name)
    finally:
        os.unlink(f.name)


class ParserTest(unittest.TestCase):
    def sample(self, name):
        path = os.path.join(SAMPLES, name)
        if not os.path.exists(path):
            self.skipTest("%s is not beside the repository" % path)
        return run("fault", path)

    def test_fixture_faults(self):
        cases = {
            "exquickbooks_stale_object_5010.json": ("5010", "ValidationFault", "Stale Object Error"),
            "exquickbooks_query_error_4000.json": ("4000", "ValidationFault", "Error parsing query"),
            "exquickbooks_object_not_found_610.json": ("610", None, "Object Not Found"),
            "exquickbooks_required_param_2020.json": ("2020", None, None),
            "quickbooks-ruby_throttle_exceeded_error.xml": ("3001", "SERVICE", "ThrottleExceeded"),
            "quickbooks-ruby_too_many_requests_error.xml": ("3001", "SERVICE", "statusCode=429"),
            "quickbooks-ruby_generic_error.xml": ("10000", "SystemFault", "An application error"),
            "quickbooks-ruby_customer_duplicate_error.xml": ("6240", "ValidationFault", "Duplicate Name"),
        }
        for name, (code, ftype, msg) in cases.items():
            with self.subTest(name):
                f = self.sample(name)
                self.assertTrue(f["found"])
                self.assertEqual(f["code"], code)
                if ftype:
                    self.assertEqual(f["type"], ftype)
                if msg:
                    self.assertIn(msg, f["message"])

    def test_oauth_error_fields_are_escaped_and_bounded(self):
        # The refresh quotes error and error_description in the connection row, the log and the mail: one line,
        # no terminal escapes, and the parse bounded like every other upstream answer.
        with tempfile.NamedTemporaryFile("w", suffix=".body", delete=False) as f:
            f.write(json.dumps({"error": "invalid_grant", "error_description": "Token\ninvalid\x1b[2J"}))
        try:
            o = run("oauth", f.name)
        finally:
            os.unlink(f.name)
        self.assertEqual(o, {"error": "invalid_grant", "error_description": "Token\\ninvalid\\x1b[2J"})
        with tempfile.NamedTemporaryFile("w", suffix=".body", delete=False) as f:
            f.write('{"error": "invalid_grant", "error_description": "d", "x": [%s]}' % ",".join(["0"] * 5000))
        try:
            o = run("oauth", f.name)
        finally:
            os.unlink(f.name)
        self.assertEqual(o, {"error": "", "error_description": ""}, "more values than a token answer has")

    def test_lower_case_and_oauth_shapes(self):
        # The 401 body as QuickBooks' gateway sends it (python-quickbooks#250): lower-case keys, epoch-ms time.
        f = fault_of('{"warnings":null,"fault":{"error":[{"message":"message=AuthenticationFailed; errorCode=003200;'
                     ' statusCode=401","detail":"Token expired","code":"3200","element":null}],"type":"AUTHENTICATION"}'
                     ',"time":1633520295688}')
        self.assertEqual((f["code"], f["type"], f["detail"]), ("3200", "AUTHENTICATION", "Token expired"))
        f = fault_of('{"FAULT": {"ERROR": {"MESSAGE": "m", "DETAIL": "d", "CODE": 6140}}}')   # any case, number
        self.assertEqual((f["code"], f["message"], f["detail"]), ("6140", "m", "d"))
        f = fault_of('{"error_description":"Token invalid","error":"invalid_grant"}')
        self.assertEqual((f["code"], f["message"]), ("invalid_grant", "Token invalid"))
        f = fault_of('<IntuitResponse><Fault type="AuthenticationFault"><Error code="100"><Message>General '
                     'Authentication Error</Message><Detail>a &amp; b &lt;c&gt;</Detail></Error></Fault>'
                     '</IntuitResponse>')
        self.assertEqual((f["code"], f["type"], f["detail"]), ("100", "AuthenticationFault", "a & b <c>"))
        f = fault_of('<Fault><Error><Message>message=ThrottleExceeded; errorCode=003001; statusCode=429</Message>'
                     '</Error></Fault>')
        self.assertEqual(f["code"], "3001")    # from errorCode= when the element has no code attribute

    def test_hostile_bodies(self):
        for body in ("", "{", "<Fault", "<Fault type=\"", '{"Fault": 7}', '{"Fault": {"Error": []}}',
                     '{"Fault": {"Error": [{"Message": ' + '"x' * 5000 + '"}]}}', "<html><body>Bad Gateway</body>",
                     "<Fault><Error code=\"" + "9" * 10000, "\x00\xff\x01<Fault>\x00"):
            with self.subTest(body[:20]):
                f = fault_of(body)
                self.assertLessEqual(len(f["message"]), 255)
                self.assertLessEqual(len(f["code"]), 15)
        self.assertFalse(fault_of("<html>502 Bad Gateway</html>")["found"])

    def test_6140_detail(self):
        d = ("Duplicate Document Number Error : You must specify a different number. This number has already been "
             "used. DocNumber=O0010714 is assigned to TxnType=Invoice with TxnId=45823")
        self.assertEqual(run("6140", d), {"txn_type": "Invoice", "txn_id": "45823"})
        self.assertEqual(run("6140", d.replace("Invoice", "CreditMemo"))["txn_type"], "CreditMemo")
        self.assertEqual(run("6140", "DocNumber=1 is assigned to TxnType=Invoice with TxnId="), {})
        self.assertEqual(run("6140", "TxnType=Invoice with TxnId=" + "1" * 40), {})

    def test_times_and_money(self):
        self.assertEqual(run("time", "2015-07-24T10:35:08-07:00"), {"utc": "2015-07-24T17:35:08Z"})
        self.assertEqual(run("time", "2017-03-22T09:02:25.404-08:00"), {"utc": "2017-03-22T17:02:25Z"})
        self.assertEqual(run("time", "yesterday"), {})
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
            f.write('{"TotalAmt": 150.5, "Balance": 0, "Small": 0.29, "Big": 1e300, "Text": "12.00"}')
        try:
            self.assertEqual(run("cents", f.name, "TotalAmt"), {"cents": 15050})
            self.assertEqual(run("cents", f.name, "balance"), {"cents": 0})
            self.assertEqual(run("cents", f.name, "Small"), {"cents": 29})
            self.assertEqual(run("cents", f.name, "Big"), {})
            self.assertEqual(run("cents", f.name, "Text"), {})
        finally:
            os.unlink(f.name)


if __name__ == "__main__":
    unittest.main(verbosity=2)
