#!/usr/bin/python3
"""Fake data.gov.au CKAN server for the CRICOS dataset (see README.md, section "fake_ckan.py").

Speaks the CKAN Action API as data.gov.au (CKAN 2.9/2.10 with the DataStore and XLoader) does, per
../shared/reference/cricos-data.md §2 and the real envelope in ../shared/samples/cricos/ckan-api/:

  GET|POST /data/api/3/action/<action>   and   /data/api/action/<action>
    package_show      id (or name_or_id) = "cricos" or the package uuid
    resource_show     id
    datastore_search  resource_id (or id), limit, offset, filters, q, plain, language, fields, sort, distinct,
                      include_total, total_estimation_threshold, records_format
  GET|HEAD /data/dataset/<package>/resource/<id>/download/<file>   the CSV, ZIP and XLSX files themselves
  /_fake/...                                                        the control plane (README.md)

The data are cricos_editions.Register editions; /_fake/mutate switches them (vocabulary in README.md).
"""

import argparse
import datetime as _dt
import hashlib
import json
import os
import re
import signal
import socket
import struct
import sys
import threading
import time
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, parse_qs, quote, unquote, urlencode, urlsplit, urlunsplit

import cricos_editions as ce

ROOT = "/data"  # data.gov.au mounts CKAN under /data; CKAN builds _links relative to it
ROWS_MAX = 32000
ACTIONS = ("package_show", "resource_show", "datastore_search")
FAULT_KINDS = ("http500", "http503", "http429", "hang", "reset", "truncate", "malformed", "html", "redirect",
               "slow", "drip", "ckan_error", "bad_money", "total_change", "total_estimated")
# Faults applied inside datastore_search, where the page is known (not by the generic pre-fault path).
PAGE_FAULT_KINDS = ("bad_money", "total_change", "total_estimated")
CKAN_ERROR_VARIANTS = ("internal", "timeout", "auth", "not_found", "bad_request")
JSON_CT = "application/json;charset=utf-8"
HTML_CT = "text/html; charset=utf-8"
ZIP_RESOURCE_ID = "b5a6bd4d-6a2f-4d36-9fb1-b2a8c9d0e1f2"
ZIP_RESOURCE_NAME = "CRICOS Datasets.zip"
MAX_EDITION = 120  # ten years of monthly editions; each is derived from the one before



class CkanError(Exception):
    """An error CKAN's action view turns into a JSON body: status, error dict (without __type), __type."""

    def __init__(self, status, error_type, error):
        super().__init__(error_type)
        self.status, self.error_type, self.error = status, error_type, error


class BadRequest(Exception):
    """CKAN's _finish_bad_request: HTTP 400 whose JSON body is a bare string."""


def validation(**errors):
    return CkanError(409, "Validation Error", errors)


def not_found(message=None):
    return CkanError(404, "Not Found Error", {"message": "Not found" + (": " + message if message else "")})


def iso(ts, z=False):
    return ts.isoformat(timespec="microseconds") + ("Z" if z else "")


def http_date(ts):
    return ts.strftime("%a, %d %b %Y %H:%M:%S GMT")


# ---------------------------------------------------------------------------------------------------------------
class State:
    """Everything mutable, guarded by one lock. Rendering caches are keyed by content version and modes."""

    def __init__(self, args):
        self.lock = threading.RLock()
        self.stopping = threading.Event()
        self.reg = ce.Register(args.scale, args.seed)
        self.scale, self.seed = args.scale, args.seed
        self.edition_n = args.edition
        self.follow_clock = args.follow_clock
        self.bom_field = args.bom_field
        self.blanks = args.blanks
        self.timestamps_z = args.timestamps_z
        self.page_delay = args.page_delay
        self.page_delay_per_1000 = args.page_delay_per_1000
        self.rows_max = args.rows_max
        self.clock_base = args.now or None  # fake "now" at clock_real; None = real time
        self.clock_real = time.time()
        self.touched = {}  # (table, version) -> last_modified override (re-upload of identical content)
        self.faults = []
        self.spent_faults = []   # faults whose count ran out, kept for GET /_fake/fault
        self.stats = {}
        self.reset_stats()
        self.records_cache = {}
        self.blob_cache = {}
        self.reg.edition(self.edition_n)
        self.warm()

    # -- clock ---------------------------------------------------------------------------------------------------
    def now(self):
        with self.lock:
            if self.clock_base is None:
                return _dt.datetime.utcnow().replace(microsecond=0)
            return self.clock_base + _dt.timedelta(seconds=time.time() - self.clock_real)

    def set_clock(self, now=None, advance=None):
        with self.lock:
            cur = self.now()
            if now is not None:
                cur = _dt.datetime.strptime(now.rstrip("Z"), "%Y-%m-%dT%H:%M:%S")
            if advance is not None:
                cur = cur + _dt.timedelta(seconds=float(advance))
            self.clock_base, self.clock_real = cur, time.time()
            return cur

    # -- what is visible -----------------------------------------------------------------------------------------
    def view(self):
        """(edition number, {table: version}) currently served. With follow_clock each resource shows the last
        version uploaded at or before the fake clock: mid-update the package mixes editions, as the real one does
        for the hours between the first and the last upload of a month."""
        with self.lock:
            if not self.follow_clock:
                ed = self.reg.edition(self.edition_n)
                return self.edition_n, dict(ed.version)
            now = self.now()
            versions = {t: 1 for t in ce.TABLES}
            n = 1
            while n < MAX_EDITION:
                nxt = n + 1
                if _dt.datetime.combine(ce.edition_date(nxt), _dt.time()) > now:
                    break
                ed = self.reg.edition(nxt)
                uploaded = [t for t in ce.TABLES if ed.version[t] == nxt and ed.meta[t]["last_modified"] <= now]
                if not uploaded:
                    break
                for t in uploaded:
                    versions[t] = nxt
                n = nxt
            return n, versions

    def last_modified(self, table, version):
        return self.touched.get((table, version), self.reg.edition(version).meta[table]["last_modified"])

    # -- field ids and records -----------------------------------------------------------------------------------
    def field_ids(self, table):
        ids = list(ce.HEADERS[table])
        if self.bom_field == "strip":
            # XLoader reads the file through tabulator, which decodes a UTF-8 BOM as utf-8-sig.
            ids = [h.lstrip(ce.BOM) for h in ids]
        return ids

    def records(self, table, version):
        """(value tuples with _id first, compact JSON per record): the DataStore table as XLoader loads it (all
        text, _id from 1). Tuples rather than dicts keep a full-scale edition near 60 MB."""
        key = (table, version, self.bom_field, self.blanks)
        with self.lock:
            hit = self.records_cache.get(key)
        if hit:
            return hit
        ids = self.field_ids(table)
        null = self.blanks == "null"
        rows = self.reg.edition(version).rows(table)
        values, blobs = [], []
        dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
        for i, row in enumerate(rows, 1):
            d = {"_id": i}
            for k, v in zip(ids, row):
                d[k] = None if (null and v == "") else v
            values.append(tuple(d.values()))
            blobs.append(dumps(d))
        with self.lock:
            self.records_cache[key] = (values, blobs)
            if len(self.records_cache) > 12:  # keep memory bounded at full scale
                for k in list(self.records_cache)[:len(self.records_cache) - 12]:
                    del self.records_cache[k]
        return values, blobs

    def warm(self):
        _, versions = self.view()
        for t in ce.TABLES:
            self.records(t, versions[t])

    # -- stats and faults ----------------------------------------------------------------------------------------
    def reset_stats(self):
        with self.lock:
            self.stats = {"requests": 0, "by_op": {}, "by_status": {}, "faults": {}, "records_served": 0,
                          "bytes_sent": 0, "datastore_pages": {}}

    def count(self, op):
        with self.lock:
            self.stats["requests"] += 1
            self.stats["by_op"][op] = self.stats["by_op"].get(op, 0) + 1

    def count_status(self, status):
        with self.lock:
            self.stats["by_status"][str(status)] = self.stats["by_status"].get(str(status), 0) + 1

    def count_bytes(self, nbytes):
        with self.lock:
            self.stats["bytes_sent"] += nbytes

    def take_fault(self, op, resource_id=None, pred=None):
        """The fault to apply to this request, consumed; None when no armed fault matches."""
        with self.lock:
            for f in self.faults:
                if f["op"] not in ("*", op):
                    continue
                if f.get("resource_id") and f["resource_id"] != resource_id:
                    continue
                if pred is not None and not pred(f):
                    continue
                if pred is None and f["kind"] in PAGE_FAULT_KINDS:
                    continue  # applied inside datastore_search, where the page is known
                if f.get("skip", 0) > 0:
                    f["skip"] -= 1
                    continue
                if f["count"] > 0:
                    f["count"] -= 1
                    if f["count"] == 0:
                        self.faults.remove(f)
                        self.spent_faults.append(f)
                f["fired"] = f.get("fired", 0) + 1
                self.stats["faults"][f["kind"]] = self.stats["faults"].get(f["kind"], 0) + 1
                return dict(f)
        return None


