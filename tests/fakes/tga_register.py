"""Synthetic National Register of VET (training components and RTOs) served by the fake TGA upstreams.

The register is deterministic for a given (scale, seed) and built on the codes of nrt_codes.py. It is protocol
neutral: fake_tga_soap.py renders it as SOAP, and the REST fake (later) will render the same data as JSON. Field
names are those of the SOAP data model (../shared/samples/tga/.../*.xsd plus the later derived types), so a test can
compare a client's tables with the dump field by field.

Scale "small" has the sizes of nrt_codes.SCALES["small"] and 0-200 scope rows per RTO; it builds in well under a
second. Scale "full" has the real volumes (~8,000 qualifications, 75,000 units, 12,500 RTOs) and exactly
FULL_SCOPE_ROWS scope rows (~500 per RTO on average, a few RTOs with 20,000-30,000). Scope rows are never held in
memory for the whole register: each RTO's rows are regenerated on demand from its own seed (scope_rows()), until a
mutation changes them, after which that RTO keeps its own materialised list.

Times
-----
Audit times (CreatedDate, UpdatedDate, tombstone UpdatedDate) are instants held as integer "ticks" (100 ns units
since 1970-01-01 UTC, the resolution of .NET DateTime) and written as WCF writes DateTimeOffset.DateTime: UTC with a
"Z", fractional seconds only when non-zero and without trailing zeros (e.g. 2019-03-04T05:06:07.1234567Z,
2019-03-04T05:06:07.5Z, 2019-03-04T05:06:07Z). About half of the generated audit times carry a fraction.
Business dates (StartDate, EndDate, ReleaseDate) are xs:date strings "YYYY-MM-DD".

Dump shape (GET /_fake/dump; Register.dump_chunks())
---------------------------------------------------
One JSON object, keys sorted, lists sorted by code:

  {"meta": {"scale", "seed", "now", "generation", "counts": {...}},
   "TrainingComponents": [            # every current (not deleted) component, sorted by Code
     {"Code", "ComponentType"  ("TrainingPackage"|"Qualification"|"Unit"|"SkillSet"|"AccreditedCourse"),
      "Title", "ParentCode", "ParentTitle"  (training package; null for accredited courses and packages),
      "IsConfidential", "IsLegacyData", "IscOrganisationCode" (null), "CurrencyStatus" ("Current"|"Superseded"),
      "IsCurrent" (bool, as in TrainingComponentSummary), "UsageRecommendation" ("Current"|"Superseded", the
      summary's UsageReccomendation value; the dump spells it correctly),
      "CreatedDate", "UpdatedDate"  (DateTimeOffset.DateTime strings as above),
      "UsageRecommendations": [{"State", "StartDate", "EndDate"}],
      "CurrencyPeriods": [{"Authority", "StartDate", "EndDate", "EndReasonCode", "EndComment"}],
      "Classifications": [{"SchemeCode" ("01" ANZSCO|"04" field of education|"05" level of education),
                           "ValueCode", "PurposeCode", "StartDate", "EndDate"}],
      "MappingInformation": [{"Code", "Title", "MapsToCode", "MapsToTitle", "IsEquivalent", "Notes"}],
      "RecognitionManagers": [{"Code", "StartDate", "EndDate"}], "DataManagers": [{"Code", "StartDate", "EndDate"}],
      "Contacts": [], "CompletionMapping": [],
      "Releases": [{"ReleaseNumber", "ReleaseDate", "Currency", "ApprovalProcess",
                    "UnitGrid": [{"Code", "Title", "IsEssential"}] | null   (qualifications, skill sets,
                                   accredited courses; null = the release has no unit grid),
                    "Files": [{"RelativePath", "Size"}],
                    "Components": [{"Code", "Title", "Type", "ReleaseNumber", "ReleaseDate", "ReleaseCurrency"}]
                                  | null (training packages only),
                    "CompanionVolumeLinks": [{"LinkNotes", "LinkText", "LinkUrl", "PublishedComponentType"}]
                                  | null (training packages only)}]}],   # oldest release first
   "Organisations": [                 # every current organisation, sorted by Code: the RTOs, and the non-RTO
                                      # organisations a mutation added ("Kind": "Organisation2": no
                                      # RegistrationStatus, RegistrationPeriods, RegistrationManagers,
                                      # Classifications, Restrictions or scope)
     {"Code", "Kind" ("Rto3"|"Organisation2", the i:type GetDetails answers with),
      "LegalName" (= ResponsibleLegalPersons[0].Name, for convenience), "RegistrationStatus",
      "IsLegacyData", "CreatedDate", "UpdatedDate",
      "Codes": [{"Code", "StartDate", "EndDate"}],
      "ResponsibleLegalPersons": [{"Name", "Abns": [str], "Acn", "StartDate", "EndDate"}],
      "TradingNames": [{"Name", "StartDate", "EndDate"}],
      "Locations": [{"Address": {"CountryCode", "Line1", "Line2", "Postcode", "StateCode", "StateOverseas",
                                 "Suburb"}, "StartDate", "EndDate"}],
      "Urls": [{"Link", "StartDate", "EndDate"}],
      "Contacts": [{"FirstName", "LastName", "Title", "JobTitle", "Email", "Phone", "Mobile", "Fax", "GroupName",
                    "OrganisationName", "RoleCode", "TypeCode", "PostalAddress", "StartDate", "EndDate"}],
      "DataManagers": [...], "RegistrationManagers": [{"Code", "StartDate", "EndDate"}],
      "RegistrationPeriods": [{"StartDate", "EndDate", "EndReasonCode", "EndReasonComments", "Exerciser",
                               "LegalAuthority"}],
      "Classifications": [...], "Restrictions": [{"Code", "Restriction", "RestrictionTypeCode", "StartDate",
                                                 "EndDate"}],
      "DeliveryNotifications": [],
      "ScopeCount": int,
      "Scopes": [{"NrtCode", "TrainingComponentType", "ExtentCode", "IsImplicit", "IsRefused",
                  "ScopeDecisionType" ("Granted"|"Refused"|"Suspended"|"Cancelled"), "StartDate", "EndDate"}]}],
                  # explicit rows first, then implicit rows, each sorted by NrtCode (the order GetDetails serves);
                  # left out with ?scopes=0
   "DeletedTrainingComponents": [{"NationalCode", "Operation" ("PhysicalDelete"|"LogicalDelete"), "UpdatedDate"}],
   "DeletedOrganisations": [{"Operation", "OrganisationCode", "UpdatedDate"}]}   # both sorted by (UpdatedDate, code)

Nulls are JSON null. The base register has some historical tombstones (codes that are not in nrt_codes.py);
mutations add more. A deleted code disappears from TrainingComponents/Organisations and from every search; its
tombstone stays even if the code is added again later.

Mutations (Register.mutate(spec, now_ticks) -> summary)
------------------------------------------------------
  {"action": "update", "kind": K, "code": C [, "title": T]}   new release (components) / new trading name and
                                                              location (rto); bumps UpdatedDate
  {"action": "add", "kind": K [, "code": C] [, "package": P]}  new component or RTO (code generated if absent)
  {"action": "delete", "kind": K, "code": C [, "operation": "PhysicalDelete"|"LogicalDelete"]}
  {"action": "supersede", "kind": K, "code": C [, "new_code": N]}  adds a successor, marks C superseded, mapping on both
  {"action": "scope", "code": RTO [, "add": [codes]] [, "remove": [codes]] [, "end": [codes]]}
  {"action": "random", "fraction": F, "seed": S}              deterministic mix of all of the above
K is one of training_package, qualification, unit, skill_set, accredited_course, rto, organisation (a non-RTO
organisation of kind Organisation2, e.g. a training package developer: add, update, delete). Every change stamps
UpdatedDate with now_ticks. The summary is {"now", "changes": {kind: {action: [codes]}}, "generation"}.
Deleting a unit leaves it in unit grids and RTO scope (as the real register does with superseded units).
"""

