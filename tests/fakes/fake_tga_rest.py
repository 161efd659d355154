#!/usr/bin/python3
"""Fake training.gov.au public REST API ("NTR Web API", https://training.gov.au/api, no auth).

Built from ../../../shared/reference/tga-web-services.md section 6 and rtopacks-current-system.md section 2, with the
response shapes captured by the reference's sources (the CRM7 audit [S9]: search, detail, release and unit grid
examples and field inventories; the Supabase peer [S7]: scope URLs and `include=all`; PowerShell peers [S21]:
`value`, `componentTypeLabel`). Where none of them shows a shape, the fake designs one in the same style
(camelCase, `{id, name}` objects in search results, `xxx` + `xxxLabel` pairs in details) and README.md (section
"fake_tga_rest.py") documents the choice. It serves the SAME synthetic register as fake_tga_soap.py
(tga_register.py, deterministic from scale and seed), so a SOAP cycle and a REST cycle can be compared row by row.
Conventions (CLI, /_fake/ control plane, faults, clock, mutate, dump) are those of README.md in this folder.

Usage:
  /usr/bin/python3 tests/fakes/fake_tga_rest.py --port 0 --port-file FILE [--scale small|full] [--seed N]
      [--max-page-size 1000] [--oversize-status 417] [--offset-cap 50000] [--offset-cap-status 400]
      [--rate-limit 0] [--rate-window 1] [--default-page-size 20] [--no-quirks]
      [--now 2026-01-05T00:00:00Z] [--frozen-clock] [--cache-dir DIR] [--rebuild-cache] [--quiet]

Endpoints (GET; paths and query names match case-insensitively, as ASP.NET Core routing and binding do;
`api-version=1.0` accepted, any other version is a 400):
  /api/metadata
  /api/search/training?searchText=&pageSize=&offset=&filter=<OData>&orderBy=&includeTotalCount=
  /api/training/{code}                                   component detail (releases newest first)
  /api/training/{code}/releases/{number|id}              release detail (assets, packaging, TP members)
  /api/training/{code}/releases/{number|id}/unitgrid     bare JSON array of UnitGridUsage
  /api/search/organisation?searchText=&trainingCode=&includeImplicit=&pageSize=&offset=&filter=&orderBy=
  /api/organisation/{code}[?include=all]                 + /addresses /contacts /registration /tradingname
      /restrictions /regulatorydecision /scopesummary /legalname /webaddress /registrationmanager /classification
      /deliverynotificationhistory/{trainingcode}
  /api/organisation/{code}/scope?offset=&pageSize=&filters=componentType==qualification,...&sorts=code
      &includeImplicitItems=true                          -> {"count", "totalCount", "value": [...]}

Quirks (reference section 6): pageSize above --max-page-size -> 417 (or --oversize-status 500); more than
--rate-limit requests per --rate-window seconds -> 429 with Retry-After; offset >= --offset-cap -> 400 (or 500);
scope `filters` with isImplicit==false -> 500; scope without a componentType filter omits the current (granted)
qualifications. No modified-since filter exists; /api/metadata's dataExportSyncDateTime is the change probe.

Faults (POST /_fake/fault {"op": family|"*", "kind": K, "count": N, "skip": K, "match": "<substring of the
request target>", ...}); families: search_training, training, unitgrid, search_organisation, organisation, scope,
metadata. Kinds: http500, http503, http429 ("retry_after"), http417, hang ("hold"), reset, truncate, malformed,
html, redirect, slow ("delay"), drip ("interval").

Mutations (POST /_fake/mutate): the vocabulary of tga_register.py (as for the SOAP fake), plus
{"action": "touch_metadata"} (a data export sync with no data change: only the sync time moves).
GET|POST /_fake/config reads or changes the quirk settings (the options above) at run time; /_fake/stats counts
requests and bytes per endpoint family; /_fake/dump is the register's canonical dump, the same as the SOAP fake's.
"""

import argparse
import array
import collections
import datetime
import hashlib
import json
import marshal
import os
import re
import sys
import threading
import time
import urllib.parse
import uuid
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
import fakekit
import http_wire
import tga_register as reg
from tga_register import format_instant, TICKS_PER_SECOND

# The rendering format; part of the disk cache key so a change never serves stale bytes.
FORMAT = "tga-rest-render-4"
PUBLIC_BASE = "https://training.gov.au"
NTR_VERSION = "4.224.3.45"  # the NTR version [S9] saw in /api/metadata
NS_UUID = uuid.UUID("6f1d3c52-6a43-4d3e-9a0e-2f6f2c1b7a10")  # fixed namespace: ids are stable across runs

# SOAP ComponentType -> (REST enum id, label, Type/Id number). The numbers are the NRT's [Flags] TrainingComponentTypes
# enum in declaration order ([S9]: none, accreditedCourse, qualification, unit, skillSet, qualsSkillsUnits (= 2|4|8),
# trainingPackage, accreditedUnit, ...), which is why the reference's filter examples are `Type/Id eq 2|4|8|32`.
TYPES = {
    "AccreditedCourse": ("accreditedCourse", "Accredited course", 1),
    "Qualification": ("qualification", "Qualification", 2),
    "Unit": ("unit", "Unit of competency", 4),
    "SkillSet": ("skillSet", "Skill set", 8),
    "TrainingPackage": ("trainingPackage", "Training package", 16),
    "AccreditedCourseModule": ("accreditedUnit", "Accredited unit", 32),
}
REST_TYPE = {k: v[0] for k, v in TYPES.items()}
TYPE_NUMBER = {v[0].lower(): v[2] for v in TYPES.values()}
# Scope blocks: one per component type, in this order, each sorted by code (see Store scope file layout).
SCOPE_TYPES = ["Qualification", "SkillSet", "AccreditedCourse", "Unit", "TrainingPackage", "AccreditedCourseModule"]
SCOPE_TYPE_IDX = {t: i for i, t in enumerate(SCOPE_TYPES)}
SCOPE_TYPE_BY_REST = {REST_TYPE[t].lower(): i for i, t in enumerate(SCOPE_TYPES)}
DECISIONS = ["Granted", "Refused", "Suspended", "Cancelled"]
DECISION_IDX = {d: i for i, d in enumerate(DECISIONS)}
EXTENTS = ["01", "02"]
EXTENT_LABELS = {"01": "Deliver and assess", "02": "Assess only"}
STATES = {"01": "NSW", "02": "VIC", "03": "QLD", "04": "SA", "05": "WA", "06": "TAS", "07": "NT", "08": "ACT"}
TC_SCHEMES = {"01": "ANZSCO", "02": "ASCO", "03": "ASCED6", "04": "ASCED4", "05": "QualLevel", "06": "NRTType"}
QUAL_LEVELS = {"524": "Certificate I", "521": "Certificate II", "514": "Certificate III", "511": "Certificate IV",
               "421": "Diploma", "411": "Advanced Diploma", "312": "Bachelor Degree (Pass)",
               "311": "Bachelor Degree (Honours)", "221": "Graduate Certificate", "211": "Graduate Diploma"}
RELEASE_CURRENCY = {"Current": "current", "Superseded": "replaced"}  # [S9]: release currency current|replaced|draft
ORG_STATUS = {"Current": "current", "Cancelled": "cancelled", "Lapsed": "lapsed", "Suspended": "suspended"}

FAMILIES = ("search_training", "training", "unitgrid", "search_organisation", "organisation", "scope", "metadata")
ORG_SUBS = ("addresses", "contacts", "registration", "tradingname", "restrictions", "regulatorydecision",
            "scopesummary", "legalname", "webaddress", "registrationmanager", "classification")

_enc = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def jb(obj):
    return _enc(obj).encode("utf-8")


def lower_camel(s):
    return s[:1].lower() + s[1:] if s else s


def stable_id(*parts):
    return str(uuid.uuid5(NS_UUID, "/".join(parts)))


def asset(f):
    """A SOAP ReleaseFile as a REST asset ([S9] `assets[]`): RelativePath "BSB\\BSB30120_R1.pdf" -> url
    https://training.gov.au/assets/BSB/BSB30120_R1.pdf (the client gets RelativePath back from the url)."""
    rel = f["RelativePath"].replace("\\", "/")
    return {"name": rel.rsplit("/", 1)[-1], "url": "%s/assets/%s" % (PUBLIC_BASE, rel), "type": "completeDocument",
            "size": f["Size"], "isAvailable": True}


def dates(x):
    return {"startDate": x.get("StartDate"), "endDate": x.get("EndDate")}


def assignment(x):
    return {"code": x["Code"], "startDate": x["StartDate"], "endDate": x["EndDate"]}


def tc_classification(x):
    return {"schemeCode": x["SchemeCode"], "scheme": TC_SCHEMES.get(x["SchemeCode"]), "valueCode": x["ValueCode"],
            "purposeCode": x["PurposeCode"], "startDate": x["StartDate"], "endDate": x["EndDate"]}


def _crc_id(text):
    return str(100 + zlib.crc32(text.encode("utf-8")) % 9000)


def taxonomy(c, package_titles):
    """Taxonomy ([S9]; TGA-SYNC-FIX-01 names industrySectors / occupations). The register has none, so it is
    derived: the industry sector from the training package's name, occupations from the ANZSCO classification.
    REST-only data: the SOAP services have no counterpart."""
    pkg = c["Code"] if c["ComponentType"] == "TrainingPackage" else c["ParentCode"]
    sectors = []
    if pkg and pkg in package_titles:
        name = package_titles[pkg].replace(" Training Package", "")
        sectors.append({"industrySector": name, "industrySectorId": _crc_id(name), "description": None})
    occupations = []
    for x in c["Classifications"]:
        if x["SchemeCode"] == "01":
            field = c["Title"].split(" in ", 1)[-1].split(" of ", 1)[-1].replace(" Skill Set", "")
            occupations.append({"occupation": "%s worker" % field, "occupationId": x["ValueCode"],
                                "description": None})
    return {"industrySectors": sectors, "occupations": occupations}


def supersession(c):
    """(supersedes, supersededBy) from the component's mappings (the register writes "Supersedes X" on the new
    component and "Superseded by Y" on the old one)."""
    sup, by = [], []
    for m in c["MappingInformation"]:
        item = {"code": m["MapsToCode"], "title": m["MapsToTitle"], "isEquivalent": m["IsEquivalent"]}
        (by if (m["Notes"] or "").startswith("Superseded by") else sup).append(item)
    return sup, by


