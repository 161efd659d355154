"""Shared helpers of the tga-sync tests: the fake TGA server, the daemon's config, and the comparison of
rtopacks.db with the fake's register (GET /_fake/dump) by content, table by table.
"""

import json
import os
import sqlite3
import types
import urllib.request

import crash
import env as kitenv
from harness import Server, Workdir, REPO
from endstate import without

FAKE = os.path.join(REPO, "tests", "fakes", "fake_tga_soap.py")
PASSWORD = "Asdf098"
# Columns that name a run or a time of ours: they differ between any two runs by design.
VOLATILE = ("run", "updated_at")
# Tables that hold run bookkeeping rather than register content.
BOOKKEEPING = ("sync_checkpoint", "tga_runs")
# The fake register's base data starts in 2011; a later epoch keeps the first cycle short.
EPOCH = "2011-01-01"


def start_fake(wd, *args, now=None):
    extra = list(args)
    if now:
        extra += ["--now", now]
    return Server(FAKE, "--scale", "small", *extra, wd=wd, name="fake_tga_%d" % id(extra))


def share_fake(cls, name, *args, start=None, smtp=True, now=None):
    """In a setUpClass: cls.fwd (a workdir for the fake's files), cls.fake (start_fake, or start: start_rest_fake,
    with args and now) and cls.smtp (a mail sink, unless smtp=False), for the class's tests; stopped and removed
    after them, also when the rest of setUpClass fails."""
    cls.fwd = Workdir(name)
    cls.addClassCleanup(cls.fwd.cleanup)
    fake = lambda: (start or start_fake)(cls.fwd, *args, now=now)  # noqa: E731
    if smtp:
        kitenv.share_upstreams(cls, fake)
    else:
        cls.fake = fake()
        cls.addClassCleanup(cls.fake.stop)


class Env(kitenv.Env):
    """A workdir, a config for tga-sync against a fake TGA server, and the daemon."""

    binary = "tga-sync"
    sync_type = "tga_sync"

    def __init__(self, fake, smtp=None, name="tga", password=PASSWORD, sections=None, **keys):
        super().__init__(name, smtp)
        self.fake = fake
        tga = self.source_keys(fake, password)
        tga.update(keys)
        self.configure(tga, extra=sections)

    def source_keys(self, fake, password):
        """The source's part of the [tga-sync] section: SOAP with a TGA account."""
        pw = self.secret_file("tga-password", password)
        return {"base_url": fake.url + "/Deewr.Tga.Webservices", "username": "WebService.Read",
                "password_file": pw, "epoch": EPOCH, "page_size": 50, "step_backoff": "50ms",
                "step_backoff_max": "200ms", "step_retries": 1, "overlap": "1h"}


def changes_of_every_kind(dump, fraction=0.03, package=False):
    """The delta tests' changes to the fake (POST /_fake/mutate specs), picked from its dump: a qualification
    renamed (and a training package updated when package), a unit and a skill set added, a physical and a logical
    delete, a supersession, an RTO updated, one deleted and one added, scope adds/removals/an end on the RTO with
    the most scope, and fraction of everything at random.  Returns (specs, picked): picked.comps (by code), .orgs
    (most scope first), .quals and .units (current, sorted), .big (orgs[0])."""
    comps = {c["Code"]: c for c in dump["TrainingComponents"]}
    orgs = sorted(dump["Organisations"], key=lambda o: -len(o["Scopes"]))
    quals = sorted(c for c, v in comps.items() if v["ComponentType"] == "Qualification" and v["IsCurrent"])
    units = sorted(c for c, v in comps.items() if v["ComponentType"] == "Unit" and v["IsCurrent"])
    big = orgs[0]
    explicit = [s["NrtCode"] for s in big["Scopes"] if not s["IsImplicit"]]
    specs = [
        {"action": "update", "kind": "qualification", "code": quals[0], "title": "Certificate IV in Renamed"},
        {"action": "add", "kind": "unit", "package": quals[1][:3]},
        {"action": "add", "kind": "skill_set"},
        {"action": "delete", "kind": "unit", "code": units[0], "operation": "PhysicalDelete"},
        {"action": "delete", "kind": "qualification", "code": quals[2], "operation": "LogicalDelete"},
        {"action": "supersede", "kind": "unit", "code": units[1]},
        {"action": "update", "kind": "rto", "code": orgs[1]["Code"]},
        {"action": "delete", "kind": "rto", "code": orgs[2]["Code"]},
        {"action": "add", "kind": "rto"},
        {"action": "scope", "code": big["Code"], "add": [units[5], quals[6]], "remove": explicit[:2],
         "end": explicit[2:3]},
        {"action": "random", "fraction": fraction, "seed": 7},
    ]
    if package:
        specs.insert(1, {"action": "update", "kind": "training_package", "code": sorted(
            c for c, v in comps.items() if v["ComponentType"] == "TrainingPackage")[0]})
    return specs, types.SimpleNamespace(comps=comps, orgs=orgs, quals=quals, units=units, big=big)


