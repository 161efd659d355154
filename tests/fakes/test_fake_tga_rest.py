#!/usr/bin/python3
"""Tests of fake_tga_rest.py over raw HTTP, at scale small, and its agreement with fake_tga_soap.py.

Run: /usr/bin/python3 tests/fakes/test_fake_tga_rest.py   (exits non-zero on failure; a few seconds)

The most important test is CrossCheck: a REST fake and a SOAP fake started on the same scale, seed and clock must
expose the same register. It rebuilds every training component and RTO from REST responses alone (with the mapping
documented in README.md) and compares the result field by field with the SOAP fake's dump, checks a few components
and RTOs against SOAP GetDetails on the wire (codes, titles, unit grid core/elective, scope rows), and repeats the
rebuild after the same mutation is applied to both fakes.
"""

import http.client
import json
import os
import socket
import sys
import tempfile
import time
import unittest
import urllib.parse
import xml.etree.ElementTree as ET

import fakeproc

HERE = os.path.dirname(os.path.abspath(__file__))
REST = os.path.join(HERE, "fake_tga_rest.py")
SOAP = os.path.join(HERE, "fake_tga_soap.py")
NOW = "2026-02-02T03:04:05Z"

REST_TO_SOAP_TYPE = {"qualification": "Qualification", "unit": "Unit", "skillSet": "SkillSet",
                     "accreditedCourse": "AccreditedCourse", "trainingPackage": "TrainingPackage",
                     "accreditedUnit": "AccreditedCourseModule"}
TYPE_IDS = {"AccreditedCourse": 1, "Qualification": 2, "Unit": 4, "SkillSet": 8, "TrainingPackage": 16}
RELEASE_CURRENCY = {"current": "Current", "replaced": "Superseded"}


class FakeServer(fakeproc.ControlClient):
    def __init__(self, script, *extra):
        self.dir = tempfile.mkdtemp(prefix="fake-tga-rest-test-")
        self.port_file = os.path.join(self.dir, "port")
        self.log = open(os.path.join(self.dir, "log"), "w+")
        self.proc, self.port = fakeproc.launch([sys.executable, script, "--port", "0", "--port-file", self.port_file,
                                                "--scale", "small", "--quiet"] + list(extra),
                                               self.port_file, self.log, 30)
        self.conn = None

    def stop(self):
        if self.conn:
            self.conn.close()
        fakeproc.terminate(self.proc)
        self.log.close()

    def http(self, method, path, body=None, headers=None, timeout=10, fresh=False):
        """One request; reuses a keep-alive connection unless fresh (faults get a connection of their own)."""
        if fresh:
            c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        else:
            if self.conn is None:
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
            c = self.conn
        try:
            c.request(method, path, body, headers or {})
            r = c.getresponse()
            out = r.status, dict((k.lower(), v) for k, v in r.getheaders()), r.read()
            if r.will_close and not fresh:
                c.close()
                self.conn = None
            return out
        except Exception:
            c.close()
            if not fresh:
                self.conn = None
            raise
        finally:
            if fresh:
                c.close()

    def get(self, path, **kw):
        return self.http("GET", path, **kw)

    def json(self, path, status=200):
        st, h, body = self.get(path)
        assert st == status, (path, st, body[:500])
        assert h["content-type"].startswith("application/json"), (path, h)
        return json.loads(body)


def q(**params):
    return urllib.parse.urlencode(params)


def search_all(fake, endpoint, size=100, **params):
    """Every item of a search, page by page (count = items in the page, totalCount = all matches)."""
    out, offset, total = [], 0, None
    while True:
        page = fake.json("/api/search/%s?%s" % (endpoint, q(pageSize=size, offset=offset, includeTotalCount="true",
                                                          **params)))
        assert page["count"] == len(page["data"]), page["count"]  # evidenced: count = the page's rows
        total = page["totalCount"]
        out += page["data"]
        if len(page["data"]) < size:
            return out, total
        offset += size


def scope_all(fake, code, ctype=None, size=50, implicit=True, extra=None):
    out, offset, total = [], 0, None
    filters = ",".join(([("componentType==%s" % ctype)] if ctype else []) + ([extra] if extra else []))
    while True:
        params = {"offset": offset, "pageSize": size, "sorts": "code"}
        if filters:
            params["filters"] = filters
        if implicit:
            params["includeImplicitItems"] = "true"
        page = fake.json("/api/organisation/%s/scope?%s" % (code, q(**params)))
        total = page["count"]  # evidenced: count next to value is the total
        out += page["value"]
        if len(page["value"]) < size:
            assert len(out) == total, (code, ctype, len(out), total)
            return out, total
        offset += size


# ------------------------------------------------------------------------------------------------ REST -> dump
# The mapping a REST client applies to get the SOAP data model back (README: "REST content and the SOAP model").

def dates(x):
    return {"StartDate": x["startDate"], "EndDate": x["endDate"]}


def assignment(x):
    return {"Code": x["code"], **dates(x)}


def classification(x):
    return {"SchemeCode": x["schemeCode"], "ValueCode": x["valueCode"], "PurposeCode": x["purposeCode"], **dates(x)}


STATE_CODES = {"NSW": "01", "VIC": "02", "QLD": "03", "SA": "04", "WA": "05", "TAS": "06", "NT": "07", "ACT": "08"}


def address(a):
    """The evidenced shape: the state by abbreviation, the country by name (the register's SACC codes back)."""
    if a is None:
        return None
    assert set(a) == {"line1", "line2", "suburb", "state", "postcode", "country", "countryCodeAlpha3",
                      "fullAddress"}, sorted(a)
    return {"CountryCode": {"Australia": "1101"}.get(a["country"]), "Line1": a["line1"], "Line2": a["line2"],
            "Postcode": a["postcode"], "StateCode": STATE_CODES.get(a["state"]),
            "StateOverseas": None if a["state"] in STATE_CODES else a["state"], "Suburb": a["suburb"]}


def abns(xs):
    """ABNs are served with spaces ("12 345 678 901", as sourcerer sees them); the register's are digits."""
    assert all(len(x) == 14 and x.count(" ") == 3 for x in xs), xs
    return [x.replace(" ", "") for x in xs]


def contact(x):
    return {"FirstName": x["firstName"], "LastName": x["lastName"], "Title": x["title"], "JobTitle": x["jobTitle"],
            "Email": x["email"], "Phone": x["phone"], "Mobile": x["mobile"], "Fax": x["fax"],
            "GroupName": x["groupName"], "OrganisationName": x["organisationName"], "RoleCode": x["role"],
            "TypeCode": x["typeCode"], "PostalAddress": address(x["postalAddress"]), **dates(x)}