def search_status(c, by):
    if c["IsCurrent"]:
        return {"id": "current", "isCurrent": True, "name": "Current"}
    eq = any(x["isEquivalent"] for x in by)
    return {"id": "supersededEquivalent" if eq else "supersededNonEquivalent", "isCurrent": False,
            "name": "Superseded"}


def render_search_item(c, package_titles):
    """One `data[]` item of /api/search/training ([S9] TrainingComponentIndexDocumentResult), without searchScore
    (prepended per query)."""
    tid, tlabel, _ = TYPES[c["ComponentType"]]
    sup, by = supersession(c)
    cls = {x["SchemeCode"]: x for x in c["Classifications"] if x["EndDate"] is None}
    level = cls.get("05")
    last = c["Releases"][-1]
    ur = c["UsageRecommendations"][-1]
    cp = c["CurrencyPeriods"][-1]
    tax = taxonomy(c, package_titles)
    rm = c["RecognitionManagers"][-1]["Code"] if c["RecognitionManagers"] else None
    item = {
        "code": c["Code"], "title": c["Title"], "nrtId": stable_id("component", c["Code"]),
        "type": {"id": tid, "name": tlabel},
        "status": search_status(c, by),
        "qualificationLevel": {"code": level["ValueCode"], "name": QUAL_LEVELS.get(level["ValueCode"])}
        if level else None,
        "trainingPackage": {"code": c["ParentCode"], "title": c["ParentTitle"]} if c["ParentCode"] else None,
        "latestRelease": {"date": last["ReleaseDate"], "number": last["ReleaseNumber"]},
        "usageRecommendation": {"name": ur["State"], "startDate": ur["StartDate"]},
        "currencyPeriod": {"startDate": cp["StartDate"], "endDate": cp["EndDate"]},
        "anzsco": {"code": cls["01"]["ValueCode"], "name": None} if "01" in cls else None,
        "asced4": {"code": cls["04"]["ValueCode"], "name": None} if "04" in cls else None,
        "recognitionManager": {"code": rm, "name": None} if rm else None,
        "taxonomyIndustry": [{"industrySector": s["industrySector"], "id": s["industrySectorId"]}
                             for s in tax["industrySectors"]],
        "taxonomyOccupation": [{"occupation": o["occupation"], "id": o["occupationId"]} for o in tax["occupations"]],
        "supersedes": sup, "supersededBy": by,
        "isConfidential": c["IsConfidential"],
    }
    return jb(item)


def render_release_summary(c, r):
    grid = r["UnitGrid"]
    return {
        "id": stable_id("release", c["Code"], r["ReleaseNumber"]),
        "releaseNumber": r["ReleaseNumber"], "releaseDate": r["ReleaseDate"],
        "currency": RELEASE_CURRENCY.get(r["Currency"], lower_camel(r["Currency"] or "")),
        "approvalProcess": r["ApprovalProcess"],
        "packagingInformation": {"core": sum(1 for e in grid if e["IsEssential"]),
                                 "elective": sum(1 for e in grid if not e["IsEssential"]), "measure": "units"}
        if grid else None,
        "assets": [asset(f) for f in r["Files"]],
    }


def render_detail(c, package_titles):
    """/api/training/{code}: the component with every SOAP GetDetails section except unit grids (per release
    endpoint), training package members and companion volume links (release detail)."""
    tid, tlabel, _ = TYPES[c["ComponentType"]]
    d = {
        "id": stable_id("component", c["Code"]), "code": c["Code"], "title": c["Title"],
        "type": tid, "typeLabel": tlabel,
        "status": lower_camel(c["CurrencyStatus"]), "statusLabel": c["CurrencyStatus"],
        "usageRecommendation": lower_camel(c["UsageRecommendation"]),
        "usageRecommendationLabel": c["UsageRecommendation"],
        "isConfidential": c["IsConfidential"], "isLegacyData": c["IsLegacyData"],
        "parent": {"code": c["ParentCode"], "title": c["ParentTitle"], "id": stable_id("component", c["ParentCode"])}
        if c["ParentCode"] else None,
        "trainingPackageDeveloper": {"code": c["IscOrganisationCode"]} if c["IscOrganisationCode"] else None,
        "createdDate": c["CreatedDate"], "updatedDate": c["UpdatedDate"],
        "usageRecommendationHistory": [{"usageRecommendation": lower_camel(x["State"]),
                                        "usageRecommendationLabel": x["State"], **dates(x)}
                                       for x in c["UsageRecommendations"]],
        "currencyPeriods": [{"authority": x["Authority"], **dates(x), "endReasonCode": x["EndReasonCode"],
                             "endComment": x["EndComment"]} for x in c["CurrencyPeriods"]],
        "classifications": [tc_classification(x) for x in c["Classifications"]],
        "mappingInformation": [{"code": m["Code"], "title": m["Title"], "mapsToCode": m["MapsToCode"],
                                "mapsToTitle": m["MapsToTitle"], "mapsToId": stable_id("component", m["MapsToCode"]),
                                "isEquivalent": m["IsEquivalent"], "notes": m["Notes"]}
                               for m in c["MappingInformation"]],
        "recognitionManagers": [assignment(x) for x in c["RecognitionManagers"]],
        "dataManagers": [assignment(x) for x in c["DataManagers"]],
        "contacts": [contact(x) for x in c["Contacts"]],
        "completionMapping": [{"code": x["Code"], "isMandatory": x["IsMandatory"], **dates(x)}
                              for x in c["CompletionMapping"]],
        "taxonomy": taxonomy(c, package_titles),
        "releases": [render_release_summary(c, r) for r in reversed(c["Releases"])],
    }
    return jb(d)


def render_release(c, r):
    d = render_release_summary(c, r)
    d["components"] = None if r["Components"] is None else [
        {"code": m["Code"], "title": m["Title"], "componentType": REST_TYPE.get(m["Type"], lower_camel(m["Type"])),
         "componentTypeLabel": TYPES.get(m["Type"], (None, m["Type"]))[1], "releaseNumber": m["ReleaseNumber"],
         "releaseDate": m["ReleaseDate"],
         "releaseCurrency": RELEASE_CURRENCY.get(m["ReleaseCurrency"], m["ReleaseCurrency"])}
        for m in r["Components"]]
    d["companionVolumeLinks"] = None if r["CompanionVolumeLinks"] is None else [
        {"linkNotes": x["LinkNotes"], "linkText": x["LinkText"], "linkUrl": x["LinkUrl"],
         "publishedComponentType": x["PublishedComponentType"]} for x in r["CompanionVolumeLinks"]]
    return jb(d)


def render_grid(r):
    """A release's unit grid as [(head, unit code, tail)]: the unit's own usageRecommendation goes between head and
    tail at serve time, so a later supersession of the unit shows in every grid without re-rendering them."""
    out = []
    for e in r["UnitGrid"] or ():
        head = jb({"code": e["Code"], "title": e["Title"], "isEssential": e["IsEssential"],
                   "isEssentialLabel": "Core" if e["IsEssential"] else "Elective"})[:-1] + b',"usageRecommendation":'
        tail = (',"hasPreRequisites":false,"links":[{"rel":"training-component","href":"%s/api/training/%s"}]}'
                % (PUBLIC_BASE, e["Code"].lower())).encode()
        out.append((head, e["Code"], tail))
    return out


def usage_bytes(c):
    if c is None:
        return b'"deleted","usageRecommendationLabel":"Deleted"'
    return ('"%s","usageRecommendationLabel":"%s"' % (lower_camel(c["UsageRecommendation"]),
                                                      c["UsageRecommendation"])).encode()


def render_component(c, package_titles):
    """Everything served for one component: (search item, detail, {release number: (release detail, grid)},
    {release id: release number})."""
    releases = {r["ReleaseNumber"]: (render_release(c, r), render_grid(r)) for r in c["Releases"]}
    ids = {stable_id("release", c["Code"], r["ReleaseNumber"]): r["ReleaseNumber"] for r in c["Releases"]}
    return (render_search_item(c, package_titles), render_detail(c, package_titles), releases, ids)


# ------------------------------------------------------------------------------------------------ organisations

COUNTRIES = {"1101": ("Australia", "AUS")}  # SACC code -> (country, ISO alpha-3); the register has Australia only


def address(a):
    """The evidenced shape (audit: address{line1, line2, suburb, state, postcode, country, countryCodeAlpha3,
    fullAddress}; unicorn-cms reads address.state): the state by its abbreviation, no SACC codes."""
    if a is None:
        return None
    state = STATES.get(a["StateCode"]) or a["StateOverseas"]
    country, alpha3 = COUNTRIES.get(a["CountryCode"], (None, None))
    full = ", ".join(x for x in (a["Line1"], a["Line2"], a["Suburb"], state, a["Postcode"]) if x)
    return {"line1": a["Line1"], "line2": a["Line2"], "suburb": a["Suburb"], "state": state,
            "postcode": a["Postcode"], "country": country, "countryCodeAlpha3": alpha3, "fullAddress": full}


def abn(a):
    """ABNs as the live search serves them (sourcerer strips the spaces): "12 345 678 901"."""
    d = a.replace(" ", "")
    return "%s %s %s %s" % (d[:2], d[2:5], d[5:8], d[8:]) if len(d) == 11 and d.isdigit() else a


def contact(x):
    return {"contactType": "individual", "title": x["Title"], "firstName": x["FirstName"],
            "lastName": x["LastName"], "jobTitle": x["JobTitle"], "email": x["Email"], "phone": x["Phone"],
            "mobile": x["Mobile"], "fax": x["Fax"], "groupName": x["GroupName"],
            "organisationName": x["OrganisationName"], "role": x["RoleCode"], "roleDescription": x["JobTitle"],
            "typeCode": x["TypeCode"], "postalAddress": address(x["PostalAddress"]), **dates(x)}


