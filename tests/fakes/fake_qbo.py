#!/usr/bin/python3
"""Fake Intuit OAuth 2.0 token service + QuickBooks Online Accounting API v3, on one loopback port.

Built from ../shared/reference/quickbooks-online.md and the fixtures in ../shared/samples/qbo/ (not from our
client). Options, the /_fake/mutate and /_fake/fault vocabulary and the ledger/dump shapes are documented in
README.md, section "fake_qbo.py". Run `/usr/bin/python3 tests/fakes/fake_qbo.py --help` for the CLI.

State lives in memory. Entity dicts are never mutated once published (every change builds a new dict), so a
response can be serialised outside the store lock without tearing.
"""

import argparse
import base64
import bisect
import calendar
import collections
import datetime
import email.utils
import fnmatch
import hashlib
import hmac
import http.server
import json
import os
import random
import re
import secrets
import select
import signal
import socket
import string
import struct
import sys
import threading
import time
import urllib.parse
import uuid
from decimal import Decimal, InvalidOperation, ROUND_HALF_UP

ENTITY_TYPES = ("Invoice", "Customer", "Payment", "Item")
RESOURCES = {"invoice": "Invoice", "customer": "Customer", "payment": "Payment", "item": "Item",
             "companyinfo": "CompanyInfo"}
DAY = 86400

# --------------------------------------------------------------------------------------------------------------
# Time. QBO renders times in the company's zone; sandbox/US companies are US Pacific, which is why the samples
# show both -07:00 and -08:00. The US DST rule is computed here so the fake does not depend on tzdata.


_dst_cache = {}


def _dst_bounds(year):
    b = _dst_cache.get(year)
    if b is None:
        mar1 = datetime.date(year, 3, 1)
        second_sun_mar = mar1 + datetime.timedelta(days=(6 - mar1.weekday()) % 7 + 7)
        nov1 = datetime.date(year, 11, 1)
        first_sun_nov = nov1 + datetime.timedelta(days=(6 - nov1.weekday()) % 7)
        start = calendar.timegm((second_sun_mar.year, 3, second_sun_mar.day, 10, 0, 0))  # 02:00 PST
        end = calendar.timegm((first_sun_nov.year, 11, first_sun_nov.day, 9, 0, 0))  # 02:00 PDT
        b = _dst_cache[year] = (start, end)
    return b


def pacific_offset(epoch):
    year = time.gmtime(epoch).tm_year
    start, end = _dst_bounds(year)
    return -7 * 3600 if start <= epoch < end else -8 * 3600


def qbo_ts(epoch, ms=False):
    """2015-07-24T10:35:08-07:00 (MetaData) or 2017-03-22T09:02:25.404-07:00 (the `time` field)."""
    off = pacific_offset(epoch)
    t = time.gmtime(int(epoch) + off)
    s = "%04d-%02d-%02dT%02d:%02d:%02d" % t[:6]
    if ms:
        s += ".%03d" % int((epoch - int(epoch)) * 1000)
    return s + ("-07:00" if off == -7 * 3600 else "-08:00")


def qbo_date(epoch):
    t = time.gmtime(int(epoch) + pacific_offset(epoch))
    return "%04d-%02d-%02d" % t[:3]


def iso_utc(epoch):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def _local_pacific_to_epoch(y, mo, d, h=0, mi=0, s=0.0):
    naive = calendar.timegm((y, mo, d, h, mi, 0)) + s
    off = pacific_offset(naive + 8 * 3600)
    return naive - off


_DATE_RE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")


def parse_ts(s):
    """ISO 8601 with or without offset (no offset = company time), or a bare date. None if unparseable."""
    if not isinstance(s, str):
        return None
    s = s.strip()
    m = _DATE_RE.match(s)
    try:
        if m:
            datetime.date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
            return _local_pacific_to_epoch(int(m.group(1)), int(m.group(2)), int(m.group(3)))
        dt = datetime.datetime.fromisoformat(s.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None
    if dt.tzinfo is None:
        return _local_pacific_to_epoch(dt.year, dt.month, dt.day, dt.hour, dt.minute,
                                       dt.second + dt.microsecond / 1e6)
    return dt.timestamp()


def valid_date(s):
    if not isinstance(s, str) or not _DATE_RE.match(s):
        return False
    try:
        datetime.date.fromisoformat(s)
        return True
    except ValueError:
        return False


def add_days(datestr, n):
    return (datetime.date.fromisoformat(datestr) + datetime.timedelta(days=n)).isoformat()


class Clock:
    """Fake wall clock: real time plus an offset, so token lifetimes still elapse on their own."""

    def __init__(self, start=None):
        self._lock = threading.Lock()
        self._offset = (start - time.time()) if start is not None else 0.0
        self._frozen = None

    def now(self):
        f = self._frozen
        return f if f is not None else time.time() + self._offset

    def set(self, epoch):
        with self._lock:
            if self._frozen is not None:
                self._frozen = epoch
            else:
                self._offset = epoch - time.time()

    def advance(self, seconds):
        with self._lock:
            if self._frozen is not None:
                self._frozen += seconds
            else:
                self._offset += seconds

    def freeze(self, on):
        with self._lock:
            if on and self._frozen is None:
                self._frozen = time.time() + self._offset
            elif not on and self._frozen is not None:
                self._offset = self._frozen - time.time()
                self._frozen = None


# --------------------------------------------------------------------------------------------------------------
# Money: Decimal inside, JSON numbers outside. Samples show amounts as 150.0 but zero as 0, so zero is an int.

CENT = Decimal("0.01")
ZERO = Decimal(0)


def q2(d):
    return d.quantize(CENT, rounding=ROUND_HALF_UP)


def out_money(d):
    d = q2(d)
    return 0 if d == 0 else float(d)


def plain(v):
    """Request JSON is parsed with Decimal floats; convert back before storing pass-through fields."""
    if isinstance(v, Decimal):
        return float(v)
    if isinstance(v, dict):
        return {k: plain(x) for k, x in v.items()}
    if isinstance(v, list):
        return [plain(x) for x in v]
    return v


def dec_of(v):
    return Decimal(str(v)) if v is not None else ZERO


# --------------------------------------------------------------------------------------------------------------
# Faults in the shapes of ../shared/samples/qbo/.


class QBOError(Exception):
    def __init__(self, status, code, message, detail, element="", ftype="ValidationFault", with_element=True):
        super().__init__(detail)
        self.status, self.code, self.message, self.detail = status, code, message, detail
        self.element, self.ftype, self.with_element = element, ftype, with_element

    def body(self, now):
        e = {"Message": self.message, "Detail": self.detail, "code": self.code}
        if self.with_element:
            e["element"] = self.element
        return {"Fault": {"Error": [e], "type": self.ftype}, "time": qbo_ts(now, ms=True)}


STALE_USER = "Riley Bookkeeper"


def err_2020(element):
    return QBOError(400, "2020", "Required param missing, need to supply the required value for the API",
                    "Required parameter %s is missing in the request" % element, element)


def err_2010(detail):
    return QBOError(400, "2010", "Request has invalid or unsupported property", "Property Name:" + detail,
                    with_element=False)


def err_unknown_field(field, cls):
    return err_2010('Unrecognized field "%s" (class com.intuit.schema.finance.v3.%s), not marked as ignorable '
                    "specified is unsupported or invalid" % (field, cls))


def err_bad_json():
    return err_2010("failed to parse json object; a property specified is unsupported or invalid")


def err_2050(element, limit):
    return QBOError(400, "2050", "Length exceeds limit", "Length of the field exceeds %d chars" % limit, element)


def err_610():
    return QBOError(400, "610", "Object Not Found",
                    "Object Not Found : Something you're trying to use has been made inactive. Check the fields "
                    "with accounts, customers, items, vendors or employees.")


def err_2500(what):
    return QBOError(400, "2500", "Invalid Reference Id",
                    "Invalid Reference Id : %s assigned to this transaction has been deleted or does not exist" % what)


def err_5010():
    return QBOError(400, "5010", "Stale Object Error",
                    "Stale Object Error : You and %s were working on this at the same time. %s finished before "
                    "you did, so your work was not saved." % (STALE_USER, STALE_USER))


def err_6140(doc, txn_type, txn_id):
    return QBOError(400, "6140", "Duplicate Document Number Error",
                    "Duplicate Document Number Error : You must specify a different number. This number has "
                    "already been used. DocNumber=%s is assigned to TxnType=%s with TxnId=%s"
                    % (doc, txn_type, txn_id))


def err_600(requestid):
    return QBOError(400, "600", "Duplicate Request ID",
                    "Duplicate Request ID : the requestid %s was already used by another request" % requestid,
                    "requestid")


def err_6240():
    return QBOError(400, "6240", "Duplicate Name Exists Error",
                    "The name supplied already exists. : Another customer is already using this name. Please use "
                    "a different name.")


def err_6000(detail):
    return QBOError(400, "6000", "A business validation error has occurred while processing your request",
                    "Business Validation Error: " + detail)


def err_6070(amount):
    return QBOError(400, "6070", "Amount is not equal to UnitPrice * Qty",
                    "Amount is not equal to UnitPrice * Qty. Supplied value:%s" % amount)


def err_4000(detail):
    return QBOError(400, "4000", "Error parsing query", "QueryParserError: " + detail, with_element=False)


def err_4001(detail):
    return QBOError(400, "4001", "Invalid query", "QueryValidationError: " + detail, with_element=False)


def err_unsupported(detail):
    return QBOError(400, "500", "Unsupported Operation", "Operation %s is not supported." % detail,
                    with_element=False)


def err_system():
    return QBOError(500, "10000", "An application error has occurred while processing your request",
                    "System Failure Error: An unexpected error occurred while accessing or saving your data. "
                    "Please wait a few minutes and try again. If the problem persists, contact customer support.",
                    ftype="SystemFault")


def auth_fault_json(now, detail, status=401):
    """Lower-case variant with epoch-ms `time` (python-quickbooks#250), used for gateway auth failures."""
    if status == 401:
        msg, code, ftype = "message=AuthenticationFailed; errorCode=003200; statusCode=401", "3200", "AUTHENTICATION"
    else:
        msg, code, ftype = ("message=ApplicationAuthorizationFailed; errorCode=003100; statusCode=403", "3100",
                            "AUTHORIZATION")
    return {"warnings": None, "intuitObject": None,
            "fault": {"error": [{"message": msg, "detail": detail, "code": code, "element": None}], "type": ftype},
            "report": None, "queryResponse": None, "batchItemResponse": [], "attachableResponse": [],
            "syncErrorResponse": None, "requestId": None, "time": int(now * 1000), "status": None,
            "cdcresponse": []}


def xml_fault(now, ftype, code, message, detail):
    return ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
            '<IntuitResponse time="%s" xmlns="http://schema.intuit.com/finance/v3">\n'
            '  <Fault type="%s">\n'
            '    <Error code="%s">\n'
            '      <Message>%s</Message>\n'
            '      <Detail>%s</Detail>\n'
            '    </Error>\n'
            '  </Fault>\n'
            '</IntuitResponse>\n' % (qbo_ts(now, ms=True), ftype, code, xml_escape(message), xml_escape(detail))
            ).encode()


def xml_escape(s):
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def throttle_xml(now, status=429):
    # Two spaces after "reached." as in the fixtures.
    return xml_fault(now, "SERVICE", "3001", "message=ThrottleExceeded; errorCode=003001; statusCode=%d" % status,
                     "The request limit was reached.  Try again later")


def dumps(obj):
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


def sha12(s):
    return hashlib.sha256(s.encode() if isinstance(s, str) else s).hexdigest()[:12]


# --------------------------------------------------------------------------------------------------------------
# Query language subset. Errors imitate the JavaCC parser behind QBO: "Encountered ... Was expecting one of"
# (node-quickbooks#56, fixture exquickbooks_query_error_4000.json) and lexical errors on U+2019 even inside a
# literal (quickbooks-ruby#309).

KEYWORDS = {"select", "from", "where", "and", "or", "in", "like", "orderby", "order", "by", "asc", "desc",
            "startposition", "maxresults", "count", "true", "false", "iterator", "null", "not"}


class Tok:
    __slots__ = ("kind", "image", "col", "value")

    def __init__(self, kind, image, col, value=None):
        self.kind, self.image, self.col, self.value = kind, image, col, value


def javacc_escape(s):
    out = []
    for ch in s:
        if ch == "\b":
            out.append("\\b")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\f":
            out.append("\\f")
        elif ch == "\r":
            out.append("\\r")
        elif ch == '"':
            out.append('\\"')
        elif ch == "'":
            out.append("\\'")
        elif ch == "\\":
            out.append("\\\\")
        elif ord(ch) < 0x20 or ord(ch) > 0x7E:
            out.append("\\u%04x" % ord(ch))
        else:
            out.append(ch)
    return "".join(out)


def _lex_error(col, ch, after):
    if ch is None:
        enc = "<EOF> "
    else:
        enc = '"%s" (%d), ' % (javacc_escape(ch), ord(ch))
    return err_4000('Lexical error at line 1, column %d.  Encountered: %safter : "%s"' % (col, enc, javacc_escape(after)))


def lex(q):
    """Tokens on demand: like JavaCC, a parse error before a bad character wins over the lexical error."""
    i, n = 0, len(q)
    while i < n:
        c = q[i]
        if c in " \t\r\n":
            i += 1
            continue
        col = i + 1
        if c == "'":
            j, buf = i + 1, []
            while True:
                if j >= n:
                    raise _lex_error(j + 1, None, q[i:j])
                ch = q[j]
                if ch in "\u2018\u2019\u201c\u201d":
                    raise _lex_error(j + 1, ch, q[i:j])
                if ch == "\\":
                    if j + 1 >= n:
                        raise _lex_error(j + 2, None, q[i:j + 1])
                    buf.append(q[j + 1])
                    j += 2
                    continue
                if ch == "'":
                    break
                buf.append(ch)
                j += 1
            yield Tok("STRING", q[i:j + 1], col, "".join(buf))
            i = j + 1
        elif c.isalpha() or c == "_":
            j = i + 1
            while j < n and (q[j].isalnum() or q[j] in "_."):
                j += 1
            word = q[i:j]
            yield Tok("KW" if word.lower() in KEYWORDS else "IDENT", word, col, word.lower())
            i = j
        elif c.isdigit() or (c == "-" and i + 1 < n and q[i + 1].isdigit()):
            j = i + 1
            while j < n and (q[j].isdigit() or q[j] == "."):
                j += 1
            yield Tok("NUMBER", q[i:j], col, q[i:j])
            i = j
        elif c in "(),*":
            yield Tok(c, c, col)
            i += 1
        elif c in "=<>!":
            two = q[i:i + 2]
            if two in ("<=", ">=", "<>", "!="):
                yield Tok("OP", two, col, two)
                i += 2
            elif c == "!":
                raise _lex_error(col, c, "")
            else:
                yield Tok("OP", c, col, c)
                i += 1
        else:
            raise _lex_error(col, c, "")
    while True:
        yield Tok("EOF", "", n + 1)


_LABELS = {"IDENT": "<IDENTIFIER>", "STRING": "<STRING>", "NUMBER": "<INTEGER>"}
_AFTER_ENTITY = ["<EOF> ", '"iterator" ...', '"maxresults" ...', '"order" ...', '"orderby" ...',
                 '"startposition" ...', '"where" ...']
_AFTER_COND = ["<EOF> ", "<AND> ...", '"iterator" ...', '"maxresults" ...', "<OR> ...", '"order" ...',
               '"orderby" ...', '"startposition" ...']
_AFTER_ORDER = ["<EOF> ", '"," ...', '"asc" ...', '"desc" ...', '"maxresults" ...', '"startposition" ...']
_AFTER_PAGING = ["<EOF> ", '"maxresults" ...', '"startposition" ...']


def _parse_error(tok, expected):
    if tok.kind == "EOF":
        enc = 'Encountered "<EOF>" at line 1, column %d.' % tok.col
    else:
        label = _LABELS.get(tok.kind) or ('"%s"' % (tok.value if tok.kind == "KW" else tok.image))
        enc = 'Encountered " %s "%s "" at line 1, column %d.' % (label, javacc_escape(tok.image), tok.col)
    if len(expected) == 1:
        exp = "Was expecting:\n    %s\n    " % (expected[0] if expected[0].endswith(" ") else expected[0])
    else:
        exp = "Was expecting one of:\n" + "".join("    %s\n" % e for e in expected) + "    "
    return err_4000(enc + "\n" + exp)