def component_from_rest(d, releases, grids):
    """d: /api/training/{code}; releases/grids: release number -> release detail / unit grid array."""
    out_releases = []
    for r in reversed(d["releases"]):  # served newest first; the SOAP model lists the oldest first
        n = r["releaseNumber"]
        rd = releases[n]
        grid = grids[n]
        out_releases.append({
            "ReleaseNumber": n, "ReleaseDate": r["releaseDate"], "Currency": RELEASE_CURRENCY[r["currency"]],
            "ApprovalProcess": r["approvalProcess"],
            "UnitGrid": [{"Code": e["code"], "Title": e["title"], "IsEssential": e["isEssential"]} for e in grid]
            or None,
            "Files": [{"RelativePath": a["url"].split("/assets/", 1)[1].replace("/", "\\"), "Size": a["size"]}
                      for a in r["assets"]],
            "Components": None if rd["components"] is None else [
                {"Code": m["code"], "Title": m["title"], "Type": REST_TO_SOAP_TYPE[m["componentType"]],
                 "ReleaseNumber": m["releaseNumber"], "ReleaseDate": m["releaseDate"],
                 "ReleaseCurrency": RELEASE_CURRENCY[m["releaseCurrency"]]} for m in rd["components"]],
            "CompanionVolumeLinks": None if rd["companionVolumeLinks"] is None else [
                {"LinkNotes": x["linkNotes"], "LinkText": x["linkText"], "LinkUrl": x["linkUrl"],
                 "PublishedComponentType": x["publishedComponentType"]} for x in rd["companionVolumeLinks"]],
        })
    return {
        "Code": d["code"], "ComponentType": REST_TO_SOAP_TYPE[d["type"]], "Title": d["title"],
        "ParentCode": d["parent"]["code"] if d["parent"] else None,
        "ParentTitle": d["parent"]["title"] if d["parent"] else None,
        "IsConfidential": d["isConfidential"], "IsLegacyData": d["isLegacyData"],
        "IscOrganisationCode": d["trainingPackageDeveloper"]["code"] if d["trainingPackageDeveloper"] else None,
        "CurrencyStatus": d["statusLabel"], "IsCurrent": d["status"] == "current",
        "UsageRecommendation": d["usageRecommendationLabel"],
        "CreatedDate": d["createdDate"], "UpdatedDate": d["updatedDate"],
        "UsageRecommendations": [{"State": x["usageRecommendationLabel"], **dates(x)}
                                 for x in d["usageRecommendationHistory"]],
        "CurrencyPeriods": [{"Authority": x["authority"], **dates(x), "EndReasonCode": x["endReasonCode"],
                             "EndComment": x["endComment"]} for x in d["currencyPeriods"]],
        "Classifications": [classification(x) for x in d["classifications"]],
        "MappingInformation": [{"Code": m["code"], "Title": m["title"], "MapsToCode": m["mapsToCode"],
                                "MapsToTitle": m["mapsToTitle"], "IsEquivalent": m["isEquivalent"],
                                "Notes": m["notes"]} for m in d["mappingInformation"]],
        "RecognitionManagers": [assignment(x) for x in d["recognitionManagers"]],
        "DataManagers": [assignment(x) for x in d["dataManagers"]],
        "Contacts": [contact(x) for x in d["contacts"]],
        "CompletionMapping": [{"Code": x["code"], "IsMandatory": x["isMandatory"], **dates(x)}
                              for x in d["completionMapping"]],
        "Releases": out_releases,
    }


def scope_from_rest(x):
    return {"NrtCode": x["code"], "TrainingComponentType": REST_TO_SOAP_TYPE[x["componentType"]],
            "ExtentCode": x["extent"], "IsImplicit": x["isImplicit"], "IsRefused": x["isRefused"],
            "ScopeDecisionType": x["statusLabel"], "StartDate": x["startDate"], "EndDate": x["endDate"]}


def organisation_from_rest(o, scopes):
    """o: /api/organisation/{code}?include=all; scopes: every row of every per-type scope request."""
    rows = [scope_from_rest(x) for x in scopes]
    rows = sorted((r for r in rows if not r["IsImplicit"]), key=lambda r: r["NrtCode"]) + \
        sorted((r for r in rows if r["IsImplicit"]), key=lambda r: r["NrtCode"])
    return {
        "Code": o["code"], "LegalName": o["legalName"], "RegistrationStatus": o["statusLabel"],
        "IsLegacyData": o["isLegacyData"], "CreatedDate": o["createdDate"], "UpdatedDate": o["updatedDate"],
        "Codes": [assignment(x) for x in o["codes"]],
        "ResponsibleLegalPersons": [{"Name": x["name"], "Abns": abns(x["abns"]), "Acn": x["acn"], **dates(x)}
                                    for x in o["legalNames"]],
        "TradingNames": [{"Name": x["name"], **dates(x)} for x in o["tradingNames"]],
        "Locations": [{"Address": address(x["address"]), **dates(x)} for x in o["addresses"]],
        "Urls": [{"Link": x["webAddress"], **dates(x)} for x in o["webAddresses"]],
        "Contacts": [contact(x) for x in o["contacts"]],
        "DataManagers": [assignment(x) for x in o["dataManagers"]],
        "RegistrationManagers": [assignment(x) for x in o["registrationManagers"]],
        "RegistrationPeriods": [{**dates(x), "EndReasonCode": x["endReason"],
                                 "EndReasonComments": x["endReasonComments"], "Exerciser": x["exerciser"],
                                 "LegalAuthority": x["legalAuthority"]} for x in o["registrations"]],
        "Classifications": [classification(x) for x in o["classifications"]],
        "Restrictions": [{"Code": x["code"], "Restriction": x["restriction"],
                          "RestrictionTypeCode": x["restrictionTypeCode"], **dates(x)} for x in o["restrictions"]],
        "DeliveryNotifications": [],
        "ScopeCount": len(rows), "Scopes": rows,
    }


def crawl(fake):
    """A full REST crawl as a client would do it: searches per type, details, releases and unit grids, the
    organisation search, each RTO with include=all and its scope per component type (an unfiltered scope omits
    current qualifications). Returns the register in the dump's shape."""
    comps = []
    for ctype, tid in sorted(TYPE_IDS.items()):
        items, total = search_all(fake, "training", filter="Type/Id eq %d" % tid)
        assert len(items) == total and all(i["type"]["id"] == ctype[0].lower() + ctype[1:] for i in items)
        for item in items:
            code = item["code"]
            d = fake.json("/api/training/%s" % code)
            releases, grids = {}, {}
            for r in d["releases"]:
                n = r["releaseNumber"]
                releases[n] = fake.json("/api/training/%s/releases/%s" % (code, n))
                grids[n] = fake.json("/api/training/%s/releases/%s/unitgrid" % (code, n))
            comps.append(component_from_rest(d, releases, grids))
    orgs = []
    items, total = search_all(fake, "organisation")
    assert len(items) == total
    for item in items:
        code = item["code"]
        o = fake.json("/api/organisation/%s?include=all" % code)
        rows = []
        for s in fake.json("/api/organisation/%s/scopesummary" % code):
            rows += scope_all(fake, code, s["componentType"])[0]
        orgs.append(organisation_from_rest(o, rows))
    return {"TrainingComponents": sorted(comps, key=lambda c: c["Code"]),
            "Organisations": sorted(orgs, key=lambda o: o["Code"])}


# ------------------------------------------------------------------------------------------------ SOAP helpers