def org_subs(o):
    """Sub-resource lists of an organisation, keyed by the sub-endpoint name."""
    return {
        "legalname": [{"name": x["Name"], "abns": [abn(a) for a in x["Abns"] or []], "acn": x["Acn"], **dates(x)}
                      for x in o["ResponsibleLegalPersons"]],
        "tradingname": [{"name": x["Name"], **dates(x)} for x in o["TradingNames"]],
        "addresses": [{"addressType": "deliveryLocation", "address": address(x["Address"]), **dates(x)}
                      for x in o["Locations"]],
        "webaddress": [{"webAddress": x["Link"], **dates(x)} for x in o["Urls"]],
        "contacts": [contact(x) for x in o["Contacts"]],
        "registration": [{**dates(x), "legalAuthority": x["LegalAuthority"], "exerciser": x["Exerciser"],
                          "endReason": x["EndReasonCode"], "endReasonComments": x["EndReasonComments"]}
                         for x in o["RegistrationPeriods"]],
        "registrationmanager": [assignment(x) for x in o["RegistrationManagers"]],
        "restrictions": [{"code": x["Code"], "restriction": x["Restriction"],
                          "restrictionTypeCode": x["RestrictionTypeCode"], **dates(x)} for x in o["Restrictions"]],
        "regulatorydecision": [],
        "classification": [{"schemeCode": x["SchemeCode"], "valueCode": x["ValueCode"],
                            "purposeCode": x["PurposeCode"], "isPrimary": True, **dates(x)}
                           for x in o["Classifications"]],
    }


INCLUDE_KEYS = [("legalNames", "legalname"), ("tradingNames", "tradingname"), ("addresses", "addresses"),
                ("webAddresses", "webaddress"), ("contacts", "contacts"), ("registrations", "registration"),
                ("registrationManagers", "registrationmanager"), ("restrictions", "restrictions"),
                ("regulatoryDecisions", "regulatorydecision")]


def render_org(o):
    """(search item, summary, summary with include=all, {sub: bytes})."""
    status = ORG_STATUS.get(o["RegistrationStatus"], lower_camel(o["RegistrationStatus"] or ""))
    subs = org_subs(o)
    summary = {
        "organisationId": stable_id("organisation", o["Code"]), "code": o["Code"], "isRto": True,
        "legalName": o["LegalName"], "status": status, "statusLabel": o["RegistrationStatus"],
        "rtoStatus": status, "rtoStatusLabel": o["RegistrationStatus"], "isLegacyData": o["IsLegacyData"],
        "createdDate": o["CreatedDate"], "updatedDate": o["UpdatedDate"],
        "codes": [assignment(x) for x in o["Codes"]],
        "classifications": subs["classification"],
        "dataManagers": [assignment(x) for x in o["DataManagers"]],
    }
    full = dict(summary)
    for key, sub in INCLUDE_KEYS:
        full[key] = subs[sub]
    reg_period = o["RegistrationPeriods"][-1] if o["RegistrationPeriods"] else {}
    item = {
        "code": o["Code"], "organisationId": summary["organisationId"], "legalName": o["LegalName"],
        "abns": [abn(a) for x in o["ResponsibleLegalPersons"] if x["EndDate"] is None for a in (x["Abns"] or [])],
        "tradingNames": [x["Name"] for x in o["TradingNames"] if x["EndDate"] is None],
        "isRto": True,
        "registration": {"status": status, "statusLabel": o["RegistrationStatus"],
                         "startDate": reg_period.get("StartDate"), "endDate": reg_period.get("EndDate"),
                         "registrationManager": o["RegistrationManagers"][-1]["Code"]
                         if o["RegistrationManagers"] else None},
    }
    return (jb(item), jb(summary), jb(full), {k: jb(v) for k, v in subs.items()})


# ------------------------------------------------------------------------------------------------ scope rows

_ORD1970 = datetime.date(1970, 1, 1).toordinal()
_day_cache = {}


def day_number(d):
    """YYYY-MM-DD -> days since 1970 + 1 (0 = no date), for DateNullSearch without parsing at request time."""
    if d is None:
        return 0
    n = _day_cache.get(d)
    if n is None:
        n = _day_cache[d] = datetime.date.fromisoformat(d).toordinal() - _ORD1970 + 1
    return n


SCOPE_ROW = ('{"code":"%s","title":%s,"componentType":"%s","componentTypeLabel":"%s","extent":"%s",'
             '"extentLabel":%s,"isImplicit":%s,"isRefused":%s,"status":"%s","statusLabel":"%s",'
             '"startDate":%s,"endDate":%s},')


def render_scope(rows, titles_json, code_id):
    """An RTO's scope as (bytes, offsets, code ids, flags, end days, blocks).

    Rows are grouped in blocks by component type (SCOPE_TYPES order), each sorted by code (explicit and implicit
    rows merged), each row followed by ",". So the usual request (one componentType, implicit items included,
    sorted by code) is one contiguous byte range. flags: bits 0-2 type, bit 3 implicit, bits 4-5 decision,
    bit 6 extent 02. blocks: [(first row, end row, implicit rows)] per type."""
    keyed = sorted(rows, key=lambda r: (SCOPE_TYPE_IDX.get(r[1], 5), r[0]))
    parts = []
    offs = array.array("I", [0])
    ids = array.array("I")
    flags = bytearray()
    ends = array.array("H")
    blocks = [[0, 0, 0] for _ in SCOPE_TYPES]
    pos = 0
    for i, (code, ctype, extent, imp, refused, decision, start, end) in enumerate(keyed):
        t = SCOPE_TYPE_IDX.get(ctype, 5)
        s = (SCOPE_ROW % (code, titles_json.get(code, "null"), REST_TYPE.get(ctype, lower_camel(ctype)),
                          TYPES.get(ctype, (0, ctype))[1], extent,
                          '"%s"' % EXTENT_LABELS[extent] if extent in EXTENT_LABELS else "null",
                          "true" if imp else "false", "true" if refused else "false", lower_camel(decision),
                          decision, '"%s"' % start if start else "null", '"%s"' % end if end else "null")
             ).encode("utf-8")
        parts.append(s)
        pos += len(s)
        offs.append(pos)
        ids.append(code_id(code))
        flags.append(t | (8 if imp else 0) | (DECISION_IDX.get(decision, 0) << 4) | (64 if extent == "02" else 0))
        ends.append(day_number(end))
        b = blocks[t]
        if b[1] == 0:
            b[0] = i
        b[1] = i + 1
        if imp:
            b[2] += 1
    return b"".join(parts), offs, ids, bytes(flags), ends, [tuple(b) for b in blocks]


class ScopeEntry:
    """One RTO's rendered scope: either a range of a scope part file (fd, base) or an in-memory blob (after a
    mutation re-rendered it)."""
    __slots__ = ("fd", "base", "blob", "offs", "ids", "flags", "ends", "blocks", "n")

    def __init__(self, fd, base, blob, offs, ids, flags, ends, blocks):
        self.fd, self.base, self.blob = fd, base, blob
        self.offs, self.ids, self.flags, self.ends, self.blocks = offs, ids, flags, ends, blocks
        self.n = len(flags)

    def read(self, a, b):
        """Bytes of rows [a, b) (with their trailing commas)."""
        lo, hi = self.offs[a], self.offs[b]
        if self.blob is not None:
            return self.blob[lo:hi]
        return os.pread(self.fd, hi - lo, self.base + lo)

    def part(self, a, b):
        """Rows [a, b) without the last comma, as bytes or a (fd, offset, count) file range for sendfile."""
        lo, hi = self.offs[a], self.offs[b] - 1
        if self.blob is not None:
            return self.blob[lo:hi]
        return (self.fd, self.base + lo, hi - lo)


# ================================================================================================ OData $filter

class QueryError(ValueError):
    """A request parameter the API rejects: HTTP 400 with a ProblemDetails body naming the parameter."""

    def __init__(self, param, message):
        super().__init__(message)
        self.param = param


_TOKEN = re.compile(r"\s*(?:(?P<str>'(?:[^']|'')*')|(?P<num>-?\d+(?:\.\d+)?)|(?P<punct>[(),])|"
                    r"(?P<word>[A-Za-z_][A-Za-z0-9_./]*(?:\(\))?))")
_CMP = {"eq": lambda a, b: a == b, "ne": lambda a, b: a != b,
        "gt": lambda a, b: a is not None and b is not None and a > b,
        "ge": lambda a, b: a is not None and b is not None and a >= b,
        "lt": lambda a, b: a is not None and b is not None and a < b,
        "le": lambda a, b: a is not None and b is not None and a <= b}


class ODataFilter:
    """The subset of OData $filter the search endpoints accept: `Field op literal` with eq ne gt ge lt le,
    `and`, `or`, `not`, parentheses, `search.in(Field, 'a,b')` and `startswith(Field, 'x')`. Fields (case-
    insensitive) index a record tuple; Type/Id compares the [Flags] number (a quoted enum name also works)."""

    def __init__(self, text, fields, param="filter"):
        self.fields = fields
        self.param = param
        self.toks = []
        pos = 0
        text = text.strip()
        while pos < len(text):
            m = _TOKEN.match(text, pos)
            if not m or m.end() == pos:
                raise QueryError(param, "Invalid expression: Syntax error at position %d in '%s'." % (pos, text))
            kind = m.lastgroup
            val = m.group(kind)
            if kind == "str":
                val = val[1:-1].replace("''", "'")
            elif kind == "num":
                val = float(val) if "." in val else int(val)
            self.toks.append((kind, val))
            pos = m.end()
            while pos < len(text) and text[pos].isspace():
                pos += 1
        self.i = 0
        self.text = text
        self.pred = self._or() if self.toks else (lambda r: True)
        if self.i != len(self.toks):
            self._fail("unexpected '%s'" % (self.toks[self.i][1],))

    def _fail(self, what):
        raise QueryError(self.param, "Invalid expression: %s in '%s'." % (what, self.text))

    def _peek(self):
        return self.toks[self.i] if self.i < len(self.toks) else (None, None)

    def _take(self):
        t = self._peek()
        self.i += 1
        return t

    def _word(self, w):
        k, v = self._peek()
        if k == "word" and v.lower() == w:
            self.i += 1
            return True
        return False

    def _or(self):
        left = self._and()
        while self._word("or"):
            right = self._and()
            left = (lambda a, b: lambda r: a(r) or b(r))(left, right)
        return left

    def _and(self):
        left = self._not()
        while self._word("and"):
            right = self._not()
            left = (lambda a, b: lambda r: a(r) and b(r))(left, right)
        return left

    def _not(self):
        if self._word("not"):
            inner = self._not()
            return lambda r: not inner(r)
        return self._primary()

    def _expect(self, p):
        k, v = self._take()
        if k != "punct" or v != p:
            self._fail("'%s' expected" % p)

    def _field(self):
        k, v = self._take()
        if k != "word":
            self._fail("a property name expected")
        spec = self.fields.get(v.lower())
        if spec is None:
            self._fail("Could not find a property named '%s'" % v)
        return v, spec

    def _literal(self):
        k, v = self._take()
        if k in ("str", "num"):
            return v
        if k == "word" and v.lower() in ("true", "false", "null"):
            return {"true": True, "false": False, "null": None}[v.lower()]
        self._fail("a literal expected")

    def _coerce(self, name, spec, value):
        idx, kind = spec
        if kind == "type":
            if isinstance(value, str):
                if value.lower() not in TYPE_NUMBER:
                    self._fail("'%s' is not a valid value for %s" % (value, name))
                return TYPE_NUMBER[value.lower()]
            return value
        if kind == "bool" and not isinstance(value, bool) and value is not None:
            self._fail("%s is Edm.Boolean" % name)
        return value

    def _primary(self):
        k, v = self._peek()
        if k == "punct" and v == "(":
            self._take()
            e = self._or()
            self._expect(")")
            return e
        if k == "word" and v.lower() in ("search.in", "startswith"):
            fn = v.lower()
            self._take()
            self._expect("(")
            name, spec = self._field()
            self._expect(",")
            arg = self._literal()
            sep = ","
            if fn == "search.in" and self._peek() == ("punct", ","):
                self._take()
                sep = self._literal()
            self._expect(")")
            idx = spec[0]
            if fn == "startswith":
                return lambda r: isinstance(r[idx], str) and r[idx].startswith(arg)
            vals = {self._coerce(name, spec, x.strip()) for x in str(arg).split(sep or ",")}
            return lambda r: r[idx] in vals
        name, spec = self._field()
        k, op = self._take()
        if k != "word" or op.lower() not in _CMP:
            self._fail("a comparison operator expected after %s" % name)
        value = self._coerce(name, spec, self._literal())
        cmp = _CMP[op.lower()]
        idx = spec[0]
        return lambda r: cmp(r[idx], value)