class Query:
    __slots__ = ("fields", "count", "entity", "conds", "has_or", "order", "start", "max")


def parse_query(text):
    stream = lex(text)
    buf = []

    def peek():
        if not buf:
            buf.append(next(stream))
        return buf[0]

    def take():
        return buf.pop() if buf else next(stream)

    def is_kw(t, *words):
        return t.kind == "KW" and t.value in words

    def expect_kw(word, expected=None):
        t = take()
        if not is_kw(t, word):
            raise _parse_error(t, expected or ['"%s" ...' % word])
        return t

    q = Query()
    q.fields, q.count, q.conds, q.has_or, q.order, q.start, q.max = None, False, [], False, [], None, None
    expect_kw("select")
    t = take()
    if t.kind == "*":
        q.fields = None
    elif is_kw(t, "count"):
        for k in ("(", "*", ")"):
            t2 = take()
            if t2.kind != k:
                raise _parse_error(t2, ['"%s" ...' % k])
        q.count = True
    elif t.kind == "IDENT":
        q.fields = [t.image]
        while peek().kind == ",":
            take()
            t2 = take()
            if t2.kind != "IDENT":
                raise _parse_error(t2, ["<IDENTIFIER> ..."])
            q.fields.append(t2.image)
    else:
        raise _parse_error(t, ['"*" ...', '"count" ...', "<IDENTIFIER> ..."])
    expect_kw("from", ['"," ...', '"from" ...'] if q.fields else None)
    t = take()
    if t.kind != "IDENT":
        raise _parse_error(t, ["<IDENTIFIER> ..."])
    q.entity = t.image
    expected_next = _AFTER_ENTITY
    if is_kw(peek(), "where"):
        take()
        while True:
            q.conds.append(_parse_cond(take, peek))
            if is_kw(peek(), "and"):
                take()
            elif is_kw(peek(), "or"):
                take()
                q.has_or = True
            else:
                break
        expected_next = _AFTER_COND
    t = peek()
    if is_kw(t, "orderby") or is_kw(t, "order"):
        take()
        if t.value == "order":
            expect_kw("by")
        while True:
            f = take()
            if f.kind != "IDENT":
                raise _parse_error(f, ["<IDENTIFIER> ..."])
            desc = False
            if is_kw(peek(), "asc", "desc"):
                desc = take().value == "desc"
            q.order.append((f.image, desc))
            if peek().kind == ",":
                take()
                continue
            break
        expected_next = _AFTER_ORDER
    while is_kw(peek(), "startposition", "maxresults", "iterator"):
        kw = take()
        if kw.value == "iterator":
            raise _parse_error(kw, _AFTER_PAGING)
        num = take()
        if num.kind != "NUMBER" or not num.image.lstrip("-").isdigit():
            raise _parse_error(num, ["<INTEGER> ..."])
        if kw.value == "startposition":
            q.start = int(num.image)
        else:
            q.max = int(num.image)
        expected_next = _AFTER_PAGING
    t = take()
    if t.kind != "EOF":
        raise _parse_error(t, expected_next)
    return q


def _parse_cond(take, peek):
    f = take()
    if f.kind != "IDENT":
        raise _parse_error(f, ["<IDENTIFIER> ..."])
    op = take()
    if op.kind == "OP":
        v = _parse_value(take())
        return (f.image, op.value, v)
    if op.kind == "KW" and op.value == "in":
        lp = take()
        if lp.kind != "(":
            raise _parse_error(lp, ['"(" ...'])
        vals = [_parse_value(take())]
        while peek().kind == ",":
            take()
            vals.append(_parse_value(take()))
        rp = take()
        if rp.kind != ")":
            raise _parse_error(rp, ['")" ...', '"," ...'])
        return (f.image, "in", vals)
    if op.kind == "KW" and op.value == "like":
        v = take()
        if v.kind != "STRING":
            raise _parse_error(v, ["<STRING> ..."])
        return (f.image, "like", v.value)
    raise _parse_error(op, ['"<" ...', '"<=" ...', '"=" ...', '">" ...', '">=" ...', '"in" ...', '"like" ...'])


def _parse_value(t):
    if t.kind == "STRING":
        return t.value
    if t.kind == "NUMBER":
        return t.value
    if t.kind == "KW" and t.value in ("true", "false"):
        return t.value == "true"
    raise _parse_error(t, ["<STRING> ...", "<INTEGER> ...", '"true" ...', '"false" ...'])


# Queryable properties per entity: name -> kind. Kinds: id, str, date, ts, money, bool, ref.
_COMMON_FIELDS = {"Id": "id", "MetaData.CreateTime": "ts", "MetaData.LastUpdatedTime": "ts"}
QUERY_FIELDS = {
    "Invoice": dict(_COMMON_FIELDS, DocNumber="str", TxnDate="date", DueDate="date", CustomerRef="ref",
                    Balance="money", TotalAmt="money"),
    "Customer": dict(_COMMON_FIELDS, DisplayName="str", GivenName="str", FamilyName="str", CompanyName="str",
                     FullyQualifiedName="str", PrimaryEmailAddr="str", Active="bool", Balance="money"),
    "Payment": dict(_COMMON_FIELDS, TxnDate="date", CustomerRef="ref", TotalAmt="money"),
    "Item": dict(_COMMON_FIELDS, Name="str", Type="str", Active="bool", FullyQualifiedName="str"),
    "CompanyInfo": dict(_COMMON_FIELDS),
}
QUERY_FIELDS_LC = {e: {k.lower(): k for k in f} for e, f in QUERY_FIELDS.items()}
ENTITY_LC = {e.lower(): e for e in QUERY_FIELDS}


def like_regex(pat):
    return re.compile("^" + ".*".join(re.escape(p) for p in pat.lower().split("%")) + "$", re.S)


# --------------------------------------------------------------------------------------------------------------
# Data store.

INVOICE_INPUT = frozenset((
    "Id", "SyncToken", "sparse", "domain", "MetaData", "status", "DocNumber", "TxnDate", "DueDate", "CustomerRef",
    "Line", "PrivateNote", "CustomerMemo", "BillEmail", "BillEmailCc", "BillEmailBcc", "BillAddr", "ShipAddr",
    "ShipFromAddr", "SalesTermRef", "ClassRef", "DepartmentRef", "CustomField", "EmailStatus", "PrintStatus",
    "AllowIPNPayment", "AllowOnlinePayment", "AllowOnlineCreditCardPayment", "AllowOnlineACHPayment",
    "TrackingNum", "ShipDate", "ShipMethodRef", "GlobalTaxCalculation", "ApplyTaxAfterDiscount", "TxnSource",
    "ExchangeRate", "CurrencyRef", "ProjectRef", "RecurDataRef", "DeliveryInfo", "Deposit", "DepositToAccountRef",
    "TxnTaxDetail", "LinkedTxn", "TotalAmt", "Balance", "HomeBalance", "HomeTotalAmt", "TransactionLocationType",
    "TaxExemptionRef", "InvoiceLink", "FreeFormAddress", "EInvoiceStatus", "Attachable"))
INVOICE_COMPUTED = frozenset(("Id", "SyncToken", "MetaData", "domain", "sparse", "status", "TotalAmt", "Balance",
                              "HomeBalance", "HomeTotalAmt", "LinkedTxn", "TxnTaxDetail"))
INVOICE_OWN = frozenset(("DocNumber", "TxnDate", "DueDate", "CustomerRef", "Line", "CurrencyRef"))
INVOICE_PASS = INVOICE_INPUT - INVOICE_COMPUTED - INVOICE_OWN
LINE_FIELDS = frozenset(("Id", "LineNum", "Description", "Amount", "DetailType", "SalesItemLineDetail",
                         "SubTotalLineDetail", "DescriptionLineDetail", "LinkedTxn", "CustomField", "ProjectRef"))

PAYMENT_INPUT = frozenset((
    "Id", "SyncToken", "sparse", "domain", "MetaData", "status", "CustomerRef", "TotalAmt", "Line", "TxnDate",
    "PaymentRefNum", "PaymentMethodRef", "DepositToAccountRef", "ARAccountRef", "PrivateNote", "CurrencyRef",
    "ExchangeRate", "ProcessPayment", "TxnSource", "CreditCardPayment", "UnappliedAmt", "TransactionLocationType",
    "LinkedTxn", "ProjectRef", "TxnStatus"))
PAYMENT_COMPUTED = frozenset(("Id", "SyncToken", "MetaData", "domain", "sparse", "status", "UnappliedAmt"))
PAYMENT_PASS = frozenset(("PaymentRefNum", "PaymentMethodRef", "PrivateNote", "ARAccountRef", "TxnSource",
                          "ExchangeRate", "CreditCardPayment", "ProjectRef", "TransactionLocationType"))
PAYMENT_LINE_FIELDS = frozenset(("Amount", "LinkedTxn", "LineEx", "Id", "LineNum", "Description"))

CUSTOMER_INPUT = frozenset((
    "Id", "SyncToken", "sparse", "domain", "MetaData", "DisplayName", "Title", "GivenName", "MiddleName",
    "FamilyName", "Suffix", "FullyQualifiedName", "CompanyName", "PrintOnCheckName", "Active", "PrimaryPhone",
    "AlternatePhone", "Mobile", "Fax", "PrimaryEmailAddr", "WebAddr", "BillAddr", "ShipAddr", "OtherAddr",
    "Notes", "Taxable", "DefaultTaxCodeRef", "TaxExemptionReasonId", "ResaleNum", "CurrencyRef",
    "PreferredDeliveryMethod", "SalesTermRef", "PaymentMethodRef", "ParentRef", "Job", "BillWithParent", "Level",
    "Balance", "BalanceWithJobs", "OpenBalanceDate", "ARAccountRef", "CustomerTypeRef", "IsProject",
    "ClientEntityId", "V4IDPseudonym", "PrimaryTaxIdentifier", "SecondaryTaxIdentifier", "BusinessNumber",
    "GSTRegistrationType", "GSTIN", "Source", "TaxRegistrationNumber", "ContactName", "AltContactName"))
CUSTOMER_COMPUTED = frozenset(("Id", "SyncToken", "MetaData", "domain", "sparse", "Balance", "BalanceWithJobs",
                               "FullyQualifiedName"))

CURRENCIES = {"USD": "United States Dollar", "AUD": "Australian Dollar", "GBP": "British Pound Sterling",
              "CAD": "Canadian Dollar", "NZD": "New Zealand Dollar"}

# QBO sandbox companies ship with these customers; several contain apostrophes, which exercises query escaping.
SANDBOX_CUSTOMERS = [
    "Amy's Bird Sanctuary", "Bill's Windsurf Shop", "Cool Cars", "Diego Rodriguez", "Dukes Basketball Camp",
    "Dylan Sollfrank", "Freeman Sporting Goods", "Geeta Kalapatapu", "Gevelber Photography", "Jeff's Jalopies",
    "John Melton", "Kate Whelan", "Mark Cho", "Paulsen Medical Supplies", "Pye's Cakes", "Rago Travel Agency",
    "Red Rock Diner", "Rondonuwu Fruit and Vegi", "Shara Barnett", "Sonnenschein Family Store",
    "Sushi by Katsuyuki", "Travis Waldron", "Video Games by Dan", "Wedding Planning by Whitney",
    "Weiskopf Consulting"]

PRESET_ITEMS = [  # Id 1 "Services" is what the reference's examples reference.
    ("1", "Services", "Service", 0, "1", "Services"),
    ("2", "Hours", "Service", 0, "1", "Services"),
    ("3", "Course Fee", "Service", 0, "2", "Training Income"),
    ("4", "Training Materials", "NonInventory", 0, "3", "Sales of Product Income"),
    ("5", "Annual Subscription", "Service", 0, "2", "Training Income"),
]


class Rec:
    __slots__ = ("etype", "id", "ent", "created", "updated", "seq")

    def __init__(self, etype, rid, ent, created):
        self.etype, self.id, self.ent, self.created, self.updated, self.seq = etype, rid, ent, int(created), 0, 0


def _no_fault(kind):
    return None


def _is_true(v):
    return v is True or (isinstance(v, str) and v.lower() == "true")