# ---------------------------------------------------------------------------------------------------------------
# CKAN dictionaries

def package_dict(st, host):
    n, versions = st.view()
    base = "http://%s%s/dataset/%s/resource/" % (host, ROOT, ce.PACKAGE_ID)
    resources = []
    for pos, t in enumerate(ce.TABLES):
        resources.append(resource_dict(st, host, t, versions[t], pos))
    resources.append(zip_resource(st, host, versions, len(resources)))
    now = st.now()
    snaps = [ce.snapshot_info(_dt.date.fromisoformat(d), i) for i, d in enumerate(ce.HISTORIC_EDITION_DATES)]
    for k in range(1, n + 1):
        snaps.append(st.reg.edition(k).snapshot())
    for s in snaps:
        if st.follow_clock and s["created"] > now:
            continue
        resources.append(snapshot_resource(s, base, len(resources)))
    modified = max(r["metadata_modified"] for r in resources)
    return {
        "author": None, "author_email": None,
        "creator_user_id": "3f0e2c2a-8a1f-4c55-9d49-6a1b2b0c0a11",
        "id": ce.PACKAGE_ID,
        "isopen": True,
        "license_id": "cc-by-2.5",
        "license_title": "Creative Commons Attribution 2.5 Australia",
        "license_url": "http://creativecommons.org/licenses/by/2.5/au/",
        "maintainer": "Department of Education", "maintainer_email": "cricos@education.gov.au",
        "metadata_created": "2021-07-30T02:17:09.143512",
        "metadata_modified": modified,
        "name": ce.PACKAGE_NAME,
        "notes": "The Commonwealth Register of Institutions and Courses for Overseas Students (CRICOS) lists the "
                 "providers registered to offer courses to people studying in Australia on student visas, and the "
                 "courses and locations they offer. Updated monthly.",
        "num_resources": len(resources),
        "num_tags": 3,
        "organization": {
            "id": "8d3e6a8a-0c79-4e4b-a2b4-1f1c7a2c9d55", "name": "department-of-education",
            "title": "Department of Education", "type": "organization",
            "description": "Australian Government Department of Education", "image_url": "",
            "created": "2015-05-28T01:22:51.614395", "is_organization": True, "approval_status": "approved",
            "state": "active"},
        "owner_org": "8d3e6a8a-0c79-4e4b-a2b4-1f1c7a2c9d55",
        "private": False,
        "state": "active",
        "title": "Commonwealth Register of Institutions and Courses for Overseas Students (CRICOS)",
        "type": "dataset",
        "url": "https://cricos.education.gov.au/",
        "version": None,
        "extras": [{"key": "update_freq", "value": "monthly"}],
        "groups": [],
        "resources": resources,
        "tags": [{"display_name": t, "id": hashlib.md5(t.encode()).hexdigest()[:8] +
                  "-0000-4000-8000-000000000000", "name": t, "state": "active", "vocabulary_id": None}
                 for t in ("cricos", "education", "international students")],
        "relationships_as_object": [], "relationships_as_subject": [],
    }


def resource_dict(st, host, table, version, position):
    ed = st.reg.edition(version)
    meta = ed.meta[table]
    lm = st.last_modified(table, version)
    created = _dt.datetime(2021, 7, 30, 2, 17, 9, 143512) + _dt.timedelta(seconds=position)
    return {
        "cache_last_updated": None, "cache_url": None,
        "created": iso(created),
        "datastore_active": True,
        "datastore_contains_all_records_of_source_file": True,
        "description": "CRICOS %s, current edition (replaced in place every month)." %
                       ce.RESOURCES[table]["name"][len("CRICOS "):-len(".csv")],
        "format": "CSV",
        "hash": meta["hash"],
        "id": ce.RESOURCES[table]["id"],
        "last_modified": iso(lm, st.timestamps_z),
        "metadata_modified": iso(lm + _dt.timedelta(seconds=41, microseconds=231)),
        "mimetype": "text/csv", "mimetype_inner": None,
        "name": ce.RESOURCES[table]["name"],
        "package_id": ce.PACKAGE_ID,
        "position": position,
        "resource_type": None,
        "size": meta["size"],
        "state": "active",
        "url": "http://%s%s/dataset/%s/resource/%s/download/%s" % (
            host, ROOT, ce.PACKAGE_ID, ce.RESOURCES[table]["id"], ce.RESOURCES[table]["file"]),
        "url_type": "upload",
    }


