"""Shared pieces of the cricos-sync tests: the environment (workdir, config, daemon, fake CKAN) and an oracle.

The oracle turns the fake's /_fake/dump into the rows cricos-sync must hold, written from the reference
(../shared/reference/cricos-data.md §3-4 and the issue's cleaning rules), not from the C code: trimmed text, blanks
as NULL, money in cents, "2,610" as 2610, Yes/No as 1/0, a 3-digit postcode with its zero back, unparseable
values as NULL (counted), blank rows skipped, the first of a repeated key kept.
"""

import json
import os
import re

import env as kitenv
from harness import REPO, Server, Workdir, query

FAKE_CKAN = os.path.join(REPO, "tests", "fakes", "fake_ckan.py")
SYNC_TYPE = "cricos_sync"

# header, column, kind, flags ("key", "nohash", "upperkey")
COLUMNS = {
    "institutions": ("cricos_institutions", [
        ("CRICOS Provider Code", "provider_code", "provider", "key"),
        ("Trading Name", "trading_name", "text", ""),
        ("Institution Name", "institution_name", "text", ""),
        ("Institution Type", "institution_type", "text", ""),
        ("Institution Capacity", "capacity", "int", ""),
        ("Website", "website", "text", ""),
        ("Postal Address Line 1", "postal_line1", "text", ""),
        ("Postal Address Line 2", "postal_line2", "text", ""),
        ("Postal Address Line 3", "postal_line3", "text", ""),
        ("Postal Address Line 4", "postal_line4", "text", ""),
        ("Postal Address City", "postal_city", "text", ""),
        ("Postal Address State", "postal_state", "text", ""),
        ("Postal Address Postcode", "postal_postcode", "postcode", ""),
    ]),
    "courses": ("cricos_courses", [
        ("CRICOS Provider Code", "provider_code", "provider", ""),
        ("Institution Name", "institution_name", "text", "nohash"),
        ("CRICOS Course Code", "course_code", "course", "key"),
        ("Course Name", "course_name", "text", ""),
        ("VET National Code", "vet_national_code", "text", ""),
        ("Dual Qualification", "dual_qualification", "yesno", ""),
        ("Field of Education 1 Broad Field", "foe1_broad", "text", ""),
        ("Field of Education 1 Narrow Field", "foe1_narrow", "text", ""),
        ("Field of Education 1 Detailed Field", "foe1_detailed", "text", ""),
        ("Field of Education 2 Broad Field", "foe2_broad", "text", ""),
        ("Field of Education 2 Narrow Field", "foe2_narrow", "text", ""),
        ("Field of Education 2 Detailed Field", "foe2_detailed", "text", ""),
        ("Course Level", "course_level", "text", ""),
        ("Foundation Studies", "foundation_studies", "yesno", ""),
        ("Work Component", "work_component", "yesno", ""),
        ("Work Component Hours/Week", "work_hours_per_week", "decimal", ""),
        ("Work Component Weeks", "work_weeks", "int", ""),
        ("Work Component Total Hours", "work_total_hours", "int", ""),
        ("Course Language", "course_language", "text", ""),
        ("Duration (Weeks)", "duration_weeks", "int", ""),
        ("Tuition Fee", "tuition_fee_cents", "money", ""),
        ("Non Tuition Fee", "non_tuition_fee_cents", "money", ""),
        ("Estimated Total Course Cost", "estimated_total_cost_cents", "money", ""),
        ("Expired", "expired", "yesno", ""),
    ]),
    "locations": ("cricos_locations", [
        ("CRICOS Provider Code", "provider_code", "provider", "key"),
        ("Institution Name", "institution_name", "text", "nohash"),
        ("Location Name", "location_name", "text", "key"),
        ("Location Type", "location_type", "text", ""),
        ("Address Line 1", "address_line1", "text", ""),
        ("Address Line 2", "address_line2", "text", ""),
        ("Address Line 3", "address_line3", "text", ""),
        ("Address Line 4", "address_line4", "text", ""),
        ("City", "city", "text", "upperkey"),
        ("State", "state", "text", "upperkey"),
        ("Postcode", "postcode", "postcode", ""),
    ]),
    "course_locations": ("cricos_course_locations", [
        ("CRICOS Provider Code", "provider_code", "provider", "key"),
        ("Institution Name", "institution_name", "text", "nohash"),
        ("CRICOS Course Code", "course_code", "course", "key"),
        ("Location Name", "location_name", "text", "key"),
        ("Location City", "location_city", "text", "upperkey"),
        ("Location State", "location_state", "text", "upperkey"),
    ]),
}
TABLES = ("institutions", "courses", "locations", "course_locations")