import bisect
import datetime
import json
import random
import sys
import threading
import time

try:
    import zoneinfo
    _SYDNEY = zoneinfo.ZoneInfo("Australia/Sydney")
except Exception:  # no tz database: fall back to the post-2008 rule below
    _SYDNEY = None

import nrt_codes

FULL_SCOPE_ROWS = 6_200_000
TICKS_PER_SECOND = 10_000_000
_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)
# Base data predates this instant; the fake clock starts a few days later.
ANCHOR = "2026-01-01T00:00:00Z"
DEFAULT_NOW = "2026-01-05T00:00:00Z"

KINDS = {
    "training_package": "TrainingPackage",
    "qualification": "Qualification",
    "unit": "Unit",
    "skill_set": "SkillSet",
    "accredited_course": "AccreditedCourse",
}
TYPE_TO_KIND = {v: k for k, v in KINDS.items()}
# Mutation kinds of organisations: RTOs (Rto3), and organisations that are not RTOs (Organisation2).
ORG_KINDS = ("rto", "organisation")
NON_RTO = "Organisation2"


# ------------------------------------------------------------------------------------------------ time helpers

def parse_instant(text):
    """ISO-8601 instant -> ticks. A value without zone is UTC. Raises ValueError."""
    t = text.strip()
    offset = 0
    if t.endswith("Z") or t.endswith("z"):
        t = t[:-1]
    elif len(t) > 6 and t[-6] in "+-" and t[-3] == ":":
        sign = 1 if t[-6] == "+" else -1
        offset = sign * (int(t[-5:-3]) * 60 + int(t[-2:]))
        t = t[:-6]
    frac = 0
    if "." in t:
        t, f = t.split(".", 1)
        if not f.isdigit() or len(f) > 7:
            raise ValueError("bad fraction in %r" % text)
        frac = int(f.ljust(7, "0"))
    dt = datetime.datetime.strptime(t, "%Y-%m-%dT%H:%M:%S")
    secs = int((dt.replace(tzinfo=datetime.timezone.utc) - _EPOCH).total_seconds())
    return (secs - offset * 60) * TICKS_PER_SECOND + frac


def parse_naive_local(text):
    """ISO dateTime -> (ticks as if UTC, has_zone). Used for DateTimeOffset input, where a value without zone is
    local time at OffsetMinutes (WCF's DateTimeOffsetAdapter for DateTimeKind.Unspecified)."""
    t = text.strip()
    has_zone = t.endswith(("Z", "z")) or (len(t) > 6 and t[-6] in "+-" and t[-3] == ":")
    return parse_instant(text), has_zone


def format_instant(ticks):
    secs, frac = divmod(ticks, TICKS_PER_SECOND)
    base = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs))
    if frac:
        return "%s.%sZ" % (base, ("%07d" % frac).rstrip("0"))
    return base + "Z"