def fake_dump(fake):
    with urllib.request.urlopen(fake.url + "/_fake/dump", timeout=120) as r:
        return json.loads(r.read())


def _con(path):
    return sqlite3.connect("file:%s?mode=ro" % path, uri=True, timeout=10)


def _b(v):
    return None if v is None else (1 if v else 0)


def org_kind(o):
    """tga_rtos.kind of a dumped organisation: 'RTO' for Rto3, else its i:type (e.g. Organisation2)."""
    kind = o.get("Kind", "Rto3")
    return "RTO" if kind.startswith("Rto") else kind


def expected_tables(dump):
    """The dump projected onto our tables: {table: sorted list of row tuples} (live rows only)."""
    out = {k: [] for k in ("tga_components", "tga_releases", "tga_unit_grid", "tga_mappings", "tga_classifications",
                           "tga_usage_recommendations", "tga_currency_periods", "tga_rtos",
                           "tga_rto_registration_periods", "tga_rto_trading_names", "tga_rto_locations",
                           "tga_rto_urls", "tga_rto_scope", "tga_deletions")}
    for c in dump["TrainingComponents"]:
        code = c["Code"]
        out["tga_components"].append((code, c["ComponentType"], c["Title"], c["ParentCode"], c["ParentTitle"],
                                      c["UsageRecommendation"], _b(c["IsCurrent"]), c["CurrencyStatus"],
                                      _b(c["IsConfidential"]), _b(c["IsLegacyData"]), c["IscOrganisationCode"],
                                      c["CreatedDate"], c["UpdatedDate"]))
        g = 0
        for i, r in enumerate(c["Releases"]):
            out["tga_releases"].append((code, i, r["ReleaseNumber"], r["ReleaseDate"], r["Currency"],
                                        r["ApprovalProcess"]))
            for e in r["UnitGrid"] or ():
                out["tga_unit_grid"].append((code, g, r["ReleaseNumber"], e["Code"], e["Title"],
                                             _b(e["IsEssential"])))
                g += 1
        for i, m in enumerate(c["MappingInformation"]):
            out["tga_mappings"].append((code, i, m["Code"], m["Title"], m["MapsToCode"], m["MapsToTitle"],
                                        _b(m["IsEquivalent"]), m["Notes"]))
        for i, x in enumerate(c["Classifications"]):
            out["tga_classifications"].append((code, i, x["SchemeCode"], x["ValueCode"], x["PurposeCode"],
                                               x["StartDate"], x["EndDate"]))
        for i, x in enumerate(c["UsageRecommendations"]):
            out["tga_usage_recommendations"].append((code, i, x["State"], x["StartDate"], x["EndDate"]))
        for i, x in enumerate(c["CurrencyPeriods"]):
            out["tga_currency_periods"].append((code, i, x["Authority"], x["StartDate"], x["EndDate"],
                                                x["EndReasonCode"], x["EndComment"]))
    for o in dump["Organisations"]:
        code = o["Code"]
        persons = o["ResponsibleLegalPersons"]
        cur = next((p for p in persons if p["EndDate"] is None), persons[-1] if persons else None)
        out["tga_rtos"].append((code, cur["Name"] if cur else None, (cur["Abns"] or [None])[0] if cur else None,
                                cur["Acn"] if cur else None, o["RegistrationStatus"], _b(o["IsLegacyData"]),
                                o["CreatedDate"], o["UpdatedDate"], org_kind(o)))
        for i, x in enumerate(o["RegistrationPeriods"]):
            out["tga_rto_registration_periods"].append((code, i, x["StartDate"], x["EndDate"], x["EndReasonCode"],
                                                        x["EndReasonComments"], x["Exerciser"],
                                                        x["LegalAuthority"]))
        for i, x in enumerate(o["TradingNames"]):
            out["tga_rto_trading_names"].append((code, i, x["Name"], x["StartDate"], x["EndDate"]))
        for i, x in enumerate(o["Locations"]):
            a = x["Address"]
            out["tga_rto_locations"].append((code, i, a["Line1"], a["Line2"], a["Suburb"], a["Postcode"],
                                             a["StateCode"], a["CountryCode"], a["StateOverseas"], x["StartDate"],
                                             x["EndDate"]))
        for i, x in enumerate(o["Urls"]):
            out["tga_rto_urls"].append((code, i, x["Link"], x["StartDate"], x["EndDate"]))
        for s in o.get("Scopes", ()):
            out["tga_rto_scope"].append((code, s["NrtCode"], _b(s["IsImplicit"]), s["TrainingComponentType"],
                                         s["ExtentCode"], _b(s["IsRefused"]), s["ScopeDecisionType"],
                                         s["StartDate"], s["EndDate"]))
    for d in dump["DeletedTrainingComponents"]:
        out["tga_deletions"].append(("training", d["NationalCode"], d["Operation"], d["UpdatedDate"]))
    for d in dump["DeletedOrganisations"]:
        out["tga_deletions"].append(("organisation", d["OrganisationCode"], d["Operation"], d["UpdatedDate"]))
    for k in out:
        out[k].sort(key=lambda r: tuple("" if v is None else str(v) for v in r))
    return out