def parse_orderby(text, fields, param="orderBy"):
    """OData $orderby -> [(record index or "score", descending)]."""
    out = []
    for part in (text or "").split(","):
        words = part.split()
        if not words:
            continue
        name = words[0].lower()
        desc = len(words) > 1 and words[1].lower() == "desc"
        if len(words) > 2 or (len(words) == 2 and words[1].lower() not in ("asc", "desc")):
            raise QueryError(param, "Invalid expression: '%s' is not a valid ordering." % part.strip())
        if name == "search.score()":
            out.append(("score", desc))
            continue
        spec = fields.get(name)
        if spec is None:
            raise QueryError(param, "Invalid expression: Could not find a property named '%s'." % words[0])
        out.append((spec[0], desc))
    return out


# Search records: tuples indexed by these field specs (name -> (index, kind)).
TC_FIELDS = {"code": (0, "str"), "type/id": (1, "type"), "trainingpackage/code": (2, "str"),
             "status/id": (3, "str"), "status/iscurrent": (4, "bool"), "title": (5, "str"),
             "recognitionmanager/code": (6, "str"), "usagerecommendation/name": (7, "str"),
             "qualificationlevel/code": (8, "str"), "isconfidential": (9, "bool")}
ORG_FIELDS = {"code": (0, "str"), "legalname": (1, "str"), "status/id": (2, "str"), "registration/status": (2, "str"),
              "registrationmanager/code": (3, "str"), "isrto": (4, "bool")}


def tc_record(c):
    sup, by = supersession(c)
    level = next((x["ValueCode"] for x in c["Classifications"] if x["SchemeCode"] == "05" and x["EndDate"] is None),
                 None)
    return (c["Code"], TYPES[c["ComponentType"]][2], c["ParentCode"], search_status(c, by)["id"], c["IsCurrent"],
            c["Title"], c["RecognitionManagers"][-1]["Code"] if c["RecognitionManagers"] else None,
            c["UsageRecommendations"][-1]["State"], level, c["IsConfidential"])


def org_record(o):
    return (o["Code"], o["LegalName"], ORG_STATUS.get(o["RegistrationStatus"], o["RegistrationStatus"]),
            o["RegistrationManagers"][-1]["Code"] if o["RegistrationManagers"] else None, True)


def text_score(text, code, title):
    """None when the searchText does not match; else a relevance score (exact code > code prefix > title)."""
    if not text:
        return 1.0
    lc, lt = code.lower(), title.lower()
    words = text.lower().split()
    if not all(w in lc or w in lt for w in words):
        return None
    if lc == text.lower().strip():
        return 100.0
    score = 1.0 + sum(2.0 for w in words if lc.startswith(w)) + sum(1.0 for w in words if w in lt)
    return round(score, 4)


# ================================================================================================ the data store