class Store:
    def __init__(self, cfg):
        self.cfg = cfg
        self.lock = threading.RLock()
        self.recs = {e: {} for e in ENTITY_TYPES}
        self.tombs = {e: {} for e in ENTITY_TYPES}
        self.log = {e: [] for e in ENTITY_TYPES}  # sorted (updated, seq, id); stale entries skipped by seq
        self.seq = 0
        self.next_txn = 1  # Invoice and Payment share one id sequence, as transactions do in QBO
        self.next_name = 1
        self.next_doc = 1001
        self.doc_idx = {}  # DocNumber.lower() -> set of live invoice ids
        self.name_idx = {}  # DisplayName.lower() -> customer id
        self.by_customer = {"Invoice": collections.defaultdict(set), "Payment": collections.defaultdict(set)}
        self.applied = {}  # invoice id -> {payment id: Decimal}
        self.pay_apps = {}  # payment id -> {invoice id: Decimal}
        self.paid = {}  # invoice id -> Decimal applied in total
        self.voided = set()
        self.cust_bal = {}
        self.ledger = {}  # exact DocNumber -> [invoice ids ever created with it]
        self.inv_info = {}
        self.currency = {"value": cfg.currency, "name": CURRENCIES.get(cfg.currency, cfg.currency)}
        self.company = None
        self.cdc_truncated = 0

    # ---- bookkeeping

    def _touch(self, rec, now):
        rec.updated = int(now)
        self.seq += 1
        rec.seq = self.seq
        bisect.insort(self.log[rec.etype], (rec.updated, rec.seq, rec.id))

    def _meta(self, created, now):
        return {"CreateTime": qbo_ts(int(created)), "LastUpdatedTime": qbo_ts(int(now))}

    def _cust_add(self, cid, delta):
        if not delta:
            return
        rec = self.recs["Customer"].get(cid)
        bal = self.cust_bal.get(cid, ZERO) + delta
        self.cust_bal[cid] = bal
        if rec is not None:
            rec.ent = dict(rec.ent, Balance=out_money(bal), BalanceWithJobs=out_money(bal))

    def _money(self, v, element):
        if isinstance(v, bool) or v is None:
            raise err_2010("%s specified is unsupported or invalid" % element)
        try:
            d = Decimal(str(v).strip()) if not isinstance(v, Decimal) else v
        except InvalidOperation:
            raise err_2010("Can not construct instance of java.math.BigDecimal from String value '%s': not a "
                           "valid representation specified is unsupported or invalid" % v)
        if not d.is_finite():
            raise err_2010("%s specified is unsupported or invalid" % element)
        return d

    @staticmethod
    def _check_fields(body, allowed, cls):
        for k in body:
            if k not in allowed:
                raise err_unknown_field(k, cls)

    def _customer_ref(self, fields):
        cref = fields.get("CustomerRef")
        if cref is None:
            raise err_2020("CustomerRef")
        if not isinstance(cref, dict):
            raise err_2010("CustomerRef specified is unsupported or invalid")
        cid = cref.get("value")
        if cid is None or cid == "":
            raise err_2020("CustomerRef")
        rec = self.recs["Customer"].get(str(cid))
        if rec is None:
            raise err_2500("Customer")
        if not rec.ent.get("Active", True):
            raise err_610()
        return rec

    def _check_sync(self, rec, body, now, fx):
        st = body.get("SyncToken")
        if st is None or st == "":
            raise err_2020("SyncToken")
        f = fx("stale_5010")
        if f is not None:
            if f.get("bump", True):
                self._bump(rec, now)
            raise err_5010()
        if str(st) != rec.ent["SyncToken"]:
            raise err_5010()

    def _find_synced(self, kind, body, now, fx):
        """The record an update, void or delete of `kind` names, checked against its SyncToken."""
        rec = self._find_for_write(kind, body)
        self._check_sync(rec, body, now, fx)
        return rec

    @staticmethod
    def _update_fields(rec, body, computed):
        """An update's input fields: the body's, over the record's own when the update is sparse; never the
        `computed` ones."""
        if _is_true(body.get("sparse")):
            fields = {k: v for k, v in rec.ent.items() if k not in computed}
            fields.update((k, v) for k, v in body.items() if k not in computed)
            return fields
        return {k: v for k, v in body.items() if k not in computed}

    def _bump(self, rec, now):
        rec.ent = dict(rec.ent, SyncToken=str(int(rec.ent["SyncToken"]) + 1),
                       MetaData=self._meta(rec.created, now))
        self._touch(rec, now)

    def _date(self, fields, key, default):
        v = fields.get(key)
        if v is None or v == "":
            return default
        if not valid_date(v):
            raise err_2010("Can not construct instance of java.util.Date from String value '%s': not a valid "
                           "representation specified is unsupported or invalid" % v)
        return v

    # ---- invoices

    def _build_lines(self, lines_in, voided):
        if lines_in is None or lines_in == []:
            raise err_2020("Line")
        if not isinstance(lines_in, list):
            raise err_bad_json()
        out, total, n = [], ZERO, 0
        for ln in lines_in:
            if not isinstance(ln, dict):
                raise err_bad_json()
            for k in ln:
                if k not in LINE_FIELDS:
                    raise err_unknown_field(k, "Line")
            dt = ln.get("DetailType")
            if dt is None:
                raise err_2020("Line.DetailType")
            if dt == "SubTotalLineDetail":
                continue  # QBO recomputes the subtotal line
            n += 1
            if dt == "SalesItemLineDetail":
                if ln.get("Amount") is None:
                    raise err_2020("Line.Amount")
                amt = q2(self._money(ln["Amount"], "Line.Amount"))
                det = ln.get("SalesItemLineDetail")
                if not isinstance(det, dict):
                    raise err_2020("Line.SalesItemLineDetail")
                iref = det.get("ItemRef")
                if not isinstance(iref, dict) or iref.get("value") in (None, ""):
                    raise err_2020("Line.SalesItemLineDetail.ItemRef")
                item = self.recs["Item"].get(str(iref["value"]))
                if item is None:
                    raise err_2500("Item")
                qty, up = det.get("Qty"), det.get("UnitPrice")
                if qty is not None and up is not None:
                    if q2(self._money(qty, "Qty") * self._money(up, "UnitPrice")) != amt:
                        raise err_6070(ln["Amount"])
                newdet = plain(det)
                newdet["ItemRef"] = {"value": item.id, "name": item.ent["Name"]}
                newdet.setdefault("TaxCodeRef", {"value": "NON"})
                if voided:
                    amt = ZERO
                    if "UnitPrice" in newdet:
                        newdet["UnitPrice"] = 0
                line = {"Id": str(n), "LineNum": n}
                if ln.get("Description") is not None:
                    line["Description"] = ln["Description"]
                line.update(Amount=out_money(amt), DetailType=dt, SalesItemLineDetail=newdet)
                if ln.get("CustomField"):
                    line["CustomField"] = plain(ln["CustomField"])
                total += amt
                out.append(line)
            elif dt == "DescriptionOnly":
                line = {"Id": str(n), "LineNum": n}
                if ln.get("Description") is not None:
                    line["Description"] = ln["Description"]
                line.update(DetailType=dt, DescriptionLineDetail=plain(ln.get("DescriptionLineDetail") or {}))
                out.append(line)
            else:
                raise err_2010("DetailType %s specified is unsupported or invalid" % dt)
        if not any(l["DetailType"] == "SalesItemLineDetail" for l in out):
            raise err_6000("You must set a transaction amount.")
        out.append({"Amount": out_money(total), "DetailType": "SubTotalLineDetail", "SubTotalLineDetail": {}})
        return out, total

    def _invoice_entity(self, fields, inv_id, created, now, st, voided):
        cust = self._customer_ref(fields)
        lines, total = self._build_lines(fields.get("Line"), voided)
        txn_date = self._date(fields, "TxnDate", qbo_date(now))
        due = self._date(fields, "DueDate", add_days(txn_date, 30))
        if total < 0:
            raise err_6000("Transaction total amount must be equal to or greater than zero.")
        paid = self.paid.get(inv_id, ZERO)
        balance = total - paid
        if balance < 0:
            raise err_6000("The transaction total cannot be less than the payments applied to it.")
        ent = {"AllowIPNPayment": False, "AllowOnlinePayment": False, "AllowOnlineCreditCardPayment": False,
               "AllowOnlineACHPayment": False, "domain": "QBO", "sparse": False, "Id": inv_id, "SyncToken": str(st),
               "MetaData": self._meta(created, now), "CustomField": [], "DocNumber": fields["DocNumber"],
               "TxnDate": txn_date, "CurrencyRef": self.currency, "LinkedTxn": self._inv_linked(inv_id),
               "Line": lines, "TxnTaxDetail": {"TotalTax": 0},
               "CustomerRef": {"value": cust.id, "name": cust.ent["DisplayName"]}, "DueDate": due,
               "TotalAmt": out_money(total), "ApplyTaxAfterDiscount": False, "PrintStatus": "NeedToPrint",
               "EmailStatus": "NotSet", "Balance": out_money(balance), "Deposit": 0}
        for k in INVOICE_PASS:
            if k in fields and fields[k] is not None:
                ent[k] = plain(fields[k])
        if voided:
            ent["PrivateNote"] = "Voided"
        return ent, cust, balance

    def _inv_linked(self, inv_id):
        return [{"TxnId": p, "TxnType": "Payment"} for p in sorted(self.applied.get(inv_id, ()), key=int)]

    def _docnum(self, body):
        doc = body.get("DocNumber")
        if doc is None or doc == "" or doc == "AUTO_GENERATE":
            return None
        if isinstance(doc, bool) or not isinstance(doc, (str, int)):
            raise err_2010("DocNumber specified is unsupported or invalid")
        doc = str(doc)
        if len(doc) > 21:
            raise err_2050("DocNumber", 21)
        return doc

    def _auto_doc(self):
        n = self.next_doc
        while str(n) in self.doc_idx:
            n += 1
        return str(n)

    def create_invoice(self, body, now, include=(), origin="api", requestid=None, fx=_no_fault, created=None):
        self._check_fields(body, INVOICE_INPUT, "Invoice")
        doc = self._docnum(body)
        auto = doc is None
        fields = dict(body)
        fields["DocNumber"] = doc if not auto else self._auto_doc()
        inv_id = str(self.next_txn)
        ent, cust, balance = self._invoice_entity(fields, inv_id, created or now, now, 0, False)
        if not auto and self.cfg.dup_check and "allowduplicatedocnum" not in include:
            existing = self.doc_idx.get(doc.lower())
            if existing:
                raise err_6140(doc, "Invoice", min(existing, key=int))
            f = fx("dup_6140")
            if f is not None:
                # As if an earlier attempt (or a person) had already created it: commit, then refuse.
                ttype = f.get("txn_type", "Invoice")
                if ttype == "Invoice":
                    self._commit_invoice(ent, cust, balance, now, created or now, "fault:dup_6140", None)
                    raise err_6140(doc, "Invoice", inv_id)
                self.next_txn += 1
                raise err_6140(doc, ttype, inv_id)
        self._commit_invoice(ent, cust, balance, now, created or now, origin, requestid)
        return ent

    def _commit_invoice(self, ent, cust, balance, now, created, origin, requestid):
        inv_id, doc = ent["Id"], ent["DocNumber"]
        self.next_txn = max(self.next_txn, int(inv_id) + 1)
        rec = Rec("Invoice", inv_id, ent, created)
        self.recs["Invoice"][inv_id] = rec
        self.doc_idx.setdefault(doc.lower(), set()).add(inv_id)
        self.by_customer["Invoice"][cust.id].add(inv_id)
        self.ledger.setdefault(doc, []).append(inv_id)
        self.inv_info[inv_id] = {"DocNumber": doc, "origin": origin, "requestid": requestid,
                                 "created_at": iso_utc(now), "CustomerRef": cust.id}
        if doc.isdigit():
            self.next_doc = max(self.next_doc, int(doc) + 1)
        self._cust_add(cust.id, balance)
        self._touch(rec, now)

    def update_invoice(self, body, now, include=(), fx=_no_fault):
        self._check_fields(body, INVOICE_INPUT, "Invoice")
        inv_id = str(body.get("Id"))
        rec = self.recs["Invoice"].get(inv_id)
        if rec is None:
            raise err_610()
        self._check_sync(rec, body, now, fx)
        fields = self._update_fields(rec, body, INVOICE_COMPUTED)
        doc = self._docnum(fields) or rec.ent["DocNumber"]
        fields["DocNumber"] = doc
        old_doc = rec.ent["DocNumber"]
        if doc.lower() != old_doc.lower() and self.cfg.dup_check and "allowduplicatedocnum" not in include:
            existing = self.doc_idx.get(doc.lower(), set()) - {inv_id}
            if existing:
                raise err_6140(doc, "Invoice", min(existing, key=int))
        voided = inv_id in self.voided and "Line" not in body
        ent, cust, balance = self._invoice_entity(fields, inv_id, rec.created, now,
                                                  int(rec.ent["SyncToken"]) + 1, voided)
        old_cust = rec.ent["CustomerRef"]["value"]
        if cust.id != old_cust and self.applied.get(inv_id):
            raise err_6000("The customer cannot be changed while payments are applied to this transaction.")
        if doc.lower() != old_doc.lower():
            self._doc_idx_remove(old_doc, inv_id)
            self.doc_idx.setdefault(doc.lower(), set()).add(inv_id)
            self.inv_info[inv_id]["DocNumber"] = doc
        if cust.id != old_cust:
            self.by_customer["Invoice"][old_cust].discard(inv_id)
            self.by_customer["Invoice"][cust.id].add(inv_id)
            self.inv_info[inv_id]["CustomerRef"] = cust.id
        self._cust_add(old_cust, -dec_of(rec.ent["Balance"]))
        self._cust_add(cust.id, balance)
        rec.ent = ent
        self._touch(rec, now)
        if not voided:
            self.voided.discard(inv_id)
        return ent

    def _doc_idx_remove(self, doc, inv_id):
        s = self.doc_idx.get(doc.lower())
        if s is not None:
            s.discard(inv_id)
            if not s:
                del self.doc_idx[doc.lower()]

    def _detach_payments(self, inv_id, now):
        """The invoice goes away (delete/void): its payments keep their money as unapplied credit."""
        for pid, amt in sorted(self.applied.pop(inv_id, {}).items()):
            self.pay_apps.get(pid, {}).pop(inv_id, None)
            prec = self.recs["Payment"].get(pid)
            if prec is None:
                continue
            lines = [ln for ln in prec.ent["Line"]
                     if not any(lt.get("TxnId") == inv_id for lt in ln.get("LinkedTxn", ()))]
            unapplied = dec_of(prec.ent["UnappliedAmt"]) + amt
            prec.ent = dict(prec.ent, Line=lines, UnappliedAmt=out_money(unapplied),
                            SyncToken=str(int(prec.ent["SyncToken"]) + 1), MetaData=self._meta(prec.created, now))
            self._touch(prec, now)
            self._cust_add(prec.ent["CustomerRef"]["value"], -amt)
        self.paid.pop(inv_id, None)

    def _find_for_write(self, etype, body):
        rid = body.get("Id")
        if rid is None or rid == "":
            raise err_2020("Id")
        rec = self.recs[etype].get(str(rid))
        if rec is None:
            raise err_610()
        return rec

    def delete_invoice(self, body, now, fx=_no_fault):
        rec = self._find_synced("Invoice", body, now, fx)
        inv_id = rec.id
        cust = rec.ent["CustomerRef"]["value"]
        self._cust_add(cust, -dec_of(rec.ent["Balance"]))
        self._detach_payments(inv_id, now)
        self._doc_idx_remove(rec.ent["DocNumber"], inv_id)
        self.by_customer["Invoice"][cust].discard(inv_id)
        del self.recs["Invoice"][inv_id]
        self.voided.discard(inv_id)
        self._tombstone("Invoice", rec, now)
        self.inv_info[inv_id]["deleted_at"] = iso_utc(now)
        return {"status": "Deleted", "domain": "QBO", "Id": inv_id}

    def _tombstone(self, etype, rec, now):
        tomb = Rec(etype, rec.id, None, rec.created)
        tomb.ent = {"status": "Deleted", "domain": "QBO", "Id": rec.id,
                    "MetaData": {"LastUpdatedTime": qbo_ts(int(now))}}
        self.tombs[etype][rec.id] = tomb
        self._touch(tomb, now)

    def void_invoice(self, body, now, fx=_no_fault):
        rec = self._find_synced("Invoice", body, now, fx)
        inv_id = rec.id
        self._cust_add(rec.ent["CustomerRef"]["value"], -dec_of(rec.ent["Balance"]))
        self._detach_payments(inv_id, now)
        fields = {k: v for k, v in rec.ent.items() if k not in INVOICE_COMPUTED}
        ent, _, _ = self._invoice_entity(fields, inv_id, rec.created, now, int(rec.ent["SyncToken"]) + 1, True)
        rec.ent = ent
        self.voided.add(inv_id)
        self._touch(rec, now)
        self.inv_info[inv_id]["voided_at"] = iso_utc(now)
        return ent

    def _rerender_invoice_money(self, rec, now):
        old_bal = dec_of(rec.ent["Balance"])
        new_bal = dec_of(rec.ent["TotalAmt"]) - self.paid.get(rec.id, ZERO)
        rec.ent = dict(rec.ent, Balance=out_money(new_bal), LinkedTxn=self._inv_linked(rec.id),
                       SyncToken=str(int(rec.ent["SyncToken"]) + 1), MetaData=self._meta(rec.created, now))
        self._touch(rec, now)
        self._cust_add(rec.ent["CustomerRef"]["value"], new_bal - old_bal)

    # ---- payments

    def _payment_plan(self, fields, pid):
        cust = self._customer_ref(fields)
        if fields.get("TotalAmt") is None:
            raise err_2020("TotalAmt")
        total = q2(self._money(fields["TotalAmt"], "TotalAmt"))
        if total < 0:
            raise err_6000("Transaction total amount must be equal to or greater than zero.")
        lines_in = fields.get("Line") or []
        if not isinstance(lines_in, list):
            raise err_bad_json()
        per_inv, lines_out, applied_sum = {}, [], ZERO
        for ln in lines_in:
            if not isinstance(ln, dict):
                raise err_bad_json()
            for k in ln:
                if k not in PAYMENT_LINE_FIELDS:
                    raise err_unknown_field(k, "Line")
            if ln.get("Amount") is None:
                raise err_2020("Line.Amount")
            amt = q2(self._money(ln["Amount"], "Line.Amount"))
            links = ln.get("LinkedTxn") or []
            if not isinstance(links, list):
                raise err_bad_json()
            if not links:
                continue
            if len(links) > 1:
                raise err_6000("A payment line can be linked to only one transaction.")
            lt = links[0]
            if not isinstance(lt, dict) or lt.get("TxnId") in (None, ""):
                raise err_2020("Line.LinkedTxn.TxnId")
            if lt.get("TxnType") != "Invoice":
                raise err_2010("TxnType %s specified is unsupported or invalid" % lt.get("TxnType"))
            tid = str(lt["TxnId"])
            inv = self.recs["Invoice"].get(tid)
            if inv is None:
                raise err_610()
            if inv.ent["CustomerRef"]["value"] != cust.id:
                raise err_6000("The transaction %s belongs to a different customer." % tid)
            if amt < 0:
                raise err_6000("Payment line amounts cannot be negative.")
            per_inv[tid] = per_inv.get(tid, ZERO) + amt
            applied_sum += amt
            lines_out.append({"Amount": out_money(amt), "LinkedTxn": [{"TxnId": tid, "TxnType": "Invoice"}]})
        for tid, amt in per_inv.items():
            inv = self.recs["Invoice"][tid]
            avail = dec_of(inv.ent["Balance"]) + (self.pay_apps.get(pid, {}).get(tid, ZERO) if pid else ZERO)
            if amt > avail:
                raise err_6000("The amount applied to invoice %s exceeds its open balance." % inv.ent["DocNumber"])
        if applied_sum > total:
            raise err_6000("The amount applied to transactions exceeds the payment amount.")
        return cust, total, per_inv, lines_out, total - applied_sum

    def _payment_entity(self, fields, pid, created, now, st, cust, total, lines_out, unapplied):
        ent = {"CustomerRef": {"value": cust.id, "name": cust.ent["DisplayName"]},
               "DepositToAccountRef": plain(fields.get("DepositToAccountRef") or {"value": "4"}),
               "TotalAmt": out_money(total), "UnappliedAmt": out_money(unapplied), "ProcessPayment": False,
               "domain": "QBO", "sparse": False, "Id": pid, "SyncToken": str(st),
               "MetaData": self._meta(created, now), "TxnDate": self._date(fields, "TxnDate", qbo_date(now)),
               "CurrencyRef": self.currency, "Line": lines_out}
        for k in PAYMENT_PASS:
            if k in fields and fields[k] is not None:
                ent[k] = plain(fields[k])
        return ent

    def _set_applications(self, pid, new, now):
        old = self.pay_apps.get(pid, {})
        for tid in sorted(set(old) | set(new), key=int):
            o, n = old.get(tid, ZERO), new.get(tid, ZERO)
            if o == n:
                continue
            apps = self.applied.setdefault(tid, {})
            if n:
                apps[pid] = n
            else:
                apps.pop(pid, None)
            if not apps:
                self.applied.pop(tid, None)
            self.paid[tid] = self.paid.get(tid, ZERO) + n - o
            rec = self.recs["Invoice"].get(tid)
            if rec is not None:
                self._rerender_invoice_money(rec, now)
        if new:
            self.pay_apps[pid] = dict(new)
        else:
            self.pay_apps.pop(pid, None)

    def create_payment(self, body, now, origin="api", fx=_no_fault, created=None):
        self._check_fields(body, PAYMENT_INPUT, "Payment")
        pid = str(self.next_txn)
        cust, total, per_inv, lines_out, unapplied = self._payment_plan(body, None)
        ent = self._payment_entity(body, pid, created or now, now, 0, cust, total, lines_out, unapplied)
        self.next_txn += 1
        rec = Rec("Payment", pid, ent, created or now)
        self.recs["Payment"][pid] = rec
        self.by_customer["Payment"][cust.id].add(pid)
        self._touch(rec, now)
        self._set_applications(pid, per_inv, now)
        self._cust_add(cust.id, -unapplied)
        return ent

    def update_payment(self, body, now, fx=_no_fault):
        self._check_fields(body, PAYMENT_INPUT, "Payment")
        rec = self._find_synced("Payment", body, now, fx)
        fields = self._update_fields(rec, body, PAYMENT_COMPUTED)
        cust, total, per_inv, lines_out, unapplied = self._payment_plan(fields, rec.id)
        old_cust = rec.ent["CustomerRef"]["value"]
        if cust.id != old_cust and self.pay_apps.get(rec.id):
            raise err_6000("The customer cannot be changed while the payment is applied.")
        ent = self._payment_entity(fields, rec.id, rec.created, now, int(rec.ent["SyncToken"]) + 1, cust, total,
                                   lines_out, unapplied)
        self._cust_add(old_cust, dec_of(rec.ent["UnappliedAmt"]))
        if cust.id != old_cust:
            self.by_customer["Payment"][old_cust].discard(rec.id)
            self.by_customer["Payment"][cust.id].add(rec.id)
        rec.ent = ent
        self._touch(rec, now)
        self._set_applications(rec.id, per_inv, now)
        self._cust_add(cust.id, -unapplied)
        self.voided.discard(rec.id)
        return ent

    def void_payment(self, body, now, fx=_no_fault):
        rec = self._find_synced("Payment", body, now, fx)
        self._set_applications(rec.id, {}, now)
        self._cust_add(rec.ent["CustomerRef"]["value"], dec_of(rec.ent["UnappliedAmt"]))
        lines = [dict(ln, Amount=0) for ln in rec.ent["Line"]]
        rec.ent = dict(rec.ent, TotalAmt=0, UnappliedAmt=0, Line=lines, PrivateNote="Voided",
                       SyncToken=str(int(rec.ent["SyncToken"]) + 1), MetaData=self._meta(rec.created, now))
        self.voided.add(rec.id)
        self._touch(rec, now)
        return rec.ent

    def delete_payment(self, body, now, fx=_no_fault):
        rec = self._find_synced("Payment", body, now, fx)
        self._set_applications(rec.id, {}, now)
        cust = rec.ent["CustomerRef"]["value"]
        self._cust_add(cust, dec_of(rec.ent["UnappliedAmt"]))
        self.by_customer["Payment"][cust].discard(rec.id)
        del self.recs["Payment"][rec.id]
        self.voided.discard(rec.id)
        self._tombstone("Payment", rec, now)
        return {"status": "Deleted", "domain": "QBO", "Id": rec.id}

    # ---- customers

    def _customer_entity(self, fields, cid, created, now, st):
        dn = fields.get("DisplayName")
        if dn is None or dn == "":
            parts = [fields.get(k) for k in ("Title", "GivenName", "MiddleName", "FamilyName", "Suffix")]
            dn = " ".join(p for p in parts if isinstance(p, str) and p) or fields.get("CompanyName")
        if not dn:
            raise err_2020("DisplayName")
        if not isinstance(dn, str):
            raise err_2010("DisplayName specified is unsupported or invalid")
        dn = dn.strip()
        if len(dn) > 500:
            raise err_2050("DisplayName", 500)
        if ":" in dn:
            raise err_6000("The name cannot contain a colon (:).")
        active = fields.get("Active", True)
        active = active if isinstance(active, bool) else _is_true(active)
        if not active and not dn.endswith(" (deleted)"):
            dn += " (deleted)"  # QBO renames inactive names, which frees the original name
        elif active and dn.endswith(" (deleted)"):
            dn = dn[:-len(" (deleted)")]
        bal = out_money(self.cust_bal.get(cid, ZERO))
        ent = {"Taxable": False, "Job": False, "BillWithParent": False, "Balance": bal, "BalanceWithJobs": bal,
               "CurrencyRef": self.currency, "PreferredDeliveryMethod": "Print", "IsProject": False,
               "domain": "QBO", "sparse": False, "Id": cid, "SyncToken": str(st),
               "MetaData": self._meta(created, now)}
        for k, v in fields.items():
            if k not in CUSTOMER_COMPUTED and k not in ("DisplayName", "Active", "PrintOnCheckName") and v is not None:
                ent[k] = plain(v)
        ent.update(FullyQualifiedName=dn, DisplayName=dn,
                   PrintOnCheckName=fields.get("PrintOnCheckName") or fields.get("CompanyName") or dn,
                   Active=active)
        return ent

    def create_customer(self, body, now, origin="api", fx=_no_fault, created=None):
        self._check_fields(body, CUSTOMER_INPUT, "Customer")
        cid = str(self.next_name)
        ent = self._customer_entity(body, cid, created or now, now, 0)
        if ent["DisplayName"].lower() in self.name_idx:
            raise err_6240()
        f = fx("dup_6240")
        self.next_name += 1
        rec = Rec("Customer", cid, ent, created or now)
        self.recs["Customer"][cid] = rec
        self.name_idx[ent["DisplayName"].lower()] = cid
        self.cust_bal[cid] = ZERO
        self._touch(rec, now)
        if f is not None:
            raise err_6240()  # someone else created this name a moment earlier
        return ent

    def update_customer(self, body, now, fx=_no_fault):
        self._check_fields(body, CUSTOMER_INPUT, "Customer")
        rec = self._find_synced("Customer", body, now, fx)
        fields = self._update_fields(rec, body, CUSTOMER_COMPUTED)
        ent = self._customer_entity(fields, rec.id, rec.created, now, int(rec.ent["SyncToken"]) + 1)
        old, new = rec.ent["DisplayName"].lower(), ent["DisplayName"].lower()
        if new != old:
            if new in self.name_idx:
                raise err_6240()
            del self.name_idx[old]
            self.name_idx[new] = rec.id
        rec.ent = ent
        self._touch(rec, now)
        for etype in ("Invoice", "Payment"):  # refs carry the name; QBO shows the new one
            for xid in self.by_customer[etype].get(rec.id, ()):
                x = self.recs[etype][xid]
                x.ent = dict(x.ent, CustomerRef={"value": rec.id, "name": ent["DisplayName"]})
        return ent

    # ---- reads, seeds, queries, CDC

    def read(self, etype, eid):
        if etype == "CompanyInfo":
            if eid not in (self.company.id, self.cfg.realm_id):  # QBO addresses it as companyinfo/{realmId}
                raise err_610()
            return self.company.ent
        rec = self.recs[etype].get(eid)
        if rec is None:
            raise err_610()
        return rec.ent

    def seed(self, scale, seed, now):
        rng = random.Random(seed)
        t0 = int(now) - 400 * DAY
        for iid, name, typ, price, acct, acct_name in PRESET_ITEMS:
            ent = {"Name": name, "Active": True, "FullyQualifiedName": name, "Taxable": False, "UnitPrice": price,
                   "Type": typ, "IncomeAccountRef": {"value": acct, "name": acct_name}, "PurchaseCost": 0,
                   "TrackQtyOnHand": False, "domain": "QBO", "sparse": False, "Id": iid, "SyncToken": "0",
                   "MetaData": self._meta(t0, t0)}
            rec = Rec("Item", iid, ent, t0)
            self.recs["Item"][iid] = rec
            self._touch(rec, t0)
        self.company = Rec("CompanyInfo", "1", None, t0)
        self.company.ent = {
            "CompanyName": "RTOpacks Fake Co", "LegalName": "RTOpacks Fake Co Pty Ltd",
            "CompanyAddr": {"Id": "1", "Line1": "1 Example St", "City": "Brisbane", "Country": "AU",
                            "CountrySubDivisionCode": "QLD", "PostalCode": "4000"},
            "Country": "AU" if self.cfg.currency == "AUD" else "US", "Email": {"Address": "accounts@example.com"},
            "SupportedLanguages": "en", "NameValue": [], "domain": "QBO", "sparse": False, "Id": "1",
            "SyncToken": "1", "MetaData": self._meta(t0, t0), "CompanyStartDate": qbo_date(t0),
            "FiscalYearStartMonth": "July"}
        self.company.updated = t0
        names = list(SANDBOX_CUSTOMERS)
        n_cust, n_inv, n_pay = (0, 0, 0) if scale == "small" else (2000, 5000, 1500)
        names += ["RTO Client %04d Pty Ltd" % i for i in range(1, n_cust + 1)]
        base = int(now) - 90 * DAY
        for i, name in enumerate(names):
            ts = base + i * 60
            self.create_customer({"DisplayName": name, "CompanyName": name}, ts, origin="seed", created=ts)
        if not n_inv:
            return
        span = 60 * DAY
        times = sorted(int(now) - span + rng.randrange(span - 3600) for _ in range(n_inv))
        cids = list(self.recs["Customer"])
        prices = ["95", "120", "150.50", "249", "399", "1250"]
        for ts in times:
            qty, price = rng.randint(1, 5), Decimal(rng.choice(prices))
            body = {"CustomerRef": {"value": rng.choice(cids)},
                    "Line": [{"Amount": q2(qty * price), "DetailType": "SalesItemLineDetail",
                              "Description": "Subscription",
                              "SalesItemLineDetail": {"ItemRef": {"value": rng.choice("135")}, "Qty": qty,
                                                      "UnitPrice": price}}]}
            self.create_invoice(body, ts, origin="seed", created=ts)
        inv_ids = list(self.recs["Invoice"])
        for pid_ts in sorted(rng.sample(range(len(inv_ids)), n_pay)):
            rec = self.recs["Invoice"][inv_ids[pid_ts]]
            ts = min(int(now) - 60, rec.created + rng.randrange(1, 20 * DAY))
            bal = dec_of(rec.ent["Balance"])
            amt = bal if rng.random() < 0.8 else q2(bal / 2)
            self.create_payment({"CustomerRef": {"value": rec.ent["CustomerRef"]["value"]}, "TotalAmt": amt,
                                 "Line": [{"Amount": amt, "LinkedTxn": [{"TxnId": rec.id, "TxnType": "Invoice"}]}]},
                                ts, origin="seed", created=ts)

    def _changed_since(self, etype, since, strict):
        lg = self.log[etype]
        i = bisect.bisect_right(lg, (since, float("inf"))) if strict else bisect.bisect_left(lg, (since,))
        live, tombs = self.recs[etype], self.tombs[etype]
        for ts, seq, rid in lg[i:]:
            rec = live.get(rid)
            if rec is None:
                rec = tombs.get(rid)
            if rec is not None and rec.seq == seq:
                yield rec

    def _cond(self, etype, field, kind, op, val):
        """Compile one WHERE condition into (field, op, normalised values, predicate)."""
        if op in ("<>", "!="):
            op = "!="
        if op == "like" and kind != "str":
            raise err_4001("LIKE is not supported for property '%s'" % field)
        vals = val if op == "in" else [val]
        norm = []
        for v in vals:
            if kind == "id":
                try:
                    norm.append(int(str(v)))
                except ValueError:
                    norm.append(None)
            elif kind == "ts":
                t = parse_ts(str(v))
                if t is None:
                    raise err_4001("Invalid date-time value '%s' for property %s" % (v, field))
                norm.append(t)
            elif kind == "str":
                norm.append(str(v).lower())
            elif kind == "ref":
                norm.append(str(v))
            elif kind == "money":
                try:
                    norm.append(Decimal(str(v)))
                except InvalidOperation:
                    raise err_4001("Invalid number value '%s' for property %s" % (v, field))
            elif kind == "bool":
                norm.append(v if isinstance(v, bool) else str(v).lower() == "true")
            elif kind == "date":
                s = str(v)[:10]
                if not valid_date(s):
                    raise err_4001("Invalid date value '%s' for property %s" % (v, field))
                norm.append(s)
        if kind == "id":
            get = lambda r: int(r.id)
        elif field == "MetaData.CreateTime":
            get = lambda r: r.created
        elif field == "MetaData.LastUpdatedTime":
            get = lambda r: r.updated
        elif kind == "ref":
            get = lambda r: (r.ent.get(field) or {}).get("value")
        elif field == "PrimaryEmailAddr":
            get = lambda r: ((r.ent.get(field) or {}).get("Address") or "").lower() or None
        elif kind == "str":
            get = lambda r: (r.ent.get(field) or "").lower() if r.ent.get(field) is not None else None
        elif kind == "money":
            get = lambda r: dec_of(r.ent.get(field)) if r.ent.get(field) is not None else None
        elif kind == "bool":
            get = lambda r: r.ent.get(field, True)
        else:
            get = lambda r: r.ent.get(field)
        if op == "in":
            s = set(norm)
            pred = lambda r: get(r) in s
        elif op == "like":
            rx = like_regex(val)
            pred = lambda r: (lambda x: x is not None and rx.match(x) is not None)(get(r))
        else:
            v0 = norm[0]
            cmp = {"=": lambda a: a == v0, "!=": lambda a: a != v0, "<": lambda a: a < v0,
                   ">": lambda a: a > v0, "<=": lambda a: a <= v0, ">=": lambda a: a >= v0}[op]
            pred = lambda r: (lambda x: x is not None and v0 is not None and cmp(x))(get(r))
        return (field, op, norm, pred)

    def _candidates(self, etype, conds):
        live = self.recs[etype]
        for field, op, norm, _ in conds:
            if field == "Id" and op in ("=", "in"):
                return [live[str(v)] for v in dict.fromkeys(norm) if v is not None and str(v) in live]
            if etype == "Invoice" and field == "DocNumber" and op in ("=", "in"):
                ids = set()
                for v in norm:
                    ids |= self.doc_idx.get(v, set())
                return [live[i] for i in ids]
            if etype == "Customer" and field == "DisplayName" and op in ("=", "in"):
                return [live[self.name_idx[v]] for v in dict.fromkeys(norm) if v in self.name_idx]
            if field == "CustomerRef" and op == "=" and etype in self.by_customer:
                return [live[i] for i in self.by_customer[etype].get(norm[0], ())]
            if field == "MetaData.LastUpdatedTime" and op in (">", ">="):
                return [r for r in self._changed_since(etype, norm[0], op == ">") if r.id in live and live[r.id] is r]
        return list(live.values())

    def run_query(self, text, now):
        q = parse_query(text)
        etype = ENTITY_LC.get(q.entity.lower())
        if etype is None:
            raise err_4001("Invalid context declaration : %s" % q.entity)
        if q.has_or:
            raise err_4001("OR operation is not supported")
        fmap, kinds = QUERY_FIELDS_LC[etype], QUERY_FIELDS[etype]
        raw = []
        for f, op, v in q.conds:
            canon = fmap.get(f.lower())
            if canon is None:
                raise err_4001("property '%s' is not queryable" % f)
            raw.append((canon, op, v))
        order = []
        for f, desc in q.order:
            canon = fmap.get(f.lower())
            if canon is None:
                raise err_4001("property '%s' is not queryable" % f)
            order.append((canon, desc))
        start = 1 if q.start is None else q.start
        mx = 100 if q.max is None else q.max
        for v in (start, mx):
            if v < 1:
                raise err_4001("value %d is too small. Min allowed value is 1" % v)
        if mx > 1000:
            raise err_4001("value %d is too large. Max allowed value is 1000" % mx)
        conds = [self._cond(etype, f, kinds[f], op, v) for f, op, v in raw]
        # Name lists (Customer, Item) return active entities only unless the query mentions Active.
        if etype in ("Customer", "Item") and not any(c[0] == "Active" for c in conds):
            conds.append(self._cond(etype, "Active", "bool", "=", True))
        with self.lock:
            if etype == "CompanyInfo":
                cands = [self.company]
            else:
                cands = self._candidates(etype, conds)
            rows = [r for r in cands if all(c[3](r) for c in conds)]
            if q.count:
                return {"QueryResponse": {"totalCount": len(rows)}, "time": qbo_ts(now, ms=True)}
            rows.sort(key=lambda r: int(r.id))
            for field, desc in reversed(order):  # stable sorts, last key first
                getter = _getter(field)
                rows.sort(key=lambda r: _sort_key(getter(r)), reverse=desc)
            page = rows[start - 1:start - 1 + mx]
            ents = [r.ent if q.fields is None else _project(r.ent, q.fields) for r in page]
        if not ents:
            return {"QueryResponse": {}, "time": qbo_ts(now, ms=True)}
        return {"QueryResponse": {etype: ents, "startPosition": start, "maxResults": len(ents)},
                "time": qbo_ts(now, ms=True)}

    def cdc(self, entities, changed_since, now):
        if not entities:
            raise err_2020("entities")
        if not changed_since:
            raise err_2020("changedSince")
        since = parse_ts(changed_since)
        if since is None:
            raise err_2010("changedSince specified is unsupported or invalid")
        if since < now - self.cfg.cdc_lookback_days * DAY:
            raise err_4001_cdc(changed_since)
        names = []
        for e in entities.split(","):
            canon = ENTITY_LC.get(e.strip().lower())
            if canon is None or canon == "CompanyInfo":
                raise err_2010("entities %s specified is unsupported or invalid" % e.strip())
            if canon not in names:
                names.append(canon)
        budget, blocks, truncated = self.cfg.cdc_max, [], False
        with self.lock:
            for et in names:
                act, dele = [], []
                for r in self._changed_since(et, int(since), False):
                    (dele if r.id in self.tombs[et] and self.tombs[et][r.id] is r else act).append(r.ent)
                objs = act + dele  # deleted objects come after active ones (CDC docs)
                if len(objs) > budget:
                    truncated = True
                    objs = objs[:budget]
                budget -= len(objs)
                blocks.append({et: objs, "startPosition": 1, "maxResults": len(objs)} if objs else {})
            if truncated:
                self.cdc_truncated += 1
        return {"CDCResponse": [{"QueryResponse": blocks}], "time": qbo_ts(now, ms=True)}

    # ---- views for tests

    def ledger_view(self, realm):
        with self.lock:
            docs = {}
            for doc, ids in self.ledger.items():
                docs[doc] = {"created": len(ids), "ids": list(ids),
                             "live": [i for i in ids if i in self.recs["Invoice"]]}
            invoices = []
            for inv_id in sorted(self.inv_info, key=int):
                info = self.inv_info[inv_id]
                rec = self.recs["Invoice"].get(inv_id)
                row = {"Id": inv_id, "DocNumber": info["DocNumber"], "origin": info["origin"],
                       "requestid": info["requestid"], "created_at": info["created_at"],
                       "CustomerRef": info["CustomerRef"]}
                if rec is None:
                    row.update(status="deleted", deleted_at=info.get("deleted_at"))
                else:
                    bal, tot = dec_of(rec.ent["Balance"]), dec_of(rec.ent["TotalAmt"])
                    status = ("voided" if inv_id in self.voided else "paid" if bal == 0 and tot > 0 else
                              "partial" if bal < tot else "open")
                    row.update(status=status, TotalAmt=rec.ent["TotalAmt"], Balance=rec.ent["Balance"],
                               SyncToken=rec.ent["SyncToken"])
                invoices.append(row)
        return {"realm_id": realm, "total_created": len(self.inv_info), "doc_numbers": docs,
                "duplicates": {d: v["created"] for d, v in docs.items() if v["created"] > 1},
                "invoices": invoices}

    def dump_view(self, realm, now):
        with self.lock:
            out = {"realm_id": realm, "now": iso_utc(now), "CompanyInfo": self.company.ent}
            for et in ENTITY_TYPES:
                out[et] = [self.recs[et][i].ent for i in sorted(self.recs[et], key=int)]
            out["deleted"] = {et: [self.tombs[et][i].ent for i in sorted(self.tombs[et], key=int)]
                              for et in ("Invoice", "Payment")}
            out["voided"] = sorted(self.voided, key=int)
        return out