# Our side: the same columns, live rows only (soft-deleted parents and removed scope rows are not the register).
OUR_SQL = {
    "tga_components": "SELECT code, component_type, title, parent_code, parent_title, usage_recommendation,"
                      " is_current, currency_status, is_confidential, is_legacy, isc_organisation_code, created_date,"
                      " updated_date FROM tga_components WHERE deleted_at IS NULL",
    "tga_releases": "SELECT component_code, seq, release_number, release_date, currency, approval_process"
                    " FROM tga_releases JOIN tga_components c ON c.code = component_code WHERE c.deleted_at IS NULL",
    "tga_unit_grid": "SELECT component_code, seq, release_number, unit_code, g.title, is_essential FROM tga_unit_grid g"
                     " JOIN tga_components c ON c.code = component_code WHERE c.deleted_at IS NULL",
    "tga_mappings": "SELECT component_code, seq, m.code, m.title, maps_to_code, maps_to_title, is_equivalent, notes"
                    " FROM tga_mappings m JOIN tga_components c ON c.code = component_code WHERE c.deleted_at IS NULL",
    "tga_classifications": "SELECT component_code, seq, scheme_code, value_code, purpose_code, start_date, end_date"
                           " FROM tga_classifications JOIN tga_components c ON c.code = component_code"
                           " WHERE c.deleted_at IS NULL",
    "tga_usage_recommendations": "SELECT component_code, seq, state, start_date, end_date FROM"
                                 " tga_usage_recommendations JOIN tga_components c ON c.code = component_code"
                                 " WHERE c.deleted_at IS NULL",
    "tga_currency_periods": "SELECT component_code, seq, authority, start_date, end_date, end_reason_code,"
                            " end_comment FROM tga_currency_periods JOIN tga_components c ON c.code = component_code"
                            " WHERE c.deleted_at IS NULL",
    "tga_rtos": "SELECT code, legal_name, abn, acn, registration_status, is_legacy, created_date, updated_date, kind"
                " FROM tga_rtos WHERE deleted_at IS NULL",
    "tga_rto_registration_periods": "SELECT rto_code, seq, start_date, end_date, end_reason_code, end_reason_comments,"
                                    " exerciser, legal_authority FROM tga_rto_registration_periods JOIN tga_rtos r"
                                    " ON r.code = rto_code WHERE r.deleted_at IS NULL",
    "tga_rto_trading_names": "SELECT rto_code, seq, name, start_date, end_date FROM tga_rto_trading_names"
                             " JOIN tga_rtos r ON r.code = rto_code WHERE r.deleted_at IS NULL",
    "tga_rto_locations": "SELECT rto_code, seq, line1, line2, suburb, postcode, state_code, country_code,"
                         " state_overseas, start_date, end_date FROM tga_rto_locations JOIN tga_rtos r"
                         " ON r.code = rto_code WHERE r.deleted_at IS NULL",
    "tga_rto_urls": "SELECT rto_code, seq, link, start_date, end_date FROM tga_rto_urls JOIN tga_rtos r"
                    " ON r.code = rto_code WHERE r.deleted_at IS NULL",
    "tga_rto_scope": "SELECT rto_code, nrt_code, is_implicit, component_type, extent_code, is_refused, decision_type,"
                     " start_date, end_date FROM tga_rto_scope WHERE removed_in IS NULL",
    "tga_deletions": "SELECT service, code, operation, updated_date FROM tga_deletions",
}