class Store:
    """Pre-rendered responses for the register, kept in step with it through Register.on_change.

    Small scale renders everything in memory. Full scale renders components and organisations into a marshal file
    and every RTO's scope rows into part files under the cache dir (one per render worker); a request for one
    component type of one RTO is then one sendfile range. A second start loads the cache in seconds."""

    def __init__(self, register, cache_dir=None, rebuild=False, say=lambda m: None):
        self.r = register
        self.say = say
        self.lock = threading.RLock()
        self.comp = {}       # code -> (search item, detail, {release number: (detail, grid)}, {release id: number})
        self.orgs = {}       # code -> (search item, summary, summary with include=all, {sub: bytes})
        self.scope = {}      # code -> ScopeEntry
        self.fds = []
        self.usage = {}      # unit code -> the usageRecommendation bytes of unit grid entries
        self.titles_json = {}  # code -> JSON title, for scope rows; kept for deleted codes (scope still lists them)
        self.titles = {}
        self.codes_tbl = []  # code id -> code (scope rows hold ids)
        self.code_ids = {}
        self._cache = collections.OrderedDict()
        self._records_gen = -1
        self._tc_by_type = {}
        self._by_type_pkg = {}
        self._org_records = []
        self._by_training_code = None
        for code, c in register.components.items():
            self._note_component(code, c)
        for code in sorted(register.components):
            self.code_id(code)
        if cache_dir and register.scale != "small":
            self._load_or_build(cache_dir, rebuild)
        else:
            self._render_components()
            self._render_orgs()
            for code in register.organisations:
                self.scope[code] = self._scope_entry(code)
        register.on_change(self._on_change)

    # -------------------------------------------------------------------------------------------- helpers

    def code_id(self, code):
        i = self.code_ids.get(code)
        if i is None:
            i = self.code_ids[code] = len(self.codes_tbl)
            self.codes_tbl.append(code)
        return i

    def _note_component(self, code, c):
        self.usage[code] = usage_bytes(c)
        self.titles[code] = c["Title"]
        self.titles_json[code] = json.dumps(c["Title"], ensure_ascii=False)

    def _render_components(self):
        pt = self.r.package_titles
        for code, c in self.r.components.items():
            self.comp[code] = render_component(c, pt)

    def _render_orgs(self):
        for code, o in self.r.organisations.items():
            self.orgs[code] = render_org(o)

    def _scope_entry(self, code):
        blob, offs, ids, flags, ends, blocks = render_scope(self.r.scope_rows(code), self.titles_json, self.code_id)
        return ScopeEntry(None, 0, blob, offs, ids, flags, ends, blocks)

    # -------------------------------------------------------------------------------------------- disk cache

    def _cache_key(self):
        return fakekit.cache_key(self.r, ("tga_register.py", "fake_tga_rest.py", "nrt_codes.py"), FORMAT)

    def _load_or_build(self, cache_dir, rebuild):
        d = os.path.join(cache_dir, self._cache_key())
        meta_path = os.path.join(d, "pieces.marshal")
        if not rebuild and os.path.exists(meta_path):
            t0 = time.time()
            with open(meta_path, "rb") as f:
                m = marshal.load(f)
            if m["codes_tbl"][:len(self.codes_tbl)] == self.codes_tbl:
                self.comp, self.orgs = m["comp"], m["orgs"]
                self.codes_tbl = m["codes_tbl"]
                self.code_ids = {c: i for i, c in enumerate(self.codes_tbl)}
                self.fds = [os.open(os.path.join(d, p), os.O_RDONLY) for p in m["parts"]]
                for code, (part, base, offs, ids, flags, ends, blocks) in m["scope"].items():
                    self.scope[code] = ScopeEntry(self.fds[part], base, None, array.array("I", offs),
                                                  array.array("I", ids), flags, array.array("H", ends),
                                                  [tuple(b) for b in blocks])
                self.say("cache: loaded %s in %.1fs" % (d, time.time() - t0))
                return
        os.makedirs(d, exist_ok=True)
        fakekit.remove_stale_caches(cache_dir, self.r, d, self.say)
        t0 = time.time()
        parts, index, comp = self._build_parallel(d)
        self.comp = comp
        self._render_orgs()
        self.say("cache: rendered components, organisations and scope in %.1fs" % (time.time() - t0))
        tmp = meta_path + ".tmp"
        with open(tmp, "wb") as f:
            marshal.dump({"comp": self.comp, "orgs": self.orgs, "codes_tbl": self.codes_tbl, "parts": parts,
                          "scope": index}, f)
        os.replace(tmp, meta_path)
        self.fds = [os.open(os.path.join(d, p), os.O_RDONLY) for p in parts]
        for code, (part, base, offs, ids, flags, ends, blocks) in index.items():
            self.scope[code] = ScopeEntry(self.fds[part], base, None, array.array("I", offs), array.array("I", ids),
                                          flags, array.array("H", ends), [tuple(b) for b in blocks])
        size = sum(os.path.getsize(os.path.join(d, p)) for p in parts)
        self.say("cache: built %s in %.1fs (%.2f GB of scope JSON)" % (d, time.time() - t0, size / 1e9))

    def _build_parallel(self, d):
        """Forked workers (the register is inherited through fork), one per core: each renders a share of the
        components and of the RTOs' scope rows, writing its scope part file and a marshal of everything else."""
        ncpu = max(1, min(4, os.cpu_count() or 1))
        orgs = sorted(self.r.organisations)
        comps = sorted(self.r.components)
        parts = ["scope.part%d" % i for i in range(ncpu)]
        pids = []
        t0 = time.time()
        for w in range(ncpu):
            pid = os.fork()
            if pid == 0:
                status = 1
                try:
                    pt = self.r.package_titles
                    comp = {code: render_component(self.r.components[code], pt) for code in comps[w::ncpu]}
                    if w == 0:
                        self.say("cache: components rendered (%.0fs)" % (time.time() - t0))
                    index = {}
                    off = 0
                    with open(os.path.join(d, parts[w]), "wb", buffering=8 << 20) as f:
                        for j, code in enumerate(orgs[w::ncpu]):
                            blob, offs, ids, flags, ends, blocks = render_scope(
                                self.r.scope_rows(code), self.titles_json, self.code_ids.__getitem__)
                            f.write(blob)
                            index[code] = (w, off, offs.tobytes(), ids.tobytes(), flags, ends.tobytes(), blocks)
                            off += len(blob)
                            if w == 0 and j % 1000 == 999:
                                self.say("cache: scope of %d/%d RTOs rendered (%.0fs)"
                                         % ((j + 1) * ncpu, len(orgs), time.time() - t0))
                    with open(os.path.join(d, parts[w] + ".marshal"), "wb") as f:
                        marshal.dump({"comp": comp, "scope": index}, f)
                    status = 0
                finally:
                    os._exit(status)
            pids.append(pid)
        for pid in pids:
            _, st = os.waitpid(pid, 0)
            if st != 0:
                raise RuntimeError("render worker failed")
        comp, index = {}, {}
        for p in parts:
            with open(os.path.join(d, p + ".marshal"), "rb") as f:
                m = marshal.load(f)
            comp.update(m["comp"])
            index.update(m["scope"])
            os.unlink(os.path.join(d, p + ".marshal"))
        return parts, index, comp

    # -------------------------------------------------------------------------------------------- changes

    def _on_change(self, kind, code):
        with self.lock:
            if kind == "component":
                c = self.r.components.get(code)
                if c is None:
                    self.comp.pop(code, None)
                    self.usage[code] = usage_bytes(None)
                else:
                    self._note_component(code, c)
                    self.code_id(code)
                    self.comp[code] = render_component(c, self.r.package_titles)
            elif kind == "organisation":
                o = self.r.organisations.get(code)
                if o is None:
                    self.orgs.pop(code, None)
                    self.scope.pop(code, None)
                else:
                    self.orgs[code] = render_org(o)
                    self.scope[code] = self._scope_entry(code)
            self._cache.clear()
            self._by_training_code = None

    # -------------------------------------------------------------------------------------------- searches

    def _cached(self, key, compute):
        with self.lock:
            hit = self._cache.get(key)
            if hit is not None:
                self._cache.move_to_end(key)
                return hit
        value = compute()
        with self.lock:
            self._cache[key] = value
            while len(self._cache) > 64:
                self._cache.popitem(last=False)
        return value

    def _records(self):
        if self._records_gen != self.r.generation:
            with self.lock:
                gen = self.r.generation
                by_type = collections.defaultdict(list)
                for code in sorted(self.r.components):
                    rec = tc_record(self.r.components[code])
                    by_type[rec[1]].append(rec)
                self._tc_by_type = dict(by_type)
                by_pkg = collections.defaultdict(list)
                for t, recs in by_type.items():
                    for rec in recs:
                        by_pkg[(t, rec[2])].append(rec)
                self._by_type_pkg = dict(by_pkg)
                self._org_records = [org_record(self.r.organisations[c]) for c in sorted(self.r.organisations)]
                self._records_gen = gen
        return self._tc_by_type, self._org_records

    @staticmethod
    def _order(matches, orderby, text):
        """matches: [(score, record)] -> [(score, code)], in the requested order (default: relevance when
        searchText is given, then code)."""
        keys = orderby or ([("score", True)] if text else [])
        keys = keys + [(0, False)]
        for idx, desc in reversed(keys):
            if idx == "score":
                matches.sort(key=lambda m: m[0], reverse=desc)
            else:
                matches.sort(key=lambda m: (m[1][idx] is None, m[1][idx] if m[1][idx] is not None else ""),
                             reverse=desc)
        return [(s, rec[0]) for s, rec in matches]

    def _candidates(self, by_type, filt):
        """The records a filter can match. A crawl filters by type and partitions by training package (the offset
        cap), so "Type/Id eq N" and "TrainingPackage/Code eq 'X'" conjuncts pick their records from an index
        instead of scanning 85,000; any "or"/"not" could widen the result, so then everything is scanned."""
        if re.search(r"\b(or|not)\b", filt, re.I):
            return [r for v in by_type.values() for r in v]
        types = [int(m) for m in re.findall(r"\btype/id\s+eq\s+(\d+)", filt, re.I)]
        pkgs = re.findall(r"\btrainingpackage/code\s+eq\s+'([^']*)'", filt, re.I)
        pool = by_type.get(types[0], []) if types else None
        if pkgs:
            by_pkg = self._by_type_pkg
            if pool is None:
                return [r for t in by_type for r in by_pkg.get((t, pkgs[0]), ())]
            return by_pkg.get((types[0], pkgs[0]), [])
        return pool if pool is not None else [r for v in by_type.values() for r in v]

    def search_training(self, text, filt, orderby):
        def compute():
            by_type, _ = self._records()
            pred = ODataFilter(filt, TC_FIELDS).pred
            order = parse_orderby(orderby, TC_FIELDS)
            cands = self._candidates(by_type, filt or "")
            out = []
            for rec in cands:
                if pred(rec):
                    s = text_score(text, rec[0], rec[5])
                    if s is not None:
                        out.append((s, rec))
            return self._order(out, order, text)
        return self._cached(("tc", self.r.generation, text, filt, orderby), compute)

    def _training_code_index(self):
        idx = self._by_training_code
        if idx is None:
            with self.lock:
                idx = collections.defaultdict(list)
                for org in sorted(self.scope):
                    e = self.scope[org]
                    for i in range(e.n):
                        idx[e.ids[i]].append((org, bool(e.flags[i] & 8)))
                self._by_training_code = idx
        return idx

    def search_organisation(self, text, filt, orderby, training_code, include_implicit):
        def compute():
            _, recs = self._records()
            pred = ODataFilter(filt, ORG_FIELDS).pred
            order = parse_orderby(orderby, ORG_FIELDS)
            allowed = None
            if training_code:
                cid = self.code_ids.get(training_code.strip().upper())
                rows = self._training_code_index().get(cid, []) if cid is not None else []
                allowed = {org for org, imp in rows if include_implicit or not imp}
            out = []
            for rec in recs:
                if allowed is not None and rec[0] not in allowed:
                    continue
                if pred(rec):
                    s = text_score(text, rec[0], rec[1])
                    if s is not None:
                        out.append((s, rec))
            return self._order(out, order, text)
        return self._cached(("org", self.r.generation, text, filt, orderby, training_code, include_implicit),
                            compute)

    # -------------------------------------------------------------------------------------------- scope views

    def scope_view(self, code, entry, spec):
        """-> (total, selection): selection is ("range", a, b) when the view is one run of rows in file order, else
        ("rows", [row indices in order]) (computed once per view and cached)."""
        types, mode, preds, unfiltered, key = spec
        sel = [t for t in range(len(SCOPE_TYPES)) if types is None or t in types]
        blocks = [entry.blocks[t] for t in sel if entry.blocks[t][1] > entry.blocks[t][0]]
        if not preds and not unfiltered and len(blocks) <= 1:
            if not blocks:
                return 0, ("range", 0, 0)
            a, b, nimp = blocks[0]
            if mode == "all" or (mode == "explicit" and nimp == 0) or (mode == "implicit" and nimp == b - a):
                return b - a, ("range", a, b)
            if (mode == "explicit" and nimp == b - a) or (mode == "implicit" and nimp == 0):
                return 0, ("range", a, a)

        def compute():
            flags, ends, ids, tbl = entry.flags, entry.ends, entry.ids, self.codes_tbl
            want_imp = {"all": (0, 8), "explicit": (0,), "implicit": (8,)}[mode]
            out = []
            for a, b, _ in blocks:
                for i in range(a, b):
                    f = flags[i]
                    if (f & 8) not in want_imp:
                        continue
                    if unfiltered and (f & 7) == 0 and (f >> 4) & 3 == 0:
                        continue  # quirk: an unfiltered scope omits current (granted) qualifications
                    ok = True
                    for p in preds:
                        if not p(f, ends[i], tbl[ids[i]]):
                            ok = False
                            break
                    if ok:
                        out.append(i)
            if len(blocks) > 1:
                out.sort(key=lambda i: tbl[ids[i]])
            return out
        rows = self._cached(("scope", code, id(entry), key), compute)
        return len(rows), ("rows", rows)


_SIEVE = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_.]*)\s*(!@=\*|!_=\*|==\*|@=\*|_=\*|!@=|!_=|==|!=|>=|<=|@=|_=|>|<)\s*(.*?)\s*$")


def _str_pred(op, values):
    """A Sieve string operator over the row's code."""
    ci = op.endswith("*")
    base = op.rstrip("*")
    vals = [v.lower() for v in values] if ci else list(values)
    neg = base.startswith("!")
    test = {"==": lambda s, v: s == v, "!=": lambda s, v: s != v, "@=": lambda s, v: v in s,
            "_=": lambda s, v: s.startswith(v), "!@=": lambda s, v: v in s, "!_=": lambda s, v: s.startswith(v),
            ">": lambda s, v: s > v, "<": lambda s, v: s < v, ">=": lambda s, v: s >= v,
            "<=": lambda s, v: s <= v}[base]
    if base == "!=":
        return lambda s: all(test((s.lower() if ci else s), v) for v in vals)
    if neg:
        return lambda s: not any(test((s.lower() if ci else s), v) for v in vals)
    return lambda s: any(test((s.lower() if ci else s), v) for v in vals)


class ServerError(Exception):
    """The API's unhandled-exception answer (HTTP 500)."""