_GROUPED = r"(?:\d{1,3}(?:,\d{3})+|\d+)"
_MONEY = re.compile(r"^(-?)\$?(-?) *(" + _GROUPED + r")(?:\.(\d{1,2}))?$")
_INT = re.compile(r"^([-+]?)(" + _GROUPED + r")(?:\.0+)?$")
_DEC = re.compile(r"^[-+]?" + _GROUPED + r"(?:\.\d+)?$")
_WS = " \t\r\n\u00a0"


class Unparseable(Exception):
    pass


def clean_text(v):
    if v is None:
        return None
    if isinstance(v, (int, float)):
        v = str(int(v)) if float(v).is_integer() else repr(v)
    v = v.lstrip("\ufeff").strip(_WS)
    return v or None


def convert(kind, v):
    """(value, unparseable?) for a raw DataStore value."""
    t = clean_text(v)
    if t is None:
        return None, False
    if kind == "text":
        return t, False
    if kind == "postcode":
        return ("0" + t if re.fullmatch(r"\d{3}", t) else t), False
    if kind == "provider":
        return (t, False) if re.fullmatch(r"\d{5}[A-Z]", t) else (None, True)
    if kind == "course":
        return (t, False) if re.fullmatch(r"\d{6}[0-9A-Z]", t) else (None, True)
    if kind == "yesno":
        return ({"yes": 1, "no": 0}[t.lower()], False) if t.lower() in ("yes", "no") else (None, True)
    if kind == "int":
        m = _INT.match(t)
        if not m:
            return None, True
        n = int(m.group(2).replace(",", ""))
        return (-n if m.group(1) == "-" else n), False
    if kind == "money":
        m = _MONEY.match(t)
        if not m or (m.group(1) and m.group(2)):
            return None, True
        cents = int(m.group(3).replace(",", "")) * 100 + int((m.group(4) or "0").ljust(2, "0"))
        return (-cents if (m.group(1) or m.group(2)) else cents), False
    if kind == "decimal":
        return (float(t.replace(",", "")), False) if _DEC.match(t) else (None, True)
    raise ValueError(kind)


def location_key(provider, name, city, state):
    return "|".join([provider, name, (city or "").upper(), (state or "").upper()])


def expected(dump):
    """{table: {key: {column: value}}}, plus counts: unparseable per (table, header), blank, duplicate, conflict."""
    out = {t: {} for t in TABLES}
    stats = {"unparseable": {}, "blank": {}, "duplicates": {}, "rejected": {}}
    for t in TABLES:
        _, cols = COLUMNS[t]
        for rec in dump["tables"][t]:
            byhdr = {k.lstrip("\ufeff"): v for k, v in rec.items()}
            row, bad = {}, []
            for hdr, col, kind, _flags in cols:
                v, unp = convert(kind, byhdr.get(hdr))
                row[col] = v
                if unp:
                    bad.append(hdr)
            if all(v is None for v in row.values()) and not bad:
                stats["blank"][t] = stats["blank"].get(t, 0) + 1
                continue
            keycols = [c for h, c, k, f in cols if f == "key"]
            if any(row[c] is None for c in keycols):
                stats["rejected"][t] = stats["rejected"].get(t, 0) + 1
                continue
            for h in bad:
                stats["unparseable"][(t, h)] = stats["unparseable"].get((t, h), 0) + 1
            if t == "institutions":
                key = row["provider_code"]
            elif t == "courses":
                key = row["course_code"]
            elif t == "locations":
                key = location_key(row["provider_code"], row["location_name"], row["city"], row["state"])
            else:
                key = (row["course_code"], location_key(row["provider_code"], row["location_name"],
                                                        row["location_city"], row["location_state"]))
            if key in out[t]:
                if out[t][key] == row:
                    stats["duplicates"][t] = stats["duplicates"].get(t, 0) + 1
                else:
                    stats["rejected"][t] = stats["rejected"].get(t, 0) + 1
                continue
            out[t][key] = row
    return out, stats


