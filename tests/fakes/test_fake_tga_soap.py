#!/usr/bin/python3
"""Tests of fake_tga_soap.py (and tga_register.py) over raw HTTP, at scale small.

Run: /usr/bin/python3 tests/fakes/test_fake_tga_soap.py   (exits non-zero on failure; a few seconds)

Element order is checked against the real V1 contract in ../../../shared/samples/tga/.../*.xsd, extended with the
later derived types as the CXF stubs regenerated from the live WSDL define them (reference source [S2]); the table
DERIVED below is transcribed from those stubs, not taken from the fake, so the two are checked against each other.
"""

import http.client
import json
import os
import socket
import sys
import tempfile
import time
import unittest
import xml.etree.ElementTree as ET

import fakeproc

HERE = os.path.dirname(os.path.abspath(__file__))
FAKE = os.path.join(HERE, "fake_tga_soap.py")
XSD_DIR = os.path.normpath(os.path.join(HERE, "..", "..", "..", "shared", "samples", "tga", "ishgroup-oncourse-2011",
                                        "production"))
VERSION = 13
NS = "http://training.gov.au/services/%d/" % VERSION
NS_S = "http://schemas.xmlsoap.org/soap/envelope/"
NS_I = "http://www.w3.org/2001/XMLSchema-instance"
NS_SYS = "http://schemas.datacontract.org/2004/07/System"
NS_WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
PW_TEXT = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0#PasswordText"
XS = "{http://www.w3.org/2001/XMLSchema}"
USER, PASSWORD = "tester", "s3cret&<pw>"

# type -> (base type, fields added by the derived type), from the [S2] stubs (TrainingComponent4 is the fake's name
# for the type carrying CurrencyStatus, see the README).
DERIVED = {
    "TrainingComponentSummary2": ("TrainingComponentSummary", ["IsLegacyData"]),
    "TrainingComponentSummary3": ("TrainingComponentSummary2", ["CurrencyStatus"]),
    "TrainingComponent2": ("TrainingComponent", ["IsLegacyData"]),
    "TrainingComponent3": ("TrainingComponent2", []),
    "TrainingComponent4": ("TrainingComponent3", ["CurrencyStatus"]),
    "Release3": ("Release", []),
    "Release4": ("Release3", ["CompanionVolumeLinks"]),
    "UnitGridEntry3": ("UnitGridEntry", ["IsEssential"]),
    "NrtCurrencyPeriod2": ("NrtCurrencyPeriod", ["EndComment", "EndReasonCode"]),
    "Organisation2": ("Organisation", ["IsLegacyData"]),
    "Rto3": ("Organisation2", ["Classifications", "DeliveryNotifications", "RegistrationManagers",
                               "RegistrationPeriods", "RegistrationStatus", "Restrictions", "Scopes"]),
    "Scope2": ("Scope", ["ScopeDecisionType"]),
    "RtoRestriction2": ("RtoRestriction", ["RestrictionTypeCode"]),
    "OrganisationSearchResultItem2": ("OrganisationSearchResultItem", ["IsLegacyData"]),
    "OrganisationSearchResultItem3": ("OrganisationSearchResultItem2", ["RegistrationStatus"]),
}


def xsd_sequences(filename):
    """complexType name -> ordered element names, base type's first (xs:extension)."""
    root = ET.parse(os.path.join(XSD_DIR, filename)).getroot()
    raw = {}
    for ct in root.findall(XS + "complexType"):
        ext = ct.find(".//" + XS + "extension")
        base = ext.get("base").split(":")[-1] if ext is not None else None
        raw[ct.get("name")] = (base, [e.get("name") for e in ct.iter(XS + "element")])
    raw.update(DERIVED)

    def seq(name):
        base, own = raw[name]
        return (seq(base) if base and base in raw else []) + list(own)
    return {name: seq(name) for name in raw}


TC_SEQ = xsd_sequences("TrainingComponentService.xsd")
ORG_SEQ = xsd_sequences("OrganisationService.xsd")


def envelope(op, inner, user=USER, password=PASSWORD, ns=NS, pw_type=PW_TEXT, security=True):
    sec = ""
    if security:
        sec = ('<soapenv:Header><wsse:Security soapenv:mustUnderstand="1" xmlns:wsse="%s"><wsse:UsernameToken>'
               '<wsse:Username>%s</wsse:Username><wsse:Password Type="%s">%s</wsse:Password></wsse:UsernameToken>'
               '</wsse:Security></soapenv:Header>' % (NS_WSSE, esc(user), pw_type, esc(password)))
    return ('<soapenv:Envelope xmlns:soapenv="%s">%s<soapenv:Body><%s xmlns="%s" xmlns:s="%s">%s</%s>'
            '</soapenv:Body></soapenv:Envelope>' % (NS_S, sec, op, ns, NS_SYS, inner, op)).encode()


def esc(s):
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def dto(name, when, offset=0):
    return "<%s><s:DateTime>%s</s:DateTime><s:OffsetMinutes>%d</s:OffsetMinutes></%s>" % (name, when, offset, name)


def q(name):
    return "{%s}%s" % (NS, name)


def local(tag):
    return tag.rsplit("}", 1)[-1]