NS = "http://training.gov.au/services/13/"
NS_S = "http://schemas.xmlsoap.org/soap/envelope/"
NS_WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"


def soap_call(fake, service, op, inner):
    svc = {"Training": "TrainingComponentService", "Organisation": "OrganisationService"}[service]
    env = ('<s:Envelope xmlns:s="%s"><s:Header><o:Security xmlns:o="%s"><o:UsernameToken><o:Username>WebService.Read'
           '</o:Username><o:Password>Asdf098</o:Password></o:UsernameToken></o:Security></s:Header><s:Body>'
           '<%s xmlns="%s">%s</%s></s:Body></s:Envelope>' % (NS_S, NS_WSSE, op, NS, inner, op)).encode()
    st, _, body = fake.http("POST", "/Deewr.Tga.Webservices/%sV13.svc/%s" % (svc, service), env,
                            {"Content-Type": "text/xml; charset=utf-8",
                             "SOAPAction": '"%sI%s/%s"' % (NS, svc, op)})
    assert st == 200, body[:500]
    return ET.fromstring(body).find("{%s}Body/{%s}%sResponse/{%s}%sResult" % (NS_S, NS, op, NS, op))


def t(name):
    return "{%s}%s" % (NS, name)


# ================================================================================================ tests

class Rest(unittest.TestCase):
    """Endpoints, shapes, paging, filters, quirks and faults on one REST fake."""

    @classmethod
    def setUpClass(cls):
        cls.fake = FakeServer(REST, "--max-page-size", "100", "--frozen-clock", "--now", NOW)
        cls.dump = cls.fake.control("dump")
        cls.comps = {c["Code"]: c for c in cls.dump["TrainingComponents"]}
        cls.orgs = {o["Code"]: o for o in cls.dump["Organisations"]}
        cls.qual = next(c for c in cls.dump["TrainingComponents"] if c["ComponentType"] == "Qualification"
                        and len(c["Releases"]) > 1 and c["Releases"][0]["UnitGrid"])
        cls.rto = max(cls.dump["Organisations"], key=lambda o: o["ScopeCount"])
        cls.defaults = cls.fake.control("config")

    @classmethod
    def tearDownClass(cls):
        cls.fake.stop()

    def setUp(self):
        self.fake.control("fault/clear", {})
        self.fake.control("config", self.defaults)

    def arm(self, kind, op="*", **kw):
        self.fake.control("fault", dict(kw, op=op, kind=kind))

    # ---------------------------------------------------------------------------------------- metadata & search

    def test_metadata(self):
        m = self.fake.json("/api/metadata")
        # The evidenced shape (the published audit), and the reference's name as a switch.
        self.assertEqual(set(m), {"dataExportSynchronisationDateTime", "informationalVersion", "version"})
        newest = max([c["UpdatedDate"] for c in self.dump["TrainingComponents"]]
                     + [o["UpdatedDate"] for o in self.dump["Organisations"]])
        self.assertGreaterEqual(m["dataExportSynchronisationDateTime"][:19], newest[:19])
        self.fake.control("config", {"metadata_name": "dataExportSyncDateTime"})
        self.assertEqual(self.fake.json("/api/metadata")["dataExportSyncDateTime"],
                         m["dataExportSynchronisationDateTime"])
        self.fake.control("config", {"metadata_name": "dataExportSynchronisationDateTime"})
        self.assertEqual(self.fake.json("/api/metadata?api-version=1.0"), m)
        st, _, body = self.fake.get("/api/metadata?api-version=2.0")
        self.assertEqual((st, json.loads(body)["error"]["code"]), (400, "UnsupportedApiVersion"))

    def test_search_paging_and_totals(self):
        items, total = search_all(self.fake, "training", size=37)
        codes = [i["code"] for i in items]
        self.assertEqual(total, len(self.comps))
        self.assertEqual(codes, sorted(self.comps))  # default order: code
        page = self.fake.json("/api/search/training?" + q(pageSize=5, offset=3))
        self.assertEqual((page["count"], page["totalCount"]), (5, None))  # totals only with includeTotalCount
        self.assertEqual([i["code"] for i in page["data"]], codes[3:8])
        page = self.fake.json("/api/search/training?" + q(pageSize=5, offset=total))
        self.assertEqual((page["count"], page["data"]), (0, []))
        default = self.fake.json("/api/search/training")
        self.assertEqual(default["count"], 20)  # --default-page-size

    def test_variants_totals_cap_empty(self):
        """The switches of issue 18: where the totals go, a page cap below pageSize, empty pages before the total,
        and the fault "empty"."""
        code = self.rto["Code"]
        total = len(self.comps)
        srch = "/api/search/training?" + q(pageSize=10, offset=0, includeTotalCount="true")
        scope = "/api/organisation/%s/scope?%s" % (code, q(pageSize=10, offset=0, includeImplicitItems="true",
                                                          filters="componentType==unit", sorts="code"))
        nunits = len(scope_all(self.fake, code, "unit")[0])
        want = {"count": ({"count": total}, {"count": nunits}),
                "totalCount": ({"totalCount": total}, {"totalCount": nunits}),
                "both": ({"count": total, "totalCount": total}, {"count": nunits, "totalCount": nunits}),
                "neither": ({}, {})}
        for mode, (ws, wc) in want.items():
            self.fake.control("config", {"totals": mode})
            page = self.fake.json(srch)
            self.assertEqual({k: v for k, v in page.items() if k != "data"}, ws, mode)
            self.assertEqual(len(page["data"]), 10)
            page = self.fake.json(scope)
            self.assertEqual({k: v for k, v in page.items() if k != "value"}, wc, mode)
        self.fake.control("config", {"totals": "evidenced", "page_cap": 7})
        page = self.fake.json(srch)
        self.assertEqual((page["count"], page["totalCount"], len(page["data"])), (7, total, 7))
        self.assertEqual(len(self.fake.json(scope)["value"]), min(7, nunits))
        self.fake.control("config", {"page_cap": 0, "empty_from": 10})
        page = self.fake.json(srch.replace("offset=0", "offset=10"))
        self.assertEqual((page["count"], page["totalCount"], page["data"]), (0, total, []))
        self.assertEqual(len(self.fake.json(srch)["data"]), 10)
        self.fake.control("config", {"empty_from": -1})
        self.arm("empty", op="scope", count=1)
        self.assertEqual(self.fake.json(scope), {"count": nunits, "value": []})
        self.assertEqual(len(self.fake.json(scope)["value"]), min(10, nunits))
        st, _, _ = self.fake.http("POST", "/_fake/config", json.dumps({"totals": "some"}).encode())
        self.assertEqual(st, 400)

    def test_search_item_shape(self):
        item = self.fake.json("/api/search/training?" + q(searchText=self.qual["Code"], pageSize=3))["data"][0]
        self.assertEqual(item["code"], self.qual["Code"])
        for key in ("searchScore", "code", "title", "nrtId", "type", "status", "qualificationLevel", "trainingPackage",
                    "latestRelease", "usageRecommendation", "currencyPeriod", "supersedes", "supersededBy", "anzsco",
                    "asced4", "taxonomyIndustry", "taxonomyOccupation"):
            self.assertIn(key, item)
        self.assertEqual(item["type"], {"id": "qualification", "name": "Qualification"})
        self.assertEqual(item["status"]["isCurrent"], self.qual["IsCurrent"])
        self.assertEqual(item["trainingPackage"], {"code": self.qual["ParentCode"], "title": self.qual["ParentTitle"]})
        last = self.qual["Releases"][-1]
        self.assertEqual(item["latestRelease"], {"date": last["ReleaseDate"], "number": last["ReleaseNumber"]})

    def test_type_filters(self):
        for ctype, tid in TYPE_IDS.items():
            items, total = search_all(self.fake, "training", filter="Type/Id eq %d" % tid)
            expected = sorted(c for c, x in self.comps.items() if x["ComponentType"] == ctype)
            self.assertEqual([i["code"] for i in items], expected, ctype)
            self.assertEqual(total, len(expected))
        both, _ = search_all(self.fake, "training", filter="Type/Id eq 2 or Type/Id eq 8")
        self.assertEqual({i["type"]["id"] for i in both}, {"qualification", "skillSet"})
        mixed, _ = search_all(self.fake, "training",
                              filter="Type/Id eq 2 and Code eq '%s' or Type/Id eq 8" % self.qual["Code"])
        self.assertEqual(sorted(i["code"] for i in mixed), sorted(
            [self.qual["Code"]] + [c for c, x in self.comps.items() if x["ComponentType"] == "SkillSet"]))
        named, _ = search_all(self.fake, "training", filter="Type/Id eq 'qualification'")
        self.assertEqual(len(named), sum(1 for x in self.comps.values() if x["ComponentType"] == "Qualification"))
        pkg = self.qual["ParentCode"]
        part, _ = search_all(self.fake, "training", filter="Type/Id eq 4 and TrainingPackage/Code eq '%s'" % pkg)
        self.assertEqual([i["code"] for i in part], sorted(c for c, x in self.comps.items()
                                                           if x["ComponentType"] == "Unit" and x["ParentCode"] == pkg))
        sup, _ = search_all(self.fake, "training", filter="Status/IsCurrent eq false")
        self.assertEqual({i["code"] for i in sup}, {c for c, x in self.comps.items() if not x["IsCurrent"]})
        ranged, _ = search_all(self.fake, "training", filter="Type/Id eq 4 and Code ge 'AH' and Code lt 'AM'")
        self.assertEqual([i["code"] for i in ranged], sorted(c for c, x in self.comps.items()
                                                             if x["ComponentType"] == "Unit" and "AH" <= c < "AM"))
        self.assertTrue(ranged)
        desc = self.fake.json("/api/search/training?" + q(filter="Type/Id eq 2", orderBy="Code desc", pageSize=3))
        self.assertEqual([i["code"] for i in desc["data"]],
                         sorted((c for c, x in self.comps.items() if x["ComponentType"] == "Qualification"),
                                reverse=True)[:3])
        for bad in ("Typo eq 2", "Type/Id eq", "Type/Id eq 'nonsense'", "(Type/Id eq 2"):
            st, h, body = self.fake.get("/api/search/training?" + q(filter=bad))
            self.assertEqual(st, 400, bad)
            self.assertIn("filter", json.loads(body)["errors"])
        st, _, _ = self.fake.get("/api/search/training?" + q(orderBy="Nope asc"))
        self.assertEqual(st, 400)

    def test_search_text(self):
        res = self.fake.json("/api/search/training?" + q(searchText=self.qual["Code"].lower(), includeTotalCount="true"))
        self.assertEqual(res["data"][0]["code"], self.qual["Code"])
        word = self.qual["Title"].split()[-1]
        items, _ = search_all(self.fake, "training", searchText=word)
        self.assertTrue(all(word.lower() in (i["title"] + i["code"]).lower() for i in items))
        self.assertIn(self.qual["Code"], [i["code"] for i in items])

    # ---------------------------------------------------------------------------------------- details & grids

    def test_detail_shape(self):
        d = self.fake.json("/api/training/%s" % self.qual["Code"].lower())  # codes match case-insensitively
        self.assertEqual((d["code"], d["title"], d["type"]), (self.qual["Code"], self.qual["Title"], "qualification"))
        self.assertEqual([r["releaseNumber"] for r in d["releases"]],
                         [r["ReleaseNumber"] for r in reversed(self.qual["Releases"])])  # newest first
        r0 = d["releases"][0]
        self.assertEqual(set(r0), {"id", "releaseNumber", "releaseDate", "currency", "approvalProcess",
                                   "packagingInformation", "assets"})
        self.assertEqual(r0["currency"], "current")
        self.assertTrue(all(r["currency"] == "replaced" for r in d["releases"][1:]))
        self.assertEqual(set(d["taxonomy"]), {"industrySectors", "occupations"})
        self.assertEqual(d["updatedDate"], self.qual["UpdatedDate"])
        st, h, body = self.fake.get("/api/training/NOPE123")
        self.assertEqual((st, h["content-type"].split(";")[0], json.loads(body)["status"]),
                         (404, "application/problem+json", 404))

    def test_release_and_unitgrid(self):
        code = self.qual["Code"]
        d = self.fake.json("/api/training/%s" % code)
        for soap_rel, rest_rel in zip(reversed(self.qual["Releases"]), d["releases"]):
            by_number = self.fake.json("/api/training/%s/releases/%s/unitgrid" % (code, rest_rel["releaseNumber"]))
            by_id = self.fake.json("/api/training/%s/releases/%s/unitgrid" % (code, rest_rel["id"]))
            self.assertEqual(by_number, by_id)
            self.assertIsInstance(by_number, list)  # a bare array
            expected = [(e["Code"], e["Title"], e["IsEssential"]) for e in soap_rel["UnitGrid"] or ()]
            self.assertEqual([(e["code"], e["title"], e["isEssential"]) for e in by_number], expected)
            for e in by_number:
                self.assertEqual(set(e), {"code", "title", "isEssential", "isEssentialLabel", "usageRecommendation",
                                          "usageRecommendationLabel", "hasPreRequisites", "links"})
                self.assertEqual(e["isEssentialLabel"], "Core" if e["isEssential"] else "Elective")
                self.assertEqual(e["links"][0]["rel"], "training-component")
                self.assertTrue(e["links"][0]["href"].endswith("/api/training/" + e["code"].lower()))
            rel = self.fake.json("/api/training/%s/releases/%s" % (code, rest_rel["releaseNumber"]))
            self.assertEqual((rel["components"], rel["companionVolumeLinks"]), (None, None))
            if soap_rel["UnitGrid"]:
                core = sum(1 for e in soap_rel["UnitGrid"] if e["IsEssential"])
                self.assertEqual(rel["packagingInformation"]["core"], core)
        tp = next(c for c in self.comps.values() if c["ComponentType"] == "TrainingPackage")
        rel = self.fake.json("/api/training/%s/releases/%s" % (tp["Code"], tp["Releases"][-1]["ReleaseNumber"]))
        self.assertEqual(len(rel["components"]), len(tp["Releases"][-1]["Components"]))
        self.assertEqual(self.fake.json("/api/training/%s/releases/%s/unitgrid"
                                        % (tp["Code"], tp["Releases"][-1]["ReleaseNumber"])), [])
        for path in ("/api/training/%s/releases/99/unitgrid" % code, "/api/training/%s/releases/99" % code,
                     "/api/training/NOPE/releases/1/unitgrid"):
            self.assertEqual(self.fake.get(path)[0], 404, path)

    # ---------------------------------------------------------------------------------------- organisations

    def test_organisation_endpoints(self):
        code = self.rto["Code"]
        s = self.fake.json("/api/organisation/%s" % code)
        self.assertEqual((s["code"], s["legalName"], s["statusLabel"]),
                         (code, self.rto["LegalName"], self.rto["RegistrationStatus"]))
        self.assertNotIn("tradingNames", s)
        full = self.fake.json("/api/organisation/%s?include=all" % code)
        for key, sub in (("legalNames", "legalname"), ("tradingNames", "tradingname"), ("addresses", "addresses"),
                         ("webAddresses", "webaddress"), ("contacts", "contacts"), ("registrations", "registration"),
                         ("registrationManagers", "registrationmanager"), ("restrictions", "restrictions"),
                         ("regulatoryDecisions", "regulatorydecision")):
            self.assertEqual(full[key], self.fake.json("/api/organisation/%s/%s" % (code, sub)), sub)
        self.assertEqual(full["classifications"], self.fake.json("/api/organisation/%s/classification" % code))
        self.assertEqual([x["name"] for x in full["tradingNames"]], [x["Name"] for x in self.rto["TradingNames"]])
        self.assertEqual(self.fake.json("/api/organisation/%s/deliverynotificationhistory/%s"
                                        % (code, self.qual["Code"])), [])
        summary = self.fake.json("/api/organisation/%s/scopesummary" % code)
        self.assertEqual(sum(x["totalCount"] for x in summary), self.rto["ScopeCount"])
        self.assertEqual(sum(x["implicitCount"] for x in summary),
                         sum(1 for x in self.rto["Scopes"] if x["IsImplicit"]))
        for path in ("/api/organisation/99999", "/api/organisation/99999/scope", "/api/organisation/99999/contacts"):
            self.assertEqual(self.fake.get(path)[0], 404, path)
        st, _, _ = self.fake.get("/api/nothing/here")
        self.assertEqual(st, 404)
        st, h, _ = self.fake.http("POST", "/api/metadata", b"{}")
        self.assertEqual((st, h.get("allow")), (405, "GET"))

    def test_organisation_search(self):
        items, total = search_all(self.fake, "organisation", size=13)
        self.assertEqual([i["code"] for i in items], sorted(self.orgs))
        self.assertEqual(total, len(self.orgs))
        item = next(i for i in items if i["code"] == self.rto["Code"])
        self.assertEqual((item["legalName"], item["registration"]["statusLabel"]),
                         (self.rto["LegalName"], self.rto["RegistrationStatus"]))
        self.assertEqual(abns(item["abns"]), self.rto["ResponsibleLegalPersons"][0]["Abns"])
        unit = next(x["NrtCode"] for x in self.rto["Scopes"] if x["IsImplicit"])
        holders = {o["Code"] for o in self.dump["Organisations"]
                   if any(x["NrtCode"] == unit for x in o["Scopes"])}
        explicit = {o["Code"] for o in self.dump["Organisations"]
                    if any(x["NrtCode"] == unit and not x["IsImplicit"] for x in o["Scopes"])}
        got, _ = search_all(self.fake, "organisation", trainingCode=unit, includeImplicit="true")
        self.assertEqual({i["code"] for i in got}, holders)
        got, _ = search_all(self.fake, "organisation", trainingCode=unit)
        self.assertEqual({i["code"] for i in got}, explicit)
        cur, _ = search_all(self.fake, "organisation", filter="Status/Id eq 'current'")
        self.assertEqual({i["code"] for i in cur},
                         {c for c, o in self.orgs.items() if o["RegistrationStatus"] == "Current"})

    def test_scope_paging_and_filters(self):
        code = self.rto["Code"]
        rows = []
        for ctype in ("qualification", "skillSet", "accreditedCourse", "unit", "trainingPackage"):
            got, total = scope_all(self.fake, code, ctype, size=7)
            self.assertEqual([x["code"] for x in got], sorted(x["code"] for x in got))  # sorts=code
            self.assertTrue(all(x["componentType"] == ctype for x in got))
            rows += got
        self.assertEqual(sorted(scope_from_rest(x)["NrtCode"] for x in rows),
                         sorted(x["NrtCode"] for x in self.rto["Scopes"]))
        self.assertEqual(sorted(json.dumps(scope_from_rest(x), sort_keys=True) for x in rows),
                         sorted(json.dumps(x, sort_keys=True) for x in self.rto["Scopes"]))
        row = rows[0]
        self.assertEqual(set(row), {"code", "title", "componentType", "componentTypeLabel", "extent", "extentLabel",
                                    "isImplicit", "isRefused", "status", "statusLabel", "startDate", "endDate"})
        # includeImplicitItems defaults to false: explicit rows only
        explicit, _ = scope_all(self.fake, code, "unit", implicit=False)
        self.assertEqual(sorted(x["code"] for x in explicit),
                         sorted(x["NrtCode"] for x in self.rto["Scopes"]
                                if x["TrainingComponentType"] == "Unit" and not x["IsImplicit"]))
        implicit, _ = scope_all(self.fake, code, "unit", extra="isImplicit==true")
        self.assertEqual(sorted(x["code"] for x in implicit),
                         sorted(x["NrtCode"] for x in self.rto["Scopes"] if x["IsImplicit"]))
        # several types at once: merged in code order; "-code" reverses
        multi, total = scope_all(self.fake, code, "qualification|skillSet")
        self.assertEqual([x["code"] for x in multi], sorted(x["code"] for x in multi))
        page = self.fake.json("/api/organisation/%s/scope?%s" % (code, q(
            filters="componentType==qualification|skillSet", sorts="-code", pageSize=total)))
        self.assertEqual([x["code"] for x in page["value"]], [x["code"] for x in reversed(multi)])
        # DateNullSearch: rows without an end date or ending on/after the day
        day = "2026-01-01"
        cur, _ = scope_all(self.fake, code, "unit", extra="DateNullSearch==%s" % day)
        self.assertEqual(sorted(x["code"] for x in cur),
                         sorted(x["NrtCode"] for x in self.rto["Scopes"] if x["TrainingComponentType"] == "Unit"
                                and (x["EndDate"] is None or x["EndDate"] >= day)))
        st, _, _ = self.fake.get("/api/organisation/%s/scope?%s" % (code, q(filters="DateNullSearch==notadate")))
        self.assertEqual(st, 400)
        prefix = next(x["code"] for x in rows if x["componentType"] == "unit")[:4]
        pre, _ = scope_all(self.fake, code, "unit", extra="code_=%s" % prefix)
        self.assertEqual(sorted(x["code"] for x in pre),
                         sorted(x["NrtCode"] for x in self.rto["Scopes"] if x["NrtCode"].startswith(prefix)))
        # a scope without rows pages fine
        empty = next(o for o in self.dump["Organisations"] if o["ScopeCount"] == 0)["Code"]
        self.assertEqual(self.fake.json("/api/organisation/%s/scope?filters=componentType==unit" % empty),
                         {"count": 0, "value": []})

    def test_scope_quirk_isimplicit_false_is_500(self):
        code = self.rto["Code"]
        for filters in ("componentType==unit;isImplicit==false", "componentType==unit,isImplicit==false",
                        "isImplicit==false", "isImplicit!=true"):
            st, h, body = self.fake.get("/api/organisation/%s/scope?%s" % (code, q(filters=filters)))
            self.assertEqual(st, 500, filters)
        self.assertEqual(self.fake.get("/api/organisation/%s/scope?%s" % (code, q(
            filters="componentType==unit,isImplicit==true", includeImplicitItems="true")))[0], 200)

    def test_scope_quirk_unfiltered_omits_current_qualifications(self):
        code = next(o for o in self.dump["Organisations"]
                    if any(x["TrainingComponentType"] == "Qualification" and x["ScopeDecisionType"] == "Granted"
                           for x in o["Scopes"]) and
                    any(x["TrainingComponentType"] == "Qualification" and x["ScopeDecisionType"] != "Granted"
                        for x in o["Scopes"]))["Code"]
        scopes = self.orgs[code]["Scopes"]
        got, total = scope_all(self.fake, code, None, size=9)
        expected = sorted(x["NrtCode"] for x in scopes
                          if not (x["TrainingComponentType"] == "Qualification"
                                  and x["ScopeDecisionType"] == "Granted"))
        self.assertEqual(sorted(x["code"] for x in got), expected)
        self.assertEqual([x["code"] for x in got], sorted(x["code"] for x in got))
        quals, _ = scope_all(self.fake, code, "qualification")
        self.assertEqual(sorted(x["code"] for x in quals),
                         sorted(x["NrtCode"] for x in scopes if x["TrainingComponentType"] == "Qualification"))
        stats = self.fake.control("stats")
        self.assertGreater(stats["quirks"].get("unfiltered_scope", 0), 0)

    # ---------------------------------------------------------------------------------------- quirks

    def test_oversize_page_is_417(self):
        code = self.rto["Code"]
        for path in ("/api/search/training?pageSize=101", "/api/search/organisation?pageSize=101",
                     "/api/organisation/%s/scope?pageSize=101&filters=componentType==unit" % code):
            st, h, body = self.fake.get(path)
            self.assertEqual(st, 417, path)
            self.assertEqual(json.loads(body)["status"], 417)
            self.assertEqual(self.fake.get(path.replace("101", "100"))[0], 200)
        self.fake.control("config", {"oversize_status": 500})
        self.assertEqual(self.fake.get("/api/search/training?pageSize=101")[0], 500)
        for bad in ("pageSize=0", "pageSize=abc", "offset=-1", "offset=x"):
            st, _, body = self.fake.get("/api/search/training?" + bad)
            self.assertEqual(st, 400, bad)

    def test_offset_cap(self):
        self.fake.control("config", {"offset_cap": 100})
        code = self.rto["Code"]
        for base in ("/api/search/training?filter=Type/Id%20eq%204&pageSize=50",
                     "/api/search/organisation?pageSize=50",
                     "/api/organisation/%s/scope?filters=componentType==unit&includeImplicitItems=true&pageSize=50"
                     % code):
            self.assertEqual(self.fake.get(base + "&offset=99")[0], 200, base)
            st, _, body = self.fake.get(base + "&offset=100")
            self.assertEqual(st, 400, base)
            self.assertIn("100", json.loads(body)["detail"])
        # a client gets past the cap by partitioning, e.g. by training package
        units = sum(1 for x in self.comps.values() if x["ComponentType"] == "Unit")
        self.assertGreater(units, 100)
        seen = []
        for pkg in sorted({x["ParentCode"] for x in self.comps.values() if x["ComponentType"] == "Unit"}):
            seen += search_all(self.fake, "training", size=50,
                               filter="Type/Id eq 4 and TrainingPackage/Code eq '%s'" % pkg)[0]
        self.assertEqual(len(seen), units)
        self.fake.control("config", {"offset_cap_status": 500})
        self.assertEqual(self.fake.get("/api/search/organisation?offset=100")[0], 500)

    def test_rate_limit_429(self):
        self.fake.control("config", {"rate_limit": 5, "rate_window": 1})
        statuses = [self.fake.get("/api/metadata") for _ in range(7)]
        self.assertEqual([s[0] for s in statuses], [200] * 5 + [429] * 2)
        st, h, body = statuses[5]
        self.assertEqual(h["retry-after"], "1")
        self.assertIn("Rate limit", json.loads(body)["message"])
        time.sleep(int(h["retry-after"]) + 0.05)
        self.assertEqual(self.fake.get("/api/metadata")[0], 200)
        self.assertGreaterEqual(self.fake.control("stats")["quirks"]["rate_limited"], 2)

    # ---------------------------------------------------------------------------------------- faults

    def test_fault_status_kinds(self):
        families = {"search_training": "/api/search/training", "training": "/api/training/%s" % self.qual["Code"],
                    "unitgrid": "/api/training/%s/releases/1/unitgrid" % self.qual["Code"],
                    "search_organisation": "/api/search/organisation",
                    "organisation": "/api/organisation/%s/contacts" % self.rto["Code"],
                    "scope": "/api/organisation/%s/scope" % self.rto["Code"], "metadata": "/api/metadata"}
        for kind, status, ctype in (("http500", 500, "application/problem+json"), ("http503", 503, "text/html"),
                                    ("http429", 429, "application/json"), ("http417", 417, "application/problem+json"),
                                    ("html", 200, "text/html"), ("redirect", 302, "text/html")):
            for op, path in families.items():
                self.arm(kind, op=op, retry_after=7)
                other = families["metadata" if op != "metadata" else "training"]
                self.assertEqual(self.fake.get(other)[0], 200, (kind, op))  # another family is not affected
                st, h, body = self.fake.get(path)
                self.assertEqual(st, status, (kind, op))
                self.assertTrue(h["content-type"].startswith(ctype), (kind, h))
                if kind == "http429":
                    self.assertEqual(h["retry-after"], "7")
                if kind == "redirect":
                    self.assertIn("/_fake/login", h["location"])
                self.assertEqual(self.fake.get(path)[0], 200, (kind, op))  # count 1: normal again

    def test_fault_connection_kinds(self):
        path = "/api/organisation/%s/scope?filters=componentType==unit&includeImplicitItems=true&pageSize=100" \
            % self.rto["Code"]
        self.arm("reset", op="scope")
        with self.assertRaises((ConnectionError, http.client.IncompleteRead, http.client.RemoteDisconnected)):
            self.fake.get(path, fresh=True)
        self.arm("truncate", op="scope")
        with self.assertRaises(http.client.IncompleteRead):
            self.fake.get(path, fresh=True)
        self.arm("malformed", op="scope")
        st, h, body = self.fake.get(path, fresh=True)
        self.assertEqual(st, 200)
        with self.assertRaises(ValueError):
            json.loads(body)
        self.arm("hang", op="metadata", hold=3)
        with self.assertRaises(socket.timeout):
            self.fake.get("/api/metadata", fresh=True, timeout=0.5)
        self.arm("slow", op="metadata", delay=0.4)
        t0 = time.time()
        self.assertEqual(self.fake.get("/api/metadata", fresh=True)[0], 200)
        self.assertGreaterEqual(time.time() - t0, 0.4)
        self.arm("drip", op="metadata", interval=0.002)
        t0 = time.time()
        st, _, body = self.fake.get("/api/metadata", fresh=True)
        self.assertEqual(st, 200)
        json.loads(body)
        self.assertGreater(time.time() - t0, 0.1)
        self.assertEqual(self.fake.get(path, fresh=True)[0], 200)

    def test_fault_matching(self):
        self.arm("http503", op="*", match="/releases/", count=2)
        self.assertEqual(self.fake.get("/api/training/%s" % self.qual["Code"])[0], 200)
        for _ in range(2):
            self.assertEqual(self.fake.get("/api/training/%s/releases/1/unitgrid" % self.qual["Code"])[0], 503)
        self.assertEqual(self.fake.get("/api/training/%s/releases/1/unitgrid" % self.qual["Code"])[0], 200)
        self.arm("http500", op="training", skip=1, count=1)
        self.assertEqual(self.fake.get("/api/training/%s" % self.qual["Code"])[0], 200)
        self.assertEqual(self.fake.get("/api/training/%s" % self.qual["Code"])[0], 500)
        self.assertEqual(self.fake.get("/api/training/%s" % self.qual["Code"])[0], 200)
        self.arm("http500", count=-1)
        for _ in range(3):
            self.assertEqual(self.fake.get("/api/metadata")[0], 500)
        self.assertEqual(len(self.fake.control("fault")), 1)
        self.fake.control("fault/clear", {})
        self.assertEqual(self.fake.get("/api/metadata")[0], 200)
        st, _, body = self.fake.http("POST", "/_fake/fault", json.dumps({"kind": "nope"}).encode())
        self.assertEqual(st, 400)
        st, _, body = self.fake.http("POST", "/_fake/fault", json.dumps({"kind": "http500", "op": "x"}).encode())
        self.assertEqual(st, 400)

    def test_stats(self):
        self.fake.control("stats/reset", {})
        self.fake.get("/api/metadata")
        self.fake.get("/api/organisation/%s/scope?filters=componentType==unit&includeImplicitItems=true&pageSize=10"
                      % self.rto["Code"])
        self.fake.get("/api/training/%s/releases/1/unitgrid" % self.qual["Code"])
        s = self.fake.control("stats")
        self.assertEqual(s["requests"], 3)
        self.assertEqual(s["by_op"], {"metadata": 1, "scope": 1, "unitgrid": 1})
        self.assertEqual(s["by_endpoint"]["organisation/scope"], 1)
        self.assertEqual(s["scope_rows_served"], 10)
        self.assertGreater(s["bytes_sent"], 1000)
        self.assertEqual(sum(s["bytes_by_op"].values()), s["bytes_sent"])