def our_tables(corpus):
    con = _con(corpus)
    try:
        out = {}
        for t, sql in OUR_SQL.items():
            rows = con.execute(sql).fetchall()
            out[t] = sorted(rows, key=lambda r: tuple("" if v is None else str(v) for v in r))
        return out
    finally:
        con.close()


def compare(corpus, dump, limit=5):
    """Differences between rtopacks.db and the dump, table by table: {} when they hold the same register."""
    want, have = expected_tables(dump), our_tables(corpus)
    diffs = {}
    for t in want:
        w, h = set(want[t]), set(have[t])
        if len(want[t]) != len(w):
            diffs.setdefault(t, {})["duplicates_expected"] = len(want[t]) - len(w)
        if len(have[t]) != len(h):
            diffs.setdefault(t, {})["duplicates_stored"] = len(have[t]) - len(h)
        missing, extra = sorted(w - h, key=str), sorted(h - w, key=str)
        if missing or extra:
            diffs.setdefault(t, {}).update({"missing": missing[:limit], "n_missing": len(missing),
                                            "extra": extra[:limit], "n_extra": len(extra)})
    # Soft deletes: a stored row deleted upstream is kept, marked; never a live row for a deleted code.
    con = _con(corpus)
    try:
        live_codes = {c["Code"] for c in dump["TrainingComponents"]}
        tomb_codes = {d["NationalCode"] for d in dump["DeletedTrainingComponents"]}
        for code, at, op in con.execute("SELECT code, deleted_at, deleted_operation FROM tga_components"
                                        " WHERE deleted_at IS NOT NULL"):
            if code in live_codes or code not in tomb_codes or op not in ("PhysicalDelete", "LogicalDelete"):
                diffs.setdefault("soft_deleted_components", []).append((code, at, op))
        live_orgs = {o["Code"] for o in dump["Organisations"]}
        org_tombs = {d["OrganisationCode"] for d in dump["DeletedOrganisations"]}
        for code, at in con.execute("SELECT code, deleted_at FROM tga_rtos WHERE deleted_at IS NOT NULL"):
            if code in live_orgs or code not in org_tombs:
                diffs.setdefault("soft_deleted_rtos", []).append((code, at))
    finally:
        con.close()
    return diffs