def format_local(ticks, offset_minutes):
    """A local dateTime with offset, as WCF writes a DateTimeKind.Local DateTime (e.g. GetServerTime)."""
    secs, frac = divmod(ticks + offset_minutes * 60 * TICKS_PER_SECOND, TICKS_PER_SECOND)
    base = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs))
    if frac:
        base += "." + ("%07d" % frac).rstrip("0")
    sign = "+" if offset_minutes >= 0 else "-"
    return "%s%s%02d:%02d" % (base, sign, abs(offset_minutes) // 60, abs(offset_minutes) % 60)


def sydney_offset_minutes(ticks):
    """AEST 600 / AEDT 660: what an Australian (Canberra) server puts in OffsetMinutes."""
    secs = ticks // TICKS_PER_SECOND
    if _SYDNEY is not None:
        dt = datetime.datetime.fromtimestamp(secs, datetime.timezone.utc).astimezone(_SYDNEY)
        return int(dt.utcoffset().total_seconds() // 60)
    dt = datetime.datetime.fromtimestamp(secs, datetime.timezone.utc)

    def first_sunday(year, month):
        d = datetime.datetime(year, month, 1, tzinfo=datetime.timezone.utc)
        return d + datetime.timedelta(days=(6 - d.weekday()) % 7)
    # DST ends first Sunday of April 03:00 AEDT (16:00 UTC Saturday) and starts first Sunday of October 02:00 AEST.
    end = first_sunday(dt.year, 4) - datetime.timedelta(hours=8)
    start = first_sunday(dt.year, 10) - datetime.timedelta(hours=8)
    return 600 if end <= dt < start else 660


def ticks_to_date(ticks):
    return time.strftime("%Y-%m-%d", time.gmtime(ticks // TICKS_PER_SECOND))


def date_to_ticks(date):
    return parse_instant(date + "T00:00:00Z")


class Clock:
    """A fake's notion of now (ticks): runs from the set instant unless frozen (both TGA fakes use one)."""

    def __init__(self, now, frozen=False):
        self.lock = threading.Lock()
        self.base = now
        self.mono = time.monotonic()
        self.frozen = frozen

    def now(self):
        with self.lock:
            if self.frozen:
                return self.base
            return self.base + int((time.monotonic() - self.mono) * TICKS_PER_SECOND)

    def set(self, spec):
        with self.lock:
            cur = self.base if self.frozen else self.base + int((time.monotonic() - self.mono) * TICKS_PER_SECOND)
            if "now" in spec:
                cur = parse_instant(spec["now"])
            if "advance" in spec:
                cur += int(float(spec["advance"]) * TICKS_PER_SECOND)
            if "frozen" in spec:
                self.frozen = bool(spec["frozen"])
            self.base, self.mono = cur, time.monotonic()


# ------------------------------------------------------------------------------------------------ word lists

_FIELDS = [
    "Business", "Leadership and Management", "Hospitality", "Commercial Cookery", "Early Childhood Education and Care",
    "Individual Support", "Community Services", "Information Technology", "Cyber Security", "Construction",
    "Electrotechnology Electrician", "Automotive Light Vehicle Mechanical Technology", "Retail Operations", "Fitness",
    "Screen and Media", "Horticulture", "Agriculture", "Conservation and Ecosystem Management",
    "Transport and Logistics", "Warehousing Operations", "Food Processing", "Laboratory Skills",
    "Work Health and Safety", "Training and Assessment", "Accounting and Bookkeeping", "Entertainment & Events",
    "Food & Beverage Processing", "Plumbing", "Carpentry", "Hairdressing", "Beauty Therapy", "Nursing", "Aged Care",
    "Mental Health", "Security Operations", "Civil Construction", "Marine Operations", "Aviation (Remote Pilot)",
    "Tourism", "Sport & Recreation", "Visual Arts", "Music", "Engineering", "Manufacturing Technology",
    "Property Services", "Government", "Correctional Practice", "Public Safety (Firefighting)", "Telecommunications",
]
_LEVELS = {1: "Certificate I in", 2: "Certificate II in", 3: "Certificate III in", 4: "Certificate IV in",
           5: "Diploma of", 6: "Advanced Diploma of", 7: "Graduate Certificate in", 8: "Graduate Diploma of"}
# ASCED level of education codes (classification scheme 05) by AQF level digit.
_ASCED_LEVEL = {1: "524", 2: "521", 3: "514", 4: "511", 5: "421", 6: "411", 7: "312", 8: "311"}
_VERBS = ["Apply", "Develop", "Manage", "Monitor", "Prepare", "Coordinate", "Implement", "Conduct", "Maintain",
          "Operate", "Install", "Assess", "Plan", "Lead", "Provide", "Use", "Promote", "Design", "Establish",
          "Participate in", "Contribute to", "Facilitate", "Review", "Identify", "Respond to"]
_OBJECTS = ["workplace safety procedures", "customer service", "financial records", "project scope",
            "team effectiveness", "a food safety program", "electrical wiring systems", "quality assurance processes",
            "digital content & media", "risk management processes", "workplace relationships", "client needs",
            "hazardous substances", "cultural safety", "infection prevention & control", "sustainable work practices",
            "information security", "network infrastructure", "inventory", "equipment maintenance",
            "business operations", "learning programs", "emergency procedures", "records & documentation",
            "chemical spills", "first aid", "marketing activities", "compliance requirements", "site inspections",
            "the Children's Services framework", "Aboriginal and Torres Strait Islander cultural practices"]
_TP_WORDS = ["Agriculture", "Automotive", "Business Services", "Community Services", "Construction", "Creative Arts",
             "Defence", "Electrotechnology", "Financial Services", "Forest & Wood Products", "Health", "Hospitality",
             "Information and Communications Technology", "Local Government", "Maritime", "Meat Industry",
             "Manufacturing", "Public Safety", "Resources and Infrastructure", "Retail Services", "Sport, Fitness and "
             "Recreation", "Tourism, Travel and Hospitality", "Training and Education", "Transport and Logistics",
             "Water", "Gas Industry", "Racing", "Property Services", "Correctional Services", "Laboratory Operations"]
_ORG_A = ["Acme", "Southern Cross", "Pacific", "Harbour", "Outback", "Coastal", "Metro", "Summit", "Eureka",
          "Redgum", "Wattle", "Banksia", "Ironbark", "Kookaburra", "Platypus", "Blue Mountains", "Top End",
          "Goldfields", "Riverina", "Gippsland", "Hunter Valley", "Sunshine Coast", "Kimberley", "Tasman", "Barossa",
          "O'Brien's", "Café Culture", "Nguyễn & Sons", "Great Dividing", "Murray", "Bayside", "Capital", "Northern",
          "Western", "Eastern", "Central", "Ace", "Skillsmart", "Careerlink", "Workforce"]
_ORG_B = ["Training", "Institute", "College", "Academy", "Skills Centre", "Education Group", "Learning Solutions",
          "Training Services", "Institute of Technology", "Business College", "Safety Training", "Trade School"]
_ORG_SUFFIX = ["Pty Ltd", "Pty. Ltd.", "Limited", "Pty Ltd", "Pty Ltd", "Incorporated", "Ltd"]
_SUBURBS = {  # StateCode -> [(suburb, postcode)]; 01 NSW .. 08 ACT as in the reference (ABS order)
    "01": [("Sydney", "2000"), ("Parramatta", "2150"), ("Newcastle", "2300"), ("Wollongong", "2500"),
           ("Wagga Wagga", "2650")],
    "02": [("Melbourne", "3000"), ("Geelong", "3220"), ("Ballarat", "3350"), ("Bendigo", "3550")],
    "03": [("Brisbane City", "4000"), ("Cairns", "4870"), ("Townsville", "4810"), ("Toowoomba", "4350")],
    "04": [("Adelaide", "5000"), ("Mount Gambier", "5290")],
    "05": [("Perth", "6000"), ("Bunbury", "6230"), ("Kalgoorlie", "6430")],
    "06": [("Hobart", "7000"), ("Launceston", "7250")],
    "07": [("Darwin City", "0800"), ("Alice Springs", "0870")],
    "08": [("Canberra", "2600"), ("Belconnen", "2617")],
}
_STREETS = ["George Street", "Collins Street", "Queen Street", "King William Street", "Hay Street",
            "Elizabeth Street", "Mitchell Street", "Northbourne Avenue", "Smith Street", "Main Road"]
_FIRST = ["Jane", "John", "Mei", "Aroha", "Priya", "Liam", "Olivia", "Noah", "Chloé", "Tran", "Fatima", "Jack"]
_LAST = ["Citizen", "Smith", "Nguyen", "O'Connor", "Patel", "Williams", "Brown", "Wilson", "Taylor", "Singh"]


# ------------------------------------------------------------------------------------------------ the register

class Register:
    """The register: components, organisations and tombstones, plus on-demand scope rows and mutations."""

    def __init__(self, scale="small", seed=1, progress=None):
        t0 = time.time()
        self.scale = scale
        self.seed = seed
        self.generation = 0
        self._say = progress or (lambda msg: None)
        self.codes = nrt_codes.register_codes(scale, seed)
        self.anchor_ticks = parse_instant(ANCHOR)
        self._rnd = random.Random("tga-register/%s/%d" % (scale, seed))
        # 2008-01-01 .. 2025-12-31 as date strings, indexed by day, so random dates cost one list index.
        base = datetime.date(2008, 1, 1)
        self._days = [(base + datetime.timedelta(days=i)).isoformat()
                      for i in range((datetime.date(2025, 12, 31) - base).days + 1)]
        self.components = {}
        self.organisations = {}
        self.deleted_components = []      # dicts {NationalCode, Operation, UpdatedDate, _ticks}
        self.deleted_organisations = []   # dicts {Operation, OrganisationCode, UpdatedDate, _ticks}
        self._listeners = []
        self._build_components()
        self._say("register: %d training components in %.1fs" % (len(self.components), time.time() - t0))
        self._build_organisations()
        self._build_tombstones()
        self._say("register: %d organisations, %d scope rows planned, in %.1fs"
                  % (len(self.organisations), self.total_scope_rows(), time.time() - t0))

    # ----------------------------------------------------------------------------------------- small helpers

    def on_change(self, callback):
        """callback(kind, code) after any change; kind is "component", "organisation" or "tombstones"."""
        self._listeners.append(callback)

    def _changed(self, kind, code):
        for cb in self._listeners:
            cb(kind, code)

    def _audit_ticks(self, rnd, lo_year=2011, hi_ticks=None):
        """A random instant between 1 Jan lo_year and hi (default the anchor); half of them with a fraction."""
        lo = parse_instant("%d-01-01T00:00:00Z" % lo_year)
        hi = hi_ticks or self.anchor_ticks
        secs = rnd.randrange(lo // TICKS_PER_SECOND, hi // TICKS_PER_SECOND)
        frac = rnd.choice((0, 0, rnd.randrange(1, TICKS_PER_SECOND), rnd.randrange(1, 1000) * 10_000))
        return secs * TICKS_PER_SECOND + frac

    @staticmethod
    def _stamp(obj, field, ticks):
        obj[field] = format_instant(ticks)
        obj["_" + field] = ticks

    # ----------------------------------------------------------------------------------------- components

    def _build_components(self):
        rnd = self._rnd
        codes = self.codes
        pkgs = codes["packages"]
        self.package_titles = {}
        for i, p in enumerate(pkgs):
            word = _TP_WORDS[(sum(map(ord, p)) + i) % len(_TP_WORDS)]
            self.package_titles[p] = "%s Training Package" % word
        units_by_pkg = {p: [] for p in pkgs}
        for u in codes["units"]:
            units_by_pkg[u[:3]].append(u)
        quals_by_pkg = {p: [] for p in pkgs}
        for q in codes["qualifications"]:
            quals_by_pkg[q[:3]].append(q)
        ss_by_pkg = {p: [] for p in pkgs}
        for s in codes["skill_sets"]:
            ss_by_pkg[s[:3]].append(s)
        # Frozen snapshot of the base register; scope rows are generated from it so that they never depend on
        # later mutations.
        self._base_units_by_pkg = {p: tuple(v) for p, v in units_by_pkg.items()}
        self._base_quals_by_pkg = {p: tuple(v) for p, v in quals_by_pkg.items()}
        self._base_ss = tuple(codes["skill_sets"])
        self._base_acc = tuple(codes["accredited"])
        self._base_units = tuple(codes["units"])
        self._base_grid = {}

        for u in codes["units"]:
            self._add_component(self._make_component(rnd, "Unit", u, u[:3]))
        for q in codes["qualifications"]:
            c = self._make_component(rnd, "Qualification", q, q[:3], units_by_pkg[q[:3]])
            self._add_component(c)
            self._base_grid[q] = tuple(e["Code"] for e in c["Releases"][-1]["UnitGrid"] or ())
        for s in codes["skill_sets"]:
            self._add_component(self._make_component(rnd, "SkillSet", s, s[:3], units_by_pkg[s[:3]]))
        for a in codes["accredited"]:
            pkg = rnd.choice(pkgs)
            self._add_component(self._make_component(rnd, "AccreditedCourse", a, None, units_by_pkg[pkg]))
        for p in pkgs:
            members = quals_by_pkg[p] + ss_by_pkg[p] + units_by_pkg[p]
            self._add_component(self._make_component(rnd, "TrainingPackage", p, None, members))
        # Supersession among existing codes of the same package and type: about 12% of quals and units are
        # superseded by another current one.
        for ctype, groups in (("Qualification", quals_by_pkg), ("Unit", units_by_pkg)):
            for p, members in groups.items():
                members = list(members)
                rnd.shuffle(members)
                n = len(members) * 12 // 100
                for old, new in zip(members[:n], members[n:2 * n]):
                    self._link_supersession(rnd, self.components[old], self.components[new], stamp=None)

    def _add_component(self, c):
        self.components[c["Code"]] = c

    def _title(self, rnd, ctype, code):
        if ctype == "Qualification":
            return "%s %s" % (_LEVELS.get(int(code[3]), "Certificate III in"), rnd.choice(_FIELDS))
        if ctype == "Unit":
            return "%s %s" % (rnd.choice(_VERBS), rnd.choice(_OBJECTS))
        if ctype == "SkillSet":
            return "%s Skill Set" % rnd.choice(_FIELDS)
        if ctype == "AccreditedCourse":
            return "%s %s" % (rnd.choice(("Course in", "Certificate IV in", "Diploma of", "Certificate II in")),
                              rnd.choice(_FIELDS))
        return self.package_titles[code]

    def _make_component(self, rnd, ctype, code, pkg, pool=None, created=None):
        if created is not None:
            updated = created
        else:
            created = self._audit_ticks(rnd, 2011)
            updated = created if rnd.random() < 0.2 else self._audit_ticks(rnd, 2011, None)
            if updated < created:
                created, updated = updated, created
        title = self._title(rnd, ctype, code)
        c = {"Code": code, "ComponentType": ctype, "Title": title,
             "ParentCode": pkg, "ParentTitle": self.package_titles.get(pkg) if pkg else None,
             "IsConfidential": False, "IsLegacyData": False, "IscOrganisationCode": None,
             "CurrencyStatus": "Current", "IsCurrent": True, "UsageRecommendation": "Current",
             "Contacts": [], "CompletionMapping": [], "MappingInformation": []}
        self._stamp(c, "CreatedDate", created)
        self._stamp(c, "UpdatedDate", updated)
        start = ticks_to_date(created)
        c["UsageRecommendations"] = [{"State": "Current", "StartDate": start, "EndDate": None}]
        authority = {"AccreditedCourse": rnd.choice(("ASQA", "VRQA", "TAC")), "TrainingPackage": "AISC"}.get(ctype,
                                                                                                             "AISC")
        c["CurrencyPeriods"] = [{"Authority": authority, "StartDate": start, "EndDate": None, "EndReasonCode": None,
                                 "EndComment": None}]
        c["RecognitionManagers"] = [{"Code": "ASQA" if ctype == "AccreditedCourse" else "AISC",
                                     "StartDate": start, "EndDate": None}]
        c["DataManagers"] = [{"Code": "DM%02d" % (sum(map(ord, pkg or code)) % 40), "StartDate": start,
                              "EndDate": None}]
        c["Classifications"] = self._classifications(rnd, ctype, code, start)
        c["Releases"] = []
        n_rel = 1 + (rnd.random() < 0.45) + (rnd.random() < 0.2)
        rel_ticks = sorted(rnd.randrange(created, updated + 1) for _ in range(n_rel))
        rel_ticks[0] = created
        grid = None
        for i, rt in enumerate(rel_ticks):
            if ctype in ("Qualification", "SkillSet", "AccreditedCourse") and pool:
                if grid is None or rnd.random() < 0.5:
                    grid = self._make_grid(rnd, ctype, pool)
            c["Releases"].append(self._make_release(rnd, c, i + 1, ticks_to_date(rt), grid, pool,
                                                    last=(i == n_rel - 1)))
        return c

    def _classifications(self, rnd, ctype, code, start):
        out = []
        if ctype in ("Qualification", "AccreditedCourse", "SkillSet"):
            out.append({"SchemeCode": "01", "ValueCode": "%06d" % rnd.randrange(111111, 899999),
                        "PurposeCode": "1", "StartDate": start, "EndDate": None})
        if ctype != "TrainingPackage":
            out.append({"SchemeCode": "04", "ValueCode": "%02d%02d%02d" % (rnd.randrange(1, 13), rnd.randrange(1, 10),
                                                                           rnd.randrange(1, 10)),
                        "PurposeCode": "1", "StartDate": start, "EndDate": None})
        if ctype == "Qualification":
            out.append({"SchemeCode": "05", "ValueCode": _ASCED_LEVEL.get(int(code[3]), "514"),
                        "PurposeCode": "1", "StartDate": start, "EndDate": None})
        return out

    def _make_grid(self, rnd, ctype, pool):
        n = {"Qualification": rnd.randrange(12, 61), "SkillSet": rnd.randrange(2, 6),
             "AccreditedCourse": rnd.randrange(4, 16)}[ctype]
        picks = rnd.sample(pool, min(n, len(pool)))
        core = len(picks) if ctype == "SkillSet" else max(1, len(picks) * rnd.randrange(25, 50) // 100)
        grid = []
        for i, u in enumerate(sorted(picks)):
            unit = self.components.get(u)
            grid.append({"Code": u, "Title": unit["Title"] if unit else None, "IsEssential": i < core})
        # Core units first, as training.gov.au lists them.
        grid.sort(key=lambda e: (not e["IsEssential"], e["Code"]))
        return grid

    def _make_release(self, rnd, c, number, date, grid, pool, last):
        ctype = c["ComponentType"]
        code = c["Code"]
        relno = ("%d.0" % number) if ctype == "TrainingPackage" else str(number)
        r = {"ReleaseNumber": relno, "ReleaseDate": date, "Currency": "Current" if last else "Superseded",
             "ApprovalProcess": None if ctype in ("Unit", "SkillSet") else rnd.choice(("Standard", "Minor", "Major")),
             "UnitGrid": None, "Files": [], "Components": None, "CompanionVolumeLinks": None}
        if grid is not None and not (not last and rnd.random() < 0.1):
            # Some older releases have no unit grid at all ("some releases don't ... for some reason").
            r["UnitGrid"] = [dict(e) for e in grid]
        folder = c["ParentCode"] or code
        for ext, size in (("xml", 20_000), ("pdf", 150_000), ("docx", 60_000)):
            r["Files"].append({"RelativePath": "%s\\%s_R%s.%s" % (folder, code, relno, ext),
                               "Size": size + rnd.randrange(0, size)})
        if ctype == "TrainingPackage":
            r["Components"] = []
            for m in (pool or ()):
                mc = self.components.get(m)
                if mc is None:
                    continue
                mrel = mc["Releases"][-1]
                r["Components"].append({"Code": m, "Title": mc["Title"], "Type": mc["ComponentType"],
                                        "ReleaseNumber": mrel["ReleaseNumber"], "ReleaseDate": mrel["ReleaseDate"],
                                        "ReleaseCurrency": mrel["Currency"]})
            r["CompanionVolumeLinks"] = [{"LinkNotes": None, "LinkText": "%s Companion Volume" % code,
                                          "LinkUrl": "https://vetnet.gov.au/Pages/TrainingDocs.aspx?q=%s" % code,
                                          "PublishedComponentType": "Implementation Guide"}]
        return r

    def _link_supersession(self, rnd, old, new, stamp):
        equivalent = rnd.random() < 0.55
        when = max(old["Releases"][-1]["ReleaseDate"], new["Releases"][0]["ReleaseDate"])
        if stamp is not None:
            when = ticks_to_date(stamp)
        old["MappingInformation"].append({
            "Code": old["Code"], "Title": old["Title"], "MapsToCode": new["Code"], "MapsToTitle": new["Title"],
            "IsEquivalent": equivalent,
            "Notes": "Superseded by %s%s" % (new["Code"], " and equivalent" if equivalent else ". Not equivalent")})
        new["MappingInformation"].append({
            "Code": new["Code"], "Title": new["Title"], "MapsToCode": old["Code"], "MapsToTitle": old["Title"],
            "IsEquivalent": equivalent,
            "Notes": "Supersedes %s%s" % (old["Code"], " and is equivalent" if equivalent else ". Not equivalent")})
        old["CurrencyStatus"] = "Superseded"
        old["IsCurrent"] = False
        old["UsageRecommendation"] = "Superseded"
        cur = old["UsageRecommendations"][-1]
        if cur["State"] == "Current":
            cur["EndDate"] = when
            old["UsageRecommendations"].append({"State": "Superseded", "StartDate": when, "EndDate": None})
        per = old["CurrencyPeriods"][-1]
        if per["EndDate"] is None:
            per["EndDate"] = when
            per["EndReasonCode"] = "SUPERSEDED"
            per["EndComment"] = "Superseded by %s" % new["Code"]
        old["Releases"][-1]["Currency"] = "Superseded"

    # ----------------------------------------------------------------------------------------- organisations

    def _build_organisations(self):
        rnd = self._rnd
        rtos = self.codes["rtos"]
        counts = self._scope_sizes(rtos)
        for code, n in zip(rtos, counts):
            self.organisations[code] = self._make_org(rnd, code, n)

    def _scope_sizes(self, rtos):
        rnd = random.Random("scope-sizes/%s/%d" % (self.scale, self.seed))
        n = len(rtos)
        if self.scale == "small":
            sizes = [rnd.randrange(0, 201) for _ in range(n)]
            sizes[0], sizes[-1] = 0, 200  # the edges are always exercised
            return sizes
        sizes = [0] * n
        order = list(range(n))
        rnd.shuffle(order)
        giants, large = order[:5], order[5:30]
        for i in giants:
            sizes[i] = rnd.randrange(20_000, 30_001)
        for i in large:
            sizes[i] = rnd.randrange(5_000, 15_001)
        rest = order[30:]
        zero = set(rest[:n * 3 // 100])  # newly registered or cancelled RTOs with nothing on scope
        weights = {i: min(rnd.lognormvariate(5.6, 1.0), 4000.0) for i in rest if i not in zero}
        remaining = FULL_SCOPE_ROWS - sum(sizes)
        total_w = sum(weights.values())
        acc = 0
        for i, w in weights.items():
            sizes[i] = max(1, int(w * remaining / total_w))
            acc += sizes[i]
        # Put the rounding remainder on the mid-sized RTOs so the total is exact.
        diff = remaining - acc
        keys = sorted(weights, key=lambda i: -weights[i])
        j = 0
        while diff != 0:
            i = keys[j % len(keys)]
            step = 1 if diff > 0 else -1
            if sizes[i] + step >= 1:
                sizes[i] += step
                diff -= step
            j += 1
        return sizes

    def _make_org(self, rnd, code, scope_n, created=None):
        created = created if created is not None else self._audit_ticks(rnd, 2011)
        updated = max(created, self._audit_ticks(rnd, 2015))
        first_reg = self._days[rnd.randrange(0, len(self._days) - 400)]
        status = rnd.choices(("Current", "Cancelled", "Lapsed", "Suspended"), (93, 4, 2, 1))[0]
        legal = "%s %s %s" % (rnd.choice(_ORG_A), rnd.choice(_ORG_B), rnd.choice(_ORG_SUFFIX))
        if rnd.random() < 0.03:
            legal = "TAFE %s" % rnd.choice(("NSW", "Queensland", "SA", "Gippsland", "South West", "Tasmania"))
        o = {"Code": code, "LegalName": legal, "RegistrationStatus": status, "IsLegacyData": False,
             "DeliveryNotifications": []}
        self._stamp(o, "CreatedDate", created)
        self._stamp(o, "UpdatedDate", updated)
        o["Codes"] = [{"Code": code, "StartDate": first_reg, "EndDate": None}]
        o["ResponsibleLegalPersons"] = [{
            "Name": legal, "Abns": ["%011d" % rnd.randrange(10**10, 10**11)],
            "Acn": "%09d" % rnd.randrange(10**8, 10**9) if "Pty" in legal or "Limited" in legal else None,
            "StartDate": first_reg, "EndDate": None}]
        o["TradingNames"] = []
        for _ in range(rnd.choice((0, 1, 1, 1, 2, 3))):
            o["TradingNames"].append({"Name": "%s %s" % (rnd.choice(_ORG_A), rnd.choice(_ORG_B)),
                                      "StartDate": first_reg, "EndDate": None})
        o["Locations"] = [self._make_location(rnd, first_reg) for _ in range(rnd.choice((1, 1, 1, 2, 3, 5)))]
        slug = "".join(ch for ch in legal.lower().split(" pty")[0] if ch.isalnum())[:24] or code
        o["Urls"] = [{"Link": "https://www.%s.edu.au" % slug, "StartDate": first_reg, "EndDate": None}
                     ] if rnd.random() < 0.85 else []
        o["Contacts"] = [self._make_contact(rnd, legal, first_reg, role) for role in ("CEO", "RTO")[:rnd.choice((1, 2))]]
        o["DataManagers"] = [{"Code": rnd.choice(("ASQA", "VRQA", "TAC")), "StartDate": first_reg, "EndDate": None}]
        o["RegistrationManagers"] = [{"Code": o["DataManagers"][0]["Code"], "StartDate": first_reg, "EndDate": None}]
        o["Classifications"] = [{"SchemeCode": "01", "ValueCode": rnd.choice(("11", "21", "31", "41", "61", "91")),
                                 "PurposeCode": "1", "StartDate": first_reg, "EndDate": None}]
        periods = []
        start = first_reg
        while True:
            # Successive 5- or 7-year registrations; the last one covers the anchor date.
            y = int(start[:4]) + rnd.choice((5, 7))
            end = "%d%s" % (y, start[4:])
            if end[5:] == "02-29":
                end = end[:5] + "02-28"
            periods.append({"StartDate": start, "EndDate": end, "EndReasonCode": None, "EndReasonComments": None,
                            "Exerciser": o["RegistrationManagers"][0]["Code"], "LegalAuthority": "NVR Act 2011"})
            if end > ANCHOR[:10]:
                break
            start = end
        last = periods[-1]
        if status != "Current":
            lo = min(bisect.bisect_right(self._days, last["StartDate"]), len(self._days) - 1)
            last["EndDate"] = self._days[rnd.randrange(lo, len(self._days))]
            last["EndReasonCode"] = {"Cancelled": "CANC", "Lapsed": "EXP", "Suspended": "SUSP"}[status]
            last["EndReasonComments"] = "Registration %s" % status.lower()
        for p in periods[:-1]:
            p["EndReasonCode"] = "RENEW"
        o["RegistrationPeriods"] = periods
        o["Restrictions"] = []
        if rnd.random() < 0.01:
            o["Restrictions"].append({"Code": "R1", "Restriction": "No new enrolments in CPC qualifications",
                                      "RestrictionTypeCode": "COND", "StartDate": first_reg, "EndDate": None})
        o["_scope"] = None
        o["_scope_n"] = scope_n
        o["_scope_ctx"] = (first_reg, o["RegistrationPeriods"][-1]["EndDate"])
        return o

    def _make_location(self, rnd, start):
        state = rnd.choice(sorted(_SUBURBS))
        suburb, postcode = rnd.choice(_SUBURBS[state])
        return {"Address": {"CountryCode": "1101", "Line1": "%d %s" % (rnd.randrange(1, 400), rnd.choice(_STREETS)),
                            "Line2": rnd.choice((None, None, "Level %d" % rnd.randrange(1, 30))),
                            "Postcode": postcode, "StateCode": state, "StateOverseas": None, "Suburb": suburb},
                "StartDate": start, "EndDate": None}

    def _make_contact(self, rnd, org_name, start, role):
        first, last = rnd.choice(_FIRST), rnd.choice(_LAST)
        return {"FirstName": first, "LastName": last, "Title": rnd.choice((None, "Ms", "Mr", "Dr")),
                "JobTitle": "Chief Executive Officer" if role == "CEO" else "RTO Manager",
                "Email": "%s.%s@example.edu.au" % (first.lower(), last.lower().replace("'", "")),
                "Phone": "0%d %04d %04d" % (rnd.randrange(2, 9), rnd.randrange(0, 10000), rnd.randrange(0, 10000)),
                "Mobile": None, "Fax": None, "GroupName": None, "OrganisationName": org_name,
                "RoleCode": role, "TypeCode": "PUB", "PostalAddress": None, "StartDate": start, "EndDate": None}

    # ----------------------------------------------------------------------------------------- scope rows

    def total_scope_rows(self):
        return sum(len(o["_scope"]) if o["_scope"] is not None else o["_scope_n"]
                   for o in self.organisations.values())

    def scope_rows(self, code):
        """The RTO's scope rows: tuples (NrtCode, TrainingComponentType, ExtentCode, IsImplicit, IsRefused,
        ScopeDecisionType, StartDate, EndDate), explicit rows first, then implicit, each sorted by NrtCode."""
        o = self.organisations.get(code)
        if o is None:
            return []
        if o["_scope"] is not None:
            return o["_scope"]
        return self._base_scope(code, o["_scope_n"], o["_scope_ctx"])

    def _base_scope(self, code, n, ctx):
        if n <= 0:
            return []
        rnd = random.Random("scope/%s/%d/%s" % (self.scale, self.seed, code))
        rand = rnd.random
        days = self._days
        reg_start, reg_end = ctx
        lo = max(0, bisect.bisect_left(days, reg_start))
        hi = len(days) - 1
        if lo >= hi:
            lo = hi - 1
        pkgs = self.codes["packages"]
        seen = set()
        explicit = []
        implicit = []

        def row(nrt, ctype, imp, start=None, end=None):
            if start is None:
                start = days[lo + int(rand() * (hi - lo))]
            r = rand()
            if imp:
                return (nrt, ctype, "01", True, False, "Granted", start, end)
            if r < 0.02:
                return (nrt, ctype, "01", False, True, "Refused", start, start)
            if r < 0.05:
                e = start if start > days[hi - 30] else days[bisect.bisect_left(days, start) + int(rand() * 30) + 1]
                return (nrt, ctype, "01", False, False, "Cancelled" if r < 0.045 else "Suspended", start, e)
            return (nrt, ctype, "02" if r > 0.9 else "01", False, False, "Granted", start, reg_end)

        n_ss = n // 50
        n_acc = n // 100
        for s in rnd.sample(self._base_ss, min(n_ss, len(self._base_ss))):
            seen.add(s)
            explicit.append(row(s, "SkillSet", False))
        for a in rnd.sample(self._base_acc, min(n_acc, len(self._base_acc))):
            seen.add(a)
            explicit.append(row(a, "AccreditedCourse", False))
        total = len(explicit)
        focus = rnd.sample(pkgs, max(1, min(len(pkgs), 1 + n // 400)))
        quals = [q for p in focus for q in self._base_quals_by_pkg[p]]
        rnd.shuffle(quals)
        grid = self._base_grid
        for q in quals:
            if total >= n:
                break
            qrow = row(q, "Qualification", False)
            explicit.append(qrow)
            seen.add(q)
            total += 1
            if qrow[5] != "Granted":
                continue
            for u in grid.get(q, ()):
                if total >= n:
                    break
                if u not in seen:
                    seen.add(u)
                    implicit.append((u, "Unit", "01", True, False, "Granted", qrow[6], qrow[7]))
                    total += 1
        if total < n:
            pool = [u for p in focus for u in self._base_units_by_pkg[p] if u not in seen]
            if len(pool) < n - total:
                pool = [u for u in self._base_units if u not in seen]
            for u in rnd.sample(pool, min(n - total, len(pool))):
                explicit.append(row(u, "Unit", False))
                total += 1
        explicit.sort()
        implicit.sort()
        return explicit + implicit

    # ----------------------------------------------------------------------------------------- tombstones

    def _build_tombstones(self):
        rnd = random.Random("tombstones/%s/%d" % (self.scale, self.seed))
        n_tc, n_org = (6, 3) if self.scale == "small" else (1500, 250)
        taken = set(self.components)
        pkgs = self.codes["packages"]
        while len(self.deleted_components) < n_tc:
            p = rnd.choice(pkgs)
            code = "%sXDL%03d" % (p, rnd.randrange(1, 1000)) if rnd.random() < 0.7 else \
                "%s%d%02d%02d" % (p, rnd.randrange(1, 9), rnd.randrange(1, 100), rnd.choice((11, 12, 13, 14)))
            if code in taken:
                continue
            taken.add(code)
            t = self._audit_ticks(rnd, 2016)
            self.deleted_components.append({"NationalCode": code, "Operation": rnd.choice(
                ("PhysicalDelete", "LogicalDelete")), "UpdatedDate": format_instant(t), "_ticks": t})
        taken = set(self.organisations)
        while len(self.deleted_organisations) < n_org:
            code = "%d" % rnd.randrange(1000, 53000)
            if code in taken:
                continue
            taken.add(code)
            t = self._audit_ticks(rnd, 2016)
            self.deleted_organisations.append({"Operation": rnd.choice(("PhysicalDelete", "LogicalDelete")),
                                               "OrganisationCode": code, "UpdatedDate": format_instant(t),
                                               "_ticks": t})
        self.deleted_components.sort(key=lambda d: (d["_ticks"], d["NationalCode"]))
        self.deleted_organisations.sort(key=lambda d: (d["_ticks"], d["OrganisationCode"]))

    # ----------------------------------------------------------------------------------------- mutations

    def mutate(self, spec, now_ticks):
        """Apply one mutation spec (see the module docstring); returns the change summary. Raises ValueError."""
        self._changes = {}
        action = spec.get("action")
        if action == "random":
            self._mutate_random(float(spec.get("fraction", 0.01)), spec.get("seed", 1), now_ticks)
        elif action == "scope":
            self._scope_change(spec["code"], spec.get("add", ()), spec.get("remove", ()), spec.get("end", ()),
                               now_ticks)
        elif action in ("update", "add", "delete", "supersede"):
            kind = spec.get("kind")
            if kind not in ORG_KINDS and kind not in KINDS:
                raise ValueError("unknown kind %r (expected rto, organisation or one of %s)"
                                 % (kind, ", ".join(KINDS)))
            rnd = random.Random("mutate/%s/%s/%s/%d" % (action, kind, spec.get("code"), now_ticks))
            if action == "update":
                self._update(kind, spec.get("code"), now_ticks, rnd, spec.get("title"))
            elif action == "add":
                self._add(kind, spec.get("code"), now_ticks, rnd, spec.get("package"))
            elif action == "delete":
                self._delete(kind, spec.get("code"), now_ticks, spec.get("operation", "PhysicalDelete"))
            else:
                self._supersede(kind, spec.get("code"), now_ticks, rnd, spec.get("new_code"))
        else:
            raise ValueError("unknown action %r" % action)
        self.generation += 1
        return {"now": format_instant(now_ticks), "generation": self.generation, "changes": self._changes}

    def _note(self, kind, action, code):
        self._changes.setdefault(kind, {}).setdefault(action, []).append(code)

    def _component(self, kind, code):
        c = self.components.get(code)
        if c is None:
            raise ValueError("no current %s with code %r" % (kind, code))
        if KINDS[kind] != c["ComponentType"]:
            raise ValueError("%s is a %s, not a %s" % (code, c["ComponentType"], kind))
        return c

    def _org(self, code, kind="rto"):
        o = self.organisations.get(code)
        if o is None or (o.get("_kind") == NON_RTO) != (kind == "organisation"):
            raise ValueError("no current %s with code %r" % (kind, code))
        return o

    def _make_non_rto(self, rnd, code, now):
        """An organisation that is not an RTO (Organisation2): the base Organisation members only."""
        o = self._make_org(rnd, code, 0, created=now)
        self._stamp(o, "UpdatedDate", now)
        o["Codes"][0]["StartDate"] = ticks_to_date(now)
        o["_kind"] = NON_RTO
        o["_scope"] = []
        o["RegistrationStatus"] = None
        for k in ("RegistrationPeriods", "RegistrationManagers", "Classifications", "Restrictions"):
            o[k] = []
        return o

    def _update(self, kind, code, now, rnd, title=None):
        if kind in ORG_KINDS:
            o = self._org(code, kind)
            today = ticks_to_date(now)
            o["TradingNames"].append({"Name": "%s %s" % (rnd.choice(_ORG_A), rnd.choice(_ORG_B)),
                                      "StartDate": today, "EndDate": None})
            o["Locations"].append(self._make_location(rnd, today))
            self._stamp(o, "UpdatedDate", now)
            self._note(kind, "update", code)
            self._changed("organisation", code)
            return
        c = self._component(kind, code)
        if title:
            c["Title"] = title
        today = ticks_to_date(now)
        prev = c["Releases"][-1]
        prev["Currency"] = "Superseded"
        try:
            number = int(float(prev["ReleaseNumber"])) + 1
        except ValueError:
            number = len(c["Releases"]) + 1
        grid = prev["UnitGrid"]
        if grid is None and c["ComponentType"] in ("Qualification", "SkillSet", "AccreditedCourse"):
            grid = next((r["UnitGrid"] for r in reversed(c["Releases"]) if r["UnitGrid"]), None)
        pool = None
        if c["ComponentType"] == "TrainingPackage":
            pool = [m["Code"] for m in prev["Components"] or ()]
        rel = self._make_release(rnd, c, number, today, grid, pool, last=True)
        if c["IsCurrent"] is False:
            rel["Currency"] = "Superseded"
        c["Releases"].append(rel)
        self._stamp(c, "UpdatedDate", now)
        self._note(kind, "update", code)
        self._changed("component", code)

    def _new_code(self, kind, rnd, package=None):
        pkgs = self.codes["packages"]
        tombstoned = {d["NationalCode"] for d in self.deleted_components}

        def taken(code):
            return code in self.components or code in self.organisations or code in tombstoned
        for _ in range(10_000):
            p = package or rnd.choice(pkgs)
            code = {"qualification": lambda: "%s%d%02d26" % (p, rnd.randrange(1, 9), rnd.randrange(1, 100)),
                    "unit": lambda: "%sNEW%03d" % (p, rnd.randrange(1, 1000)),
                    "skill_set": lambda: "%sSS%05d" % (p, rnd.randrange(1, 100000)),
                    "accredited_course": lambda: "%05d%s" % (rnd.randrange(23000, 30000), rnd.choice(("NAT", "VIC"))),
                    "training_package": lambda: "Y%s%s" % (rnd.choice("ABCDEFGHJKLMNPQRSTUVWXYZ"),
                                                           rnd.choice("ABCDEFGHJKLMNPQRSTUVWXYZ")),
                    "rto": lambda: "%d" % rnd.randrange(53000, 99999),
                    "organisation": lambda: "%d" % rnd.randrange(53000, 99999)}[kind]()
            if not taken(code):
                return code
        raise ValueError("could not find a free code")

    def _add(self, kind, code, now, rnd, package=None):
        code = code or self._new_code(kind, rnd, package)
        if code in self.components or code in self.organisations:
            raise ValueError("code %r already exists" % code)
        if kind == "rto":
            o = self._make_org(rnd, code, 0, created=now)
            self._stamp(o, "UpdatedDate", now)
            o["_scope"] = []
            o["Codes"][0]["StartDate"] = ticks_to_date(now)
            self.organisations[code] = o
            self._scope_change(code, self._pick_scope_codes(rnd, rnd.randrange(3, 30)), (), (), now, note=False)
            self._note("rto", "add", code)
            self._changed("organisation", code)
            return code
        if kind == "organisation":
            self.organisations[code] = self._make_non_rto(rnd, code, now)
            self._note(kind, "add", code)
            self._changed("organisation", code)
            return code
        ctype = KINDS[kind]
        pkg = None
        pool = None
        if kind in ("qualification", "unit", "skill_set"):
            pkg = package or (code[:3] if code[:3] in self.package_titles else rnd.choice(self.codes["packages"]))
            if pkg not in self.package_titles:
                raise ValueError("unknown training package %r" % pkg)
            pool = [u for u in self._base_units_by_pkg[pkg] if u in self.components] or None
        elif kind == "accredited_course":
            pool = [u for u in self._base_units_by_pkg[rnd.choice(self.codes["packages"])] if u in self.components]
        else:
            self.package_titles[code] = self._title_for_new_package(rnd)
            pool = []
        c = self._make_component(rnd, ctype, code, pkg, pool, created=now)
        self._stamp(c, "UpdatedDate", now)
        for r in c["Releases"][:-1]:
            r["ReleaseDate"] = ticks_to_date(now)
        c["Releases"] = c["Releases"][-1:]
        c["Releases"][0]["ReleaseNumber"] = "1.0" if ctype == "TrainingPackage" else "1"
        c["Releases"][0]["ReleaseDate"] = ticks_to_date(now)
        self._add_component(c)
        self._note(kind, "add", code)
        self._changed("component", code)
        return code

    def _title_for_new_package(self, rnd):
        return "%s Training Package" % rnd.choice(_TP_WORDS)

    def _delete(self, kind, code, now, operation):
        if operation not in ("PhysicalDelete", "LogicalDelete"):
            raise ValueError("operation must be PhysicalDelete or LogicalDelete")
        if kind in ORG_KINDS:
            self._org(code, kind)
            del self.organisations[code]
            self.deleted_organisations.append({"Operation": operation, "OrganisationCode": code,
                                               "UpdatedDate": format_instant(now), "_ticks": now})
            self.deleted_organisations.sort(key=lambda d: (d["_ticks"], d["OrganisationCode"]))
            self._note(kind, "delete", code)
            self._changed("organisation", code)
        else:
            self._component(kind, code)
            del self.components[code]
            self.deleted_components.append({"NationalCode": code, "Operation": operation,
                                            "UpdatedDate": format_instant(now), "_ticks": now})
            self.deleted_components.sort(key=lambda d: (d["_ticks"], d["NationalCode"]))
            self._note(kind, "delete", code)
            self._changed("component", code)
        self._changed("tombstones", code)

    def _supersede(self, kind, code, now, rnd, new_code=None):
        if kind in ORG_KINDS:
            raise ValueError("supersede applies to training components only")
        old = self._component(kind, code)
        if not old["IsCurrent"]:
            raise ValueError("%s is already superseded" % code)
        pkg = old["ParentCode"]
        new = self._add(kind, new_code, now, rnd, pkg if pkg in self.package_titles else None)
        newc = self.components[new]
        self._link_supersession(rnd, old, newc, stamp=now)
        self._stamp(old, "UpdatedDate", now)
        self._note(kind, "update", code)
        self._changed("component", code)
        self._changed("component", new)
        self._note(kind, "supersede", code)
        return new

    def _pick_scope_codes(self, rnd, n):
        if not hasattr(self, "_scope_pool"):
            self._scope_pool = self._base_units + tuple(q for p in self._base_quals_by_pkg.values() for q in p)
        picks = rnd.sample(self._scope_pool, min(len(self._scope_pool), 2 * n + 5))
        return [c for c in picks if c in self.components][:n]

    def _scope_change(self, code, add, remove, end, now, note=True):
        o = self._org(code)
        rows = list(self.scope_rows(code))
        today = ticks_to_date(now)
        remove = set(remove)
        end = set(end)
        if remove:
            rows = [r for r in rows if r[0] not in remove]
        if end:
            rows = [(r[0], r[1], r[2], r[3], r[4], "Cancelled", r[6], today) if r[0] in end else r for r in rows]
        present = {r[0] for r in rows}
        reg_end = o["RegistrationPeriods"][-1]["EndDate"]
        for c in add:
            if c in present:
                continue
            comp = self.components.get(c)
            if comp is None:
                raise ValueError("scope code %r is not a current training component" % c)
            rows.append((c, comp["ComponentType"], "01", False, False, "Granted", today, reg_end))
            present.add(c)
        explicit = sorted(r for r in rows if not r[3])
        implicit = sorted(r for r in rows if r[3])
        o["_scope"] = explicit + implicit
        self._stamp(o, "UpdatedDate", now)
        if note:
            self._note("rto", "scope", code)
            self._changed("organisation", code)

    def _mutate_random(self, fraction, seed, now):
        rnd = random.Random("mutate-random/%s/%d/%s" % (self.scale, self.seed, seed))
        comps = sorted(self.components)
        # RTOs only: a random change may touch the scope, which other organisations have not got.
        orgs = sorted(c for c, o in self.organisations.items() if o.get("_kind") != NON_RTO)
        n_c = max(1, round(fraction * len(comps))) if fraction > 0 else 0
        n_o = max(1, round(fraction * len(orgs))) if fraction > 0 else 0
        picked = rnd.sample(comps, min(n_c, len(comps)))
        for i, code in enumerate(picked):
            c = self.components.get(code)
            if c is None:
                continue
            kind = TYPE_TO_KIND[c["ComponentType"]]
            r = rnd.random()
            if kind == "training_package":
                self._update(kind, code, now, rnd)
            elif r < 0.65:
                self._update(kind, code, now, rnd)
            elif r < 0.75:
                self._add(kind, None, now, rnd, c["ParentCode"] if kind != "accredited_course" else None)
            elif r < 0.87:
                self._delete(kind, code, now, rnd.choice(("PhysicalDelete", "LogicalDelete")))
            elif c["IsCurrent"]:
                self._supersede(kind, code, now, rnd)
            else:
                self._update(kind, code, now, rnd)
        for code in rnd.sample(orgs, min(n_o, len(orgs))):
            if code not in self.organisations:
                continue
            r = rnd.random()
            if r < 0.35:
                self._update("rto", code, now, rnd)
            elif r < 0.8:
                rows = self.scope_rows(code)
                drop = [x[0] for x in rnd.sample(rows, min(len(rows), rnd.randrange(0, 4)))]
                self._scope_change(code, self._pick_scope_codes(rnd, rnd.randrange(1, 6)), drop[:1], drop[1:], now)
            elif r < 0.9:
                self._add("rto", None, now, rnd)
            else:
                self._delete("rto", code, now, rnd.choice(("PhysicalDelete", "LogicalDelete")))

    # ----------------------------------------------------------------------------------------- dump

    @staticmethod
    def public(d):
        """A component or organisation without internal ("_") keys."""
        return {k: v for k, v in d.items() if not k.startswith("_")}

    def scope_dicts(self, code):
        return [{"NrtCode": r[0], "TrainingComponentType": r[1], "ExtentCode": r[2], "IsImplicit": r[3],
                 "IsRefused": r[4], "ScopeDecisionType": r[5], "StartDate": r[6], "EndDate": r[7]}
                for r in self.scope_rows(code)]

    def dump_chunks(self, now_ticks, include_scopes=True):
        """Yield the canonical dump (see the module docstring) as str chunks; streams RTO scope one RTO at a time."""
        enc = json.JSONEncoder(sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode
        counts = {"TrainingComponents": len(self.components), "Organisations": len(self.organisations),
                  "DeletedTrainingComponents": len(self.deleted_components),
                  "DeletedOrganisations": len(self.deleted_organisations)}
        meta = {"scale": self.scale, "seed": self.seed, "now": format_instant(now_ticks),
                "generation": self.generation, "counts": counts}
        yield '{"DeletedOrganisations":%s' % enc([self.public(d) for d in self.deleted_organisations])
        yield ',"DeletedTrainingComponents":%s' % enc([self.public(d) for d in self.deleted_components])
        yield ',"Organisations":['
        for i, code in enumerate(sorted(self.organisations)):
            o = self.public(self.organisations[code])
            o["Kind"] = self.organisations[code].get("_kind", "Rto3")
            rows = self.scope_rows(code)
            o["ScopeCount"] = len(rows)
            if include_scopes:
                o["Scopes"] = self.scope_dicts(code)
            yield ("," if i else "") + enc(o)
        yield '],"TrainingComponents":['
        for i, code in enumerate(sorted(self.components)):
            yield ("," if i else "") + enc(self.public(self.components[code]))
        yield '],"meta":%s}' % enc(meta)

    def dump(self, now_ticks, include_scopes=True):
        return json.loads("".join(self.dump_chunks(now_ticks, include_scopes)))


if __name__ == "__main__":
    scale = sys.argv[1] if len(sys.argv) > 1 else "small"
    t0 = time.time()
    reg = Register(scale, int(sys.argv[2]) if len(sys.argv) > 2 else 1, progress=lambda m: print(m, file=sys.stderr))
    print("built in %.2fs" % (time.time() - t0))
    t0 = time.time()
    n = sum(len(reg.scope_rows(c)) for c in reg.organisations)
    print("scope rows %d generated in %.2fs" % (n, time.time() - t0))