def parse_scope_filters(filters, include_implicit, quirks=True, titles=None):
    """Sieve `filters` (terms separated by "," (and ";"), values by "|") -> (types, mode, preds, unfiltered, key).

    componentType==a|b selects blocks; isImplicit==true keeps implicit rows; isImplicit==false is the reference's
    HTTP 500 (ServerError); code (all Sieve operators), status (decision), extent and DateNullSearch==YYYY-MM-DD
    (rows without an end date or ending on/after that day) filter rows; unknown properties are ignored, as Sieve
    does. mode: "all" | "explicit" | "implicit" from includeImplicitItems and isImplicit."""
    types = None
    mode = "all" if include_implicit else "explicit"
    preds = []
    key = []
    for term in re.split(r"[,;]", filters or ""):
        if not term.strip():
            continue
        m = _SIEVE.match(term)
        if not m:
            continue  # Sieve skips terms it cannot parse
        name, op, value = m.group(1).lower(), m.group(2), m.group(3)
        values = [v.strip() for v in value.split("|")]
        key.append((name, op, value))
        if name == "componenttype" and op.rstrip("*") in ("==", "!="):
            sel = {SCOPE_TYPE_BY_REST[v.lower()] for v in values if v.lower() in SCOPE_TYPE_BY_REST}
            if op.rstrip("*") == "!=":
                sel = set(range(len(SCOPE_TYPES))) - sel
            types = sel if types is None else types & sel
        elif name == "isimplicit" and op in ("==", "!="):
            want = {v.lower() == "true" for v in values}
            if op == "!=":
                want = {True, False} - want
            if False in want and quirks:
                raise ServerError("isImplicit==false")
            if want == {True}:
                mode = "implicit" if mode == "all" else "none"
            elif want == {False}:
                mode = "explicit"
        elif name == "code":
            sp = _str_pred(op, values)
            preds.append(lambda f, e, c, sp=sp: sp(c))
        elif name == "title" and titles is not None:
            sp = _str_pred(op, values)
            preds.append(lambda f, e, c, sp=sp: sp(titles.get(c) or ""))
        elif name == "status" and op.rstrip("*") in ("==", "!="):
            dec = {DECISION_IDX[d] for d in DECISIONS if d.lower() in {v.lower() for v in values}}
            if op.rstrip("*") == "!=":
                dec = set(range(4)) - dec
            preds.append(lambda f, e, c, dec=dec: (f >> 4) & 3 in dec)
        elif name == "extent" and op in ("==", "!="):
            ext = {1 if v == "02" else 0 for v in values if v in EXTENTS}
            if op == "!=":
                ext = {0, 1} - ext
            preds.append(lambda f, e, c, ext=ext: (1 if f & 64 else 0) in ext)
        elif name == "datenullsearch" and op == "==":
            try:
                day = day_number(values[0][:10])
            except ValueError:
                raise QueryError("filters", "The value '%s' is not valid for DateNullSearch." % values[0])
            preds.append(lambda f, e, c, day=day: e == 0 or e >= day)
    if mode == "none":
        types = set()
        mode = "all"
    unfiltered = types is None and quirks
    return types, mode, preds, unfiltered, (tuple(key), mode, unfiltered)


# ================================================================================================ the application

PROBLEM_TYPES = {400: "https://tools.ietf.org/html/rfc7231#section-6.5.1",
                 404: "https://tools.ietf.org/html/rfc7231#section-6.5.4",
                 417: "https://tools.ietf.org/html/rfc7231#section-6.5.14",
                 500: "https://tools.ietf.org/html/rfc7231#section-6.6.1"}
REASONS = {200: "OK", 302: "Found", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed",
           417: "Expectation Failed", 429: "Too Many Requests", 500: "Internal Server Error",
           503: "Service Unavailable"}
JSON_CT = ("Content-Type", "application/json; charset=utf-8")
PROBLEM_CT = ("Content-Type", "application/problem+json; charset=utf-8")
HTML_503 = (b"<!DOCTYPE html><html><head><title>Service Unavailable</title></head><body><h1>Service Unavailable"
            b"</h1><p>The service is temporarily unavailable. Please try again later.</p></body></html>")
NUXT_PAGE = (b'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>training.gov.au</title></head>'
             b'<body><div id="__nuxt"></div><script>window.__NUXT__={config:{public:{apiBaseUrl:"/api",'
             b'authentication:{enabled:false}}}}</script><script type="module" src="/_nuxt/entry.js"></script>'
             b"</body></html>")
LOGIN_PAGE = (b"<!DOCTYPE html><html><head><title>Sign in</title></head><body><form method=\"post\">"
              b"<input name=\"username\"/><input name=\"password\" type=\"password\"/></form></body></html>")

FAULT_KINDS = {"http500", "http503", "http429", "http417", "hang", "reset", "truncate", "malformed", "html",
               "redirect", "slow", "drip", "empty"}


# /_fake/config settings (the command-line options of the same names) and their types.
CONFIG_TYPES = {"max_page_size": int, "oversize_status": int, "offset_cap": int, "offset_cap_status": int,
                "rate_limit": int, "rate_window": float, "default_page_size": int, "quirks": bool,
                "metadata_name": str, "totals": str, "page_cap": int, "empty_from": int}
METADATA_NAMES = ("dataExportSynchronisationDateTime", "dataExportSyncDateTime")
TOTALS = ("evidenced", "count", "totalCount", "both", "neither")


class Fault:
    def __init__(self, spec):
        self.op = spec.get("op", "*")
        self.kind = spec["kind"]
        self.count = int(spec.get("count", 1))
        self.skip = int(spec.get("skip", 0))
        self.match = spec.get("match")
        self.spec = spec

    def matches(self, family, target):
        if self.count == 0:
            return False
        if self.op != "*" and self.op != family:
            return False
        return self.match is None or self.match.lower() in target.lower()


class Response:
    __slots__ = ("status", "headers", "parts", "note", "rows")

    def __init__(self, status, headers, parts, note=None, rows=0):
        self.status, self.headers, self.parts, self.note, self.rows = status, headers, parts, note, rows


