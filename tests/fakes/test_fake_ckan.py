#!/usr/bin/python3
"""Tests of the fake data.gov.au CKAN server (fake_ckan.py) against the reference, over raw HTTP.

Run: /usr/bin/python3 tests/fakes/test_fake_ckan.py   (scale small, a few seconds; exits non-zero on failure)
"""

import csv
import hashlib
import http.client
import io
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest
import zipfile
from pathlib import Path
from urllib.parse import urlencode, urlsplit

HERE = Path(__file__).resolve().parent
import cricos_editions as ce
import fakeproc
import nrt_codes

SAMPLE_ENVELOPE = ce.samples_dir().parent / "ckan-api" / "datagovau-datastore_search-response-shape.json"
RID = {t: ce.RESOURCES[t]["id"] for t in ce.TABLES}
API = "/data/api/3/action/"
API_NOVER = "/data/api/action/"


class Fake:
    """One fake_ckan.py process on a random port."""

    def __init__(self, *args):
        self.dir = tempfile.mkdtemp(prefix="fake_ckan_test.")
        port_file = os.path.join(self.dir, "port")
        self.log = open(os.path.join(self.dir, "stderr"), "w+")
        self.proc, self.port = fakeproc.launch([sys.executable, str(HERE / "fake_ckan.py"), "--port", "0",
                                                "--port-file", port_file] + list(args), port_file, self.log, 30,
                                               stdout=subprocess.DEVNULL)

    def stop(self):
        self.log.close()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                return self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                return None
        return self.proc.returncode

    # -- raw HTTP ------------------------------------------------------------------------------------------------
    def request(self, method, path, body=None, headers=None, timeout=10):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            status, hdrs, data = fakeproc.exchange(conn, method, path, body, headers)
            return status, dict(hdrs), data
        finally:
            conn.close()

    def get(self, path, **params):
        if params:
            path += "?" + urlencode(params)
        return self.request("GET", path)

    def action(self, name, method="GET", prefix=API, **params):
        if method == "GET":
            status, headers, body = self.get(prefix + name, **params)
        else:
            status, headers, body = self.request("POST", prefix + name, params)
        return status, headers, json.loads(body)

    def control(self, path, body=None):
        status, _, data = self.request("POST" if body is not None else "GET", "/_fake/" + path, body)
        assert status == 200, (path, status, data)
        return json.loads(data)

    def mutate(self, **body):
        return self.control("mutate", body)

    def fault(self, **body):
        return self.control("fault", body)

    def dump(self):
        return self.control("dump")

    def page_all(self, table, limit=37, method="POST"):
        records, offset, total = [], 0, None
        while True:
            status, _, doc = self.action("datastore_search", method, resource_id=RID[table], limit=limit,
                                         offset=offset)
            assert status == 200, doc
            res = doc["result"]
            total = res["total"]
            records += res["records"]
            offset += len(res["records"])
            if not res["records"] or offset >= total:
                return records, total