class FakeServer(fakeproc.ControlClient):
    def __init__(self, *extra):
        self.dir = tempfile.mkdtemp(prefix="fake-tga-test-")
        self.port_file = os.path.join(self.dir, "port")
        pwfile = os.path.join(self.dir, "pw")
        with open(pwfile, "w") as f:
            f.write(PASSWORD + "\n")
        self.log = open(os.path.join(self.dir, "log"), "w+")
        self.proc, self.port = fakeproc.launch([sys.executable, FAKE, "--port", "0", "--port-file", self.port_file,
                                                "--scale", "small", "--username", USER, "--password-file", pwfile,
                                                "--max-page-size", "100"] + list(extra), self.port_file, self.log, 20)

    def stop(self):
        fakeproc.terminate(self.proc)
        self.log.close()

    def http(self, method, path, body=None, headers=None, timeout=10):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            c.request(method, path, body, headers or {})
            r = c.getresponse()
            return r.status, dict((k.lower(), v) for k, v in r.getheaders()), r.read()
        finally:
            c.close()

    def soap(self, service, op, inner, action=None, ctype="text/xml; charset=utf-8", path=None, timeout=10,
             quoted=True, **kw):
        svc = {"Training": "TrainingComponentService", "Organisation": "OrganisationService"}[service]
        headers = {"Content-Type": ctype}
        act = action if action is not None else "%sI%s/%s" % (NS, svc, op)
        if act is not False:
            headers["SOAPAction"] = '"%s"' % act if quoted else act
        path = path or "/Deewr.Tga.Webservices/%sV%d.svc/%s" % (svc, VERSION, service)
        return self.http("POST", path, envelope(op, inner, **kw), headers, timeout)

    def call(self, service, op, inner, **kw):
        """A successful call: returns the <{op}Result> element (or None when absent)."""
        st, h, body = self.soap(service, op, inner, **kw)
        assert st == 200, (st, body[:2000])
        assert h["content-type"].startswith("text/xml"), h
        root = ET.fromstring(body)
        return root.find("{%s}Body/%s/%s" % (NS_S, q(op + "Response"), q(op + "Result")))


def fault_of(body):
    root = ET.fromstring(body)
    f = root.find("{%s}Body/{%s}Fault" % (NS_S, NS_S))
    assert f is not None, body[:500]
    return f.findtext("faultcode"), f.findtext("faultstring"), f.find("detail")


def modified_request(page=1, size=100, start=None, end=None, types=None, offset=0):
    inner = "<PageNumber>%d</PageNumber><PageSize>%d</PageSize>" % (page, size)
    if end:
        inner += dto("EndDate", end, offset)
    if start:
        inner += dto("StartDate", start, offset)
    if types is not None:
        inner += "<TrainingComponentTypes>%s</TrainingComponentTypes>" % "".join(
            "<Include%s>%s</Include%s>" % (t, "true" if t in types else "false", t)
            for t in ("AccreditedCourse", "AccreditedCourseModule", "Qualification", "SkillSet", "TrainingPackage",
                      "Unit", "UnitContextualisation"))
    return "<request>%s</request>" % inner


ALL_TYPES = ("AccreditedCourse", "Qualification", "SkillSet", "TrainingPackage", "Unit")
TC_ALL_FLAGS = ["ShowClassifications", "ShowCompletionMapping", "ShowComponents", "ShowContacts",
                "ShowCurrencyPeriods", "ShowDataManagers", "ShowFiles", "ShowMappingInformation",
                "ShowRecognitionManagers", "ShowReleases", "ShowUnitGrid", "ShowUsageRecommendation"]
ORG_ALL_FLAGS = ["ShowCodes", "ShowContacts", "ShowDataManagers", "ShowExplicitScope", "ShowImplicitScope",
                 "ShowLocations", "ShowRegistrationManagers", "ShowRegistrationPeriods", "ShowResponsibleLegalPersons",
                 "ShowRestrictions", "ShowRtoClassifications", "ShowRtoDeliveryNotification", "ShowTradingNames",
                 "ShowUrls"]


def tc_details(code, flags=(), wrapper="InformationRequest"):
    flags = sorted(flags, key=TC_ALL_FLAGS.index)  # members must come in xs:sequence order
    return "<request><Code>%s</Code><%s>%s</%s></request>" % (
        code, wrapper, "".join("<%s>true</%s>" % (f, f) for f in flags), wrapper)


def org_details(code, flags=()):
    flags = sorted(flags, key=ORG_ALL_FLAGS.index)
    return "<request><Code>%s</Code><InformationRequested>%s</InformationRequested></request>" % (
        code, "".join("<%s>true</%s>" % (f, f) for f in flags))