class App(fakekit.FakeApp):
    def __init__(self, args):
        self.args = args
        self.quiet = args.quiet
        self.config = {"max_page_size": args.max_page_size, "oversize_status": args.oversize_status,
                       "offset_cap": args.offset_cap, "offset_cap_status": args.offset_cap_status,
                       "rate_limit": args.rate_limit, "rate_window": args.rate_window,
                       "default_page_size": args.default_page_size, "quirks": not args.no_quirks,
                       "metadata_name": args.metadata_name, "totals": args.totals, "page_cap": args.page_cap,
                       "empty_from": args.empty_from}
        self.clock = reg.Clock(reg.parse_instant(args.now), args.frozen_clock)
        t0 = time.time()
        self.register = reg.Register(args.scale, args.seed, progress=self.say)
        self.store = Store(self.register, args.cache_dir, args.rebuild_cache, self.say)
        self.lock = self.store.lock
        r = self.register
        # The data export sync time starts at the register's newest change (deterministic for scale and seed).
        self.sync_ticks = max([c["_UpdatedDate"] for c in r.components.values()]
                              + [o["_UpdatedDate"] for o in r.organisations.values()]
                              + [d["_ticks"] for d in r.deleted_components + r.deleted_organisations])
        self.say("fake_tga_rest: %s scale ready in %.1fs" % (args.scale, time.time() - t0))
        self.rate_lock = threading.Lock()
        self.recent = collections.deque()
        self.trace = 0
        self.init_state()

    def new_stats(self):
        return {"requests": 0, "by_op": collections.Counter(), "by_endpoint": collections.Counter(),
                "by_status": collections.Counter(), "bytes_sent": 0, "bytes_by_op": collections.Counter(),
                "faults_injected": collections.Counter(), "quirks": collections.Counter(), "scope_rows_served": 0,
                "control": 0}

    def count(self, family, endpoint, status, nbytes, injected=None, note=None, rows=0):
        with self.stats_lock:
            s = self.stats
            s["requests"] += 1
            s["by_op"][family] += 1
            s["by_endpoint"][endpoint] += 1
            s["by_status"][str(status)] += 1
            s["bytes_sent"] += nbytes
            s["bytes_by_op"][family] += nbytes
            s["scope_rows_served"] += rows
            if injected:
                s["faults_injected"][injected] += 1
            if note:
                s["quirks"][note] += 1

    def take_fault(self, family, target):
        with self.fault_lock:
            for f in self.faults:
                if f.matches(family, target):
                    if f.skip > 0:
                        f.skip -= 1
                        continue
                    if f.count > 0:
                        f.count -= 1
                    return f
        return None

    def throttled(self):
        """Seconds to wait (Retry-After) when the request is over --rate-limit per --rate-window, else 0. Throttled
        requests do not count."""
        limit = self.config["rate_limit"]
        if not limit:
            return 0
        window = float(self.config["rate_window"])
        now = time.monotonic()
        with self.rate_lock:
            q = self.recent
            while q and q[0] <= now - window:
                q.popleft()
            if len(q) >= limit:
                return max(1, int(q[0] + window - now + 0.999))
            q.append(now)
        return 0

    # -------------------------------------------------------------------------------------------- responses

    def problem(self, status, title, detail=None, errors=None, note=None):
        with self.stats_lock:
            self.trace += 1
            t = self.trace
        body = {"type": PROBLEM_TYPES.get(status), "title": title, "status": status}
        if detail:
            body["detail"] = detail
        if errors:
            body["errors"] = errors
        h = hashlib.sha256(b"%d" % t).hexdigest()
        body["traceId"] = "00-%s-%s-00" % (h[:32], h[32:48])
        return Response(status, [PROBLEM_CT], [jb(body)], note)

    def not_found(self):
        return self.problem(404, "Not Found")

    @staticmethod
    def json(obj, status=200):
        return Response(status, [JSON_CT], [jb(obj)])

    # -------------------------------------------------------------------------------------------- routing

    @staticmethod
    def classify(path):
        """-> (family, endpoint name, args). Families are the fault/stat ops of the README."""
        segs = [urllib.parse.unquote(s) for s in path.split("/") if s]
        low = [s.lower() for s in segs]
        n = len(low)
        if n < 2 or low[0] != "api":
            return "other", "other", ()
        if low[1] == "metadata" and n == 2:
            return "metadata", "metadata", ()
        if low[1] == "search" and n == 3 and low[2] in ("training", "organisation"):
            return "search_" + low[2], "search/" + low[2], ()
        if low[1] == "training" and n >= 3:
            code = segs[2].upper()
            if n == 3:
                return "training", "training", (code,)
            if n in (5, 6) and low[3] == "releases":
                if n == 5:
                    return "training", "training/release", (code, segs[4])
                if low[5] == "unitgrid":
                    return "unitgrid", "training/unitgrid", (code, segs[4])
        if low[1] == "organisation" and n >= 3:
            code = segs[2]
            if n == 3:
                return "organisation", "organisation", (code,)
            if n == 4 and low[3] == "scope":
                return "scope", "organisation/scope", (code,)
            if n == 4 and low[3] in ORG_SUBS:
                return "organisation", "organisation/" + low[3], (code, low[3])
            if n == 5 and low[3] == "deliverynotificationhistory":
                return "organisation", "organisation/deliverynotificationhistory", (code, "dnh", segs[4])
        return "other", "other", ()

    def handle(self, method, path, query, family, endpoint, args):
        if family == "other":
            return Response(404, [("Content-Type", "text/plain")], [b""])
        if method not in ("GET", "HEAD"):
            return Response(405, [("Allow", "GET")], [b""])
        params = {}
        for k, v in urllib.parse.parse_qsl(query, keep_blank_values=True):
            params.setdefault(k.lower(), v)
        ver = params.get("api-version")
        if ver not in (None, "", "1.0", "1"):
            return Response(400, [JSON_CT], [jb({"error": {
                "code": "UnsupportedApiVersion",
                "message": "The HTTP resource that matches the request URI '%s%s' does not support the API version "
                           "'%s'." % (PUBLIC_BASE, path, ver)}})])
        try:
            return getattr(self, "ep_" + endpoint.replace("/", "_"))(params, *args)
        except QueryError as e:
            return self.problem(400, "One or more validation errors occurred.", errors={e.param: [str(e)]})
        except ServerError:
            # What the reference reports for some filter combinations: an unhandled exception, HTTP 500.
            return self.problem(500, "An error occurred while processing your request.", note="filter_500")

    # -------------------------------------------------------------------------------------------- parameters

    @staticmethod
    def p_int(params, name, default):
        v = params.get(name.lower())
        if v is None or v == "":
            return default
        try:
            return int(v)
        except ValueError:
            raise QueryError(name, "The value '%s' is not valid for %s." % (v, name))

    @staticmethod
    def p_bool(params, name, default=False):
        v = params.get(name.lower())
        if v is None or v == "":
            return default
        if v.lower() in ("true", "false"):
            return v.lower() == "true"
        raise QueryError(name, "The value '%s' is not valid for %s." % (v, name))

    def paging(self, params):
        """(offset, pageSize) or a quirk Response: 417 above the maximum page size, 400/500 at the offset cap."""
        cfg = self.config
        size = self.p_int(params, "pageSize", cfg["default_page_size"])
        offset = self.p_int(params, "offset", 0)
        if size < 1:
            raise QueryError("pageSize", "The field PageSize must be between 1 and %d." % cfg["max_page_size"])
        if offset < 0:
            raise QueryError("offset", "The field Offset must be 0 or greater.")
        if size > cfg["max_page_size"]:
            st = int(cfg["oversize_status"])
            return self.problem(st, REASONS.get(st, "Error"),
                                "The page size %d exceeds the maximum of %d." % (size, cfg["max_page_size"]),
                                note="oversize_page")
        if offset >= cfg["offset_cap"]:
            st = int(cfg["offset_cap_status"])
            return self.problem(st, REASONS.get(st, "Error") if st != 400 else "Bad Request",
                                "The offset %d is beyond the maximum of %d." % (offset, cfg["offset_cap"] - 1),
                                note="offset_cap")
        return offset, size

    # -------------------------------------------------------------------------------------------- endpoints

    def ep_metadata(self, params):
        # The evidenced shape (audit): dataExportSynchronisationDateTime, informationalVersion, version;
        # metadata_name = dataExportSyncDateTime is the reference's name.
        return self.json({self.config["metadata_name"]: format_instant(self.sync_ticks),
                          "informationalVersion": NTR_VERSION + "+Branch.master", "version": NTR_VERSION})

    def window(self, offset, size):
        """The rows a page really holds: at most page_cap (a server that clamps pageSize quietly), none from
        offset empty_from on (an empty 200 page before the total)."""
        cfg = self.config
        if cfg["empty_from"] >= 0 and offset >= cfg["empty_from"]:
            return 0
        return min(size, cfg["page_cap"]) if cfg["page_cap"] > 0 else size

    def totals(self, kind, n, total):
        """The head of a list page: where the total goes (totals) and what "count" means.  Evidenced: a search
        page has count = its rows and totalCount = all matches (the audit's page of 5, sourcerer reads both); a
        scope page has count = all rows next to value (unicorn-cms reads data.count as the total)."""
        mode = self.config["totals"]
        t = b"null" if total is None else b"%d" % total
        if mode == "evidenced":
            return b'"count":%d,"totalCount":%s,' % (n, t) if kind == "search" else b'"count":%s,' % t
        return {"count": b'"count":%s,' % t, "totalCount": b'"totalCount":%s,' % t,
                "both": b'"count":%s,"totalCount":%s,' % (t, t), "neither": b""}[mode]

    def _search_page(self, params, search, lookup):
        """Paging is checked first, so the quirk answers (417, offset cap) cost nothing."""
        pg = self.paging(params)
        if isinstance(pg, Response):
            return pg
        offset, size = pg
        matches = search()
        page = matches[offset:offset + self.window(offset, size)]
        items = []
        for score, code in page:
            item = lookup(code)
            if item is not None:
                items.append(b'{"searchScore":%s,%s' % (repr(score).encode(), item[1:]))
        total = len(matches) if self.p_bool(params, "includeTotalCount") else None
        return Response(200, [JSON_CT], [b'{%s"data":[' % self.totals("search", len(items), total),
                                         b",".join(items), b"]}"])

    def ep_search_training(self, params):
        text = params.get("searchtext", "").strip()
        comp = self.store.comp
        return self._search_page(params, lambda: self.store.search_training(text, params.get("filter", ""),
                                                                             params.get("orderby", "")),
                                 lambda code: comp[code][0] if code in comp else None)

    def ep_search_organisation(self, params):
        text = params.get("searchtext", "").strip()
        include = self.p_bool(params, "includeImplicit")
        orgs = self.store.orgs
        return self._search_page(params, lambda: self.store.search_organisation(
            text, params.get("filter", ""), params.get("orderby", ""), params.get("trainingcode", ""), include),
            lambda code: orgs[code][0] if code in orgs else None)

    def ep_training(self, params, code):
        c = self.store.comp.get(code)
        if c is None:
            return self.not_found()
        return Response(200, [JSON_CT], [c[1]])

    def _release(self, code, rel):
        c = self.store.comp.get(code)
        if c is None:
            return None
        number = rel if rel in c[2] else c[3].get(rel.lower())
        return c[2].get(number) if number is not None else None

    def ep_training_release(self, params, code, rel):
        r = self._release(code, rel)
        if r is None:
            return self.not_found()
        return Response(200, [JSON_CT], [r[0]])

    def ep_training_unitgrid(self, params, code, rel):
        r = self._release(code, rel)
        if r is None:
            return self.not_found()
        usage = self.store.usage
        deleted = usage_bytes(None)
        return Response(200, [JSON_CT], [b"[" + b",".join(h + usage.get(u, deleted) + t for h, u, t in r[1]) + b"]"])

    def ep_organisation(self, params, code, sub=None, training_code=None):
        o = self.store.orgs.get(code)
        if o is None:
            return self.not_found()
        if sub is None:
            full = params.get("include", "").lower() in ("all", "*")
            return Response(200, [JSON_CT], [o[2] if full else o[1]])
        if sub == "dnh":
            # The register has no delivery notifications (the SOAP DeliveryNotifications are always empty).
            return self.json([])
        if sub == "scopesummary":
            e = self.store.scope.get(code)
            out = []
            for t, (a, b, nimp) in enumerate(e.blocks if e else ()):
                if b > a:
                    rest = SCOPE_TYPES[t]
                    out.append({"componentType": REST_TYPE[rest], "componentTypeLabel": TYPES[rest][1],
                                "explicitCount": b - a - nimp, "implicitCount": nimp, "totalCount": b - a})
            return self.json(out)
        return Response(200, [JSON_CT], [o[3][sub]])

    ep_organisation_addresses = ep_organisation_contacts = ep_organisation_registration = ep_organisation
    ep_organisation_tradingname = ep_organisation_restrictions = ep_organisation_regulatorydecision = ep_organisation
    ep_organisation_scopesummary = ep_organisation_legalname = ep_organisation_webaddress = ep_organisation
    ep_organisation_registrationmanager = ep_organisation_classification = ep_organisation
    ep_organisation_deliverynotificationhistory = ep_organisation

    def ep_organisation_scope(self, params, code):
        entry = self.store.scope.get(code)
        if entry is None or code not in self.store.orgs:
            return self.not_found()
        include = self.p_bool(params, "includeImplicitItems")
        spec = parse_scope_filters(params.get("filters", ""), include, self.config["quirks"], self.store.titles)
        pg = self.paging(params)
        if isinstance(pg, Response):
            return pg
        offset, size = pg
        size = self.window(offset, size)
        sorts = [s.strip().lower() for s in params.get("sorts", "").split(",") if s.strip()]
        desc = bool(sorts) and sorts[0] == "-code"
        total, sel = self.store.scope_view(code, entry, spec)
        if sel[0] == "range" and not desc:
            a = sel[1] + offset
            b = min(sel[2], a + size)
            body = [entry.part(a, b)] if b > a and size > 0 else []
            n = max(0, b - a)
        else:
            rows = sel[1] if sel[0] == "rows" else range(sel[1], sel[2])
            if desc:
                rows = rows[::-1]
            page = rows[offset:offset + size] if size > 0 else []
            n = len(page)
            chunks = []
            i = 0
            while i < n:
                j = i + 1
                while j < n and page[j] == page[j - 1] + 1:
                    j += 1
                chunks.append(entry.read(page[i], page[j - 1] + 1))
                i = j
            body = [b"".join(chunks)[:-1]] if chunks else []
        if size == 0:
            n = 0
        head = b'{%s"value":[' % self.totals("scope", n, total)
        return Response(200, [JSON_CT], [head] + body + [b"]}"], "unfiltered_scope" if spec[3] else None, n)

    # -------------------------------------------------------------------------------------------- control plane

    def control(self, method, path, query, body):
        try:
            spec = json.loads(body.decode("utf-8") or "{}") if method == "POST" else {}
        except ValueError as e:
            return self.json({"error": "bad JSON: %s" % e}, 400)
        common = fakekit.common_control(self, method, path)
        if common is not None:
            return self.json(common[1], common[0])
        if path == "/_fake/fault" and method == "GET":
            with self.fault_lock:
                return self.json([dict(f.spec, count=f.count, skip=f.skip) for f in self.faults if f.count != 0])
        if path == "/_fake/fault" and method == "POST":
            kind = spec.get("kind")
            if kind not in FAULT_KINDS:
                return self.json({"error": "unknown fault kind %r" % kind, "kinds": sorted(FAULT_KINDS)}, 400)
            op = spec.get("op", "*")
            if op != "*" and op not in FAMILIES:
                return self.json({"error": "unknown op %r" % op, "ops": list(FAMILIES) + ["*"]}, 400)
            with self.fault_lock:
                self.faults.append(Fault(spec))
                return self.json({"ok": True, "armed": len(self.faults)})
        if path == "/_fake/clock":
            if method == "POST":
                try:
                    self.clock.set(spec)
                except (ValueError, KeyError) as e:
                    return self.json({"error": str(e)}, 400)
            now = self.clock.now()
            return self.json({"now": format_instant(now), "frozen": self.clock.frozen})
        if path == "/_fake/config":
            if method == "POST":
                unknown = set(spec) - set(self.config)
                if unknown:
                    return self.json({"error": "unknown settings %s" % sorted(unknown),
                                      "settings": sorted(self.config)}, 400)
                try:
                    for k, v in spec.items():
                        v = CONFIG_TYPES[k](v)
                        if (k == "metadata_name" and v not in METADATA_NAMES) or (k == "totals" and v not in TOTALS):
                            raise ValueError("%s: one of %s" % (k, METADATA_NAMES if k == "metadata_name" else TOTALS))
                        self.config[k] = v
                except (TypeError, ValueError) as e:
                    return self.json({"error": str(e)}, 400)
            return self.json(self.config)
        if path == "/_fake/mutate" and method == "POST":
            now = self.clock.now()
            if spec.get("action") == "touch_metadata":
                self.sync_ticks = now
                return self.json({"now": format_instant(now), "generation": self.register.generation, "changes": {},
                                  "dataExportSyncDateTime": format_instant(now)})
            try:
                with self.lock:
                    summary = self.register.mutate(spec, now)
            except (ValueError, KeyError, TypeError) as e:
                return self.json({"error": str(e)}, 400)
            if summary["changes"]:
                # The change is visible at once, as if an export sync had run at the mutation's instant.
                self.sync_ticks = now
            summary["dataExportSyncDateTime"] = format_instant(self.sync_ticks)
            return self.json(summary)
        if path == "/_fake/dump" and method == "GET":
            params = urllib.parse.parse_qs(query)
            scopes = params.get("scopes", ["1"])[0].lower() not in ("0", "false", "no")
            return ("stream", scopes)
        if path.startswith("/_fake/login"):
            return Response(200, [("Content-Type", "text/html; charset=utf-8")], [LOGIN_PAGE])
        return self.json({"error": "no such control endpoint %s %s" % (method, path)}, 404)

    @staticmethod
    def emptied(res):
        """Fault "empty": a 200 list page with its totals but no rows (data / value emptied)."""
        if res.status != 200:
            return res
        try:
            d = json.loads(b"".join(res.parts))
        except ValueError:
            return res
        if isinstance(d, dict):
            for key in ("data", "value"):
                if key in d:
                    d[key] = []
            if "count" in d and "totalCount" in d and d.get("count") != d.get("totalCount"):
                d["count"] = 0  # evidenced search shape: count is the page's rows
        return Response(200, res.headers, [jb(d)], "empty_page")

    @staticmethod
    def fault_response(f, target):
        k = f.kind
        if k == "http500":
            return Response(500, [PROBLEM_CT], [jb({"type": PROBLEM_TYPES[500], "title": "An error occurred while "
                                                    "processing your request.", "status": 500})])
        if k == "http503":
            return Response(503, [("Content-Type", "text/html")] + (
                [("Retry-After", str(int(f.spec["retry_after"])))] if "retry_after" in f.spec else []), [HTML_503])
        if k == "http429":
            ra = int(f.spec.get("retry_after", 5))
            return Response(429, [JSON_CT, ("Retry-After", str(ra))], [jb({
                "statusCode": 429, "message": "Rate limit is exceeded. Try again in %d seconds." % ra})])
        if k == "http417":
            return Response(417, [PROBLEM_CT], [jb({"type": PROBLEM_TYPES[417], "title": "Expectation Failed",
                                                    "status": 417})])
        if k == "html":
            return Response(200, [("Content-Type", "text/html; charset=utf-8")], [NUXT_PAGE])
        loc = "/_fake/login?returnUrl=" + urllib.parse.quote(target, safe="")
        return Response(302, [("Content-Type", "text/html; charset=utf-8"), ("Location", loc)],
                        [b'<html><head><title>Object moved</title></head><body><h2>Object moved to <a href="%s">here'
                         b"</a>.</h2></body></html>" % loc.encode()])