def corpus_dump(env):
    """Every corpus table by content minus run bookkeeping (for crash/resume comparisons)."""
    from harness import dump_db
    return dump_db(env.corpus, exclude_tables=BOOKKEEPING + tuple(t for t in _other_tables(env.corpus)),
                   exclude_columns=VOLATILE)


def _other_tables(corpus):
    con = _con(corpus)
    try:
        return [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'"
                                          " AND name NOT LIKE 'tga_%'")]
    finally:
        con.close()


def summary(ops, run_id=None):
    """(summary JSON, changes) of a run, or of the latest tga_sync run that has a summary."""
    return kitenv.run_summary(ops, "tga_sync", run_id)


# --- the REST source (issue 8): the public REST API's fake, serving the same register --------------------------------

REST_FAKE = os.path.join(REPO, "tests", "fakes", "fake_tga_rest.py")


def start_rest_fake(wd, *args, now=None):
    extra = list(args)
    if now:
        extra += ["--now", now]
    return Server(REST_FAKE, "--scale", "small", *extra, wd=wd, name="fake_tga_rest_%d" % id(extra))


class RestEnv(Env):
    """A workdir, a config for tga-sync with source = rest against a fake REST API, and the daemon.  No TGA account:
    no username, no password file."""

    def __init__(self, fake, smtp=None, name="tgarest", **keys):
        super().__init__(fake, smtp, name=name, **keys)

    def source_keys(self, fake, password):
        return {"source": "rest", "rest_base_url": fake.url + "/api", "epoch": EPOCH, "rest_page_size": 50,
                "rest_scope_page_size": 100, "step_backoff": "50ms", "step_backoff_max": "200ms",
                "step_retries": 1}


# Comparing a SOAP-filled rtopacks.db with a REST-filled one, table by table.  Everything is compared except what
# differs between the two sources by nature; each exclusion says why.
SOURCE_EXCLUDED_TABLES = {
    # The runs that wrote the file: run ids and start times of our own runs, not register content.
    "tga_runs": "run bookkeeping",
}
SOURCE_PROJECTED = {
    # Tombstones: the SOAP service sends every tombstone it has (also of codes this database never held, and with
    # the upstream's operation and time); the REST API has none, so the REST source records only what it
    # soft-deleted itself ("NotFound", at the data export sync time).  What both must agree on is which stored
    # records a deletion removed, and in which cycle.
    "tga_deletions": "SELECT service, code, added_in FROM tga_deletions WHERE applied = 1",
    # deleted_at / deleted_operation: the tombstone's time and operation (SOAP) vs the data export sync time and
    # "NotFound" (REST: the API says only that the record is gone).  Whether and in which cycle a row was
    # soft-deleted is compared (deleted_at IS NULL, deleted_in).
    "tga_components": None,
    "tga_rtos": None,
}


def _source_rows(con, table):
    sql = SOURCE_PROJECTED.get(table)
    if sql is None:
        cols = [r[1] for r in con.execute('PRAGMA table_info("%s")' % table)]
        if table in SOURCE_PROJECTED:
            cols = ["deleted_at IS NULL" if c == "deleted_at" else c for c in cols if c != "deleted_operation"]
        sql = 'SELECT %s FROM "%s"' % (", ".join(c if " " in c else '"%s"' % c for c in cols), table)
    rows = con.execute(sql).fetchall()
    return sorted(rows, key=lambda r: tuple("" if v is None else str(v) for v in r))