class Mutations(unittest.TestCase):
    """Mutations, the metadata probe and the clock, on a server of their own."""

    @classmethod
    def setUpClass(cls):
        cls.fake = FakeServer(REST, "--frozen-clock", "--now", NOW)

    @classmethod
    def tearDownClass(cls):
        cls.fake.stop()

    def sync_time(self):
        return self.fake.json("/api/metadata")["dataExportSynchronisationDateTime"]

    def test_metadata_moves_with_mutations(self):
        fake = self.fake
        before = self.sync_time()
        fake.control("clock", {"now": "2026-03-01T00:00:00Z"})
        self.assertEqual(self.sync_time(), before)  # the clock alone changes nothing
        r = fake.control("mutate", {"action": "random", "fraction": 0.0, "seed": 1})
        self.assertEqual((r["changes"], self.sync_time()), ({}, before))  # nothing changed: no new sync time
        dump = fake.control("dump?scopes=0")
        qual = next(c for c in dump["TrainingComponents"] if c["ComponentType"] == "Qualification")
        r = fake.control("mutate", {"action": "update", "kind": "qualification", "code": qual["Code"],
                                    "title": "Certificate III in Testing"})
        self.assertEqual(r["changes"], {"qualification": {"update": [qual["Code"]]}})
        self.assertEqual(self.sync_time(), "2026-03-01T00:00:00Z")
        d = fake.json("/api/training/%s" % qual["Code"])
        self.assertEqual((d["title"], d["updatedDate"]), ("Certificate III in Testing", "2026-03-01T00:00:00Z"))
        self.assertEqual(len(d["releases"]), len(qual["Releases"]) + 1)
        self.assertEqual(d["releases"][0]["releaseDate"], "2026-03-01")
        self.assertEqual(fake.json("/api/training/%s/releases/%s/unitgrid"
                                   % (qual["Code"], d["releases"][0]["releaseNumber"])),
                         fake.json("/api/training/%s/releases/%s/unitgrid"
                                   % (qual["Code"], d["releases"][1]["releaseNumber"])))
        hit = fake.json("/api/search/training?" + q(searchText="Testing", filter="Type/Id eq 2"))
        self.assertIn(qual["Code"], [i["code"] for i in hit["data"]])
        fake.control("clock", {"advance": 3600})
        r = fake.control("mutate", {"action": "touch_metadata"})
        self.assertEqual((r["changes"], self.sync_time()), ({}, "2026-03-01T01:00:00Z"))

    def test_delete_supersede_and_scope(self):
        fake = self.fake
        fake.control("clock", {"now": "2026-04-01T00:00:00Z"})
        dump = fake.control("dump")
        unit = next(c for c in dump["TrainingComponents"] if c["ComponentType"] == "Unit" and c["IsCurrent"])
        grid_qual = next(c for c in dump["TrainingComponents"] if c["ComponentType"] == "Qualification"
                         and any(e["Code"] == unit["Code"] for e in c["Releases"][-1]["UnitGrid"] or ()))
        r = fake.control("mutate", {"action": "supersede", "kind": "unit", "code": unit["Code"]})
        new = next(c for c in r["changes"]["unit"]["add"])
        item = fake.json("/api/search/training?" + q(searchText=unit["Code"]))["data"][0]
        self.assertEqual((item["status"]["isCurrent"], item["supersededBy"][0]["code"]), (False, new))
        grid = fake.json("/api/training/%s/releases/%s/unitgrid"
                         % (grid_qual["Code"], grid_qual["Releases"][-1]["ReleaseNumber"]))
        entry = next(e for e in grid if e["code"] == unit["Code"])
        self.assertEqual(entry["usageRecommendation"], "superseded")  # the grid follows the unit's own state
        qual = next(c for c in dump["TrainingComponents"] if c["ComponentType"] == "Qualification"
                    and c["Code"] != grid_qual["Code"])
        fake.control("mutate", {"action": "delete", "kind": "qualification", "code": qual["Code"]})
        self.assertEqual(fake.get("/api/training/%s" % qual["Code"])[0], 404)
        self.assertNotIn(qual["Code"], [i["code"] for i in search_all(fake, "training", filter="Type/Id eq 2")[0]])
        rto = max(dump["Organisations"], key=lambda o: o["ScopeCount"])
        gone = next(x["NrtCode"] for x in rto["Scopes"] if not x["IsImplicit"])
        r = fake.control("mutate", {"action": "scope", "code": rto["Code"], "add": [new], "remove": [gone]})
        rows = []
        for s in fake.json("/api/organisation/%s/scopesummary" % rto["Code"]):
            rows += scope_all(fake, rto["Code"], s["componentType"])[0]
        codes = {x["code"] for x in rows}
        self.assertIn(new, codes)
        self.assertNotIn(gone, codes)
        self.assertEqual(fake.json("/api/organisation/%s" % rto["Code"])["updatedDate"], "2026-04-01T00:00:00Z")
        fake.control("mutate", {"action": "delete", "kind": "rto", "code": rto["Code"]})
        self.assertEqual(fake.get("/api/organisation/%s/scope" % rto["Code"])[0], 404)
        self.assertNotIn(rto["Code"], [i["code"] for i in search_all(fake, "organisation")[0]])
        st, _, body = fake.http("POST", "/_fake/mutate", json.dumps({"action": "explode"}).encode())
        self.assertEqual(st, 400)