def content(t, row):
    """What counts as a change: every column but the denormalised institution name of the child tables."""
    _, cols = COLUMNS[t]
    return tuple(row[c] for h, c, k, f in cols if "nohash" not in f)


def diff(before, after):
    """{table: {"new": keys, "changed": keys, "removed": keys}} between two expected() results."""
    out = {}
    for t in TABLES:
        b, a = before[t], after[t]
        out[t] = {"new": sorted(set(a) - set(b), key=str), "removed": sorted(set(b) - set(a), key=str),
                  "changed": sorted((k for k in set(a) & set(b) if content(t, a[k]) != content(t, b[k])), key=str)}
    return out


def db_rows(corpus, t, present=True):
    """The table's current rows in the same shape as expected()."""
    table, cols = COLUMNS[t]
    names = [c for h, c, k, f in cols]
    where = " WHERE removed_cycle IS NULL" if present else " WHERE removed_cycle IS NOT NULL"
    extra = ", location_key" if t in ("locations", "course_locations") else ""
    rows = query(corpus, "SELECT %s%s FROM %s%s" % (", ".join(names), extra, table, where))
    out = {}
    for r in rows:
        row = dict(zip(names, r[:len(names)]))
        if t == "institutions":
            key = row["provider_code"]
        elif t == "courses":
            key = row["course_code"]
        elif t == "locations":
            key = r[-1]
        else:
            key = (row["course_code"], r[-1])
        out[key] = row
    return out


def summary(ops, run_id=None):
    return kitenv.run_summary(ops, SYNC_TYPE, run_id)[0]


def step_detail(ops, run_id, step):
    rows = query(ops, "SELECT detail FROM sync_steps WHERE run_id = ? AND step = ?", (run_id, step))
    return json.loads(rows[0][0]) if rows and rows[0][0] else {}


def last_run(ops):
    rows = query(ops, "SELECT run_id, status, trigger, error, requested_by FROM sync_runs WHERE sync_type = "
                      "'cricos_sync' ORDER BY started_at DESC, run_id DESC LIMIT 1")
    return dict(zip(("run_id", "status", "trigger", "error", "requested_by"), rows[0])) if rows else None


def start_fake(*args):
    """The fake data.gov.au at test scale, with its log in a workdir of its own (stop_fake removes it)."""
    wd = Workdir("cricos-fake")
    srv = Server(FAKE_CKAN, "--scale", "small", *args, wd=wd, name="fake_ckan")
    srv.workdir = wd
    return srv


def stop_fake(srv):
    srv.stop()
    srv.workdir.cleanup()


# Columns naming runs, cycles or times differ between any two runs by design.
VOLATILE = ("added_cycle", "changed_cycle", "seen_cycle", "removed_cycle", "first_seen_at", "updated_at",
            "deleted_at", "cycle_id", "synced_at", "run_id", "updated_at", "seq", "link_cycle")


class Env(kitenv.Env):
    """A workdir, a cricos-sync config pointing at a fake CKAN server, and the daemon."""

    binary = "cricos-sync"
    sync_type = SYNC_TYPE

    def __init__(self, fake, smtp=None, name="cricos", env=None, http=None, sections=None, **keys):
        super().__init__(name, smtp)
        self.fake = fake
        section = {"base_url": fake.url + "/data", "page_size": 100, "step_retries": 1, "step_backoff": "100ms",
                   "step_backoff_max": "200ms", "housekeeping_interval": "200ms"}
        section.update(keys)
        extra = {"http": http} if http else {}
        extra.update(sections or {})
        self.configure(section, extra=extra or None, env=env)

    def corpus_dump(self):
        return super().corpus_dump(exclude_tables=("sync_checkpoint",), exclude_columns=VOLATILE)

    def assert_matches(self, tc, dump, msg=""):
        """The corpus holds exactly the fake's current content, cleaned."""
        exp, _ = expected(dump)
        for t in TABLES:
            got = db_rows(self.corpus, t)
            tc.assertEqual(set(got), set(exp[t]), "%s keys differ %s" % (t, msg))
            for k in exp[t]:
                if got[k] != exp[t][k]:
                    tc.assertEqual(got[k], exp[t][k], "%s %s %s" % (t, k, msg))