def err_4001_cdc(value):
    return QBOError(400, "4001", "Invalid query",
                    "Operation cdc with changedSince date %s which is older than fixed days is not supported."
                    % value, with_element=False)


def _getter(field):
    pred_get = {"Id": lambda r: int(r.id), "MetaData.CreateTime": lambda r: r.created,
                "MetaData.LastUpdatedTime": lambda r: r.updated}
    if field in pred_get:
        return pred_get[field]
    if field in ("CustomerRef",):
        return lambda r: (r.ent.get(field) or {}).get("value")
    if field in ("Balance", "TotalAmt"):
        return lambda r: dec_of(r.ent.get(field)) if r.ent.get(field) is not None else None
    if field == "PrimaryEmailAddr":
        return lambda r: (r.ent.get(field) or {}).get("Address")
    return lambda r: r.ent.get(field).lower() if isinstance(r.ent.get(field), str) else r.ent.get(field)


def _sort_key(v):
    return (v is None, v if v is not None else 0)


def _project(ent, fields):
    out = {"domain": "QBO", "sparse": True, "Id": ent.get("Id")}
    lc = {k.lower(): k for k in ent}
    for f in fields:
        if "." in f:
            top, sub = f.split(".", 1)
            k = lc.get(top.lower())
            if k and isinstance(ent[k], dict):
                sk = {x.lower(): x for x in ent[k]}.get(sub.lower())
                if sk:
                    out.setdefault(k, {})[sk] = ent[k][sk]
        else:
            k = lc.get(f.lower())
            if k:
                out[k] = ent[k]
    return out