class CrossCheck(unittest.TestCase):
    """The REST fake and the SOAP fake serve the same register (same scale, seed and clock)."""

    @classmethod
    def setUpClass(cls):
        cls.rest = FakeServer(REST, "--frozen-clock", "--now", NOW, "--max-page-size", "100")
        cls.soap = FakeServer(SOAP, "--frozen-clock", "--now", NOW)

    @classmethod
    def tearDownClass(cls):
        cls.rest.stop()
        cls.soap.stop()

    def assert_same_register(self):
        soap = self.soap.control("dump")
        rest = crawl(self.rest)
        self.assertEqual([c["Code"] for c in rest["TrainingComponents"]],
                         [c["Code"] for c in soap["TrainingComponents"]])
        for a, b in zip(rest["TrainingComponents"], soap["TrainingComponents"]):
            self.assertEqual(a, b, a["Code"])
        self.assertEqual([o["Code"] for o in rest["Organisations"]], [o["Code"] for o in soap["Organisations"]])
        for a, b in zip(rest["Organisations"], soap["Organisations"]):
            # "Kind" is GetDetails' i:type (Rto3 or Organisation2); the REST API serves no such field.
            self.assertEqual(a, {k: v for k, v in b.items() if k != "Kind"}, a["Code"])
        return soap

    def test_1_rest_crawl_rebuilds_the_soap_register(self):
        soap = self.assert_same_register()
        self.assertGreater(sum(o["ScopeCount"] for o in soap["Organisations"]), 1000)

    def test_2_same_content_on_the_wire(self):
        """A few components and RTOs, SOAP GetDetails against the REST endpoints directly."""
        dump = self.soap.control("dump")
        quals = [c for c in dump["TrainingComponents"] if c["ComponentType"] == "Qualification"][:3]
        skill = next(c for c in dump["TrainingComponents"] if c["ComponentType"] == "SkillSet")
        for c in quals + [skill]:
            code = c["Code"]
            res = soap_call(self.soap, "Training", "GetDetails",
                            "<request><Code>%s</Code><InformationRequest><ShowReleases>true</ShowReleases>"
                            "<ShowUnitGrid>true</ShowUnitGrid></InformationRequest></request>" % code)
            d = self.rest.json("/api/training/%s" % code)
            self.assertEqual((d["code"], d["title"]), (res.findtext(t("Code")), res.findtext(t("Title"))))
            soap_rels = res.find(t("Releases"))
            self.assertEqual([r["releaseNumber"] for r in reversed(d["releases"])],
                             [r.findtext(t("ReleaseNumber")) for r in soap_rels])
            for r in soap_rels:
                n = r.findtext(t("ReleaseNumber"))
                soap_grid = [(e.findtext(t("Code")), e.findtext(t("Title")), e.findtext(t("IsEssential")) == "true")
                             for e in (r.find(t("UnitGrid")) if r.find(t("UnitGrid")) is not None else ())]
                rest_grid = [(e["code"], e["title"], e["isEssential"])
                             for e in self.rest.json("/api/training/%s/releases/%s/unitgrid" % (code, n))]
                self.assertEqual(rest_grid, soap_grid, (code, n))
        orgs = sorted(dump["Organisations"], key=lambda o: -o["ScopeCount"])[:3]
        for o in orgs:
            res = soap_call(self.soap, "Organisation", "GetDetails",
                            "<request><Code>%s</Code><InformationRequested><ShowExplicitScope>true</ShowExplicitScope>"
                            "<ShowImplicitScope>true</ShowImplicitScope><ShowTradingNames>true</ShowTradingNames>"
                            "</InformationRequested></request>" % o["Code"])
            soap_rows = sorted((s.findtext(t("NrtCode")), s.findtext(t("TrainingComponentType")),
                                s.findtext(t("IsImplicit")) == "true", s.findtext(t("IsRefused")) == "true",
                                s.findtext(t("ScopeDecisionType")), s.findtext(t("ExtentCode")),
                                s.findtext(t("StartDate")), s.findtext(t("EndDate")))
                               for s in res.find(t("Scopes")))
            rest_rows = []
            for ctype in ("qualification", "skillSet", "accreditedCourse", "unit"):
                rest_rows += scope_all(self.rest, o["Code"], ctype, size=100)[0]
            self.assertEqual(sorted((x["code"], REST_TO_SOAP_TYPE[x["componentType"]], x["isImplicit"],
                                     x["isRefused"], x["statusLabel"], x["extent"], x["startDate"], x["endDate"])
                                    for x in rest_rows), soap_rows, o["Code"])
            self.assertEqual([x["name"] for x in self.rest.json("/api/organisation/%s/tradingname" % o["Code"])],
                             [n.findtext(t("Name")) for n in res.find(t("TradingNames"))])

    def test_3_same_after_the_same_mutations(self):
        spec = {"action": "random", "fraction": 0.05, "seed": 7}
        for fake in (self.rest, self.soap):
            fake.control("clock", {"now": "2026-02-10T00:00:00Z"})
        a = self.rest.control("mutate", spec)
        b = self.soap.control("mutate", spec)
        self.assertEqual(a["changes"], b["changes"])
        self.assertEqual(self.rest.json("/api/metadata")["dataExportSynchronisationDateTime"], "2026-02-10T00:00:00Z")
        self.assert_same_register()


if __name__ == "__main__":
    unittest.main(verbosity=2)