def zip_blob(st, versions):
    key = ("zip",) + tuple(versions[t] for t in ce.TABLES)
    with st.lock:
        hit = st.blob_cache.get(key)
    if hit:
        return hit
    when = max(st.reg.edition(versions[t]).meta[t]["last_modified"] for t in ce.TABLES) + \
        _dt.timedelta(minutes=4, seconds=17, microseconds=402113)
    body = ce.zip_bytes(st.reg, versions, when)
    val = (body, when, hashlib.md5(body).hexdigest())
    with st.lock:
        st.blob_cache[key] = val
    return val


def zip_resource(st, host, versions, position):
    body, when, digest = zip_blob(st, versions)
    return {
        "cache_last_updated": None, "cache_url": None, "created": "2021-07-30T02:19:44.918273",
        "datastore_active": False,
        "description": "All four CRICOS tables as CSV, with the field definitions (PDF).",
        "format": "ZIP", "hash": digest, "id": ZIP_RESOURCE_ID,
        "last_modified": iso(when, st.timestamps_z),
        "metadata_modified": iso(when + _dt.timedelta(seconds=38, microseconds=5115)),
        "mimetype": "application/zip", "mimetype_inner": None, "name": ZIP_RESOURCE_NAME,
        "package_id": ce.PACKAGE_ID, "position": position, "resource_type": None, "size": len(body),
        "state": "active",
        "url": "http://%s%s/dataset/%s/resource/%s/download/cricos.zip" % (host, ROOT, ce.PACKAGE_ID,
                                                                            ZIP_RESOURCE_ID),
        "url_type": "upload",
    }


def snapshot_resource(s, base, position):
    return {
        "cache_last_updated": None, "cache_url": None, "created": iso(s["created"]),
        "datastore_active": False, "description": "", "format": s["format"], "hash": "", "id": s["id"],
        "last_modified": iso(s["created"]), "metadata_modified": iso(s["created"]),
        "mimetype": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "mimetype_inner": None,
        "name": s["name"], "package_id": ce.PACKAGE_ID, "position": position, "resource_type": None,
        "size": None, "state": "active", "url": base + s["id"] + "/download/" + quote(s["name"]),
        "url_type": "upload",
    }


def find_snapshot(st, rid):
    n, _ = st.view()
    for i, d in enumerate(ce.HISTORIC_EDITION_DATES):
        s = ce.snapshot_info(_dt.date.fromisoformat(d), i)
        if s["id"] == rid:
            return s, None
    for k in range(1, n + 1):
        s = st.reg.edition(k).snapshot()
        if s["id"] == rid:
            return s, k
    return None, None


# ---------------------------------------------------------------------------------------------------------------
# datastore_search

def _int(value, key, natural):
    if isinstance(value, bool) or isinstance(value, (list, dict)):
        raise validation(**{key: ["Invalid integer"]})
    if isinstance(value, float):
        if value != int(value):
            raise validation(**{key: ["Invalid integer"]})
        value = int(value)
    if isinstance(value, str):
        if not re.fullmatch(r"\s*[-+]?\d+\s*", value):
            raise validation(**{key: ["Invalid integer"]})
        value = int(value)
    if natural and value < 0:
        raise validation(**{key: ["Must be a natural number"]})
    return value


def _bool(value):
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in ("true", "yes", "t", "y", "1", "on")


def _get_list(value, strip=True):
    if value is None:
        return None
    if isinstance(value, list):
        return [v.strip() if strip and isinstance(v, str) else v for v in value]
    return [v.strip() for v in str(value).split(",")]


def _parse_sort_clause(clause, field_types):
    m = re.match(r"^(.+?)( +(asc|desc) *)?$", clause, re.I)
    if not m:
        return None
    field = m.group(1)
    if field[0] == field[-1] == '"' and len(field) > 1:
        field = field[1:-1]
    if field not in field_types:
        return None
    return field, (m.group(3) or "asc").lower()


SEARCH_SCHEMA = ("resource_id", "id", "q", "plain", "filters", "language", "limit", "offset", "fields", "sort",
                 "distinct", "include_total", "total_estimation_threshold", "records_format")


def validate_search(data, rows_max):
    """CKAN's datastore_search_schema (2.9/2.10): defaults, conversions, clamping, junk keys."""
    data = dict(data)
    if "id" in data and data.get("id"):
        data["resource_id"] = data.pop("id")
    else:
        data.pop("id", None)
    errors = {}
    junk = [k for k in data if k not in SEARCH_SCHEMA]
    out = {}
    rid = data.get("resource_id")
    if rid is None or rid == "" or rid == []:
        errors["resource_id"] = ["Missing value"]
    else:
        out["resource_id"] = str(rid)
    if "q" in data and data["q"] not in (None, ""):
        q = data["q"]
        if isinstance(q, str):
            try:
                parsed = json.loads(q)
                q = parsed if isinstance(parsed, dict) else q
            except ValueError:
                pass
        out["q"] = q if isinstance(q, dict) else str(q)
    for key in ("plain", "distinct"):
        if key in data:
            out[key] = _bool(data[key])
    if "filters" in data:
        f = data["filters"]
        if not isinstance(f, (dict, list)):
            try:
                f = json.loads(f)
            except (ValueError, TypeError):
                errors["filters"] = ["Cannot parse JSON"]
                f = None
        if f is not None:
            out["filters"] = f
    if "language" in data:
        out["language"] = str(data["language"])
    try:
        limit = _int(data["limit"], "limit", True) if "limit" in data else 100
        out["limit"] = min(limit, rows_max)  # silently clamped to ckan.datastore.search.rows_max
    except CkanError as e:
        errors.update(e.error)
    if "offset" in data:
        try:
            out["offset"] = _int(data["offset"], "offset", True)
        except CkanError as e:
            errors.update(e.error)
    for key in ("fields", "sort"):
        if key in data:
            v = data[key]
            if not isinstance(v, (str, list)) or (isinstance(v, list) and not all(isinstance(x, (str, list))
                                                                                     for x in v)):
                errors[key] = ["Not a list"]
            else:
                out[key] = v
    out["include_total"] = _bool(data["include_total"]) if "include_total" in data else True
    if data.get("total_estimation_threshold") not in (None, ""):
        try:
            out["total_estimation_threshold"] = _int(data["total_estimation_threshold"],
                                                     "total_estimation_threshold", False)
        except CkanError as e:
            errors.update(e.error)
    else:
        out["total_estimation_threshold"] = None
    fmt = data.get("records_format", "objects")
    if fmt not in ("objects", "lists", "csv", "tsv"):
        errors["records_format"] = ["Value must be one of: objects; lists; csv; tsv (not %r)" % (fmt,)]
    out["records_format"] = fmt
    if junk:
        # navl's empty() on __junk names the junk keys as a list of flattened-key tuples.
        errors["__junk"] = ["The input field %s was not expected." % [(k,) for k in sorted(junk)]]
    if errors:
        raise CkanError(409, "Validation Error", errors)
    return out