# --------------------------------------------------------------------------------------------------------------
# OAuth 2.0. Raw tokens are never stored: lookups go through SHA-256, and only 12-hex prefixes reach stats.


def H(token):
    return hashlib.sha256(token.encode()).hexdigest()


def _b64u(n):
    return base64.urlsafe_b64encode(secrets.token_bytes(n)).rstrip(b"=").decode()


def gen_refresh(now):
    alnum = string.ascii_lowercase + string.digits
    return "RT1-%d-H0-%d%s" % (secrets.randbelow(90) + 10, int(now), "".join(secrets.choice(alnum) for _ in range(20)))


def gen_access():
    # Shape of a real one (dir/A128CBC-HS256 JWE, ~1 kB) so clients size their buffers for it.
    return "eyJlbmMiOiJBMTI4Q0JDLUhTMjU2IiwiYWxnIjoiZGlyIn0.." + _b64u(16) + "." + _b64u(720) + "." + _b64u(16)


def gen_code():
    alnum = string.ascii_letters + string.digits
    return "AB11%d%s" % (int(time.time()), "".join(secrets.choice(alnum) for _ in range(36)))


class Chain:
    """One connection (authorization) of the app to the company: a sequence of refresh-token values."""

    def __init__(self, cid, realm, client_id, now, hard_deadline, origin, openid):
        self.id, self.realm, self.client_id, self.origin, self.openid = cid, realm, client_id, origin, openid
        self.created, self.hard_deadline = now, hard_deadline
        self.revoked = None  # None, or why: "revoked", "replaced", "reuse-detected", "code-reuse"
        self.refresh_hash, self.refresh_issued, self.rolling_exp = None, now, now
        self.rotations = 0


class OAuth:
    def __init__(self, cfg, stats):
        self.cfg, self.stats = cfg, stats
        self.lock = threading.Lock()
        self.chains = {}
        self.refresh = {}  # H(refresh) -> chain id (current and superseded values)
        self.access = {}  # H(access) -> (chain id, expires_at)
        self.codes = {}  # H(code) -> dict
        self.current = None

    def _mint_access(self, ch, now):
        at = gen_access()
        self.access[H(at)] = (ch.id, now + self.cfg.access_lifetime)
        return at

    def new_chain(self, now, origin, refresh_token=None, age=0, openid=False):
        if self.current is not None and self.chains[self.current].revoked is None:
            self.chains[self.current].revoked = "replaced"
        ch = Chain(len(self.chains) + 1, self.cfg.realm_id, self.cfg.client_id, now,
                   now + self.cfg.hard_lifetime, origin, openid)
        rt = refresh_token or gen_refresh(now)
        ch.refresh_hash, ch.refresh_issued, ch.rolling_exp = H(rt), now - age, now + self.cfg.refresh_lifetime
        self.chains[ch.id] = ch
        self.refresh[ch.refresh_hash] = ch.id
        self.current = ch.id
        return ch, rt, self._mint_access(ch, now)

    def token_body(self, ch, rt, at, now, want_hard):
        hard_left = max(0, int(ch.hard_deadline - now))
        body = {"token_type": "bearer", "expires_in": self.cfg.access_lifetime, "refresh_token": rt,
                "x_refresh_token_expires_in": max(0, min(int(ch.rolling_exp - now), hard_left)),
                "access_token": at}
        if want_hard:
            body["x_refresh_token_hard_expires_in"] = hard_left
        if ch.openid:
            body["id_token"] = self._id_token(now)
        return body

    def _id_token(self, now):
        def part(obj):
            return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()
        return ".".join((part({"kid": "fake", "alg": "RS256"}),
                         part({"sub": str(uuid.uuid4()), "aud": [self.cfg.client_id], "realmid": self.cfg.realm_id,
                               "auth_time": int(now), "iss": "https://oauth.platform.intuit.com/op/v1",
                               "exp": int(now) + 3600, "iat": int(now)}), _b64u(128)))

    def _log(self, **kw):
        self.stats.token_log(kw)

    def refresh_grant(self, rt, now, want_hard):
        """-> (body, None) or (None, error_description)."""
        h = H(rt)
        with self.lock:
            cid = self.refresh.get(h)
            ch = self.chains.get(cid)
            why = None
            if ch is None:
                why = "unknown"
            elif ch.revoked:
                why = ch.revoked
            elif h != ch.refresh_hash:
                why = "superseded"
                if self.cfg.reuse_revokes_chain:
                    ch.revoked = "reuse-detected"
            elif now >= ch.hard_deadline:
                why = "hard-expired"
            elif now >= ch.rolling_exp:
                why = "expired"
            if why:
                self._log(at=iso_utc(now), grant="refresh_token", presented=h[:12], result="invalid_grant",
                          reason=why, hard_header=want_hard)
                return None, why
            # FAQ: the value changes every 24 h, or at the first refresh after 24 h; the previous one dies.
            rotate = self.cfg.rotate == "always" or now - ch.refresh_issued >= DAY
            if rotate:
                rt = gen_refresh(now)
                ch.refresh_hash, ch.refresh_issued = H(rt), now
                self.refresh[ch.refresh_hash] = ch.id
                ch.rotations += 1
            ch.rolling_exp = now + self.cfg.refresh_lifetime
            at = self._mint_access(ch, now)
            self._log(at=iso_utc(now), grant="refresh_token", presented=h[:12], result="ok", rotated=rotate,
                      issued_refresh=ch.refresh_hash[:12], access=sha12(at), hard_header=want_hard)
            return self.token_body(ch, rt, at, now, want_hard), None

    def mint_code(self, redirect_uri, scope, now):
        code = gen_code()
        with self.lock:
            self.codes[H(code)] = {"redirect_uri": redirect_uri, "scope": scope or "com.intuit.quickbooks.accounting",
                                   "expires": now + self.cfg.code_lifetime, "used": False, "chain": None}
        return code

    def code_grant(self, code, redirect_uri, now, want_hard):
        h = H(code)
        with self.lock:
            rec = self.codes.get(h)
            why = None
            if rec is None:
                why = "unknown code"
            elif rec["used"]:
                why = "code already used"
                if self.cfg.code_reuse_revokes and rec["chain"] in self.chains:
                    self.chains[rec["chain"]].revoked = "code-reuse"
            elif now > rec["expires"]:
                why = "code expired"
            elif rec["redirect_uri"] and redirect_uri != rec["redirect_uri"]:
                why = "redirect_uri mismatch"
            if why:
                self._log(at=iso_utc(now), grant="authorization_code", presented=h[:12], result="invalid_grant",
                          reason=why, hard_header=want_hard)
                return None, why
            rec["used"] = True
            ch, rt, at = self.new_chain(now, "authorization_code", openid="openid" in rec["scope"].split())
            rec["chain"] = ch.id
            self._log(at=iso_utc(now), grant="authorization_code", presented=h[:12], result="ok",
                      issued_refresh=ch.refresh_hash[:12], access=sha12(at), hard_header=want_hard)
            return self.token_body(ch, rt, at, now, want_hard), None

    def revoke(self, token, why="revoked"):
        h = H(token)
        with self.lock:
            cid = self.refresh.get(h)
            if cid is None and h in self.access:
                cid = self.access[h][0]
            if cid is None:
                return False
            if not self.chains[cid].revoked:
                self.chains[cid].revoked = why
            return True

    def revoke_current(self):
        with self.lock:
            if self.current is not None and not self.chains[self.current].revoked:
                self.chains[self.current].revoked = "revoked"
                return True
            return False

    def expire_access(self, now):
        with self.lock:
            for h, (cid, exp) in list(self.access.items()):
                if exp > now:
                    self.access[h] = (cid, now)

    def check_access(self, token, realm, now):
        """-> (client_id, None) or (None, (status, detail))."""
        if not token:
            return None, (401, "Authorization header is missing or is not a Bearer token")
        with self.lock:
            rec = self.access.get(H(token))
            if rec is None:
                if len(token) < 100 or len(token) > 4096:
                    return None, (401, "Malformed bearer token: too short or too long")
                return None, (401, "Token invalid")
            ch = self.chains[rec[0]]
            if ch.revoked:
                return None, (401, "Token revoked")
            if now >= rec[1]:
                return None, (401, "Token expired: %s" % qbo_ts(rec[1]))
            if realm != ch.realm:
                return None, (403, "")
            return ch.client_id, None

    def view(self, now):
        with self.lock:
            chains = []
            for ch in self.chains.values():
                chains.append({"id": ch.id, "origin": ch.origin, "status": ch.revoked or "active",
                               "current": ch.id == self.current, "refresh_sha12": ch.refresh_hash[:12],
                               "refresh_issued_at": iso_utc(ch.refresh_issued), "rotations": ch.rotations,
                               "rolling_expires_at": iso_utc(ch.rolling_exp),
                               "hard_expires_at": iso_utc(ch.hard_deadline),
                               "live_access_tokens": sum(1 for c, e in self.access.values()
                                                         if c == ch.id and e > now)})
            return {"chains": chains, "codes_outstanding": sum(1 for c in self.codes.values() if not c["used"])}