def sydney_offset(iso):
    import datetime
    import zoneinfo
    t = datetime.datetime.strptime(iso[:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=datetime.timezone.utc)
    return int(t.astimezone(zoneinfo.ZoneInfo("Australia/Sydney")).utcoffset().total_seconds() // 60)


class ReadOnly(unittest.TestCase):
    """Protocol behaviour against an unmutated register."""

    @classmethod
    def setUpClass(cls):
        cls.fake = FakeServer("--frozen-clock")
        cls.dump = cls.fake.control("dump")

    @classmethod
    def tearDownClass(cls):
        cls.fake.stop()

    def setUp(self):
        self.fake.control("fault/clear", {})

    # ---------------------------------------------------------------------------------------- helpers

    def assert_order(self, elem, typename, seqs):
        expected = seqs[typename]
        names = [local(c.tag) for c in elem]
        for n in names:
            self.assertIn(n, expected, "%s has unexpected child %s" % (typename, n))
        positions = [expected.index(n) for n in names]
        self.assertEqual(positions, sorted(positions), "%s children out of XSD order: %s" % (typename, names))
        for c in elem:
            if isinstance(c.tag, str) and c.tag.startswith("{"):
                ns = c.tag[1:].split("}")[0]
                self.assertEqual(ns, NS, "%s/%s in namespace %s" % (typename, local(c.tag), ns))

    def all_modified(self, service="Training", types=ALL_TYPES, size=100, start=None, end=None):
        codes, page, count = [], 1, None
        while True:
            res = self.fake.call(service, "SearchByModifiedDate", modified_request(page, size, start, end, types)
                                 if service == "Training" else modified_request(page, size, start, end))
            count = int(res.findtext(q("Count")))
            items = list(res.find(q("Results")))
            codes += [i.findtext(q("Code")) for i in items]
            if len(items) < size:
                return codes, count
            page += 1

    # ---------------------------------------------------------------------------------------- auth & transport

    def test_auth_rejected(self):
        for kw in ({"password": "wrong"}, {"user": "WebService.Read"}, {"security": False},
                   {"pw_type": PW_TEXT.replace("PasswordText", "PasswordDigest")}):
            st, h, body = self.fake.soap("Training", "GetServerTime", "", **kw)
            self.assertEqual(st, 500, kw)
            self.assertTrue(h["content-type"].startswith("text/xml; charset=utf-8"))
            code, text, _ = fault_of(body)
            self.assertEqual(code, "a:InvalidSecurity")
            self.assertEqual(text, "An error occurred when verifying security for the message.")

    def test_soap_action(self):
        svc = "%sITrainingComponentService/" % NS
        for act in (svc + "GetServerTimeX", "http://training.gov.au/ITrainingComponentService/GetServerTime",
                    "http://training.gov.au/services/12/ITrainingComponentService/GetServerTime",
                    "%sIOrganisationService/GetServerTime" % NS, False):
            st, _, body = self.fake.soap("Training", "GetServerTime", "", action=act)
            self.assertEqual(st, 500, act)
            code, text, _ = fault_of(body)
            self.assertEqual(code, "a:ActionNotSupported", act)
            self.assertIn("ContractFilter mismatch at the EndpointDispatcher", text)
        # Both quoted and bare SOAPAction values are accepted.
        for quoted in (True, False):
            res = self.fake.call("Training", "GetServerTime", "", quoted=quoted)
            self.assertIsNotNone(res)

    def test_content_type_and_paths(self):
        st, _, _ = self.fake.soap("Training", "GetServerTime", "", ctype="application/soap+xml; charset=utf-8")
        self.assertEqual(st, 415)
        st, _, _ = self.fake.soap("Training", "GetServerTime", "",
                                  path="/Deewr.Tga.Webservices/TrainingComponentServiceV13.svc/Training12")
        self.assertEqual(st, 415)
        # IIS paths are case-insensitive.
        res = self.fake.call("Organisation", "GetServerTime", "",
                             path="/deewr.tga.WebServices/organisationservicev13.SVC/Organisation")
        self.assertIsNotNone(res)
        st, _, _ = self.fake.soap("Training", "GetServerTime", "",
                                  path="/Deewr.Tga.Webservices/TrainingComponentServiceV12.svc/Training")
        self.assertEqual(st, 404)

    def test_wsdl(self):
        for svc, port in (("TrainingComponentService", "Training"), ("OrganisationService", "Organisation")):
            st, h, body = self.fake.http("GET", "/Deewr.Tga.Webservices/%sV13.svc?wsdl" % svc)
            self.assertEqual(st, 200)
            root = ET.fromstring(body)
            self.assertEqual(root.get("targetNamespace"), NS)
            self.assertIn(b"http://127.0.0.1:%d/Deewr.Tga.Webservices/%sV13.svc/%s\"" % (
                self.fake.port, svc.encode(), port.encode()), body)
            self.assertIn(("%sI%s/GetDetails" % (NS, svc)).encode(), body)
            st, _, xsd = self.fake.http("GET", "/Deewr.Tga.Webservices/%sV13.svc?xsd=xsd0" % svc)
            self.assertEqual(st, 200)
            self.assertEqual(ET.fromstring(xsd).get("targetNamespace"), NS)
            st, _, single = self.fake.http("GET", "/Deewr.Tga.Webservices/%sV13.svc?singleWsdl" % svc)
            self.assertEqual(st, 200)
            self.assertIn(b"complexType", single)

    # ---------------------------------------------------------------------------------------- searches

    def test_server_time(self):
        res = self.fake.call("Training", "GetServerTime", "")
        self.assertEqual(res.text, "2026-01-05T11:00:00+11:00")  # --now default, AEDT, frozen clock

    def test_paging_and_count(self):
        codes, count = self.all_modified(size=37)
        self.assertEqual(count, len(self.dump["TrainingComponents"]))
        self.assertEqual(len(codes), count)
        self.assertEqual(sorted(codes), sorted(c["Code"] for c in self.dump["TrainingComponents"]))
        # Ordered by (UpdatedDate, Code), so pages never overlap.
        by_code = {c["Code"]: c for c in self.dump["TrainingComponents"]}
        stamps = [reg_ticks(by_code[c]["UpdatedDate"]) for c in codes]
        self.assertEqual(stamps, sorted(stamps))
        res = self.fake.call("Training", "SearchByModifiedDate", modified_request(1000, 37, types=ALL_TYPES))
        self.assertEqual(int(res.findtext(q("Count"))), count)
        self.assertEqual(len(res.find(q("Results"))), 0)
        ocodes, ocount = self.all_modified("Organisation", size=7)
        self.assertEqual(ocount, len(self.dump["Organisations"]))
        self.assertEqual(sorted(ocodes), sorted(o["Code"] for o in self.dump["Organisations"]))

    def test_window_and_types(self):
        comps = sorted(self.dump["TrainingComponents"], key=lambda c: reg_ticks(c["UpdatedDate"]))
        pivot = comps[len(comps) // 2]
        t = pivot["UpdatedDate"]
        after, _ = self.all_modified(start=t)
        before, _ = self.all_modified(end=t)
        self.assertIn(pivot["Code"], after)       # StartDate is inclusive
        self.assertNotIn(pivot["Code"], before)   # EndDate is exclusive
        self.assertEqual(sorted(after + before), sorted(c["Code"] for c in comps))
        # A DateTime without zone is local time at OffsetMinutes (WCF DateTimeOffset rules).
        ticks = reg_ticks(t)
        local = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ticks // 10**7 + 600 * 60))
        frac = ticks % 10**7
        local += ("." + ("%07d" % frac)) if frac else ""
        res = self.fake.call("Training", "SearchByModifiedDate",
                             modified_request(1, 100, start=local, types=ALL_TYPES, offset=600))
        self.assertEqual(int(res.findtext(q("Count"))), len(after))
        only_units, count = self.all_modified(types=("Unit",))
        self.assertEqual(count, sum(c["ComponentType"] == "Unit" for c in comps))
        self.assertEqual(set(only_units), {c["Code"] for c in comps if c["ComponentType"] == "Unit"})
        none, count = self.all_modified(types=())
        self.assertEqual((none, count), ([], 0))

    def test_summary_types_and_dates(self):
        res = self.fake.call("Training", "SearchByModifiedDate", modified_request(1, 50, types=ALL_TYPES))
        by_code = {c["Code"]: c for c in self.dump["TrainingComponents"]}
        for item in res.find(q("Results")):
            self.assertEqual(item.get("{%s}type" % NS_I), "TrainingComponentSummary3")
            self.assert_order(item, "TrainingComponentSummary3", TC_SEQ)
            self.assertIsNone(item.find(q("IsConfidential")))  # false + EmitDefaultValue=false: omitted
            c = by_code[item.findtext(q("Code"))]
            for name in ("CreatedDate", "UpdatedDate"):
                d = item.find(q(name))
                when = d.findtext("{%s}DateTime" % NS_SYS)
                self.assertTrue(when.endswith("Z"), when)
                self.assertEqual(when, c[name])
                self.assertEqual(int(d.findtext("{%s}OffsetMinutes" % NS_SYS)), sydney_offset(when))
            self.assertEqual(item.findtext(q("UsageReccomendation")), c["UsageRecommendation"])
            self.assertEqual(item.findtext(q("CurrencyStatus")), c["CurrencyStatus"])
        res = self.fake.call("Organisation", "SearchByModifiedDate", modified_request(1, 50))
        for item in res.find(q("Results")):
            self.assertEqual(item.get("{%s}type" % NS_I), "OrganisationSearchResultItem3")
            self.assert_order(item, "OrganisationSearchResultItem3", ORG_SEQ)

    def test_validation_faults(self):
        st, h, body = self.fake.soap("Training", "SearchByModifiedDate", modified_request(1, 101, types=ALL_TYPES))
        self.assertEqual(st, 500)
        code, text, detail = fault_of(body)
        self.assertEqual(code, "s:Client")
        vf = detail.find(q("ValidationFault"))
        errs = vf.findall("%s/%s" % (q("Errors"), q("ValidationError")))
        self.assertEqual(len(errs), 1)
        self.assert_order(errs[0], "ValidationError", TC_SEQ)
        self.assertEqual(errs[0].findtext(q("Code")), "InvalidPageSize")
        self.assertEqual(errs[0].findtext(q("Severity")), "Error")
        for inner in ("<request><InformationRequest/></request>", "<request><Code></Code></request>", ""):
            st, _, body = self.fake.soap("Training", "GetDetails", inner)
            self.assertEqual(st, 500)
            _, _, detail = fault_of(body)
            self.assertEqual(detail.findtext(".//" + q("Code")), "CodeRequired")

    def test_wcf_member_order_and_namespaces(self):
        # PageSize before PageNumber: PageNumber is skipped as out of order, so it is 0 -> validation fault.
        st, _, body = self.fake.soap("Training", "SearchByModifiedDate",
                                     "<request><PageSize>10</PageSize><PageNumber>1</PageNumber></request>")
        self.assertEqual(st, 500)
        self.assertEqual(fault_of(body)[2].findtext(".//" + q("Code")), "InvalidPageNumber")
        qual = next(c for c in self.dump["TrainingComponents"] if c["ComponentType"] == "Qualification")["Code"]
        # Flags out of XSD order are ignored (ShowReleases after ShowUnitGrid is skipped).
        res = self.fake.call("Training", "GetDetails", "<request><Code>%s</Code><InformationRequest><ShowUnitGrid>true"
                             "</ShowUnitGrid><ShowReleases>true</ShowReleases></InformationRequest></request>" % qual)
        self.assertIsNone(res.find(q("Releases")))
        # Flags in another namespace are ignored too.
        res = self.fake.call("Training", "GetDetails", "<request><Code>%s</Code><InformationRequest><x:ShowReleases "
                             "xmlns:x=\"http://training.gov.au/services/\">true</x:ShowReleases></InformationRequest>"
                             "</request>" % qual)
        self.assertIsNone(res.find(q("Releases")))
        # InformationRequested (the organisation spelling) is not the TC member: no flags at all.
        res = self.fake.call("Training", "GetDetails", tc_details(qual, ["ShowReleases"], "InformationRequested"))
        self.assertIsNone(res.find(q("Releases")))
        # IncludeLegacyData sits between Code and InformationRequest (V2+); accepted there.
        res = self.fake.call("Training", "GetDetails", "<request><Code>%s</Code><IncludeLegacyData>false"
                             "</IncludeLegacyData><InformationRequest><ShowReleases>true</ShowReleases>"
                             "</InformationRequest></request>" % qual)
        self.assertIsNotNone(res.find(q("Releases")))
        # The operation element in the V1 namespace is a deserialization fault.
        st, _, body = self.fake.soap("Training", "GetServerTime", "", ns="http://training.gov.au/services/")
        self.assertEqual(st, 500)
        self.assertEqual(fault_of(body)[0], "a:DeserializationFailed")
        # A DateTimeOffset without the System namespace on its children cannot be read.
        st, _, body = self.fake.soap("Training", "SearchByModifiedDate", "<request><PageNumber>1</PageNumber>"
                                     "<PageSize>5</PageSize><StartDate><DateTime>2020-01-01T00:00:00Z</DateTime>"
                                     "<OffsetMinutes>0</OffsetMinutes></StartDate></request>")
        self.assertEqual(st, 500)
        self.assertEqual(fault_of(body)[0], "a:DeserializationFailed")

    # ---------------------------------------------------------------------------------------- details

    def test_tc_details_flags_and_order(self):
        qual = next(c for c in self.dump["TrainingComponents"] if c["ComponentType"] == "Qualification"
                    and c["MappingInformation"] and any(r["UnitGrid"] for r in c["Releases"]))
        bare = self.fake.call("Training", "GetDetails", tc_details(qual["Code"]))
        self.assertEqual(bare.get("{%s}type" % NS_I), "TrainingComponent4")
        self.assertEqual([local(c.tag) for c in bare],
                         ["Code", "ComponentType", "CreatedDate", "ParentCode", "ParentTitle", "Title",
                          "UpdatedDate", "IsLegacyData", "CurrencyStatus"])
        rel_only = self.fake.call("Training", "GetDetails", tc_details(qual["Code"], ["ShowReleases"]))
        for r in rel_only.find(q("Releases")):
            self.assertIsNone(r.find(q("UnitGrid")))
            self.assertIsNone(r.find(q("Files")))
        full = self.fake.call("Training", "GetDetails", tc_details(qual["Code"], TC_ALL_FLAGS))
        self.assert_order(full, "TrainingComponent4", TC_SEQ)
        self.assertGreater(len(ET.tostring(full)), len(ET.tostring(rel_only)))
        self.assertGreater(len(ET.tostring(rel_only)), len(ET.tostring(bare)))
        releases = full.find(q("Releases"))
        self.assertEqual(len(releases), len(qual["Releases"]))
        for r, want in zip(releases, qual["Releases"]):
            self.assertEqual(r.get("{%s}type" % NS_I), "Release4")
            self.assert_order(r, "Release4", TC_SEQ)
            self.assertEqual(r.findtext(q("ReleaseNumber")), want["ReleaseNumber"])
            grid = r.find(q("UnitGrid"))
            if want["UnitGrid"] is None:
                self.assertIsNone(grid)
                continue
            got = [(e.findtext(q("Code")), e.findtext(q("IsEssential")) == "true") for e in grid]
            self.assertEqual(got, [(e["Code"], e["IsEssential"]) for e in want["UnitGrid"]])
            for e in grid:
                self.assertEqual(e.get("{%s}type" % NS_I), "UnitGridEntry3")
                self.assert_order(e, "UnitGridEntry3", TC_SEQ)
        for m in full.find(q("MappingInformation")):
            self.assert_order(m, "Mapping", TC_SEQ)
        self.assertEqual([m.findtext(q("MapsToCode")) for m in full.find(q("MappingInformation"))],
                         [m["MapsToCode"] for m in qual["MappingInformation"]])
        for cl in full.find(q("Classifications")):
            self.assert_order(cl, "Classification", TC_SEQ)
        self.assertEqual(sorted(c.findtext(q("SchemeCode")) for c in full.find(q("Classifications"))),
                         ["01", "04", "05"])
        for cp in full.find(q("CurrencyPeriods")):
            self.assertEqual(cp.get("{%s}type" % NS_I), "NrtCurrencyPeriod2")
            self.assert_order(cp, "NrtCurrencyPeriod2", TC_SEQ)
        for u in full.find(q("UsageRecommendations")):
            self.assert_order(u, "UsageRecommendation", TC_SEQ)
        tp = next(c for c in self.dump["TrainingComponents"] if c["ComponentType"] == "TrainingPackage")
        res = self.fake.call("Training", "GetDetails", tc_details(tp["Code"], ["ShowReleases", "ShowComponents"]))
        comps = res.find("%s/%s/%s" % (q("Releases"), q("Release"), q("Components")))
        self.assertGreater(len(comps), 0)
        for rc in comps:
            self.assert_order(rc, "ReleaseComponent", TC_SEQ)
        # Unknown code: a nil result, as a WCF service returning null.
        st, _, body = self.fake.soap("Training", "GetDetails", tc_details("NOPE999"))
        self.assertEqual(st, 200)
        self.assertIn(b'<GetDetailsResult i:nil="true"', body)

    def test_org_details_flags_scope_and_order(self):
        org = max(self.dump["Organisations"], key=lambda o: o["ScopeCount"])
        bare = self.fake.call("Organisation", "GetDetails", org_details(org["Code"]))
        self.assertEqual(bare.get("{%s}type" % NS_I), "Rto3")
        self.assertEqual([local(c.tag) for c in bare], ["CreatedDate", "UpdatedDate", "IsLegacyData",
                                                        "RegistrationStatus"])
        full = self.fake.call("Organisation", "GetDetails", org_details(org["Code"], ORG_ALL_FLAGS))
        self.assert_order(full, "Rto3", ORG_SEQ)
        scopes = list(full.find(q("Scopes")))
        self.assertEqual(len(scopes), org["ScopeCount"])
        self.assertTrue(any(s.findtext(q("IsImplicit")) == "true" for s in scopes))
        for s, want in zip(scopes, org["Scopes"]):
            self.assertEqual(local(s.tag), "Scope2")  # ArrayOfScope2 items are <Scope2> elements
            self.assert_order(s, "Scope2", ORG_SEQ)
            self.assertEqual(s.findtext(q("NrtCode")), want["NrtCode"])
            self.assertEqual(s.findtext(q("ScopeDecisionType")), want["ScopeDecisionType"])
            self.assertEqual(s.findtext(q("EndDate")), want["EndDate"])
        explicit = self.fake.call("Organisation", "GetDetails", org_details(org["Code"], ["ShowExplicitScope"]))
        implicit = self.fake.call("Organisation", "GetDetails", org_details(org["Code"], ["ShowImplicitScope"]))
        n_ex = sum(not s["IsImplicit"] for s in org["Scopes"])
        self.assertEqual(len(explicit.find(q("Scopes"))), n_ex)
        self.assertEqual(len(implicit.find(q("Scopes"))), org["ScopeCount"] - n_ex)
        self.assertEqual(full.findtext("%s/%s/%s" % (q("ResponsibleLegalPersons"), q("ResponsibleLegalPerson"),
                                                     q("Name"))), org["LegalName"])
        for name, item, typ in (("Locations", "OrganisationLocation", "OrganisationLocation"),
                                ("RegistrationPeriods", "RegistrationPeriod", "RegistrationPeriod"),
                                ("TradingNames", "TradingName", "TradingName"), ("Codes", "OrganisationCode",
                                                                                 "OrganisationCode")):
            for e in full.find(q(name)):
                self.assertEqual(local(e.tag), item)
                self.assert_order(e, typ, ORG_SEQ)
        self.assertEqual([p.findtext(q("EndDate")) for p in full.find(q("RegistrationPeriods"))],
                         [p["EndDate"] for p in org["RegistrationPeriods"]])
        # Nillable members without EmitDefaultValue=false are sent as i:nil.
        st, _, body = self.fake.soap("Organisation", "GetDetails", org_details(org["Code"], ["ShowRegistrationPeriods"]))
        self.assertIn(b'<EndReasonComments i:nil="true"/>', body)
        empty = next(o for o in self.dump["Organisations"] if o["ScopeCount"] == 0)
        res = self.fake.call("Organisation", "GetDetails", org_details(empty["Code"], ["ShowExplicitScope"]))
        self.assertEqual(len(res.find(q("Scopes"))), 0)

    def test_dump_matches_wire(self):
        d = self.dump
        self.assertEqual(set(d), {"meta", "TrainingComponents", "Organisations", "DeletedTrainingComponents",
                                  "DeletedOrganisations"})
        self.assertEqual(d["meta"]["counts"]["TrainingComponents"], len(d["TrainingComponents"]))
        self.assertEqual(len(d["TrainingComponents"]), 360)
        self.assertEqual(len(d["Organisations"]), 60)
        self.assertEqual(sum(o["ScopeCount"] for o in d["Organisations"]),
                         sum(len(o["Scopes"]) for o in d["Organisations"]))
        self.assertTrue(all(0 <= o["ScopeCount"] <= 200 for o in d["Organisations"]))
        self.assertGreater(len(d["DeletedTrainingComponents"]), 0)
        st, _, body = self.fake.http("GET", "/_fake/dump?scopes=0")
        self.assertNotIn(b'"Scopes"', body)
        # Tombstones are served by SearchDeletedByDeletedDate in (UpdatedDate, code) order.
        res = self.fake.call("Training", "SearchDeletedByDeletedDate", "<request><PageNumber>1</PageNumber>"
                             "<PageSize>100</PageSize></request>")
        got = [(e.findtext(q("NationalCode")), e.findtext(q("Operation")),
                e.find(q("UpdatedDate")).findtext("{%s}DateTime" % NS_SYS)) for e in res]
        self.assertEqual(got, [(t["NationalCode"], t["Operation"], t["UpdatedDate"])
                               for t in d["DeletedTrainingComponents"]])
        for e in res:
            self.assert_order(e, "DeletedTrainingComponent", TC_SEQ)
        res = self.fake.call("Organisation", "SearchDeletedByDeletedDate", "<request><PageNumber>1</PageNumber>"
                             "<PageSize>100</PageSize></request>")
        self.assertEqual([e.findtext(q("OrganisationCode")) for e in res],
                         [t["OrganisationCode"] for t in d["DeletedOrganisations"]])
        for e in res:
            self.assert_order(e, "DeletedOrganisation", ORG_SEQ)

    def test_search(self):
        res = self.fake.call("Training", "Search", "<request><PageNumber>1</PageNumber><PageSize>100</PageSize>"
                             "<Filter>%s</Filter><IncludeSuperseeded>true</IncludeSuperseeded><SearchCode>true"
                             "</SearchCode></request>" % self.dump["TrainingComponents"][0]["Code"])
        self.assertGreaterEqual(int(res.findtext(q("Count"))), 1)

    # ---------------------------------------------------------------------------------------- faults

    def arm(self, kind, op="GetServerTime", count=1, **extra):
        spec = {"op": op, "kind": kind, "count": count}
        spec.update(extra)
        self.fake.control("fault", spec)

    def test_fault_status_kinds(self):
        for kind, status, ctype in (("http500", 500, "text/html"), ("http503", 503, "text/html"),
                                    ("http429", 429, "text/html"), ("html", 200, "text/html"),
                                    ("redirect", 302, "text/html")):
            self.arm(kind, retry_after=7)
            st, h, body = self.fake.soap("Training", "GetServerTime", "")
            self.assertEqual(st, status, kind)
            self.assertTrue(h["content-type"].startswith(ctype), (kind, h))
            if kind == "http429":
                self.assertEqual(h["retry-after"], "7")
            if kind == "redirect":
                self.assertIn("login", h["location"])
            # count 1: the next request is normal again
            self.assertIsNotNone(self.fake.call("Training", "GetServerTime", ""))

    def test_fault_matching(self):
        self.arm("http503", op="GetDetails", service="Organisation", count=2)
        self.assertIsNotNone(self.fake.call("Training", "GetDetails", tc_details("BSB")))  # other service
        for _ in range(2):
            st, _, _ = self.fake.soap("Organisation", "GetDetails", org_details("x"))
            self.assertEqual(st, 503)
        self.assertIsNotNone(self.fake.call("Organisation", "GetDetails", org_details("x")))
        self.arm("http500", op="*", count=-1)
        for _ in range(3):
            self.assertEqual(self.fake.soap("Training", "GetServerTime", "")[0], 500)
        self.fake.control("fault/clear", {})
        self.assertIsNotNone(self.fake.call("Training", "GetServerTime", ""))

    def test_fault_connection_kinds(self):
        self.arm("reset")
        with self.assertRaises((ConnectionError, http.client.IncompleteRead, http.client.RemoteDisconnected)):
            self.fake.soap("Training", "GetServerTime", "")
        self.arm("truncate")
        with self.assertRaises(http.client.IncompleteRead):
            self.fake.soap("Training", "GetServerTime", "")
        self.arm("malformed")
        st, _, body = self.fake.soap("Training", "GetServerTime", "")
        self.assertEqual(st, 200)
        with self.assertRaises(ET.ParseError):
            ET.fromstring(body)
        self.arm("hang")
        with self.assertRaises(socket.timeout):
            self.fake.soap("Training", "GetServerTime", "", timeout=0.5)
        self.arm("slow", delay=0.4)
        t0 = time.time()
        self.assertIsNotNone(self.fake.call("Training", "GetServerTime", ""))
        self.assertGreaterEqual(time.time() - t0, 0.4)
        self.arm("drip", interval=0.001)
        t0 = time.time()
        self.assertIsNotNone(self.fake.call("Training", "GetServerTime", ""))
        self.assertGreater(time.time() - t0, 0.3)

    def test_fault_protocol_kinds(self):
        self.arm("soap_fault", op="SearchByModifiedDate", text="Service busy, try later", code="E42")
        st, _, body = self.fake.soap("Training", "SearchByModifiedDate", modified_request(1, 5, types=ALL_TYPES))
        self.assertEqual(st, 500)
        code, text, detail = fault_of(body)
        self.assertEqual(text, "Service busy, try later")
        err = detail.find("%s/%s/%s" % (q("ValidationFault"), q("Errors"), q("ValidationError")))
        self.assertEqual((err.findtext(q("Code")), err.findtext(q("Message"))), ("E42", "Service busy, try later"))
        self.arm("auth", op="GetDetails")
        st, _, body = self.fake.soap("Training", "GetDetails", tc_details("BSB"))
        self.assertEqual((st, fault_of(body)[0]), (500, "a:InvalidSecurity"))
        self.arm("missing_code", op="SearchByModifiedDate")
        res = self.fake.call("Training", "SearchByModifiedDate", modified_request(1, 5, types=ALL_TYPES))
        self.assertEqual([i.find(q("Code")) is None for i in res.find(q("Results"))],
                         [True, False, False, False, False])
        tp = next(c["Code"] for c in self.dump["TrainingComponents"] if c["ComponentType"] == "TrainingPackage")
        self.arm("missing_code", op="GetDetails", service="Training")
        res = self.fake.call("Training", "GetDetails", tc_details(tp))
        self.assertIsNone(res.find(q("Code")))
        self.assertEqual(self.fake.call("Training", "GetDetails", tc_details(tp)).findtext(q("Code")), tp)

    def test_fault_server_kinds_after_and_rate(self):
        self.arm("server_fault")
        st, h, body = self.fake.soap("Training", "GetServerTime", "")
        code, text, detail = fault_of(body)
        self.assertEqual((st, code, detail), (500, "a:InternalServiceFault", None))
        self.assertIn(b"windowscommunicationfoundation/dispatcher", body)
        self.assertTrue(text.startswith("The server was unable to process the request due to an internal error."))
        self.arm("server_fault", code="Server")
        self.assertEqual(fault_of(self.fake.soap("Training", "GetServerTime", "")[2])[0], "s:Server")
        self.arm("soap_fault", fault="DeserializationFailed")
        self.assertEqual(fault_of(self.fake.soap("Training", "GetServerTime", "")[2])[0], "a:DeserializationFailed")
        # "after": the first N matching requests pass.
        self.arm("server_fault", after=2)
        self.assertEqual([self.fake.soap("Training", "GetServerTime", "")[0] for _ in range(4)], [200, 200, 500, 200])
        # "rate": some matching requests, not all; until cleared with count -1.
        self.arm("server_fault", op="*", count=-1, rate=0.3, seed=4)
        got = [self.fake.soap("Organisation", "GetServerTime", "")[0] for _ in range(60)]
        self.assertTrue(0 < got.count(500) < 40, got)
        self.assertEqual(set(got), {200, 500})

    def test_stats(self):
        self.fake.control("stats/reset", {})
        self.fake.call("Training", "GetServerTime", "")
        self.fake.call("Organisation", "GetServerTime", "")
        s = self.fake.control("stats")
        self.assertEqual(s["requests"], 2)
        self.assertEqual(s["by_op"]["GetServerTime"], 2)
        self.assertEqual(s["by_service_op"], {"Training.GetServerTime": 1, "Organisation.GetServerTime": 1})
        self.assertGreater(s["bytes_sent"], 500)


def reg_ticks(iso):
    import tga_register
    return tga_register.parse_instant(iso)


class Mutations(unittest.TestCase):
    """Mutations, tombstones and the clock, on a server of their own."""

    @classmethod
    def setUpClass(cls):
        cls.fake = FakeServer("--frozen-clock")

    @classmethod
    def tearDownClass(cls):
        cls.fake.stop()

    def test_mutations_and_tombstones(self):
        fake = self.fake
        fake.control("clock", {"now": "2026-02-01T00:00:00Z"})
        before = fake.control("dump")
        qual = next(c for c in before["TrainingComponents"] if c["ComponentType"] == "Qualification")["Code"]
        rto = next(o for o in before["Organisations"] if o["ScopeCount"] > 3)
        window = modified_request(1, 100, start="2026-01-31T00:00:00Z", types=ALL_TYPES)
        self.assertEqual(int(fake.call("Training", "SearchByModifiedDate", window).findtext(q("Count"))), 0)

        r = fake.control("mutate", {"action": "update", "kind": "qualification", "code": qual, "title": "New & improved"})
        self.assertEqual(r["changes"], {"qualification": {"update": [qual]}})
        res = fake.call("Training", "SearchByModifiedDate", window)
        self.assertEqual([i.findtext(q("Code")) for i in res.find(q("Results"))], [qual])
        upd = res.find(q("Results"))[0].find(q("UpdatedDate"))
        self.assertEqual(upd.findtext("{%s}DateTime" % NS_SYS), "2026-02-01T00:00:00Z")
        self.assertEqual(upd.findtext("{%s}OffsetMinutes" % NS_SYS), "660")
        det = fake.call("Training", "GetDetails", tc_details(qual, ["ShowReleases"]))
        self.assertEqual(det.findtext(q("Title")), "New & improved")
        self.assertEqual(det.find(q("Releases"))[-1].findtext(q("ReleaseDate")), "2026-02-01")

        fake.control("clock", {"advance": 60})
        r = fake.control("mutate", {"action": "delete", "kind": "qualification", "code": qual})
        self.assertEqual(r["changes"], {"qualification": {"delete": [qual]}})
        res = fake.call("Training", "SearchDeletedByDeletedDate", "<request><PageNumber>1</PageNumber><PageSize>10"
                        "</PageSize>%s</request>" % dto("StartDate", "2026-02-01T00:00:30Z"))
        self.assertEqual([(e.findtext(q("NationalCode")), e.findtext(q("Operation"))) for e in res],
                         [(qual, "PhysicalDelete")])
        self.assertEqual(res[0].find(q("UpdatedDate")).findtext("{%s}DateTime" % NS_SYS), "2026-02-01T00:01:00Z")
        self.assertEqual(int(fake.call("Training", "SearchByModifiedDate", window).findtext(q("Count"))), 0)
        st, _, body = fake.soap("Training", "GetDetails", tc_details(qual))
        self.assertIn(b'i:nil="true"', body)

        scope_add = next(c["Code"] for c in before["TrainingComponents"] if c["ComponentType"] == "SkillSet"
                         and c["Code"] not in {s["NrtCode"] for s in rto["Scopes"]})
        removed = rto["Scopes"][0]["NrtCode"]
        r = fake.control("mutate", {"action": "scope", "code": rto["Code"], "add": [scope_add], "remove": [removed]})
        self.assertEqual(r["changes"], {"rto": {"scope": [rto["Code"]]}})
        det = fake.call("Organisation", "GetDetails", org_details(rto["Code"], ["ShowExplicitScope",
                                                                                "ShowImplicitScope"]))
        codes = [s.findtext(q("NrtCode")) for s in det.find(q("Scopes"))]
        self.assertIn(scope_add, codes)
        self.assertNotIn(removed, codes)
        res = fake.call("Organisation", "SearchByModifiedDate", modified_request(1, 100, start="2026-01-31T00:00:00Z"))
        self.assertEqual([i.findtext(q("Code")) for i in res.find(q("Results"))], [rto["Code"]])

        r = fake.control("mutate", {"action": "delete", "kind": "rto", "code": rto["Code"],
                                    "operation": "LogicalDelete"})
        res = fake.call("Organisation", "SearchDeletedByDeletedDate", "<request><PageNumber>1</PageNumber><PageSize>10"
                        "</PageSize>%s</request>" % dto("StartDate", "2026-02-01T00:00:30Z"))
        self.assertEqual([(e.findtext(q("OrganisationCode")), e.findtext(q("Operation"))) for e in res],
                         [(rto["Code"], "LogicalDelete")])

        after = fake.control("dump")
        self.assertNotIn(qual, {c["Code"] for c in after["TrainingComponents"]})
        self.assertNotIn(rto["Code"], {o["Code"] for o in after["Organisations"]})
        self.assertIn(qual, {t["NationalCode"] for t in after["DeletedTrainingComponents"]})
        self.assertIn(rto["Code"], {t["OrganisationCode"] for t in after["DeletedOrganisations"]})

    def test_organisation_that_is_not_an_rto(self):
        fake = self.fake
        fake.control("clock", {"now": "2026-04-01T00:00:00Z"})
        r = fake.control("mutate", {"action": "add", "kind": "organisation"})
        code = r["changes"]["organisation"]["add"][0]
        res = fake.call("Organisation", "SearchByModifiedDate", modified_request(1, 100, start="2026-03-31T00:00:00Z"))
        self.assertEqual([i.findtext(q("Code")) for i in res.find(q("Results"))], [code])
        det = fake.call("Organisation", "GetDetails", org_details(code, ORG_ALL_FLAGS))
        self.assertEqual(det.get("{http://www.w3.org/2001/XMLSchema-instance}type"), "Organisation2")
        names = [local(c.tag) for c in det]
        self.assertEqual(names[-1], "IsLegacyData")
        for rto_only in ("Scopes", "RegistrationStatus", "RegistrationPeriods", "Restrictions"):
            self.assertNotIn(rto_only, names)
        o = next(o for o in fake.control("dump")["Organisations"] if o["Code"] == code)
        self.assertEqual((o["Kind"], o["RegistrationStatus"], o["ScopeCount"]), ("Organisation2", None, 0))
        self.assertNotIn(o["Code"], {x["Code"] for x in fake.control("dump")["Organisations"] if x["Kind"] == "Rto3"})
        # It is not an RTO: RTO mutations refuse it, its own kind works.
        st, _, body = fake.http("POST", "/_fake/mutate", json.dumps({"action": "update", "kind": "rto",
                                                                     "code": code}).encode())
        self.assertEqual(st, 400, body)
        r = fake.control("mutate", {"action": "update", "kind": "organisation", "code": code})
        self.assertEqual(r["changes"], {"organisation": {"update": [code]}})
        r = fake.control("mutate", {"action": "delete", "kind": "organisation", "code": code})
        self.assertEqual(r["changes"], {"organisation": {"delete": [code]}})
        self.assertIn(b'i:nil="true"', fake.soap("Organisation", "GetDetails", org_details(code))[2])

    def test_random_mutation_is_deterministic_and_reported(self):
        fake = self.fake
        fake.control("clock", {"now": "2026-03-01T00:00:00Z"})
        r = fake.control("mutate", {"action": "random", "fraction": 0.05, "seed": 2})
        changed = {code for kind in r["changes"].values() for codes in kind.values() for code in codes}
        self.assertGreater(len(changed), 10)
        d = fake.control("dump")
        stamp = "2026-03-01T00:00:00Z"
        touched = {c["Code"] for c in d["TrainingComponents"] if c["UpdatedDate"] == stamp}
        touched |= {o["Code"] for o in d["Organisations"] if o["UpdatedDate"] == stamp}
        touched |= {t["NationalCode"] for t in d["DeletedTrainingComponents"] if t["UpdatedDate"] == stamp}
        touched |= {t["OrganisationCode"] for t in d["DeletedOrganisations"] if t["UpdatedDate"] == stamp}
        self.assertEqual(touched, changed)
        # The same seed on the same register state gives the same changes.
        import tga_register
        now = tga_register.parse_instant(stamp)
        a = tga_register.Register("small", 1).mutate({"action": "random", "fraction": 0.05, "seed": 2}, now)
        b = tga_register.Register("small", 1).mutate({"action": "random", "fraction": 0.05, "seed": 2}, now)
        self.assertEqual(a, b)
        kinds = {action for k in a["changes"].values() for action in k}
        self.assertTrue({"update", "add", "delete"} <= kinds, kinds)

    def test_bad_mutation(self):
        st, _, body = self.fake.http("POST", "/_fake/mutate", json.dumps({"action": "delete", "kind": "unit",
                                                                          "code": "NOPE"}).encode())
        self.assertEqual(st, 400)
        self.assertIn(b"error", body)


if __name__ == "__main__":
    unittest.main(verbosity=2)