_WORD = re.compile(r"[a-z0-9]+")


def _stem(w):
    for suf in ("ies", "es", "s", "ing", "ed"):
        if len(w) > len(suf) + 2 and w.endswith(suf):
            return w[:-len(suf)]
    return w


def _tsquery(text):
    return [_stem(w) for w in _WORD.findall(text.lower())]


def _tsvector(values):
    return {_stem(w) for v in values if v for w in _WORD.findall(str(v).lower())}


def datastore_search(st, data, path, query_string):
    """Returns (result dict with a records placeholder, records JSON text, number of records, table)."""
    p = validate_search(data, st.rows_max)
    rid = p["resource_id"]
    table = next((t for t in ce.TABLES if ce.RESOURCES[t]["id"] == rid), None)
    if table is None:
        raise not_found('Resource "%s" was not found.' % rid)
    _, versions = st.view()
    version = versions[table]
    values, blobs = st.records(table, version)
    ids = st.field_ids(table)
    field_types = {"_id": "int"}
    field_types.update((k, "text") for k in ids)

    # datastore_validate: whatever is left after removing the valid parts is an "invalid value".
    filters = p.get("filters", {})
    if not isinstance(filters, dict):
        raise validation(filters=['invalid value "%s"' % (filters[0] if filters else "")])
    for key in filters:
        if key not in field_types:
            raise validation(filters=['invalid value "%s"' % key])
    sel = None
    if "fields" in p:
        sel = _get_list(p["fields"])
        bad = [f for f in sel if f not in field_types]
        if bad:
            raise validation(fields=['invalid value "%s"' % bad[0]])
    sort = None
    if "sort" in p:
        clauses = _get_list(p["sort"], False) or []
        sort = []
        for c in clauses:
            parsed = _parse_sort_clause(c.strip() if isinstance(c, str) else c, field_types)
            if not parsed:
                raise validation(sort=['invalid value "%s"' % c])
            sort.append(parsed)
    q = p.get("q")
    if isinstance(q, dict):
        for key in q:
            if key not in field_types:
                raise validation(q=['invalid value "%s"' % key])

    limit, offset = p["limit"], p.get("offset", 0)
    plain_path = not filters and not q and not sort and sel is None and not p.get("distinct")
    cols = ["_id"] + ids
    pos = {c: k for k, c in enumerate(cols)}
    ranks = {}
    if plain_path:
        matched = None  # every row, in _id order
        total = len(values)
    else:
        matched = list(range(len(values)))
        for key, want in filters.items():
            wants = want if isinstance(want, list) else [want]
            if key == "_id":
                wl = set()
                for w in wants:
                    try:
                        wl.add(int(w))
                    except (TypeError, ValueError):
                        raise CkanError(409, "Validation Error", {"query": ["Invalid query"]})
                matched = [i for i in matched if values[i][0] in wl]
            else:
                ws = {str(w) for w in wants if w is not None}
                k = pos[key]
                matched = [i for i in matched if values[i][k] in ws]
        if q:
            terms = [(None, _tsquery(q))] if isinstance(q, str) else [(k, _tsquery(str(v))) for k, v in q.items()]
            kept = []
            for i in matched:
                d = values[i]
                score = 0.0
                ok = True
                for key, words in terms:
                    vec = _tsvector(d[1:] if key is None else [d[pos[key]]])
                    if not all(w in vec for w in words):
                        ok = False
                        break
                    score += len(words) / (len(vec) + 1.0)
                if ok:
                    kept.append(i)
                    ranks[i] = round(0.0607927 * score, 7)
            matched = kept
        if sort:
            for key, direction in reversed(sort):
                k = pos[key]
                present = [i for i in matched if values[i][k] is not None]
                absent = [i for i in matched if values[i][k] is None]
                present.sort(key=lambda i: values[i][k], reverse=(direction == "desc"))
                # PostgreSQL: NULLS LAST for ASC, NULLS FIRST for DESC
                matched = present + absent if direction == "asc" else absent + present
        elif q:
            matched.sort(key=lambda i: -ranks[i])
        cols = sel if sel is not None else cols
        if q and sel is None:
            cols = cols + ["rank"] if isinstance(q, str) else cols + ["rank " + k for k in q]
        if p.get("distinct"):
            seen, uniq = set(), []
            for i in matched:
                key = tuple(values[i][pos[c]] for c in cols if not c.startswith("rank"))
                if key not in seen:
                    seen.add(key)
                    uniq.append(i)
            matched = uniq
        total = len(matched)

    page_idx = range(offset, min(offset + limit, total)) if limit else range(0)
    fmt = p["records_format"]
    if plain_path and fmt == "objects":
        text = "[" + ",".join(blobs[offset:offset + limit]) + "]" if limit else "[]"
        nrec = len(page_idx)
    else:
        rows = []
        for j in page_idx:
            i = j if matched is None else matched[j]
            d = values[i]
            r = {}
            for c in cols:
                r[c] = ranks[i] if c == "rank" or c.startswith("rank ") else d[pos[c]]
            rows.append(r)
        nrec = len(rows)
        if fmt == "objects":
            text = json.dumps(rows, separators=(",", ":"), ensure_ascii=False)
        elif fmt == "lists":
            text = json.dumps([list(r.values()) for r in rows], separators=(",", ":"), ensure_ascii=False)
        else:
            import csv as _csv
            import io as _io
            buf = _io.StringIO()
            w = _csv.writer(buf, delimiter="," if fmt == "csv" else "\t", lineterminator="\n")
            for r in rows:
                w.writerow(["" if v is None else v for v in r.values()])
            text = json.dumps(buf.getvalue())

    result = {k: p[k] for k in sorted(p)}
    result["records"] = None  # placeholder: the page is spliced in pre-serialised
    out_fields = [{"id": c, "type": field_types.get(c, "float")} for c in cols]
    result["fields"] = out_fields
    result["_links"] = links(path, query_string, offset, limit)
    if p["include_total"]:
        thr = p.get("total_estimation_threshold")
        if thr is not None and not (filters or q or p.get("distinct")) and total >= thr:
            # pg_class.reltuples: exact for small tables, a little off for the big ones
            result["total"] = total if total <= 30000 else int(total * 0.997)
            result["total_was_estimated"] = True
        else:
            result["total"] = total
            result["total_was_estimated"] = False
    return result, text, nrec, table