# --------------------------------------------------------------------------------------------------------------
# Stats, rate limits, faults.


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.reset()

    def reset(self):
        with self.lock:
            self.c = collections.defaultdict(collections.Counter)
            self.requests = 0
            self.control_requests = 0
            self.tlog = collections.deque(maxlen=1000)
            self.peak = {"concurrent": 0, "per_second": 0, "per_minute": 0}

    def inc(self, group, key, n=1):
        with self.lock:
            self.c[group][key] += n

    def request(self, op):
        with self.lock:
            self.requests += 1
            self.c["by_op"][op] += 1

    def token_log(self, entry):
        with self.lock:
            self.tlog.append(entry)
            self.c["token"][entry["grant"] + "." + entry["result"]] += 1
            if entry.get("rotated"):
                self.c["token"]["rotations"] += 1
            if entry.get("hard_header"):
                self.c["token"]["hard_expiry_header"] += 1

    def set_peak(self, key, v):
        if v > self.peak[key]:
            with self.lock:
                self.peak[key] = max(self.peak[key], v)

    def view(self):
        with self.lock:
            tok = self.c["token"]
            return {
                "requests": self.requests, "control_requests": self.control_requests,
                "by_op": dict(self.c["by_op"]), "by_status": dict(self.c["by_status"]),
                "throttled": sum(self.c["throttled"].values()), "throttled_by": dict(self.c["throttled"]),
                "peak": dict(self.peak),
                "refreshes": tok["refresh_token.ok"] + tok["refresh_token.invalid_grant"],
                "token": dict(tok), "token_log": list(self.tlog),
                "api": dict(self.c["api"]), "minorversion": dict(self.c["minorversion"]),
                "writes_without_requestid": dict(self.c["no_requestid"]),
                "faults_fired": dict(self.c["faults"]),
            }


class Limiter:
    """500/min per realm, 10/s per realm+app, >10 concurrent per realm -> 429 (reference 3.4). Sliding windows on
    the real monotonic clock: these limits are about how fast the client talks, not about fake business time."""

    def __init__(self, cfg, stats):
        self.cfg, self.stats = cfg, stats
        self.lock = threading.Lock()
        self.inflight = collections.Counter()
        self.minute = collections.defaultdict(collections.deque)
        self.second = collections.defaultdict(collections.deque)
        self.batch_minute = collections.defaultdict(collections.deque)

    def enter(self, realm):
        with self.lock:
            n = self.inflight[realm]
            if self.cfg.enforce_limits and n >= self.cfg.limit_concurrent:
                return False
            self.inflight[realm] = n + 1
        self.stats.set_peak("concurrent", n + 1)
        return True

    def leave(self, realm):
        with self.lock:
            self.inflight[realm] -= 1

    def admit(self, realm, app, batch=False):
        now = time.monotonic()
        with self.lock:
            m, s = self.minute[realm], self.second[(realm, app)]
            while m and m[0] <= now - 60:
                m.popleft()
            while s and s[0] <= now - 1:
                s.popleft()
            b = self.batch_minute[(realm, app)]
            while b and b[0] <= now - 60:
                b.popleft()
            if self.cfg.enforce_limits:
                if len(m) >= self.cfg.limit_per_minute:
                    return "per_minute"
                if len(s) >= self.cfg.limit_per_second:
                    return "per_second"
                if batch and len(b) >= 40:
                    return "batch_per_minute"
            m.append(now)
            s.append(now)
            if batch:
                b.append(now)
            lm, ls = len(m), len(s)
        self.stats.set_peak("per_minute", lm)
        self.stats.set_peak("per_second", ls)
        return None


GATEWAY_KINDS = frozenset(("http500", "http503", "http429", "throttle", "html", "redirect", "hang", "auth_401",
                           "xml_error"))
TRANSPORT_KINDS = frozenset(("slow", "drip", "truncate", "reset", "malformed", "lost_response"))
SERVICE_KINDS = frozenset(("stale_5010", "dup_6140", "dup_6240", "invalid_grant", "access_denied"))
ALL_KINDS = GATEWAY_KINDS | TRANSPORT_KINDS | SERVICE_KINDS
API_OPS_PREFIX = tuple(r + "." for r in RESOURCES) + ("query", "cdc", "batch", "api.")


# Every op classify() can name: a fault's op pattern must match one of them.
KNOWN_OPS = frozenset(["token", "revoke", "authorize", "login", "query", "cdc", "batch", "api.unknown", "notfound"] +
                      ["%s.%s" % (r, a) for r in RESOURCES for a in ("read", "create", "update", "delete", "void")])


def is_api(op):
    return op.startswith(API_OPS_PREFIX)


def _applicable(kind, op):
    if kind == "auth_401":
        return is_api(op)
    if kind == "stale_5010":
        return op.endswith((".update", ".delete", ".void"))
    if kind == "dup_6140":
        return op == "invoice.create"
    if kind == "dup_6240":
        return op == "customer.create"
    if kind == "invalid_grant":
        return op == "token"
    if kind == "access_denied":
        return op == "authorize"
    return True


def _op_match(pattern, op):
    return pattern == "*" or pattern == op or op.startswith(pattern + ".") or fnmatch.fnmatchcase(op, pattern)


class Faults:
    def __init__(self, stats):
        self.stats = stats
        self.lock = threading.Lock()
        self.armed = []
        self.spent = []      # faults whose count ran out: GET /_fake/fault lists them under "spent"
        self.next_id = 1

    def arm(self, spec):
        kind = spec.get("kind")
        if kind not in ALL_KINDS:
            raise ValueError("unknown fault kind %r; known: %s" % (kind, ", ".join(sorted(ALL_KINDS))))
        f = dict(spec)
        f["op"] = str(spec.get("op", "*"))
        if not any(_op_match(f["op"], op) for op in KNOWN_OPS):
            # A fault armed on an op that never comes would never fire: refuse it.
            raise ValueError("fault op %r matches no op of this fake (%s)" % (f["op"], ", ".join(sorted(KNOWN_OPS))))
        f["fired"] = 0
        f["count"] = int(spec.get("count", 1))
        f["skip"] = int(spec.get("skip", 0))
        if f["count"] == 0:
            raise ValueError("count must be positive or -1")
        with self.lock:
            f["id"] = self.next_id
            self.next_id += 1
            self.armed.append(f)
        return f["id"]

    def clear(self):
        with self.lock:
            n = len(self.armed)
            self.armed = []
            self.spent = []
        return n

    def list(self):
        with self.lock:
            return [dict(f) for f in self.armed]

    def list_spent(self):
        with self.lock:
            return [dict(f) for f in self.spent]

    def take(self, op, kinds):
        with self.lock:
            for f in self.armed:
                if f["kind"] in kinds and _op_match(f["op"], op) and _applicable(f["kind"], op):
                    if f["skip"] > 0:
                        f["skip"] -= 1
                        return None
                    if f["count"] > 0:
                        f["count"] -= 1
                        if f["count"] == 0:
                            self.armed.remove(f)
                            self.spent.append(f)
                    f["fired"] += 1
                    self.stats.inc("faults", f["kind"])
                    return dict(f)
        return None


# --------------------------------------------------------------------------------------------------------------
# Application: routing, gateway (auth, limits, faults), idempotency, control plane.

JSON_CT = "application/json;charset=UTF-8"
XML_CT = "application/xml;charset=UTF-8"
HTML_CT = "text/html;charset=UTF-8"
QBO_VERSION = "1979.184"


class Req:
    __slots__ = ("method", "path", "query", "params", "headers", "body", "host")


class Resp:
    __slots__ = ("status", "body", "ctype", "headers", "mode", "delay", "transport", "release", "note")

    def __init__(self, status, body=b"", ctype=JSON_CT, headers=(), mode=None, delay=None):
        self.status, self.body, self.ctype, self.headers = status, body, ctype, list(headers)
        self.mode, self.delay, self.transport, self.release, self.note = mode, delay, None, None, ""


def json_resp(status, obj, headers=()):
    return Resp(status, dumps(obj), JSON_CT, headers)


def html_resp(status, title, text, headers=()):
    page = ("<!DOCTYPE html>\n<html><head><title>%s</title></head><body><h1>%s</h1><p>%s</p></body></html>\n"
            % (title, title, text))
    return Resp(status, page.encode(), HTML_CT, headers)


_API_RE = re.compile(r"^/v3/company/([^/]+)/([A-Za-z]+)(?:/([^/]+))?/?$")