def source_tables(corpus):
    """Every tga_* table of rtopacks.db, by content, with the source-specific parts left out (above)."""
    con = _con(corpus)
    try:
        names = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE"
                                           " 'tga\\_%' ESCAPE '\\' ORDER BY name")]
        return {t: _source_rows(con, t) for t in names if t not in SOURCE_EXCLUDED_TABLES}
    finally:
        con.close()


def compare_sources(soap_corpus, rest_corpus, limit=5):
    """{} when both databases hold the same content; else per table the rows only one of them has."""
    a, b = source_tables(soap_corpus), source_tables(rest_corpus)
    diffs = {}
    for t in sorted(set(a) | set(b)):
        ra, rb = a.get(t), b.get(t)
        if ra == rb:
            continue
        if ra is None or rb is None:
            diffs[t] = "only in %s" % ("REST" if ra is None else "SOAP")
            continue
        sa, sb = set(ra), set(rb)
        diffs[t] = {"soap_only": sorted(sa - sb, key=str)[:limit], "n_soap_only": len(sa - sb),
                    "rest_only": sorted(sb - sa, key=str)[:limit], "n_rest_only": len(sb - sa),
                    "rows": (len(ra), len(rb))}
    return diffs


def compare_rest(corpus, dump, limit=5):
    """compare() for a database the REST source filled: every table equals the register, except tga_deletions (the
    REST API has no tombstones: see SOURCE_PROJECTED); what is soft-deleted must be gone from the register, marked
    "NotFound", and noted in tga_deletions."""
    diffs = compare(corpus, dump, limit)
    for k in ("tga_deletions", "soft_deleted_components", "soft_deleted_rtos"):
        diffs.pop(k, None)
    live = {"training": {c["Code"] for c in dump["TrainingComponents"]},
            "organisation": {o["Code"] for o in dump["Organisations"]}}
    con = _con(corpus)
    try:
        for svc, table in (("training", "tga_components"), ("organisation", "tga_rtos")):
            noted = {r[0] for r in con.execute("SELECT code FROM tga_deletions WHERE service = ? AND applied = 1"
                                               " AND operation = 'NotFound'", (svc,))}
            for code, op in con.execute("SELECT code, deleted_operation FROM %s WHERE deleted_at IS NOT NULL"
                                        % table):
                if code in live[svc] or op != "NotFound" or code not in noted:
                    diffs.setdefault("soft_deleted_" + svc, []).append((code, op))
    finally:
        con.close()
    return diffs


def rest_stats(fake):
    return fake.get("/_fake/stats")


def step_details(ops, run_id=None):
    """{phase: detail summed over the run's steps} (the step rows' JSON detail)."""
    con = _con(ops)
    try:
        if run_id is None:
            run_id = con.execute("SELECT run_id FROM sync_runs WHERE sync_type = 'tga_sync' ORDER BY started_at DESC,"
                                 " run_id DESC LIMIT 1").fetchone()[0]
        out = {}
        for step, detail, status, error in con.execute("SELECT step, detail, status, error FROM sync_steps WHERE"
                                                       " run_id = ? ORDER BY started_at, rowid", (run_id,)):
            d = out.setdefault(step, {"_status": status, "_error": error})
            d["_status"], d["_error"] = status, error
            for k, v in (json.loads(detail) if detail else {}).items():
                if isinstance(v, (int, float)):
                    d[k] = d.get(k, 0) + v
        return out
    finally:
        con.close()


def kill_at_random_moments(tc, make_env, seed, rounds, window, at_least):
    """crash.kill_at_random_moments for tga-sync: kills inside sync_training or sync_orgs; each resumed cycle ends
    with tc.reference (corpus_dump) and tc.ref_summary (the summary without its window)."""
    crash.kill_at_random_moments(tc, make_env, seed, rounds, window, at_least, phases=("sync_training", "sync_orgs"),
                                 state=corpus_dump, summary=lambda env: without(summary(env.ops)[0], "window"))