def links(path, query_string, offset, limit):
    """CKAN's _insert_links: the request URL relative to the CKAN root, query re-encoded, offset replaced. A POST
    has no query string, so its links carry nothing but the offset."""
    rel = path[len(ROOT):] if path.startswith(ROOT + "/") else path
    args = dict(parse_qsl(query_string, keep_blank_values=True))
    start = dict(args)
    start.pop("offset", None)
    nxt = dict(args)
    nxt["offset"] = int(offset) + int(limit)
    prev = dict(args)
    prev["offset"] = int(offset) - int(limit)
    out = {"start": urlunsplit(("", "", rel, urlencode(start), "")),
           "next": urlunsplit(("", "", rel, urlencode(nxt), ""))}
    if int(offset) - int(limit) > 0:
        out["prev"] = urlunsplit(("", "", rel, urlencode(prev), ""))
    return out


def inject_bad_money(text, fault):
    """Replaces one money value of the page with an unparseable one; returns (text, applied)."""
    try:
        rows = json.loads(text)
    except ValueError:
        return text, False
    field = fault.get("field", "Tuition Fee")
    value = fault.get("value", "$1,2x0.00")
    idx = int(fault.get("record", 0))
    if not isinstance(rows, list) or not rows or not isinstance(rows[0], dict) or field not in rows[0]:
        return text, False
    row = rows[min(idx, len(rows) - 1)]
    row[field] = value
    # More fields of the same record, as given (e.g. {"_id": 1e300}: a hostile _id on a record with a bad value).
    also = fault.get("also") or {}
    if isinstance(also, dict):
        row.update(also)
    return json.dumps(rows, separators=(",", ":"), ensure_ascii=False), True


# ---------------------------------------------------------------------------------------------------------------
# HTTP