class App:
    def __init__(self, cfg, clock, store, oauth, stats, limiter, faults):
        self.cfg, self.clock, self.store, self.oauth = cfg, clock, store, oauth
        self.stats, self.limiter, self.faults = stats, limiter, faults
        self.rid_lock = threading.Lock()
        self.replay = {}  # (realm, requestid) -> (status, body, ctype, fingerprint, stored_at)
        self.rid_inflight = {}

    # ---- routing

    def classify(self, req):
        p = req.path
        if p == "/oauth2/v1/tokens/bearer":
            return "token", None, None
        if p == "/v2/oauth2/tokens/revoke":
            return "revoke", None, None
        if p == "/connect/oauth2":
            return "authorize", None, None
        if p == "/login":
            return "login", None, None
        m = _API_RE.match(p)
        if not m:
            return ("api.unknown", None, None) if p.startswith("/v3/") else ("notfound", None, None)
        realm, res, rid = m.group(1), m.group(2).lower(), m.group(3)
        if res in ("query", "cdc", "batch"):
            return res, realm, None
        if res not in RESOURCES:
            return "api.unknown", realm, None
        if req.method == "GET":
            return res + ".read", realm, rid
        if req.method != "POST":
            return "api.unknown", realm, None
        operation = req.params.get("operation", "").lower()
        include = req.params.get("include", "").lower().split(",")
        if operation == "delete":
            return res + ".delete", realm, rid
        if operation == "void" or "void" in include:
            return res + ".void", realm, rid
        try:
            body = json.loads(req.body or b"null")
        except ValueError:
            body = None
        if operation == "update" or (isinstance(body, dict) and body.get("Id") not in (None, "")):
            return res + ".update", realm, rid
        return res + ".create", realm, rid

    def handle(self, req):
        now = self.clock.now()
        if req.path.startswith("/_fake/"):
            with self.stats.lock:
                self.stats.control_requests += 1
            try:
                return self.control(req, now)
            except (ValueError, KeyError, TypeError, ArithmeticError) as e:
                return json_resp(400, {"ok": False, "error": "%s: %s" % (type(e).__name__, e)})
        op, realm, rid = self.classify(req)
        self.stats.request(op)
        if is_api(op):
            return self.api(req, op, realm, rid, now)
        return self._with_faults(req, op, now, lambda: self.oauth_side(req, op, now))

    def _with_faults(self, req, op, now, process):
        f = self.faults.take(op, GATEWAY_KINDS | TRANSPORT_KINDS)
        if f is not None:
            commit = f.get("commit", f["kind"] in TRANSPORT_KINDS)
            if f["kind"] in GATEWAY_KINDS and not commit:
                r = self._gateway_fault(f, op, req, now)
                r.note = "fault=" + f["kind"]
                return r
        resp = process()
        if f is not None:
            if f["kind"] in GATEWAY_KINDS:
                resp = self._gateway_fault(f, op, req, now)
                resp.note = "fault=%s(committed)" % f["kind"]
            else:
                resp.transport = f  # logged as transport=<kind>
        return resp

    def _gateway_fault(self, f, op, req, now):
        kind = f["kind"]
        extra = [("Retry-After", str(f["retry_after"]))] if f.get("retry_after") is not None else []
        if kind == "http500":
            if is_api(op):
                return json_resp(500, err_system().body(now))
            if op in ("token", "revoke"):
                return json_resp(500, {"error": "server_error", "error_description": "Internal Server Error"})
            return html_resp(500, "500 Internal Server Error", "Internal Server Error")
        if kind == "http503":
            return html_resp(503, "503 Service Temporarily Unavailable", "Service Temporarily Unavailable", extra)
        if kind in ("http429", "throttle"):
            status = int(f.get("status", 429))
            self.stats.inc("throttled", "fault")
            return Resp(status, throttle_xml(now, status), XML_CT, extra)
        if kind == "html":
            return html_resp(200, "QuickBooks Online is temporarily unavailable",
                             "We're sorry, something went wrong. Please try again later.")
        if kind == "redirect":
            loc = "http://%s/login?continue=%s" % (req.host or "127.0.0.1", urllib.parse.quote(req.path, safe=""))
            r = html_resp(302, "302 Found", "Redirecting to the sign-in page", [("Location", loc)])
            return r
        if kind == "hang":
            return Resp(0, mode="hang", delay=f.get("delay"))
        if kind == "auth_401":
            return json_resp(401, auth_fault_json(now, "Token expired: %s" % qbo_ts(now)))
        if kind == "xml_error":
            code = str(f.get("code", "100"))
            if code == "100":
                return Resp(401, xml_fault(now, "AuthenticationFault", "100", "General Authentication Error",
                                           "AuthenticationErrorGeneral: SRV-110-Authentication Failure , "
                                           "statusCode: 401"), XML_CT)
            if code == "3001":
                return Resp(429, throttle_xml(now), XML_CT, extra)
            if code == "10000":
                e = err_system()
                return Resp(500, xml_fault(now, "SystemFault", "10000", e.message, e.detail), XML_CT)
            return Resp(int(f.get("status", 400)),
                        xml_fault(now, f.get("type", "ValidationFault"), code, f.get("message", "Validation error"),
                                  f.get("detail", "")), XML_CT)
        raise AssertionError(kind)

    # ---- OAuth endpoints

    def _client_auth(self, req, form):
        auth = req.headers.get("Authorization") or ""
        cid = csec = None
        if auth[:6].lower() == "basic ":
            try:
                cid, csec = base64.b64decode(auth[6:].strip(), validate=True).decode().split(":", 1)
            except (ValueError, UnicodeDecodeError):
                cid = csec = None
        elif form is not None and form.get("client_id"):
            cid, csec = form.get("client_id"), form.get("client_secret") or ""
        if cid is None:
            return False
        return (hmac.compare_digest(cid.encode(), self.cfg.client_id.encode()) and
                hmac.compare_digest(csec.encode(), self.cfg.client_secret.encode()))

    def oauth_side(self, req, op, now):
        if op == "token":
            return self.token_endpoint(req, now)
        if op == "revoke":
            return self.revoke_endpoint(req, now)
        if op == "authorize":
            return self.authorize_endpoint(req, now)
        if op == "login":
            return html_resp(200, "Sign in - Intuit", "Sign in to continue to QuickBooks (fake login page).")
        return html_resp(404, "404 Not Found", "Not Found")

    def _token_resp(self, status, obj):
        return json_resp(status, obj, [("Cache-Control", "no-cache, no-store"), ("Pragma", "no-cache")])

    def token_endpoint(self, req, now):
        if req.method != "POST":
            return html_resp(405, "405 Not Allowed", "Method Not Allowed")
        ctype = (req.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        form = None
        if ctype == "application/x-www-form-urlencoded":
            form = {k: v[-1] for k, v in urllib.parse.parse_qs(req.body.decode("utf-8", "replace"),
                                                               keep_blank_values=True).items()}
        if not self._client_auth(req, form):
            self.stats.inc("token", "invalid_client")
            return json_resp(401, {"error": "invalid_client"},
                             [("WWW-Authenticate", 'Basic realm="oauth"'), ("Cache-Control", "no-cache, no-store")])
        if form is None:
            return self._token_resp(400, {"error": "invalid_request"})
        want_hard = (req.headers.get("x-include-refresh-token-hard-expires-in") or "").strip().lower() == "true"
        grant = form.get("grant_type")
        if grant == "refresh_token":
            rt = form.get("refresh_token")
            if not rt:
                return self._token_resp(400, {"error": "invalid_request"})
            f = self.faults.take("token", {"invalid_grant"})
            if f is not None:
                self.stats.token_log({"at": iso_utc(now), "grant": "refresh_token", "presented": sha12(rt),
                                      "result": "invalid_grant", "reason": "fault", "hard_header": want_hard})
                return self._token_resp(400, _invalid_grant_body(f.get("variant", "token_invalid")))
            body, why = self.oauth.refresh_grant(rt, now, want_hard)
            if body is None:
                return self._token_resp(400, _invalid_grant_body("incorrect"))
            return self._token_resp(200, body)
        if grant == "authorization_code":
            code = form.get("code")
            if not code:
                return self._token_resp(400, {"error": "invalid_request"})
            f = self.faults.take("token", {"invalid_grant"})
            if f is not None:
                return self._token_resp(400, _invalid_grant_body(f.get("variant", "token_invalid")))
            body, why = self.oauth.code_grant(code, form.get("redirect_uri"), now, want_hard)
            if body is None:
                return self._token_resp(400, {"error": "invalid_grant"})
            return self._token_resp(200, body)
        return self._token_resp(400, {"error": "unsupported_grant_type"})

    def revoke_endpoint(self, req, now):
        if req.method != "POST":
            return html_resp(405, "405 Not Allowed", "Method Not Allowed")
        ctype = (req.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        token = None
        form = None
        if ctype == "application/json":
            try:
                obj = json.loads(req.body or b"null")
                token = obj.get("token") if isinstance(obj, dict) else None
            except ValueError:
                token = None
        elif ctype == "application/x-www-form-urlencoded":
            form = {k: v[-1] for k, v in urllib.parse.parse_qs(req.body.decode("utf-8", "replace")).items()}
            token = form.get("token")
        if not self._client_auth(req, form):
            return json_resp(401, {"error": "invalid_client"}, [("WWW-Authenticate", 'Basic realm="oauth"')])
        if not token:
            return json_resp(400, {"error": "invalid_request"})
        found = self.oauth.revoke(token)
        self.stats.inc("token", "revoke.known" if found else "revoke.unknown")
        return Resp(200, b"", JSON_CT)

    def authorize_endpoint(self, req, now):
        p = req.params
        if p.get("client_id") != self.cfg.client_id:
            return html_resp(400, "Error", "invalid_client: unknown client_id")
        ru = p.get("redirect_uri")
        if not ru or (self.cfg.redirect_uris and ru not in self.cfg.redirect_uris):
            return html_resp(400, "Error", "invalid_request: redirect_uri is missing or not registered")
        state = p.get("state")
        if not state:
            return html_resp(400, "Error", "invalid_request: state is required")
        sep = "&" if "?" in ru else "?"

        def redirect(qs):
            return Resp(302, (ru + sep + qs + "\n").encode(), "text/plain;charset=UTF-8",
                        [("Location", ru + sep + qs)])
        st = "state=" + urllib.parse.quote(state, safe=":/")
        if p.get("response_type") != "code":
            return redirect("error=unsupported_response_type&" + st)
        scopes = (p.get("scope") or "").replace("+", " ").split()
        if not any(s.startswith("com.intuit.quickbooks.") for s in scopes):
            return redirect("error=invalid_scope&" + st)
        if self.faults.take("authorize", {"access_denied"}) is not None:
            return redirect("error=access_denied&" + st)
        code = self.oauth.mint_code(ru, " ".join(scopes), now)
        return redirect("code=%s&%s&realmId=%s" % (urllib.parse.quote(code, safe=""), st, self.cfg.realm_id))

    # ---- accounting API

    def api(self, req, op, realm, rid, now):
        if not self.limiter.enter(realm):
            self.stats.inc("throttled", "concurrent")
            r = Resp(429, throttle_xml(now), XML_CT)
            r.note = "throttled=concurrent"
            return r
        try:
            resp = self._with_faults(req, op, now, lambda: self._api_inner(req, op, realm, rid, now))
        except BaseException:
            self.limiter.leave(realm)
            raise
        resp.release = lambda: self.limiter.leave(realm)
        return resp

    def _api_inner(self, req, op, realm, rid, now):
        auth = req.headers.get("Authorization") or ""
        token = auth[7:].strip() if auth[:7].lower() == "bearer " else None
        app_id, err = self.oauth.check_access(token, realm, now)
        if err is not None:
            self.stats.inc("api", "unauthorized")
            return json_resp(err[0], auth_fault_json(now, err[1], err[0]))
        why = self.limiter.admit(realm, app_id, batch=(op == "batch"))
        if why:
            self.stats.inc("throttled", why)
            r = Resp(429, throttle_xml(now), XML_CT)
            r.note = "throttled=" + why
            return r
        self.stats.inc("minorversion", req.params.get("minorversion", "none"))
        if "json" not in (req.headers.get("Accept") or "").lower():
            self.stats.inc("api", "no_accept_json")
        if req.method == "POST" and op != "query" and not (req.headers.get("Content-Type") or "").lower().startswith(
                "application/json"):
            self.stats.inc("api", "post_not_json_content_type")
        requestid = req.params.get("requestid")
        if requestid is None:
            if req.method == "POST" and op not in ("query",):
                self.stats.inc("no_requestid", op)
            return self._service(req, op, realm, rid, now, None)
        if requestid == "" or len(requestid) > 50:
            return json_resp(400, err_2050("requestid", 50).body(now))
        return self._idempotent(req, op, realm, rid, now, requestid)

    def _fingerprint(self, req):
        params = sorted((k, v) for k, v in req.params.items() if k != "requestid")
        return hashlib.sha256(("%s %s %r\n" % (req.method, req.path, params)).encode() + req.body).hexdigest()

    def _idempotent(self, req, op, realm, rid, now, requestid):
        key = (realm, requestid)
        fp = self._fingerprint(req)
        while True:
            with self.rid_lock:
                hit = self.replay.get(key)
                if hit is not None and self.cfg.requestid_retention and now - hit[4] > self.cfg.requestid_retention:
                    del self.replay[key]
                    hit = None
                if hit is not None and hit[3] != fp and self.cfg.strict_requestid:
                    # The reference's other reading (a third-party list's code 600 "Duplicate Request ID"): the
                    # same requestid with another request is refused, not replayed.
                    self.stats.inc("api", "requestid_conflicts")
                    return json_resp(400, err_600(requestid).body(now))
                if hit is not None:
                    self.stats.inc("api", "replays")
                    if hit[3] != fp:
                        self.stats.inc("api", "replay_body_mismatch")
                    r = Resp(hit[0], hit[1], hit[2], [("QBO-Version", QBO_VERSION)])
                    r.note = "replay" + ("(mismatch)" if hit[3] != fp else "")
                    return r
                ev = self.rid_inflight.get(key)
                if ev is None:
                    ev = self.rid_inflight[key] = threading.Event()
                    break
            ev.wait(130)
        try:
            resp = self._service(req, op, realm, rid, now, requestid)
            # Service answers (successes and validation faults) are remembered; 5xx means nothing was done.
            if resp.status < 500:
                with self.rid_lock:
                    self.replay[key] = (resp.status, resp.body, resp.ctype, fp, now)
            return resp
        finally:
            with self.rid_lock:
                self.rid_inflight.pop(key, None)
            ev.set()

    def _json_body(self, req):
        try:
            body = json.loads((req.body or b"").decode("utf-8"), parse_float=Decimal)
        except (ValueError, UnicodeDecodeError):
            raise err_bad_json()
        if not isinstance(body, dict):
            raise err_bad_json()
        return body

    def _service(self, req, op, realm, rid, now, requestid):
        def fx(kind):
            return self.faults.take(op, {kind})
        try:
            with self.store.lock:
                obj = self._dispatch(req, op, realm, rid, now, requestid, fx)
            r = json_resp(200, obj, [("QBO-Version", QBO_VERSION)])
        except QBOError as e:
            r = json_resp(e.status, e.body(now), [("QBO-Version", QBO_VERSION)])
            r.note = "fault-code=" + e.code
        return r

    def _dispatch(self, req, op, realm, rid, now, requestid, fx):
        st = self.store
        if realm != self.cfg.realm_id:
            raise err_610()
        if op == "api.unknown":
            if req.method not in ("GET", "POST"):
                raise err_unsupported("No resource method found for %s, return 405 with Allow header"
                                      % req.method)
            raise err_unsupported("Could not find resource for relative : %s of full path: %s"
                                  % (req.path, "https://quickbooks.api.intuit.com" + req.path))
        if op == "query":
            if req.method == "POST" and not req.params.get("query"):
                text = req.body.decode("utf-8", "replace")
            else:
                text = req.params.get("query", "")
            return st.run_query(text, now)
        if op == "cdc":
            return st.cdc(req.params.get("entities"), req.params.get("changedsince"), now)
        if op == "batch":
            return self._batch(req, now, fx)
        res, action = op.split(".")
        etype = RESOURCES[res]
        if action == "read":
            if not rid:
                raise err_unsupported("No resource method found for GET, return 405 with Allow header")
            return {etype: st.read(etype, rid), "time": qbo_ts(now, ms=True)}
        body = self._json_body(req)
        include = set(req.params.get("include", "").lower().split(","))
        ent = self._write(etype, action, body, now, include, requestid, fx)
        return {etype: ent, "time": qbo_ts(now, ms=True)}

    def _write(self, etype, action, body, now, include, requestid, fx, origin="api"):
        st = self.store
        if etype == "Invoice":
            if action == "create":
                return st.create_invoice(body, now, include, origin, requestid, fx)
            if action == "update":
                return st.update_invoice(body, now, include, fx)
            if action == "delete":
                return st.delete_invoice(body, now, fx)
            if action == "void":
                return st.void_invoice(body, now, fx)
        elif etype == "Payment":
            if action == "create":
                return st.create_payment(body, now, origin, fx)
            if action == "update":
                return st.update_payment(body, now, fx)
            if action == "delete":
                return st.delete_payment(body, now, fx)
            if action == "void":
                return st.void_payment(body, now, fx)
        elif etype == "Customer":
            if action == "create":
                return st.create_customer(body, now, origin, fx)
            if action == "update":
                return st.update_customer(body, now, fx)
        raise err_unsupported("%s is not supported for %s" % (action, etype))

    def _batch(self, req, now, fx):
        body = self._json_body(req)
        items = body.get("BatchItemRequest")
        if not isinstance(items, list) or not items:
            raise err_2020("BatchItemRequest")
        if len(items) > 30:
            raise err_2010("BatchItemRequest exceeds the maximum of 30 items specified is unsupported or invalid")
        out = []
        for it in items:
            bid = it.get("bId") if isinstance(it, dict) else None
            r = {"bId": bid}
            try:
                if not isinstance(it, dict):
                    raise err_bad_json()
                if "Query" in it:
                    r["QueryResponse"] = self.store.run_query(it["Query"], now)["QueryResponse"]
                else:
                    etype = next((k for k in ("Invoice", "Payment", "Customer") if k in it), None)
                    if etype is None or not isinstance(it[etype], dict):
                        raise err_bad_json()
                    operation = (it.get("operation") or "create").lower()
                    if operation == "create" and it[etype].get("Id") not in (None, ""):
                        operation = "update"
                    if operation not in ("create", "update", "delete"):
                        raise err_unsupported(operation)
                    r[etype] = self._write(etype, operation, it[etype], now, set(), None, fx)
            except QBOError as e:
                f = e.body(now)["Fault"]
                r["Fault"] = {"type": f["type"], "Error": f["Error"]}
            out.append(r)
        return {"BatchItemResponse": out, "time": qbo_ts(now, ms=True)}

    # ---- control plane

    def control(self, req, now):
        p, m = req.path, req.method
        if p == "/_fake/stats" and m == "GET":
            v = self.stats.view()
            v["cdc_truncated"] = self.store.cdc_truncated
            v["limits"] = {"enforced": self.cfg.enforce_limits, "per_minute": self.cfg.limit_per_minute,
                           "per_second": self.cfg.limit_per_second, "concurrent": self.cfg.limit_concurrent}
            return json_resp(200, v)
        if p == "/_fake/stats/reset" and m == "POST":
            self.stats.reset()
            self.store.cdc_truncated = 0
            return json_resp(200, {"ok": True})
        if p == "/_fake/fault" and m == "POST":
            return json_resp(200, {"ok": True, "id": self.faults.arm(_control_json(req))})
        if p == "/_fake/fault" and m == "GET":
            return json_resp(200, {"armed": self.faults.list(), "spent": self.faults.list_spent()})
        if p == "/_fake/fault/clear" and m == "POST":
            return json_resp(200, {"ok": True, "cleared": self.faults.clear()})
        if p == "/_fake/clock":
            if m == "POST":
                spec = _control_json(req)
                if "now" in spec:
                    t = parse_ts(spec["now"])
                    if t is None:
                        raise ValueError("bad time %r" % spec["now"])
                    self.clock.set(t)
                if "advance" in spec:
                    self.clock.advance(float(spec["advance"]))
                if "freeze" in spec:
                    self.clock.freeze(bool(spec["freeze"]))
            t = self.clock.now()
            return json_resp(200, {"now": iso_utc(t), "qbo_time": qbo_ts(t, ms=True), "epoch": t})
        if p == "/_fake/mutate" and m == "POST":
            spec = _control_json(req)
            specs = spec if isinstance(spec, list) else [spec]
            results = []
            for s in specs:
                try:
                    with self.store.lock:
                        results.append(self.mutate(s, now))
                except QBOError as e:
                    return json_resp(400, {"ok": False, "error": e.detail, "code": e.code, "done": results})
            return json_resp(200, results[0] if not isinstance(spec, list) else {"ok": True, "results": results})
        if p == "/_fake/dump" and m == "GET":
            body = json.dumps(self.store.dump_view(self.cfg.realm_id, now), sort_keys=True, separators=(",", ":"),
                              ensure_ascii=False).encode()
            return Resp(200, body, JSON_CT)
        if p == "/_fake/ledger" and m == "GET":
            return json_resp(200, self.store.ledger_view(self.cfg.realm_id))
        if p == "/_fake/authorize" and m == "POST":
            spec = _control_json(req) if req.body else {}
            ru = spec.get("redirect_uri")
            state = spec.get("state", "")
            code = self.oauth.mint_code(ru, spec.get("scope", "com.intuit.quickbooks.accounting"), now)
            out = {"code": code, "realmId": self.cfg.realm_id, "state": state, "redirect_uri": ru}
            if ru:
                out["url"] = "%s%scode=%s&state=%s&realmId=%s" % (
                    ru, "&" if "?" in ru else "?", urllib.parse.quote(code, safe=""),
                    urllib.parse.quote(state, safe=":/"), self.cfg.realm_id)
            return json_resp(200, out)
        if p == "/_fake/tokens" and m == "GET":
            return json_resp(200, self.oauth.view(now))
        return json_resp(404, {"ok": False, "error": "no such control endpoint %s %s" % (m, p)})

    def _find_invoice(self, spec):
        st = self.store
        if spec.get("invoice_id") is not None:
            rec = st.recs["Invoice"].get(str(spec["invoice_id"]))
            if rec is None:
                raise ValueError("no live invoice with Id %s" % spec["invoice_id"])
            return rec
        doc = spec.get("doc_number")
        if doc is None:
            raise ValueError("invoice_id or doc_number required")
        ids = [i for i in st.doc_idx.get(str(doc).lower(), ()) if st.recs["Invoice"][i].ent["DocNumber"] == str(doc)]
        if len(ids) != 1:
            raise ValueError("%d live invoices with DocNumber %s" % (len(ids), doc))
        return st.recs["Invoice"][ids[0]]

    def _find_customer(self, spec):
        st = self.store
        if spec.get("customer_id") is not None:
            rec = st.recs["Customer"].get(str(spec["customer_id"]))
        elif spec.get("customer_name") is not None:
            cid = st.name_idx.get(str(spec["customer_name"]).lower())
            rec = st.recs["Customer"].get(cid) if cid else None
            if rec is None and spec.get("create_customer", True):
                return st.create_customer({"DisplayName": spec["customer_name"]}, self.clock.now(), "mutate")["Id"]
        else:
            raise ValueError("customer_id or customer_name required")
        if rec is None:
            raise ValueError("no such customer")
        return rec.id

    def mutate(self, spec, now):
        st = self.store
        a = spec.get("action")
        if a == "payment":
            inv = self._find_invoice(spec)
            amt = spec.get("amount")
            amt = q2(Decimal(str(amt))) if amt is not None else dec_of(inv.ent["Balance"])
            pay = st.create_payment({"CustomerRef": {"value": inv.ent["CustomerRef"]["value"]}, "TotalAmt": amt,
                                     "TxnDate": spec.get("txn_date"),
                                     "Line": [{"Amount": amt, "LinkedTxn": [{"TxnId": inv.id, "TxnType": "Invoice"}]}]},
                                    now, origin="mutate")
            return {"ok": True, "Payment": pay, "Invoice": st.recs["Invoice"][inv.id].ent}
        if a in ("delete_invoice", "void_invoice"):
            inv = self._find_invoice(spec)
            body = {"Id": inv.id, "SyncToken": inv.ent["SyncToken"]}
            if a == "delete_invoice":
                return {"ok": True, "Invoice": st.delete_invoice(body, now)}
            return {"ok": True, "Invoice": st.void_invoice(body, now)}
        if a in ("edit_invoice", "touch_invoice"):
            inv = self._find_invoice(spec)
            if a == "touch_invoice":
                st._bump(inv, now)
                return {"ok": True, "Invoice": inv.ent}
            body = {"Id": inv.id, "SyncToken": inv.ent["SyncToken"], "sparse": True}
            body.update(spec.get("fields") or {})
            if spec.get("lines") is not None:
                body["Line"] = spec["lines"]
            if spec.get("amount") is not None:
                body["Line"] = _lines_for_total(inv.ent["Line"], q2(Decimal(str(spec["amount"]))))
            return {"ok": True, "Invoice": st.update_invoice(body, now, {"allowduplicatedocnum"})}
        if a == "create_invoice":
            cid = self._find_customer(spec)
            lines = spec.get("lines") or [
                {"Amount": spec.get("amount", 100), "DetailType": "SalesItemLineDetail",
                 "Description": spec.get("description", "Created in QuickBooks"),
                 "SalesItemLineDetail": {"ItemRef": {"value": str(spec.get("item_id", "1"))}}}]
            body = {"CustomerRef": {"value": cid}, "Line": lines}
            for k, dst in (("doc_number", "DocNumber"), ("txn_date", "TxnDate"), ("due_date", "DueDate"),
                           ("private_note", "PrivateNote")):
                if spec.get(k) is not None:
                    body[dst] = spec[k]
            inc = {"allowduplicatedocnum"} if spec.get("allow_duplicate") else set()
            return {"ok": True, "Invoice": st.create_invoice(body, now, inc, origin="mutate")}
        if a == "create_customer":
            body = dict(spec.get("fields") or {})
            if spec.get("display_name") is not None:
                body["DisplayName"] = spec["display_name"]
            return {"ok": True, "Customer": st.create_customer(body, now, origin="mutate")}
        if a in ("deactivate_customer", "edit_customer"):
            rec = st.recs["Customer"].get(self._find_customer(dict(spec, create_customer=False)))
            body = {"Id": rec.id, "SyncToken": rec.ent["SyncToken"], "sparse": True}
            body.update(spec.get("fields") or {})
            if a == "deactivate_customer":
                body["Active"] = False
            ent = st.update_customer(body, now)
            if a == "deactivate_customer" and spec.get("keep_name"):
                # Inactive but still holding its name (as seen on real companies): a create of that name is 6240,
                # and a query finds it only when it names Active.
                name = ent["DisplayName"][:-len(" (deleted)")]
                if name.lower() in st.name_idx:
                    raise ValueError("another customer has the name %r now" % name)
                del st.name_idx[ent["DisplayName"].lower()]
                st.name_idx[name.lower()] = rec.id
                ent.update(DisplayName=name, FullyQualifiedName=name)
            return {"ok": True, "Customer": ent}
        if a in ("delete_payment", "void_payment"):
            rec = st.recs["Payment"].get(str(spec.get("payment_id")))
            if rec is None:
                raise ValueError("no live payment with Id %s" % spec.get("payment_id"))
            body = {"Id": rec.id, "SyncToken": rec.ent["SyncToken"]}
            fn = st.delete_payment if a == "delete_payment" else st.void_payment
            return {"ok": True, "Payment": fn(body, now)}
        if a == "revoke":
            return {"ok": True, "revoked": self.oauth.revoke_current()}
        if a == "expire_access_tokens":
            self.oauth.expire_access(now)
            return {"ok": True}
        raise ValueError("unknown mutate action %r" % a)


def _lines_for_total(lines, amount):
    """Change the last sales line so the invoice totals `amount` (what a person editing the amount does)."""
    lines = [dict(l) for l in lines if l["DetailType"] != "SubTotalLineDetail"]
    sales = [l for l in lines if l["DetailType"] == "SalesItemLineDetail"]
    cur = sum((dec_of(l["Amount"]) for l in sales), ZERO)
    last = sales[-1]
    new_amt = dec_of(last["Amount"]) + (amount - cur)
    det = dict(last["SalesItemLineDetail"])
    if "Qty" in det or "UnitPrice" in det:
        det["Qty"], det["UnitPrice"] = 1, float(new_amt)
    last["Amount"] = float(new_amt)
    last["SalesItemLineDetail"] = det
    return lines


def _invalid_grant_body(variant):
    if variant == "bare":
        return {"error": "invalid_grant"}
    if variant == "incorrect":
        return {"error": "invalid_grant", "error_description": "Incorrect or invalid refresh token"}
    return {"error_description": "Token invalid", "error": "invalid_grant"}


def _control_json(req):
    try:
        return json.loads(req.body or b"{}")
    except ValueError as e:
        raise ValueError("control body is not JSON: %s" % e)


# --------------------------------------------------------------------------------------------------------------
# HTTP layer. Whole responses go out in one write with TCP_NODELAY so keep-alive clients never wait on a
# delayed ACK; transport faults (slow, drip, truncate, reset, lost_response, hang) are applied here.

MAX_BODY = 20 * 1024 * 1024


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "nginx"
    sys_version = ""

    def setup(self):
        super().setup()
        try:
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass

    def log_message(self, fmt, *args):
        pass

    def do_GET(self):
        self._serve()

    do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = do_GET

    def _read_body(self):
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks, total = [], 0
            while True:
                line = self.rfile.readline(1024)
                size = int(line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                        pass
                    break
                total += size
                if total > MAX_BODY:
                    raise ValueError("body too large")
                chunks.append(self.rfile.read(size))
                self.rfile.readline(1024)
            return b"".join(chunks)
        n = int(self.headers.get("Content-Length") or 0)
        if n < 0 or n > MAX_BODY:
            raise ValueError("bad Content-Length")
        return self.rfile.read(n) if n else b""

    def _serve(self):
        t0 = time.monotonic()
        app = self.server.app
        resp = None
        tid = str(uuid.uuid4())  # intuit_tid values look like 1a732480-81e6-5f1d-e630-a6b25891a3d7
        try:
            try:
                body = self._read_body()
            except ValueError as e:
                self.close_connection = True
                resp = html_resp(400, "400 Bad Request", str(e))
                self._deliver(resp, tid)
                return
            split = urllib.parse.urlsplit(self.path)
            req = Req()
            req.method, req.path, req.query = self.command, split.path, split.query
            req.params = {k.lower(): v[-1] for k, v in
                          urllib.parse.parse_qs(split.query, keep_blank_values=True).items()}
            req.headers, req.body, req.host = self.headers, body, self.headers.get("Host")
            resp = app.handle(req)
            self._deliver(resp, tid)
        except (BrokenPipeError, ConnectionResetError, socket.timeout):
            self.close_connection = True
        except Exception as e:  # never let a bug kill the connection thread silently
            self.close_connection = True
            sys.stderr.write("fake_qbo: internal error: %r\n" % (e,))
            import traceback
            traceback.print_exc()
            try:
                self._send_all(self._head(500, "text/plain", 15, tid, []) + b"internal error\n")
            except OSError:
                pass
        finally:
            if resp is not None and resp.release is not None:
                resp.release()
            self._log(resp, tid, t0)

    def _log(self, resp, tid, t0):
        path = self.path
        if not path.startswith(("/v3/", "/_fake/")):
            path = path.split("?", 1)[0]  # OAuth query strings may carry codes; keep them out of the log
        status = resp.status if resp is not None else 0
        if resp is not None and resp.mode == "hang":
            status = "hang"
        size = len(resp.body) if resp is not None else 0
        note = resp.note if resp is not None else ""
        if resp is not None and resp.transport:
            note = (note + " transport=" + resp.transport["kind"]).strip()
        sys.stderr.write('%s %s "%s %s" %s %d %.1fms tid=%s %s\n' % (
            time.strftime("%H:%M:%S"), self.client_address[0], self.command, path, status, size,
            (time.monotonic() - t0) * 1000, tid, note))
        if resp is not None and isinstance(status, int) and not path.startswith("/_fake/"):
            self.server.app.stats.inc("by_status", str(status))

    def _head(self, status, ctype, length, tid, headers):
        reason = http.server.BaseHTTPRequestHandler.responses.get(status, ("",))[0]
        date = email.utils.formatdate(self.server.app.clock.now(), usegmt=True)
        lines = ["HTTP/1.1 %d %s" % (status, reason), "Date: " + date,
                 "Server: nginx", "Content-Type: " + ctype, "Content-Length: %d" % length, "intuit_tid: " + tid]
        lines += ["%s: %s" % kv for kv in headers]
        lines.append("Connection: close" if self.close_connection else "Connection: keep-alive")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    def _send_all(self, data):
        self.connection.sendall(data)

    def _abort(self, rst):
        self.close_connection = True
        try:
            if rst:
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            else:
                self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        try:
            self.connection.close()
        except OSError:
            pass

    def _hang(self, delay):
        self.close_connection = True
        deadline = time.monotonic() + float(delay) if delay else None
        sock = self.connection
        while not self.server.stopping.is_set():
            if deadline is not None and time.monotonic() >= deadline:
                break
            r, _, _ = select.select([sock], [], [], 0.2)
            if r:
                try:
                    if not sock.recv(1, socket.MSG_PEEK):
                        break  # client gave up
                except OSError:
                    break
                time.sleep(0.2)
        self._abort(False)

    def _deliver(self, resp, tid):
        if resp.mode == "hang":
            self._hang(resp.delay)
            return
        f = resp.transport
        kind = f["kind"] if f else None
        body = resp.body if self.command != "HEAD" else b""
        if kind == "malformed":
            body = _mangle(body)
        if kind in ("truncate", "reset", "lost_response"):
            self.close_connection = True
        head = self._head(resp.status, resp.ctype, len(body), tid, resp.headers)
        if kind == "lost_response":
            self._abort(bool(f.get("reset", False)))
            return
        if kind == "slow":
            time.sleep(float(f.get("delay", 5)))
        if kind == "drip":
            interval = float(f.get("interval", 0.1))
            self._send_all(head)
            for i in range(len(body)):
                if self.server.stopping.is_set():
                    break
                self._send_all(body[i:i + 1])
                time.sleep(interval)
            return
        if kind in ("truncate", "reset"):
            self._send_all(head + body[:len(body) // 2])
            self._abort(kind == "reset")
            return
        self._send_all(head + body)


def _mangle(body):
    if not body:
        return b"{\"Fault\":"
    cut = body[:max(1, len(body) * 2 // 3)]
    return cut + b"\x00<!-- unexpected end of data ,}"


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256


# --------------------------------------------------------------------------------------------------------------


def _write_atomic(path, data, mode=0o600):
    tmp = path + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def build_parser():
    ap = argparse.ArgumentParser(description="Fake Intuit OAuth2 + QuickBooks Online Accounting API v3 server.")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--scale", choices=("small", "full"), default="small")
    ap.add_argument("--realm-id", default="9341453908059321")
    ap.add_argument("--client-id", default="ABfakeQBOclient0000000000000000000000000000000000")
    ap.add_argument("--client-secret-file", help="file holding the client secret (default secret: fake-client-secret)")
    ap.add_argument("--refresh-token-file", help="initial refresh token; generated and written here if absent")
    ap.add_argument("--token-state-file", help="write the initial token state (JSON) here for seeding a client")
    ap.add_argument("--access-token-lifetime", type=int, default=3600)
    ap.add_argument("--refresh-token-lifetime", type=int, default=8726400, help="rolling life, seconds")
    ap.add_argument("--refresh-hard-lifetime", type=int, default=5 * 365 * DAY,
                    help="seconds from chain creation to the hard (5-year) cap")
    ap.add_argument("--refresh-token-age", type=int, default=0,
                    help="pretend the initial refresh-token value was issued this many seconds ago")
    ap.add_argument("--rotate", choices=("daily", "always"), default="daily",
                    help="new refresh-token value on the first refresh after 24 h (daily) or on every refresh")
    ap.add_argument("--reuse-revokes-chain", action="store_true",
                    help="presenting a superseded refresh token revokes the whole chain")
    ap.add_argument("--code-reuse-revokes", action="store_true",
                    help="a second exchange of a code also revokes the tokens issued from it")
    ap.add_argument("--auth-code-lifetime", type=int, default=600)
    ap.add_argument("--redirect-uri", action="append", default=[], help="registered redirect URI (repeatable)")
    ap.add_argument("--enforce-limits", action=argparse.BooleanOptionalAction, default=True)
    ap.add_argument("--limit-per-minute", type=int, default=500)
    ap.add_argument("--limit-per-second", type=int, default=10)
    ap.add_argument("--limit-concurrent", type=int, default=10)
    ap.add_argument("--allow-duplicate-docnumbers", action="store_true",
                    help="company does not check DocNumber duplicates (no 6140)")
    ap.add_argument("--cdc-max-objects", type=int, default=1000)
    ap.add_argument("--cdc-lookback-days", type=int, default=30)
    ap.add_argument("--requestid-retention", type=float, default=0,
                    help="seconds (fake clock) a requestid is remembered; 0 = forever")
    ap.add_argument("--strict-requestid", action="store_true",
                    help="a requestid sent again with a different request gets 400 code 600 (not a replay)")
    ap.add_argument("--now", help="initial fake time, ISO 8601 (default: real time)")
    ap.add_argument("--currency", default="USD")
    return ap


def make_app(args):
    cfg = argparse.Namespace(
        realm_id=args.realm_id, client_id=args.client_id, access_lifetime=args.access_token_lifetime,
        refresh_lifetime=args.refresh_token_lifetime, hard_lifetime=args.refresh_hard_lifetime,
        rotate=args.rotate, reuse_revokes_chain=args.reuse_revokes_chain, code_reuse_revokes=args.code_reuse_revokes,
        code_lifetime=args.auth_code_lifetime, redirect_uris=set(args.redirect_uri),
        enforce_limits=args.enforce_limits, limit_per_minute=args.limit_per_minute,
        limit_per_second=args.limit_per_second, limit_concurrent=args.limit_concurrent,
        dup_check=not args.allow_duplicate_docnumbers, cdc_max=args.cdc_max_objects,
        cdc_lookback_days=args.cdc_lookback_days, requestid_retention=args.requestid_retention,
        strict_requestid=args.strict_requestid,
        currency=args.currency)
    if args.client_secret_file:
        with open(args.client_secret_file) as fh:
            cfg.client_secret = fh.read().strip()
    else:
        cfg.client_secret = "fake-client-secret"
    start = None
    if args.now:
        start = parse_ts(args.now)
        if start is None:
            raise SystemExit("fake_qbo: bad --now %r" % args.now)
    clock = Clock(start)
    stats = Stats()
    store = Store(cfg)
    store.seed(args.scale, args.seed, clock.now())
    oauth = OAuth(cfg, stats)
    rt = None
    if args.refresh_token_file and os.path.exists(args.refresh_token_file):
        with open(args.refresh_token_file) as fh:
            rt = fh.read().strip() or None
    now = clock.now()
    ch, rt, at = oauth.new_chain(now, "initial", refresh_token=rt, age=args.refresh_token_age)
    if args.refresh_token_file and not (os.path.exists(args.refresh_token_file) and
                                        os.path.getsize(args.refresh_token_file)):
        _write_atomic(args.refresh_token_file, rt + "\n")
    if args.token_state_file:
        state = oauth.token_body(ch, rt, at, now, True)
        state.update(realm_id=cfg.realm_id, client_id=cfg.client_id, obtained_at=iso_utc(now),
                     access_token_expires_at=iso_utc(now + cfg.access_lifetime),
                     refresh_token_expires_at=iso_utc(ch.rolling_exp),
                     refresh_token_hard_expires_at=iso_utc(ch.hard_deadline))
        _write_atomic(args.token_state_file, json.dumps(state, indent=2) + "\n")
    return App(cfg, clock, store, oauth, stats, Limiter(cfg, stats), Faults(stats))


def main(argv=None):
    args = build_parser().parse_args(argv)
    app = make_app(args)
    server = Server(("127.0.0.1", args.port), Handler)
    server.app = app
    server.stopping = threading.Event()
    port = server.server_address[1]

    def stop(signum, frame):
        server.stopping.set()
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    if args.port_file:
        _write_atomic(args.port_file, "%d\n" % port, 0o644)
    sys.stderr.write("fake_qbo: listening on 127.0.0.1:%d realm=%s scale=%s limits=%s (tokens never logged)\n"
                     % (port, args.realm_id, args.scale, "on" if args.enforce_limits else "off"))
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.stopping.set()
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