# ================================================================================================ HTTP layer

class Handler(http_wire.Handler):
    """The REST API over the shared HTTP layer (http_wire.py): JSON bodies, api-supported-versions and a Date from
    the fake clock on every non-control response, and no body for HEAD."""

    name = "fake_tga_rest"
    reasons = REASONS
    malformed_suffix = b'",,{"value":[}'
    drip_interval = 0.2

    def serve(self, method, target, headers, body, keep, t0):
        app = self.server.app
        path, _, query = target.partition("?")
        if path.startswith("/_fake/"):
            res = app.control(method, path, query, body)
            if isinstance(res, tuple):
                return self.stream_dump(app.register, app.lock, res[1], keep, t0)
            return self.send(res, keep, None, "control", "control", t0, method, target, control=True)
        family, endpoint, args = app.classify(path)
        fault = app.take_fault(family, target) if family != "other" else None
        if fault is not None and fault.kind in ("http500", "http503", "http429", "http417", "html", "redirect"):
            res = app.fault_response(fault, target)
        elif fault is not None and fault.kind == "hang":
            app.count(family, endpoint, 0, 0, "hang")
            self.log(method, target, family, "hang", 0, t0)
            app.stop.wait(float(fault.spec.get("hold", 3600)))
            return False
        else:
            retry = app.throttled() if family != "other" else 0
            if retry:
                res = Response(429, [JSON_CT, ("Retry-After", str(retry))], [jb({
                    "statusCode": 429, "message": "Rate limit is exceeded. Try again in %d seconds." % retry})],
                    "rate_limited")
            else:
                if fault is not None and fault.kind == "slow":
                    time.sleep(float(fault.spec.get("delay", 5)))
                res = app.handle(method, path, query, family, endpoint, args)
                if fault is not None and fault.kind == "empty":
                    res = app.emptied(res)
        return self.send(res, keep, fault, family, endpoint, t0, method, target)

    def extra_headers(self, status, control):
        if control:
            return []
        return ["api-supported-versions: 1.0",
                "Date: %s" % time.strftime("%a, %d %b %Y %H:%M:%S GMT",
                                           time.gmtime(self.server.app.clock.now() // TICKS_PER_SECOND))]

    def drip_pace(self, fault):
        # Unlike the SOAP fake's, a drip here may send more than one byte per write ("bytes").
        return float(fault.spec.get("interval", self.drip_interval)), max(1, int(fault.spec.get("bytes", 1)))

    def send(self, res, keep, fault, family, endpoint, t0, method, target, control=False):
        app = self.server.app
        kind = fault.kind if fault is not None else None
        sent, keep = self.respond(res.status, res.headers, res.parts, keep, fault, control,
                                  lambda n: app.count(family, endpoint, res.status, n, kind, res.note, res.rows),
                                  lambda delta: app.count_bytes(family, delta), head_only=method == "HEAD")
        self.log(method, target, family, res.status, sent, t0, kind or res.note)
        return keep


class Server(http_wire.Server):
    handler = Handler


def main(argv=None):
    ap = argparse.ArgumentParser(description="Fake training.gov.au public REST API (NTR Web API)")
    fakekit.add_listen_args(ap)
    fakekit.add_register_args(ap, reg)
    ap.add_argument("--max-page-size", type=int, default=1000,
                    help="largest pageSize of searches and scope; above it the quirk status (default 1000)")
    ap.add_argument("--oversize-status", type=int, choices=(417, 500), default=417)
    ap.add_argument("--offset-cap", type=int, default=50_000, help="offset >= cap is refused (default 50000)")
    ap.add_argument("--offset-cap-status", type=int, choices=(400, 500), default=400)
    ap.add_argument("--rate-limit", type=int, default=0, help="requests per --rate-window before 429 (0 = off)")
    ap.add_argument("--rate-window", type=float, default=1.0, help="seconds (default 1)")
    ap.add_argument("--default-page-size", type=int, default=20)
    ap.add_argument("--metadata-name", choices=METADATA_NAMES, default=METADATA_NAMES[0],
                    help="the sync time's key in /api/metadata (default: the evidenced one)")
    ap.add_argument("--totals", choices=TOTALS, default="evidenced",
                    help="where list pages put their totals (default: evidenced: search count+totalCount, "
                         "scope count)")
    ap.add_argument("--page-cap", type=int, default=0, help="at most this many rows a page, whatever pageSize "
                    "asks (0 = off)")
    ap.add_argument("--empty-from", type=int, default=-1, help="pages from this offset on are empty 200s with "
                    "their totals (-1 = off)")
    ap.add_argument("--no-quirks", action="store_true",
                    help="no 500 on isImplicit==false, no omission in unfiltered scope (for debugging a client)")
    fakekit.add_clock_cache_args(ap, reg, "fake-tga-rest-cache")
    args = ap.parse_args(argv)

    app = App(args)
    server, port = fakekit.listen(Server, app, args)
    app.say("fake_tga_rest: listening on 127.0.0.1:%d (scale %s, seed %d)" % (port, args.scale, args.seed))
    fakekit.serve_then_exit(app, server)


if __name__ == "__main__":
    sys.exit(main())