HTML_PAGES = {
    "html": ("<!DOCTYPE html><html><head><title>data.gov.au - Scheduled maintenance</title></head><body>"
             "<h1>We'll be back soon</h1><p>data.gov.au is undergoing scheduled maintenance. Please try again "
             "later.</p></body></html>"),
    "http500": ("<html><head><title>500 Internal Server Error</title></head><body><center><h1>500 Internal "
                "Server Error</h1></center><hr><center>nginx</center></body></html>"),
    "http503": ("<html><head><title>503 Service Temporarily Unavailable</title></head><body><center><h1>503 "
                "Service Temporarily Unavailable</h1></center><hr><center>nginx</center></body></html>"),
    "http429": ("<html><head><title>429 Too Many Requests</title></head><body><center><h1>429 Too Many "
                "Requests</h1></center><hr><center>nginx</center></body></html>"),
    "login": ("<!DOCTYPE html><html><head><title>Login - data.gov.au</title></head><body><form method=\"post\" "
              "action=\"/data/user/login\"><input name=\"login\"><input name=\"password\" type=\"password\">"
              "</form></body></html>"),
    "404": ("<!DOCTYPE html><html><head><title>Page Not Found - data.gov.au</title></head><body><h1>404 Not "
            "Found</h1><p>The requested URL was not found on the server.</p></body></html>"),
}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "nginx"
    sys_version = ""

    def version_string(self):
        return "nginx"

    def date_time_string(self, timestamp=None):
        return http_date(self.st.now())

    def log_message(self, fmt, *args):
        pass

    def log_request(self, code="-", size="-"):
        self._status = code  # the line is written once the body is out (log_done)

    def log_done(self):
        sys.stderr.write('%s - [%s] "%s" %s %s %.3fs%s\n' % (
            self.client_address[0], time.strftime("%Y-%m-%d %H:%M:%S"), self.requestline,
            getattr(self, "_status", "-"), getattr(self, "_sent", "-"), time.time() - self._t0,
            (" fault=" + self._fault_kind) if self._fault_kind else ""))
        sys.stderr.flush()

    # -- plumbing --------------------------------------------------------------------------------------------
    @property
    def st(self):
        return self.server.state

    def host(self):
        return self.headers.get("Host") or "127.0.0.1:%d" % self.server.server_address[1]

    def read_body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            out = b""
            while True:
                line = self.rfile.readline()
                size = int(line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return out
                out += self.rfile.read(size)
                self.rfile.readline()
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def send(self, status, body, ctype, extra=None, fault=None):
        if isinstance(body, str):
            body = body.encode("utf-8")
        headers = [("Content-Type", ctype), ("Content-Length", str(len(body)))]
        headers += list((extra or {}).items())
        kind = fault["kind"] if fault else None
        if kind == "malformed" and status == 200:
            cut = body[:max(1, len(body) // 2)] + b'",,]}{"success": tru'
            body = cut
            headers[1] = ("Content-Length", str(len(body)))
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        if kind in ("reset", "truncate"):
            self.send_header("Connection", "close")
        counted = not self.path.startswith("/_fake/")  # the control plane stays out of the upstream's stats
        if counted:
            # Counted before a byte goes out: a client that has read the response and then asks for the stats
            # (on another connection, so another thread) must find it counted.
            self.st.count_status(status)
        self.end_headers()
        if self.command == "HEAD":
            self._sent = 0
            return
        if kind == "reset":
            self.wfile.write(body[:max(1, len(body) // 3)])
            self.wfile.flush()
            self._abort()
            self._sent = len(body) // 3
        elif kind == "truncate":
            part = body[:max(1, len(body) // 2)]
            self.wfile.write(part)
            self.wfile.flush()
            self.close_connection = True
            self._shutdown_write()
            self._sent = len(part)
        elif kind == "drip":
            interval = float(fault.get("interval", 0.2))
            step = max(1, int(fault.get("bytes", 1)))
            for i in range(0, len(body), step):
                self.wfile.write(body[i:i + step])
                self.wfile.flush()
                if self.st.stopping.wait(interval):
                    break
            self._sent = len(body)
        else:
            self.wfile.write(body)
            self._sent = len(body)
        if counted:
            self.st.count_bytes(self._sent)

    def _abort(self):
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
        except OSError:
            pass
        self.close_connection = True

    def _shutdown_write(self):
        try:
            self.connection.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def send_json(self, status, obj, fault=None, raw=None):
        text = json.dumps(obj)
        if raw is not None:
            text = text.replace(raw[0], raw[1], 1)
        self.send(status, text, JSON_CT, fault=fault)

    def help_url(self, action):
        return "http://%s%s/api/3/action/help_show?name=%s" % (self.host(), ROOT, action)

    # -- verbs -----------------------------------------------------------------------------------------------
    def do_GET(self):
        self.dispatch()

    def do_POST(self):
        self.dispatch()

    def do_HEAD(self):
        self.dispatch()

    def dispatch(self):
        self._t0 = time.time()
        self._fault_kind = None
        self._status = self._sent = "-"
        try:
            self.route()
        finally:
            self.log_done()

    def route(self):
        try:
            parts = urlsplit(self.path)
            path = unquote(parts.path)
            if path.startswith("/_fake/"):
                return self.control(path, parts.query)
            m = re.fullmatch(re.escape(ROOT) + r"/api(?:/3)?/action/([^/]+)", path)
            if m:
                return self.action(m.group(1), path, parts.query)
            m = re.fullmatch(re.escape(ROOT) + r"/dataset/([^/]+)/resource/([^/]+)/download/(.+)", path)
            if m:
                return self.download(m.group(1), m.group(2), m.group(3))
            if path == ROOT + "/user/login":
                self.st.count("login")
                self.read_body()
                return self.send(200, HTML_PAGES["login"], HTML_CT)
            self.st.count("other")
            self.read_body()
            return self.send(404, HTML_PAGES["404"], HTML_CT)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        except Exception:  # a bug in the fake must not look like a protocol behaviour: say so loudly
            traceback.print_exc()
            try:
                self.send(500, "fake_ckan internal error\n" + traceback.format_exc(), "text/plain")
            except OSError:
                pass

    def pre_fault(self, fault):
        """Faults decided before the action runs. Returns True when the response has been sent."""
        if not fault:
            return False
        kind = self._fault_kind = fault["kind"]
        if kind == "hang":
            self._status = "hang"
            self.st.stopping.wait(float(fault.get("hold", 3600)))
            self.close_connection = True
            return True
        if kind in ("http500", "http503", "http429"):
            extra = {}
            if kind == "http429" or (kind == "http503" and "retry_after" in fault):
                extra["Retry-After"] = str(fault.get("retry_after", 30))
            self.send(int(kind[4:]), HTML_PAGES[kind], HTML_CT, extra)
            return True
        if kind == "html":
            self.send(200, HTML_PAGES["html"], HTML_CT)
            return True
        if kind == "redirect":
            target = "http://%s%s/user/login?came_from=%s" % (self.host(), ROOT, quote(self.path, safe=""))
            self.send(302, "", HTML_CT, {"Location": target})
            return True
        if kind == "slow":
            self.st.stopping.wait(float(fault.get("delay", 25)))
        return False

    def ckan_error(self, action, fault):
        variant = fault.get("variant", "internal")
        ret = {"help": self.help_url(action)}
        if variant == "bad_request":
            return self.send(400, json.dumps("Bad request - " + fault.get("message", "JSON Error: Invalid request.")),
                             JSON_CT)
        if variant == "timeout":
            status, err = 409, {"query": ["Search took too long"], "__type": "Validation Error"}
        elif variant == "auth":
            status, err = 403, {"__type": "Authorization Error",
                                "message": "Access denied: User  not authorized to read resource"}
        elif variant == "not_found":
            status, err = 404, {"__type": "Not Found Error", "message": "Not found"}
        else:
            status, err = 500, {"__type": "Internal Server Error", "message": "Internal Server Error"}
        ret["error"] = err
        ret["success"] = False
        self.send_json(status, ret)

    # -- CKAN action API -------------------------------------------------------------------------------------
    def request_data(self, query):
        """CKAN's _get_request_data: POST form or JSON body, else the query string (side-effect-free actions)."""
        body = self.read_body() if self.command == "POST" else b""
        ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if self.command == "POST" and body and ctype == "application/x-www-form-urlencoded":
            form = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
            if len(form) == 1 and list(form.values())[0] in (["1"], [""]):
                try:
                    data = json.loads(list(form)[0])
                except ValueError as e:
                    raise BadRequest("JSON Error: Error decoding JSON data. Error: %r JSON data extracted from "
                                     "the request: {}" % (e,))
            else:
                data = {k: v[0] if len(v) == 1 else v for k, v in form.items()}
        elif query and not (self.command == "POST" and body):
            form = parse_qs(query, keep_blank_values=True)
            data = {k: v[0] if len(v) == 1 else v for k, v in form.items()}
        elif body:
            try:
                data = json.loads(body.decode("utf-8"))
            except (ValueError, UnicodeDecodeError) as e:
                raise BadRequest("JSON Error: Error decoding JSON data. Error: %r JSON data extracted from the "
                                 "request: {}" % (e,))
        else:
            data = {}
        if not isinstance(data, dict):
            raise BadRequest("JSON Error: Request data JSON decoded to %r but it needs to be a dictionary." % (data,))
        data.pop("callback", None)
        data.pop("_", None)
        return data

    def action(self, name, path, query):
        st = self.st
        op = name if name in ACTIONS else "unknown_action"
        st.count(op)
        if name not in ACTIONS:
            self.read_body()
            # datastore_search_sql is absent when ckan.datastore.sqlsearch.enabled is false (reference §2)
            return self.send(400, json.dumps("Bad request - Action name not known: %s" % name), JSON_CT)
        try:
            data = self.request_data(query)
        except BadRequest as e:
            return self.send(400, json.dumps("Bad request - %s" % e), JSON_CT)
        rid = data.get("resource_id") or data.get("id")
        fault = st.take_fault(name, rid if isinstance(rid, str) else None)
        if self.pre_fault(fault):
            return
        if fault and fault["kind"] == "ckan_error":
            self._fault_kind = "ckan_error"
            return self.ckan_error(name, fault)
        ret = {"help": self.help_url(name)}
        try:
            if name == "package_show":
                ident = data.get("id") or data.get("name_or_id")
                if not ident:
                    raise validation(name_or_id="Missing value")
                if ident not in (ce.PACKAGE_ID, ce.PACKAGE_NAME):
                    raise not_found()
                result = package_dict(st, self.host())
                ret["success"] = True
                ret["result"] = result
                return self.send_json(200, ret, fault)
            if name == "resource_show":
                ident = data.get("id")
                if not ident:
                    raise validation(id="Missing value")
                result = self.resource_show(ident)
                ret["success"] = True
                ret["result"] = result
                return self.send_json(200, ret, fault)
            return self.search(ret, data, path, query, fault)
        except CkanError as e:
            err = dict(e.error)
            err["__type"] = e.error_type
            ret["error"] = err
            ret["success"] = False
            return self.send_json(e.status, ret, fault)

    def resource_show(self, ident):
        st = self.st
        n, versions = st.view()
        for pos, t in enumerate(ce.TABLES):
            if ce.RESOURCES[t]["id"] == ident:
                return resource_dict(st, self.host(), t, versions[t], pos)
        if ident == ZIP_RESOURCE_ID:
            return zip_resource(st, self.host(), versions, 4)
        snap, _ = find_snapshot(st, ident)
        if snap and not (st.follow_clock and snap["created"] > st.now()):
            base = "http://%s%s/dataset/%s/resource/" % (self.host(), ROOT, ce.PACKAGE_ID)
            return snapshot_resource(snap, base, 5)
        raise not_found("Resource was not found.")

    def search(self, ret, data, path, query, fault):
        st = self.st
        result, text, nrec, table = datastore_search(st, data, path, query)
        cols = {f["id"] for f in result["fields"]}
        bad = st.take_fault("datastore_search", result.get("resource_id"), pred=lambda f: (
            f["kind"] == "bad_money" and f.get("field", "Tuition Fee") in cols)) \
            if nrec and result["records_format"] == "objects" else None
        if bad:
            text, applied = inject_bad_money(text, bad)
            self._fault_kind = "bad_money" if applied else None
        # The table as if replaced while it is read (total_change: its total moves by "delta") or as CKAN reports a
        # big table's total from pg_class (total_estimated: total x "factor", flagged total_was_estimated).
        shift = st.take_fault("datastore_search", result.get("resource_id"),
                              pred=lambda f: f["kind"] in ("total_change", "total_estimated"))
        if shift and "total" in result:
            if shift["kind"] == "total_change":
                # "cumulative": every firing moves it further (a table that never holds still).
                times = shift.get("fired", 1) if shift.get("cumulative") else 1
                result["total"] = max(0, result["total"] + int(shift.get("delta", 1)) * times)
            else:
                result["total"] = int(result["total"] * float(shift.get("factor", 0.9)))
                result["total_was_estimated"] = True
            self._fault_kind = shift["kind"]
        with st.lock:
            st.stats["records_served"] += nrec
            pages = st.stats["datastore_pages"]
            pages[table] = pages.get(table, 0) + 1
        delay = st.page_delay + st.page_delay_per_1000 * nrec / 1000.0
        if delay > 0:
            st.stopping.wait(delay)
        ret["success"] = True
        ret["result"] = result
        token = "\x00records-%s\x00" % os.urandom(6).hex()
        result["records"] = token
        self.send_json(200, ret, fault, raw=(json.dumps(token), text))

    # -- file downloads ------------------------------------------------------------------------------------------
    def download(self, pkg, rid, fname):
        st = self.st
        st.count("download")
        self.read_body()
        fault = st.take_fault("download", rid)
        if self.pre_fault(fault):
            return
        if pkg not in (ce.PACKAGE_ID, ce.PACKAGE_NAME):
            return self.send(404, HTML_PAGES["404"], HTML_CT)
        n, versions = st.view()
        for t in ce.TABLES:
            if ce.RESOURCES[t]["id"] == rid:
                body = st.reg.csv_bytes(t, versions[t])
                lm = st.last_modified(t, versions[t])
                meta = st.reg.edition(versions[t]).meta[t]
                return self.send(200, body, "text/csv", {"Last-Modified": http_date(lm),
                                                         "ETag": '"%s"' % meta["hash"]}, fault)
        if rid == ZIP_RESOURCE_ID:
            body, when, digest = zip_blob(st, versions)
            return self.send(200, body, "application/zip", {"Last-Modified": http_date(when),
                                                            "ETag": '"%s"' % digest}, fault)
        snap, k = find_snapshot(st, rid)
        if snap:
            body = self.snapshot_body(snap, k)
            return self.send(200, body, "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                             {"Last-Modified": http_date(snap["created"])}, fault)
        return self.send(404, HTML_PAGES["404"], HTML_CT)

    def snapshot_body(self, snap, k):
        st = self.st
        key = ("xlsx", snap["id"])
        with st.lock:
            hit = st.blob_cache.get(key)
        if hit:
            return hit
        if snap["date"].isoformat() == "2023-01-03" and ce.xlsx_sample_path().exists():
            body = ce.xlsx_sample_path().read_bytes()  # the real (trimmed) snapshot of that month
        else:
            # Snapshots older than edition 1 are rendered from edition 1: right layout, not that month's data.
            ed = st.reg.edition(k or 1)
            body = ce.xlsx_bytes(st.reg, dict(ed.version), snap["date"])
        with st.lock:
            st.blob_cache[key] = body
        return body

    # -- control plane -------------------------------------------------------------------------------------------
    def control(self, path, query):
        body = self.read_body()
        try:
            data = json.loads(body.decode("utf-8")) if body.strip() else {}
        except ValueError:
            return self.send(400, json.dumps({"error": "body is not JSON"}), "application/json")
        try:
            out = self.control_op(path, data, query)
        except (ValueError, KeyError, TypeError) as e:
            return self.send(400, json.dumps({"error": str(e)}), "application/json")
        if out is None:
            return self.send(404, json.dumps({"error": "unknown control path %s" % path}), "application/json")
        if isinstance(out, tuple):  # pre-serialised
            return self.send(200, out[0], "application/json")
        self.send(200, json.dumps(out, default=str), "application/json")

    def control_op(self, path, data, query):
        st = self.st
        if path == "/_fake/stats" and self.command == "GET":
            with st.lock:
                return json.loads(json.dumps(st.stats))
        if path == "/_fake/stats/reset" and self.command == "POST":
            st.reset_stats()
            return {"ok": True}
        if path == "/_fake/fault" and self.command == "POST":
            kind = data["kind"]
            if kind not in FAULT_KINDS:
                raise ValueError("unknown fault kind %r (expected one of %s)" % (kind, ", ".join(FAULT_KINDS)))
            if kind == "ckan_error" and data.get("variant", "internal") not in CKAN_ERROR_VARIANTS:
                raise ValueError("unknown ckan_error variant %r" % data.get("variant"))
            f = dict(data)
            f.setdefault("op", "*")
            if f["op"] not in ACTIONS + ("download", "*"):
                # A fault armed on an op that never comes would never fire: refuse it.
                raise ValueError("unknown op %r (expected one of %s)" % (f["op"], ", ".join(ACTIONS + ("download",
                                                                                                      "*"))))
            f["fired"] = 0
            f["count"] = int(f.get("count", 1))
            f["skip"] = int(f.get("skip", 0))
            if f["count"] == 0:
                raise ValueError("count must be positive or -1")
            with st.lock:
                st.faults.append(f)
                return {"ok": True, "armed": list(st.faults)}
        if path == "/_fake/fault" and self.command == "GET":
            # The armed faults with their remaining count and how often each fired (spent ones included).
            with st.lock:
                return {"armed": [dict(f) for f in st.faults], "spent": [dict(f) for f in st.spent_faults]}
        if path == "/_fake/fault/clear" and self.command == "POST":
            with st.lock:
                st.faults = []
                st.spent_faults = []
            return {"ok": True}
        if path == "/_fake/clock" and self.command == "POST":
            now = st.set_clock(data.get("now"), data.get("advance"))
            if st.follow_clock:
                st.warm()
            return {"ok": True, "now": iso(now)[:19] + "Z", "view": self.view_summary()}
        if path == "/_fake/mutate" and self.command == "POST":
            return self.mutate(data)
        if path == "/_fake/dump" and self.command == "GET":
            return (dump(st),)
        if path == "/_fake/state" and self.command == "GET":
            return self.view_summary()
        return None

    def view_summary(self):
        st = self.st
        n, versions = st.view()
        return {"edition": n, "edition_date": ce.edition_date(n).isoformat(), "follow_clock": st.follow_clock,
                "now": iso(st.now())[:19] + "Z", "versions": versions, "bom_field": st.bom_field,
                "blanks": st.blanks, "rows_max": st.rows_max, "page_delay": st.page_delay,
                "page_delay_per_1000": st.page_delay_per_1000,
                "resources": {t: {"id": ce.RESOURCES[t]["id"], "version": versions[t],
                                  "last_modified": iso(st.last_modified(t, versions[t])),
                                  "hash": st.reg.edition(versions[t]).meta[t]["hash"],
                                  "rows": st.reg.edition(versions[t]).meta[t]["rows"]} for t in ce.TABLES}}

    def mutate(self, data):
        st = self.st
        action = data.get("action")
        with st.lock:
            if action == "edition":
                n = int(data["edition"])
                if not 1 <= n <= MAX_EDITION:
                    raise ValueError("edition must be 1..%d" % MAX_EDITION)
                st.reg.edition(n)
                st.edition_n, st.follow_clock = n, False
            elif action == "next_edition":
                st.edition_n, st.follow_clock = st.edition_n + 1, False
                st.reg.edition(st.edition_n)
            elif action == "follow_clock":
                st.follow_clock = bool(data.get("enabled", True))
            elif action == "touch":
                res = data["resource"]
                table = next((t for t in ce.TABLES if res in (t, ce.RESOURCES[t]["id"], ce.RESOURCES[t]["name"])),
                             None)
                if table is None:
                    raise ValueError("unknown resource %r" % res)
                _, versions = st.view()
                when = data.get("last_modified")
                ts = _dt.datetime.fromisoformat(when.rstrip("Z")) if when else st.now()
                st.touched[(table, versions[table])] = ts
            elif action == "bom_field":
                if data["mode"] not in ("keep", "strip"):
                    raise ValueError("mode must be keep or strip")
                st.bom_field = data["mode"]
            elif action == "blanks":
                if data["mode"] not in ("null", "empty"):
                    raise ValueError("mode must be null or empty")
                st.blanks = data["mode"]
            elif action == "page_delay":
                st.page_delay = float(data.get("seconds", st.page_delay))
                st.page_delay_per_1000 = float(data.get("per_1000", st.page_delay_per_1000))
            elif action == "rows_max":
                st.rows_max = int(data["value"])
            else:
                raise ValueError("unknown mutate action %r" % action)
        st.warm()  # render the new edition's records now, not during a timed page
        return dict(self.view_summary(), ok=True)


def dump(st):
    """GET /_fake/dump: the data set as served, for tests that compare by content (shape in README.md)."""
    n, versions = st.view()
    meta = {}
    headers = {}
    parts = []
    for t in ce.TABLES:
        v = versions[t]
        m = st.reg.edition(v).meta[t]
        meta[t] = {"id": ce.RESOURCES[t]["id"], "name": ce.RESOURCES[t]["name"], "version": v,
                   "edition_date": ce.edition_date(v).isoformat(),
                   "last_modified": iso(st.last_modified(t, v)), "hash": m["hash"], "size": m["size"],
                   "total": m["rows"]}
        headers[t] = st.field_ids(t)
    head = {"dataset": {"id": ce.PACKAGE_ID, "name": ce.PACKAGE_NAME}, "scale": st.scale, "seed": st.seed,
            "edition": n, "edition_date": ce.edition_date(n).isoformat(), "follow_clock": st.follow_clock,
            "now": iso(st.now())[:19] + "Z", "bom_field": st.bom_field, "blanks": st.blanks,
            "resources": meta, "fields": headers}
    text = json.dumps(head)[:-1] + ', "tables": {'
    for k, t in enumerate(ce.TABLES):
        _, blobs = st.records(t, versions[t])
        parts.append('%s"%s": [%s]' % (", " if k else "", t, ",".join(blobs)))
    return text + "".join(parts) + "}}"


# ---------------------------------------------------------------------------------------------------------------

class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description="Fake data.gov.au CKAN server for CRICOS (see tests/fakes/README.md)")
    ap.add_argument("--port", type=int, default=0, help="TCP port on 127.0.0.1 (0 = any free port)")
    ap.add_argument("--port-file", help="write the chosen port here (atomically) once listening")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--scale", choices=("small", "full"), default="small")
    ap.add_argument("--edition", type=int, default=1, help="edition served at start (1 = May 2026)")
    ap.add_argument("--follow-clock", action="store_true",
                    help="serve, per resource, the last version uploaded at or before the fake clock")
    ap.add_argument("--now", help="initial fake clock, YYYY-MM-DDTHH:MM:SSZ (default: real time)")
    ap.add_argument("--page-delay", type=float, default=0.0, help="seconds added to every datastore_search")
    ap.add_argument("--page-delay-per-1000", type=float, default=0.0,
                    help="seconds added per 1,000 records returned (real site: 2-5 s per 1,000)")
    ap.add_argument("--rows-max", type=int, default=ROWS_MAX, help="ckan.datastore.search.rows_max")
    ap.add_argument("--bom-field", choices=("strip", "keep"), default="strip",
                    help="DataStore id of the Locations BOM header: strip (XLoader, default) or keep (DataPusher)")
    ap.add_argument("--blanks", choices=("null", "empty"), default="null",
                    help="empty CSV cells in DataStore records: null (XLoader COPY, default) or \"\"")
    ap.add_argument("--timestamps-z", action="store_true",
                    help='append "Z" to resource last_modified values (as one peer recorded them)')
    args = ap.parse_args(argv)
    if args.now:
        args.now = _dt.datetime.strptime(args.now.rstrip("Z"), "%Y-%m-%dT%H:%M:%S")
    return args


def main(argv=None):
    args = parse_args(argv)
    t0 = time.time()
    state = State(args)
    srv = Server(("127.0.0.1", args.port), Handler)
    srv.state = state
    port = srv.server_address[1]

    def stop(*_):
        state.stopping.set()
        threading.Thread(target=srv.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    if args.port_file:
        tmp = args.port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write("%d\n" % port)
        os.replace(tmp, args.port_file)
    sys.stderr.write("fake_ckan: listening on 127.0.0.1:%d (scale %s, seed %d, edition %d, ready in %.2fs)\n" % (
        port, args.scale, args.seed, args.edition, time.time() - t0))
    sys.stderr.flush()
    try:
        srv.serve_forever(poll_interval=0.2)
    finally:
        srv.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