class FakeCkanTest(unittest.TestCase):
    fake = None

    @classmethod
    def setUpClass(cls):
        cls.fake = Fake("--scale", "small")

    @classmethod
    def tearDownClass(cls):
        rc = cls.fake.stop()
        assert rc == 0, "fake did not stop cleanly on SIGTERM (rc %r)" % rc

    def setUp(self):
        f = self.fake
        f.control("fault/clear", {})
        f.mutate(action="edition", edition=1)
        f.mutate(action="bom_field", mode="strip")
        f.mutate(action="blanks", mode="null")
        f.mutate(action="rows_max", value=32000)
        f.mutate(action="page_delay", seconds=0, per_1000=0)

    # -- envelope ------------------------------------------------------------------------------------------------
    def test_envelope_matches_real_sample(self):
        sample = json.loads(SAMPLE_ENVELOPE.read_text())
        status, headers, doc = self.fake.action("datastore_search", prefix=API_NOVER, q="jones",
                                                resource_id=RID["institutions"])
        self.assertEqual(status, 200)
        self.assertEqual(headers["Content-Type"], "application/json;charset=utf-8")
        self.assertEqual(list(doc), list(sample))
        self.assertEqual(list(doc["result"]), list(sample["result"]))
        self.assertTrue(doc["help"].endswith("/data/api/3/action/help_show?name=datastore_search"))
        self.assertEqual(doc["result"]["limit"], 100)
        self.assertIsNone(doc["result"]["total_estimation_threshold"])
        self.assertFalse(doc["result"]["total_was_estimated"])
        self.assertEqual(doc["result"]["records_format"], "objects")
        # _links exactly as data.gov.au builds them: relative to the CKAN root /data, query as sent
        self.assertEqual(doc["result"]["_links"]["start"],
                         "/api/action/datastore_search?q=jones&resource_id=" + RID["institutions"])
        self.assertEqual(doc["result"]["_links"]["next"],
                         "/api/action/datastore_search?q=jones&resource_id=%s&offset=100" % RID["institutions"])
        # with q, CKAN adds a float "rank" field (the sample shows it last)
        self.assertEqual(doc["result"]["fields"][-1], {"id": "rank", "type": "float"})
        self.assertEqual(sample["result"]["fields"][-1], {"id": "rank", "type": "float"})
        for r in doc["result"]["records"]:
            self.assertIn("jones", json.dumps(r).lower())
            self.assertIsInstance(r["rank"], float)
        # without q: the same keys less q, and offset when given
        _, _, doc = self.fake.action("datastore_search", resource_id=RID["courses"], limit=5, offset=10)
        keys = [k for k in sample["result"] if k != "q"]
        keys.insert(keys.index("records_format"), "offset")
        self.assertEqual(list(doc["result"]), keys)
        self.assertEqual(doc["result"]["fields"][0], {"id": "_id", "type": "int"})
        self.assertEqual([f["id"] for f in doc["result"]["fields"][1:]], list(ce.HEADERS["courses"]))
        self.assertTrue(all(f["type"] == "text" for f in doc["result"]["fields"][1:]))
        self.assertEqual([r["_id"] for r in doc["result"]["records"]], list(range(11, 16)))
        self.assertEqual(list(doc["result"]["records"][0]), ["_id"] + list(ce.HEADERS["courses"]))

    def test_links_for_post_and_versioned_path(self):
        status, _, doc = self.fake.action("datastore_search", "POST", resource_id=RID["courses"], limit=50,
                                          offset=100)
        links = doc["result"]["_links"]
        # a POST has no query string: CKAN's links then carry only the offset
        self.assertEqual(links, {"start": "/api/3/action/datastore_search",
                                 "next": "/api/3/action/datastore_search?offset=150",
                                 "prev": "/api/3/action/datastore_search?offset=50"})
        _, _, doc = self.fake.action("datastore_search", resource_id=RID["courses"], limit=50, offset=50)
        self.assertNotIn("prev", doc["result"]["_links"])  # offset - limit must be > 0
        nxt = doc["result"]["_links"]["next"]
        status, _, body = self.fake.request("GET", "/data" + nxt)
        self.assertEqual(status, 200)
        self.assertEqual(json.loads(body)["result"]["offset"], 100)

    def test_package_show(self):
        for ident in ("cricos", ce.PACKAGE_ID):
            status, _, doc = self.fake.action("package_show", id=ident)
            self.assertEqual(status, 200)
            self.assertTrue(doc["success"])
            pkg = doc["result"]
            self.assertEqual((pkg["id"], pkg["name"], pkg["license_id"]), (ce.PACKAGE_ID, "cricos", "cc-by-2.5"))
            self.assertEqual(pkg["num_resources"], len(pkg["resources"]))
        res = {r["name"]: r for r in pkg["resources"]}
        for t in ce.TABLES:
            r = res[ce.RESOURCES[t]["name"]]
            self.assertEqual(r["id"], RID[t])
            self.assertTrue(r["datastore_active"])
            self.assertEqual(r["format"], "CSV")
            self.assertEqual(len(r["hash"]), 32)
            self.assertGreater(r["size"], 0)
            self.assertTrue(r["url"].endswith("/resource/%s/download/%s" % (RID[t], ce.RESOURCES[t]["file"])))
        zips = [r for r in pkg["resources"] if r["format"] == "ZIP"]
        self.assertEqual(len(zips), 1)
        self.assertFalse(zips[0]["datastore_active"])
        snaps = [r for r in pkg["resources"] if "as-at" in r["name"] or r["name"].endswith(".xlsx.xlsx")]
        self.assertGreaterEqual(len(snaps), 57)
        self.assertEqual(len({r["format"] for r in snaps}), 3)  # XLSX, excel (.xlsx), XLS
        self.assertIn("cricos-providers-courses-and-locations-as-at-2023-1-3-7-59-17.xlsx", res)
        self.assertEqual(res["cricos-providers-courses-and-locations-as-at-2023-1-3-7-59-17.xlsx"]["id"],
                         "7b3d33a0-f9c6-4d32-8799-9cecd7fc121c")
        self.assertNotIn("2022-5-", " ".join(res))  # May 2022 is missing on the real package

    def test_resource_show_and_download(self):
        for t in ce.TABLES:
            status, _, doc = self.fake.action("resource_show", id=RID[t])
            self.assertEqual(status, 200)
            r = doc["result"]
            self.assertEqual(r["name"], ce.RESOURCES[t]["name"])
            path = urlsplit(r["url"]).path
            status, headers, body = self.fake.request("GET", path)
            self.assertEqual(status, 200)
            self.assertEqual(hashlib.md5(body).hexdigest(), r["hash"])
            self.assertEqual(len(body), r["size"])
            self.assertEqual(body.startswith(b"\xef\xbb\xbf"), t == "locations")  # BOM as found
            self.assertNotIn(b"\r\n", body)
            rows = list(csv.reader(io.StringIO(body.decode("utf-8"), newline="")))
            self.assertEqual(tuple(rows[0]), ce.HEADERS[t])
            _, _, page = self.fake.action("datastore_search", resource_id=RID[t], limit=0)
            self.assertEqual(len(rows) - 1, page["result"]["total"])
        # the ZIP holds the four CSVs byte for byte, plus the field-definition PDF
        _, _, doc = self.fake.action("package_show", id="cricos")
        zres = next(r for r in doc["result"]["resources"] if r["format"] == "ZIP")
        status, _, body = self.fake.request("GET", urlsplit(zres["url"]).path)
        self.assertEqual(hashlib.md5(body).hexdigest(), zres["hash"])
        z = zipfile.ZipFile(io.BytesIO(body))
        self.assertEqual(sorted(z.namelist()), sorted([ce.RESOURCES[t]["name"] for t in ce.TABLES] +
                                                      [ce.ZIP_MEMBER_PDF]))
        self.assertTrue(z.read(ce.ZIP_MEMBER_PDF).startswith(b"%PDF-"))
        # a dated snapshot is an XLSX with the five sheets
        snap = next(r for r in doc["result"]["resources"] if r["name"].endswith("2026-5-1-%s.xlsx" %
                                                                                r["name"].split("-1-", 1)[-1][:-5]))
        status, _, body = self.fake.request("GET", urlsplit(snap["url"]).path)
        self.assertEqual(status, 200)
        wb = zipfile.ZipFile(io.BytesIO(body)).read("xl/workbook.xml").decode()
        for sheet in ("Purpose Statement", "Institutions", "Courses", "Locations", "Course Locations"):
            self.assertIn('name="%s"' % sheet, wb)

    # -- paging --------------------------------------------------------------------------------------------------
    def test_paging_get_and_post_and_dump(self):
        dump = self.fake.dump()
        for t in ce.TABLES:
            recs_post, total = self.fake.page_all(t, 37, "POST")
            recs_get, total2 = self.fake.page_all(t, 53, "GET")
            self.assertEqual(total, total2)
            self.assertEqual(len(recs_post), total)
            self.assertEqual(recs_post, recs_get)
            self.assertEqual([r["_id"] for r in recs_post], list(range(1, total + 1)))
            self.assertEqual(recs_post, dump["tables"][t])
            self.assertEqual(dump["resources"][t]["total"], total)
        _, _, doc = self.fake.action("datastore_search", resource_id=RID["courses"], offset=10 ** 6)
        self.assertEqual(doc["result"]["records"], [])

    def test_limit_default_and_clamp(self):
        _, _, doc = self.fake.action("datastore_search", resource_id=RID["course_locations"])
        self.assertEqual(doc["result"]["limit"], 100)
        self.assertEqual(len(doc["result"]["records"]), 100)
        _, _, doc = self.fake.action("datastore_search", "POST", resource_id=RID["course_locations"], limit=50000)
        self.assertEqual(doc["result"]["limit"], 32000)
        self.assertEqual(doc["result"]["_links"]["next"], "/api/3/action/datastore_search?offset=32000")
        self.fake.mutate(action="rows_max", value=60)
        _, _, doc = self.fake.action("datastore_search", resource_id=RID["course_locations"], limit=1000)
        self.assertEqual(doc["result"]["limit"], 60)
        self.assertEqual(len(doc["result"]["records"]), 60)
        self.assertTrue(doc["result"]["_links"]["next"].endswith("offset=60"))
        _, _, doc = self.fake.action("datastore_search", resource_id=RID["courses"], limit=0)
        self.assertEqual(doc["result"]["records"], [])
        self.assertGreater(doc["result"]["total"], 0)
        _, _, doc = self.fake.action("datastore_search", resource_id=RID["courses"], include_total="false")
        self.assertNotIn("total", doc["result"])
        _, _, doc = self.fake.action("datastore_search", resource_id=RID["courses"], total_estimation_threshold=1)
        self.assertTrue(doc["result"]["total_was_estimated"])

    def test_filters_q_sort_fields(self):
        dump = self.fake.dump()
        courses = dump["tables"]["courses"]
        prov = courses[0]["CRICOS Provider Code"]
        want = [r for r in courses if r["CRICOS Provider Code"] == prov]
        status, _, doc = self.fake.action("datastore_search", "POST", resource_id=RID["courses"],
                                          filters={"CRICOS Provider Code": prov}, limit=1000)
        self.assertEqual(status, 200)
        self.assertEqual(doc["result"]["records"], want)
        self.assertEqual(doc["result"]["total"], len(want))
        self.assertEqual(doc["result"]["filters"], {"CRICOS Provider Code": prov})
        # GET: filters is a JSON string; a list value means IN
        two = sorted({r["CRICOS Provider Code"] for r in courses if r["CRICOS Provider Code"]})[:2]
        _, _, doc = self.fake.action("datastore_search", resource_id=RID["courses"], limit=1000,
                                     filters=json.dumps({"CRICOS Provider Code": two}))
        self.assertEqual(doc["result"]["total"], sum(r["CRICOS Provider Code"] in two for r in courses))
        _, _, doc = self.fake.action("datastore_search", resource_id=RID["courses"], sort="_id desc", limit=3)
        self.assertEqual([r["_id"] for r in doc["result"]["records"]], [len(courses), len(courses) - 1,
                                                                          len(courses) - 2])
        _, _, doc = self.fake.action("datastore_search", resource_id=RID["courses"], limit=2,
                                     fields="CRICOS Course Code,Course Name")
        self.assertEqual(list(doc["result"]["records"][0]), ["CRICOS Course Code", "Course Name"])
        self.assertEqual([f["id"] for f in doc["result"]["fields"]], ["CRICOS Course Code", "Course Name"])
        _, _, doc = self.fake.action("datastore_search", resource_id=RID["courses"], limit=2, records_format="lists")
        self.assertIsInstance(doc["result"]["records"][0], list)

    # -- errors --------------------------------------------------------------------------------------------------
    def assertCkanError(self, status, doc, want_status, want_type):
        self.assertEqual(status, want_status, doc)
        self.assertEqual(list(doc), ["help", "error", "success"])
        self.assertIs(doc["success"], False)
        self.assertEqual(doc["error"]["__type"], want_type)

    def test_errors(self):
        f = self.fake
        status, _, doc = f.action("datastore_search", resource_id="00000000-dead-beef-0000-000000000000")
        self.assertCkanError(status, doc, 404, "Not Found Error")
        self.assertEqual(doc["error"]["message"],
                         'Not found: Resource "00000000-dead-beef-0000-000000000000" was not found.')
        # a package resource that has no DataStore table is not found by datastore_search either
        status, _, doc = f.action("datastore_search", resource_id="7b3d33a0-f9c6-4d32-8799-9cecd7fc121c")
        self.assertCkanError(status, doc, 404, "Not Found Error")
        status, _, doc = f.action("package_show", id="cricos-nope")
        self.assertCkanError(status, doc, 404, "Not Found Error")
        status, _, doc = f.action("resource_show", id="nope")
        self.assertCkanError(status, doc, 404, "Not Found Error")
        status, _, doc = f.action("datastore_search", resource_id=RID["courses"], limit="abc")
        self.assertCkanError(status, doc, 409, "Validation Error")
        self.assertEqual(doc["error"]["limit"], ["Invalid integer"])
        status, _, doc = f.action("datastore_search", "POST", resource_id=RID["courses"], offset=-5)
        self.assertCkanError(status, doc, 409, "Validation Error")
        self.assertEqual(doc["error"]["offset"], ["Must be a natural number"])
        status, _, doc = f.action("datastore_search", limit=5)
        self.assertCkanError(status, doc, 409, "Validation Error")
        self.assertEqual(doc["error"]["resource_id"], ["Missing value"])
        status, _, doc = f.action("datastore_search", resource_id=RID["courses"], bogus="1")
        self.assertCkanError(status, doc, 409, "Validation Error")
        self.assertIn("__junk", doc["error"])
        status, _, doc = f.action("datastore_search", "POST", resource_id=RID["courses"], filters={"Nope": "x"})
        self.assertCkanError(status, doc, 409, "Validation Error")
        self.assertEqual(doc["error"]["filters"], ['invalid value "Nope"'])
        status, _, body = f.request("GET", API + "datastore_search_sql?sql=SELECT%201")
        self.assertEqual(status, 400)
        self.assertEqual(json.loads(body), "Bad request - Action name not known: datastore_search_sql")
        status, _, body = f.request("POST", API + "datastore_search", b"{not json",
                                    {"Content-Type": "application/json"})
        self.assertEqual(status, 400)
        self.assertTrue(json.loads(body).startswith("Bad request - JSON Error"))

    def test_bom_field_and_blanks_modes(self):
        f = self.fake
        _, _, doc = f.action("datastore_search", resource_id=RID["locations"], limit=1)
        self.assertEqual(doc["result"]["fields"][1]["id"], "CRICOS Provider Code")
        f.mutate(action="bom_field", mode="keep")
        _, _, doc = f.action("datastore_search", resource_id=RID["locations"], limit=1)
        self.assertEqual(doc["result"]["fields"][1]["id"], "\ufeffCRICOS Provider Code")
        self.assertIn("\ufeffCRICOS Provider Code", doc["result"]["records"][0])
        self.assertEqual(f.dump()["fields"]["locations"][0], "\ufeffCRICOS Provider Code")
        # filtering on the clean name then fails the way CKAN fails on an unknown column
        status, _, doc = f.action("datastore_search", "POST", resource_id=RID["locations"],
                                  filters={"CRICOS Provider Code": "00001K"})
        self.assertCkanError(status, doc, 409, "Validation Error")
        # the other tables never had a BOM
        _, _, doc = f.action("datastore_search", resource_id=RID["courses"], limit=1)
        self.assertEqual(doc["result"]["fields"][1]["id"], "CRICOS Provider Code")
        inst = f.dump()["tables"]["institutions"]
        self.assertIsNone(inst[0]["Trading Name"])
        f.mutate(action="blanks", mode="empty")
        inst = f.dump()["tables"]["institutions"]
        self.assertEqual(inst[0]["Trading Name"], "")

    # -- editions ------------------------------------------------------------------------------------------------
    def resource_meta(self):
        out = {}
        for t in ce.TABLES:
            _, _, doc = self.fake.action("resource_show", id=RID[t])
            out[t] = (doc["result"]["last_modified"], doc["result"]["hash"], doc["result"]["size"])
        return out

    def test_edition_switch(self):
        f = self.fake
        metas = {}
        snaps = {}
        for n in (1, 2, 3, 4):
            f.mutate(action="edition", edition=n)
            metas[n] = self.resource_meta()
            _, _, doc = f.action("package_show", id="cricos")
            snaps[n] = [r["name"] for r in doc["result"]["resources"] if "as-at" in r["name"]]
            dump = f.dump()
            self.assertEqual(dump["edition"], n)
            self.assertEqual(dump["edition_date"], ce.edition_date(n).isoformat())
        for t in ce.TABLES:  # edition 2: everything changes (renames propagate to all four tables)
            self.assertNotEqual(metas[1][t], metas[2][t])
            self.assertNotEqual(metas[1][t][1], metas[2][t][1])
        for t in ("institutions", "locations"):  # edition 3 changes courses only
            self.assertEqual(metas[2][t], metas[3][t])
        for t in ("courses", "course_locations"):
            self.assertNotEqual(metas[2][t], metas[3][t])
        for t in ("courses", "course_locations"):  # edition 4 changes providers only
            self.assertEqual(metas[3][t], metas[4][t])
        for t in ("institutions", "locations"):
            self.assertNotEqual(metas[3][t], metas[4][t])
        for n in (2, 3, 4):  # last_modified a day or so after the edition date, business hours
            for t in ce.TABLES:
                if metas[n][t] == metas[n - 1][t]:
                    continue
                lm = metas[n][t][0]
                self.assertLessEqual(ce.edition_date(n).isoformat(), lm[:10])
                self.assertTrue(7 <= int(lm[11:13]) <= 16, lm)
        for n in (2, 3, 4):  # one new dated snapshot per edition
            self.assertEqual(len(snaps[n]), len(snaps[n - 1]) + 1)
        # mid-paging switch: the total moves, and a client that pages on must notice
        f.mutate(action="edition", edition=1)
        _, _, a = f.action("datastore_search", resource_id=RID["courses"], limit=0)
        f.mutate(action="next_edition")
        _, _, b = f.action("datastore_search", resource_id=RID["courses"], limit=0)
        self.assertNotEqual(a["result"]["total"], b["result"]["total"])

    def test_touch_changes_last_modified_not_hash(self):
        before = self.resource_meta()["courses"]
        self.fake.mutate(action="touch", resource="courses", last_modified="2026-05-20T09:15:00")
        after = self.resource_meta()["courses"]
        self.assertEqual(after[0], "2026-05-20T09:15:00.000000")
        self.assertEqual(after[1:], before[1:])
        self.fake.mutate(action="touch", resource="courses", last_modified=before[0])

    def test_follow_clock(self):
        f = self.fake
        reg = ce.Register("small")
        ed2 = reg.edition(2)
        first = min(ed2.meta[t]["last_modified"] for t in ce.TABLES)
        last = max(ed2.meta[t]["last_modified"] for t in ce.TABLES)
        f.mutate(action="follow_clock", enabled=True)
        try:
            f.control("clock", {"now": (first - __import__("datetime").timedelta(hours=1)).strftime(
                "%Y-%m-%dT%H:%M:%SZ")})
            self.assertEqual(f.dump()["edition"], 1)
            status, headers, _ = f.get(API + "package_show", id="cricos")
            self.assertIn(first.strftime("%d %b %Y"), headers["Date"])
            f.control("clock", {"now": last.strftime("%Y-%m-%dT%H:%M:%SZ")})
            f.control("clock", {"advance": 60})
            dump = f.dump()
            self.assertEqual(dump["edition"], 2)
            self.assertEqual({t: r["version"] for t, r in dump["resources"].items()},
                             {t: 2 for t in ce.TABLES})
        finally:
            f.mutate(action="edition", edition=1)

    # -- data ------------------------------------------------------------------------------------------------
    def test_consistency_across_tables(self):
        for n in (1, 2, 3, 4, 5):
            self.fake.mutate(action="edition", edition=n)
            tables = self.fake.dump()["tables"]
            inst = {r["CRICOS Provider Code"]: r["Institution Name"] for r in tables["institutions"]
                    if r["CRICOS Provider Code"]}
            locs = {(r["CRICOS Provider Code"], r["Location Name"]) for r in tables["locations"]}
            courses = {}
            for r in tables["courses"]:
                if not r["CRICOS Provider Code"]:
                    continue
                self.assertEqual(inst[r["CRICOS Provider Code"]], r["Institution Name"])
                self.assertNotIn(r["CRICOS Course Code"], courses)  # course code is the key
                courses[r["CRICOS Course Code"]] = r["CRICOS Provider Code"]
            for r in tables["locations"]:
                self.assertEqual(inst[r["CRICOS Provider Code"]], r["Institution Name"])
            for r in tables["course_locations"]:
                self.assertEqual(courses[r["CRICOS Course Code"]], r["CRICOS Provider Code"])
                self.assertIn((r["CRICOS Provider Code"], r["Location Name"]), locs)
                self.assertEqual(inst[r["CRICOS Provider Code"]], r["Institution Name"])

    def test_quirks_present(self):
        tables = self.fake.dump()["tables"]
        inst, courses, locs, cls = (tables[t] for t in ce.TABLES)
        blank_keys = lambda r: all(v is None for k, v in r.items() if k != "_id")  # noqa: E731
        self.assertTrue(blank_keys(inst[-1]) and blank_keys(inst[-2]) and not blank_keys(inst[-3]))
        self.assertTrue(blank_keys(courses[-1]) and blank_keys(courses[-2]) and not blank_keys(courses[-3]))
        self.assertFalse(blank_keys(locs[-1]))
        self.assertIn("2,610", [r["Institution Capacity"] for r in inst])
        self.assertTrue(any(len(r["Trading Name"] or "") == 255 for r in inst))
        pairs = [(r["CRICOS Provider Code"], r["Location Name"]) for r in locs]
        self.assertGreaterEqual(len(pairs) - len(set(pairs)), 2)  # 00649C and 04401F at small scale
        self.assertTrue(any(r["City"] is None and r["CRICOS Provider Code"] == "00366C" for r in locs))
        cities = [r["City"] for r in locs if r["City"]]
        self.assertTrue(any(c.isupper() for c in cities) and any(c != c.upper() for c in cities))
        rows = [r for r in courses if r["CRICOS Provider Code"]]
        money = [r[k] for r in rows for k in ("Tuition Fee", "Non Tuition Fee", "Estimated Total Course Cost")
                 if r[k] is not None]
        self.assertTrue(any("," in m and m.startswith("$") and m.endswith(".00") for m in money))
        junk = [m for m in money if ce.parse_money(m) is None]
        self.assertEqual(sorted(junk), sorted(ce.MONEY_JUNK))
        self.assertTrue(any(r["Tuition Fee"] is None and r["Estimated Total Course Cost"] for r in rows))
        self.assertTrue(any(r["Work Component Weeks"] == "-1" for r in rows))
        self.assertTrue(any(r["Expired"] == "Yes" for r in rows))
        self.assertTrue(all(r[k] in ("Yes", "No") for r in rows for k in ("Dual Qualification", "Expired",
                                                                          "Foundation Studies", "Work Component")))
        self.assertTrue(all(len(r["CRICOS Course Code"]) == 7 for r in rows))
        self.assertTrue(any(r["CRICOS Course Code"].isdigit() for r in rows))
        self.assertTrue(any(r["CRICOS Course Code"][-1].isalpha() for r in rows))
        self.assertTrue(all(r["Field of Education 1 Broad Field"][:2].isdigit() and " - " in
                            r["Field of Education 1 Broad Field"] for r in rows))
        vet = [r["VET National Code"] for r in rows if r["VET National Code"]]
        share = len(vet) / len(rows)
        self.assertTrue(0.2 < share < 0.5, share)
        self.assertTrue(any(v.endswith(" ") for v in vet))
        codes = nrt_codes.register_codes("small")
        quals = set(codes["qualifications"])
        self.assertGreater(sum(v.strip() in quals for v in vet), len(vet) * 0.7)
        self.assertTrue(any(v.strip() in set(codes["units"]) | set(codes["accredited"]) for v in vet))
        stripped = [tuple((k, v) for k, v in sorted(r.items()) if k != "_id") for r in cls]
        self.assertGreaterEqual(len(stripped) - len(set(stripped)), 2)  # exact duplicate course-location rows
        with_cl = {r["CRICOS Course Code"] for r in cls}
        self.assertTrue(any(r["CRICOS Course Code"] not in with_cl for r in rows))  # courses without a location
        # a 3-digit postcode arrives with edition 4 (an NT location keyed in without its leading 0)
        self.fake.mutate(action="edition", edition=4)
        locs4 = self.fake.dump()["tables"]["locations"]
        self.assertTrue(any(r["Postcode"] and len(r["Postcode"]) == 3 for r in locs4))

    def test_edition1_real_files_at_full_scale_are_byte_exact(self):
        reg = ce.Register("full")
        d = ce.samples_dir()
        self.assertEqual(reg.csv_bytes("institutions", 1), (d / "CRICOS Institutions.csv").read_bytes())
        self.assertEqual(reg.csv_bytes("locations", 1), (d / "CRICOS Locations.csv").read_bytes())
        ed = reg.edition(1)
        self.assertGreater(len(ed.rows("courses")), 25000)
        self.assertGreater(len(ed.rows("course_locations")), 40000)

    # -- faults ----------------------------------------------------------------------------------------------
    def search_path(self, table="courses", **params):
        params.setdefault("resource_id", RID[table])
        params.setdefault("limit", 5)
        return API + "datastore_search?" + urlencode(params)

    def test_fault_http_statuses(self):
        f = self.fake
        f.fault(op="datastore_search", kind="http500")
        status, headers, body = f.request("GET", self.search_path())
        self.assertEqual(status, 500)
        self.assertTrue(headers["Content-Type"].startswith("text/html"))
        f.fault(op="datastore_search", kind="http503", retry_after=7)
        status, headers, _ = f.request("GET", self.search_path())
        self.assertEqual((status, headers.get("Retry-After")), (503, "7"))
        f.fault(op="datastore_search", kind="http429", retry_after=3, count=2)
        for _ in range(2):
            status, headers, _ = f.request("GET", self.search_path())
            self.assertEqual((status, headers.get("Retry-After")), (429, "3"))
        status, _, _ = f.request("GET", self.search_path())
        self.assertEqual(status, 200)  # count consumed
        f.fault(op="datastore_search", kind="html")
        status, headers, body = f.request("GET", self.search_path())
        self.assertEqual(status, 200)
        self.assertTrue(headers["Content-Type"].startswith("text/html"))
        self.assertIn(b"<html", body)
        f.fault(op="datastore_search", kind="redirect")
        status, headers, _ = f.request("GET", self.search_path())
        self.assertEqual(status, 302)
        loc = urlsplit(headers["Location"])
        self.assertEqual(loc.path, "/data/user/login")
        status, headers, body = f.request("GET", loc.path + "?" + loc.query)
        self.assertEqual(status, 200)
        self.assertIn(b"password", body)

    def test_fault_op_skip_and_stats(self):
        f = self.fake
        f.control("stats/reset", {})
        f.fault(op="resource_show", kind="http500", skip=1, count=-1)
        show = API + "resource_show?id=" + RID["courses"]
        self.assertEqual(f.request("GET", self.search_path())[0], 200)  # other op untouched
        self.assertEqual(f.request("GET", show)[0], 200)  # skipped once
        self.assertEqual(f.request("GET", show)[0], 500)
        self.assertEqual(f.request("GET", show)[0], 500)  # until cleared
        f.control("fault/clear", {})
        self.assertEqual(f.request("GET", show)[0], 200)
        stats = f.control("stats")
        self.assertEqual(stats["by_op"], {"datastore_search": 1, "resource_show": 4})
        self.assertEqual(stats["requests"], 5)
        self.assertEqual(stats["faults"], {"http500": 2})
        self.assertEqual(stats["by_status"], {"200": 3, "500": 2})
        self.assertEqual(stats["records_served"], 5)

    def test_fault_ckan_error(self):
        f = self.fake
        f.fault(op="datastore_search", kind="ckan_error")
        status, _, doc = f.action("datastore_search", resource_id=RID["courses"])
        self.assertCkanError(status, doc, 500, "Internal Server Error")
        self.assertEqual(doc["error"]["message"], "Internal Server Error")
        f.fault(op="datastore_search", kind="ckan_error", variant="timeout")
        status, _, doc = f.action("datastore_search", resource_id=RID["courses"])
        self.assertCkanError(status, doc, 409, "Validation Error")
        self.assertEqual(doc["error"]["query"], ["Search took too long"])
        f.fault(op="package_show", kind="ckan_error", variant="auth")
        status, _, doc = f.action("package_show", id="cricos")
        self.assertCkanError(status, doc, 403, "Authorization Error")

    def test_fault_bad_money(self):
        f = self.fake
        f.fault(op="datastore_search", kind="bad_money", value="$1,2x0.00")
        _, _, doc = f.action("datastore_search", resource_id=RID["institutions"], limit=3)
        self.assertNotIn("$1,2x0.00", json.dumps(doc))  # no money column there: the fault waits
        _, _, doc = f.action("datastore_search", resource_id=RID["courses"], limit=3, offset=20)
        self.assertEqual(doc["result"]["records"][0]["Tuition Fee"], "$1,2x0.00")
        _, _, doc2 = f.action("datastore_search", resource_id=RID["courses"], limit=3, offset=20)
        self.assertNotEqual(doc2["result"]["records"][0]["Tuition Fee"], "$1,2x0.00")  # consumed
        self.assertEqual(f.dump()["tables"]["courses"][20], doc2["result"]["records"][0])

    def test_fault_slow_and_page_delay(self):
        f = self.fake
        f.fault(op="datastore_search", kind="slow", delay=0.4)
        t0 = time.time()
        status, _, _ = f.request("GET", self.search_path())
        self.assertEqual(status, 200)
        self.assertGreaterEqual(time.time() - t0, 0.4)
        f.mutate(action="page_delay", seconds=0.2, per_1000=0)
        t0 = time.time()
        self.assertEqual(f.request("GET", self.search_path())[0], 200)
        self.assertGreaterEqual(time.time() - t0, 0.2)
        t0 = time.time()
        self.assertEqual(f.action("resource_show", id=RID["courses"])[0], 200)
        self.assertLess(time.time() - t0, 0.2)  # only datastore_search pages are slow

    def test_fault_drip(self):
        f = self.fake
        f.fault(op="resource_show", kind="drip", interval=0.01, bytes=100)
        t0 = time.time()
        status, _, doc = f.action("resource_show", id=RID["courses"])
        took = time.time() - t0
        self.assertEqual(status, 200)
        self.assertEqual(doc["result"]["id"], RID["courses"])
        self.assertGreater(took, 0.05)

    def test_fault_truncate_reset_malformed_hang(self):
        f = self.fake
        f.fault(op="datastore_search", kind="truncate")
        with self.assertRaises(http.client.IncompleteRead):
            f.request("GET", self.search_path())
        f.fault(op="datastore_search", kind="reset")
        with self.assertRaises((ConnectionResetError, http.client.IncompleteRead, http.client.RemoteDisconnected)):
            f.request("GET", self.search_path(limit=200))
        f.fault(op="datastore_search", kind="malformed")
        status, headers, body = f.request("GET", self.search_path())
        self.assertEqual(status, 200)
        self.assertEqual(int(headers["Content-Length"]), len(body))
        with self.assertRaises(ValueError):
            json.loads(body)
        f.fault(op="datastore_search", kind="hang", hold=2)
        t0 = time.time()
        with self.assertRaises(socket.timeout):
            f.request("GET", self.search_path(), timeout=0.5)
        self.assertLess(time.time() - t0, 1.5)
        self.assertEqual(f.request("GET", self.search_path())[0], 200)  # others are not blocked
        f.fault(op="download", kind="truncate")
        with self.assertRaises(http.client.IncompleteRead):
            f.request("GET", "/data/dataset/cricos/resource/%s/download/x.csv" % RID["courses"])

    def test_control_errors(self):
        status, _, _ = self.fake.request("POST", "/_fake/fault", {"kind": "nope"})
        self.assertEqual(status, 400)
        status, _, _ = self.fake.request("POST", "/_fake/mutate", {"action": "nope"})
        self.assertEqual(status, 400)

    def test_dump_shape(self):
        dump = self.fake.dump()
        self.assertEqual(list(dump), ["dataset", "scale", "seed", "edition", "edition_date", "follow_clock", "now",
                                      "bom_field", "blanks", "resources", "fields", "tables"])
        self.assertEqual(dump["dataset"], {"id": ce.PACKAGE_ID, "name": "cricos"})
        for t in ce.TABLES:
            self.assertEqual(list(dump["tables"][t][0]), ["_id"] + dump["fields"][t])
            self.assertEqual(dump["resources"][t]["id"], RID[t])
            _, _, doc = self.fake.action("resource_show", id=RID[t])
            self.assertEqual(dump["resources"][t]["hash"], doc["result"]["hash"])
            self.assertEqual(dump["resources"][t]["last_modified"], doc["result"]["last_modified"])


if __name__ == "__main__":
    unittest.main(verbosity=1)
