#!/usr/bin/python3
"""Fake training.gov.au SOAP web services (TrainingComponentService and OrganisationService, basicHttp SOAP 1.1).

Built from ../../../shared/reference/tga-web-services.md and the real V1 contract in
../../../shared/samples/tga/ishgroup-oncourse-2011/production/*.xsd|*.wsdl, plus the later derived types that the
live service returns (from the CXF stubs regenerated from the live WSDL in 2013, reference source [S2]). It serves
the synthetic register of tga_register.py. Conventions (CLI, /_fake/ control plane, faults, clock, dump) are those
of README.md in this folder.

Usage:
  /usr/bin/python3 tests/fakes/fake_tga_soap.py --port 0 --port-file FILE [--scale small|full] [--seed N]
      [--version 13] [--username WebService.Read] [--password-file FILE] [--max-page-size 1000]
      [--now 2026-01-05T00:00:00Z] [--frozen-clock] [--cache-dir DIR] [--rebuild-cache] [--quiet]

Endpoints (prefix /Deewr.Tga.Webservices, matched case-insensitively like IIS; {V} is "V13" etc., "" for --version 1):
  POST {prefix}/TrainingComponentService{V}.svc/Training      SOAP 1.1, SOAPAction
       http://training.gov.au/services/{n}/ITrainingComponentService/{Op} (quotes around it are accepted)
       ops: GetServerTime, SearchByModifiedDate, GetDetails, SearchDeletedByDeletedDate, Search
  POST {prefix}/OrganisationService{V}.svc/Organisation       ops: GetServerTime, SearchByModifiedDate, GetDetails,
       SearchDeletedByDeletedDate
  GET  {prefix}/{Service}{V}.svc?wsdl | ?singleWsdl | ?xsd=xsdN   the contract for this version (namespace and
       addresses adjusted, the later derived types and IncludeLegacyData added)
  .../Training12 and .../Organisation12 (the SOAP 1.2 wsHttp ports) answer 415 to text/xml, as WCF does.

What it does like WCF/IIS (see the README section for the list): WS-Security UsernameToken (PasswordText) on every
request, else HTTP 500 InvalidSecurity; wrong/missing SOAPAction -> ActionNotSupported (ContractFilter mismatch);
SOAP 1.2 content type -> 415; members read in xs:sequence order, so out-of-order, misspelt or wrong-namespace
elements are silently ignored; EmitDefaultValue=false members omitted when null/default (so IsConfidential=false is
never sent), other nillable members sent as i:nil="true"; derived types marked with i:type; DateTimeOffset out as
UTC "Z" plus OffsetMinutes 600/660 (AEST/AEDT) and in with WCF's rules (a DateTime without zone is local time at
OffsetMinutes); a security header with a wsu:Timestamp on every successful response; ValidationFault details.

Faults (POST /_fake/fault {"op": Op|"*"|"wsdl", "service": "Training"|"Organisation" (optional), "kind": K,
"count": N (-1 = until cleared), "rate": P (optional: each matching request gets it with probability P, seeded by
"seed"), "after": N (optional: let N matching requests pass first), ...}): http500, http503, http429 ("retry_after"),
hang, reset, truncate, malformed, html, redirect, slow ("delay"), drip ("interval"), and the protocol's own:
soap_fault ("text", "code": a ValidationFault; "fault": "DeserializationFailed" for WCF's answer to a body it
cannot read), server_fault (HTTP 500 with WCF's a:InternalServiceFault, or
"code": "Server" for a plain s:Server fault), auth (InvalidSecurity), missing_code (the next matching response has
one record without its code element).  An op or service the fake does not know is refused (400), since such a fault
would never fire; GET /_fake/fault lists the armed faults with their remaining "count" and how often each "fired".

Mutations (POST /_fake/mutate): see tga_register.py; e.g. {"action": "update", "kind": "qualification", "code": C},
{"action": "random", "fraction": 0.01, "seed": 2}. The answer lists the codes changed per kind and action.
"""

import argparse
import bisect
import collections
import json
import marshal
import os
import random
import re
import sys
import threading
import time
import urllib.parse
import xml.etree.ElementTree as ET

HERE = os.path.dirname(os.path.abspath(__file__))
import fakekit
import http_wire
import tga_register as reg
from tga_register import format_instant, sydney_offset_minutes, TICKS_PER_SECOND

SAMPLES = os.path.normpath(os.path.join(HERE, "..", "..", "..", "shared", "samples", "tga", "ishgroup-oncourse-2011",
                                        "production"))

NS_SOAP11 = "http://schemas.xmlsoap.org/soap/envelope/"
NS_SOAP12 = "http://www.w3.org/2003/05/soap-envelope"
NS_WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
NS_WSU = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
PASSWORD_TEXT = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0#PasswordText"
NS_SYS = "http://schemas.datacontract.org/2004/07/System"
NS_ARR = "http://schemas.microsoft.com/2003/10/Serialization/Arrays"
NS_I = "http://www.w3.org/2001/XMLSchema-instance"
NS_DISPATCHER = "http://schemas.microsoft.com/net/2005/12/windowscommunicationfoundation/dispatcher"
NS_ADDRESSING_NONE = "http://schemas.microsoft.com/ws/2005/05/addressing/none"

SERVICES = {
    # path port -> (service name, interface, ops)
    "training": ("TrainingComponentService", "ITrainingComponentService",
                 ("GetDetails", "GetServerTime", "GetValidationCodes", "Search", "SearchByModifiedDate",
                  "SearchDeletedByDeletedDate", "Add", "Update", "Delete", "TransferDataManager", "GetLookup",
                  "GetAddressStates", "GetContactRoles", "GetDataManagers", "GetRecognitionManagers",
                  "GetClassificationSchemes", "GetClassificationPurposes")),
    "organisation": ("OrganisationService", "IOrganisationService",
                     ("GetDetails", "SearchByScope", "Search", "SearchByModifiedDate", "SearchDeletedByDeletedDate",
                      "Update", "Add", "AddOrganisation", "TransferDataManager", "Delete", "GetLookup",
                      "GetAddressStates", "GetContactRoles", "GetDataManagers", "GetRegistrationManagers",
                      "GetClassificationSchemes", "GetClassificationPurposes", "GetServerTime",
                      "GetValidationCodes", "CreateCode")),
}
PORT_NAMES = {"training": "Training", "organisation": "Organisation"}
IMPLEMENTED = {"training": {"GetDetails", "GetServerTime", "Search", "SearchByModifiedDate",
                            "SearchDeletedByDeletedDate"},
               "organisation": {"GetDetails", "GetServerTime", "SearchByModifiedDate", "SearchDeletedByDeletedDate"}}

# Show* flags as bits, in XSD order.
TC_FLAGS = ["ShowClassifications", "ShowCompletionMapping", "ShowComponents", "ShowContacts", "ShowCurrencyPeriods",
            "ShowDataManagers", "ShowFiles", "ShowMappingInformation", "ShowRecognitionManagers", "ShowReleases",
            "ShowUnitGrid", "ShowUsageRecommendation"]
TC_FLAGS2 = TC_FLAGS + ["ShowCompanionVolumeLinks"]  # TrainingComponentInformationRequested2 (by i:type only)
TCB = {name: 1 << i for i, name in enumerate(TC_FLAGS2)}
ORG_FLAGS = ["ShowCodes", "ShowContacts", "ShowDataManagers", "ShowExplicitScope", "ShowImplicitScope",
             "ShowLocations", "ShowRegistrationManagers", "ShowRegistrationPeriods", "ShowResponsibleLegalPersons",
             "ShowRestrictions", "ShowRtoClassifications", "ShowRtoDeliveryNotification", "ShowTradingNames",
             "ShowUrls"]
OB = {name: 1 << i for i, name in enumerate(ORG_FLAGS)}

TYPE_FILTER = ["IncludeAccreditedCourse", "IncludeAccreditedCourseModule", "IncludeQualification", "IncludeSkillSet",
               "IncludeTrainingPackage", "IncludeUnit", "IncludeUnitContextualisation"]
FILTER_TO_TYPE = {"IncludeAccreditedCourse": "AccreditedCourse", "IncludeQualification": "Qualification",
                  "IncludeSkillSet": "SkillSet", "IncludeTrainingPackage": "TrainingPackage", "IncludeUnit": "Unit"}

# The rendering format; part of the disk cache key so a change never serves stale bytes.
FORMAT = "tga-soap-render-6"


# ================================================================================================ XML rendering

def esc(s):
    s = str(s)
    if "&" in s or "<" in s or ">" in s:
        s = s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return s


def el(name, value):
    """EmitDefaultValue=false member: omitted when null."""
    if value is None:
        return ""
    return "<%s>%s</%s>" % (name, esc(value), name)


def nil(name, value):
    """Nillable member without EmitDefaultValue=false: i:nil when null."""
    if value is None:
        return '<%s i:nil="true"/>' % name
    return "<%s>%s</%s>" % (name, esc(value), name)


def b(value):
    return "true" if value else "false"


def dto(name, ticks):
    return ('<%s xmlns:a="%s"><a:DateTime>%s</a:DateTime><a:OffsetMinutes>%d</a:OffsetMinutes></%s>'
            % (name, NS_SYS, format_instant(ticks), sydney_offset_minutes(ticks), name))


def adto(d):
    """AbstractDto members (ActionOnEntity is None, the default, so omitted): EndDate, StartDate."""
    return el("EndDate", d.get("EndDate")) + el("StartDate", d.get("StartDate"))


def render_summary(c):
    """TrainingComponentSummary3 (base fields, then Summary2.IsLegacyData, then Summary3.CurrencyStatus)."""
    return ('<TrainingComponentSummary i:type="TrainingComponentSummary3">%s<ComponentType>%s</ComponentType>%s%s'
            '<IsCurrent>%s</IsCurrent>%s%s%s<IsLegacyData>%s</IsLegacyData>%s</TrainingComponentSummary>'
            % (el("Code", c["Code"]), c["ComponentType"], dto("CreatedDate", c["_CreatedDate"]),
               "<IsConfidential>true</IsConfidential>" if c["IsConfidential"] else "", b(c["IsCurrent"]),
               el("Title", c["Title"]), dto("UpdatedDate", c["_UpdatedDate"]),
               el("UsageReccomendation", c["UsageRecommendation"] if c["UsageRecommendation"] != "Unknown" else None),
               b(c["IsLegacyData"]), nil("CurrencyStatus", c["CurrencyStatus"]))).encode()


def _classifications(items):
    return "<Classifications>%s</Classifications>" % "".join(
        "<Classification>%s%s%s%s</Classification>" % (adto(x), nil("PurposeCode", x["PurposeCode"]),
                                                        nil("SchemeCode", x["SchemeCode"]),
                                                        nil("ValueCode", x["ValueCode"])) for x in items)


def _assignments(wrapper, item, items):
    return "<%s>%s</%s>" % (wrapper, "".join("<%s>%s%s</%s>" % (item, adto(x), nil("Code", x["Code"]), item)
                                             for x in items), wrapper)


def _address(name, a):
    if a is None:
        return nil(name, None)
    return ("<%s>%s%s%s%s%s%s%s</%s>" % (name, nil("CountryCode", a["CountryCode"]), nil("Line1", a["Line1"]),
                                         el("Line2", a["Line2"]), nil("Postcode", a["Postcode"]),
                                         nil("StateCode", a["StateCode"]), el("StateOverseas", a["StateOverseas"]),
                                         nil("Suburb", a["Suburb"]), name))


def _contacts(items):
    out = []
    for x in items:
        out.append("<Contact>%s%s%s%s%s%s%s%s%s%s%s%s%s%s</Contact>" % (
            adto(x), nil("Email", x["Email"]), el("Fax", x["Fax"]), nil("FirstName", x["FirstName"]),
            el("GroupName", x["GroupName"]), el("JobTitle", x["JobTitle"]), nil("LastName", x["LastName"]),
            el("Mobile", x["Mobile"]), nil("OrganisationName", x["OrganisationName"]), nil("Phone", x["Phone"]),
            _address("PostalAddress", x["PostalAddress"]), nil("RoleCode", x["RoleCode"]), el("Title", x["Title"]),
            nil("TypeCode", x["TypeCode"])))
    return "<Contacts>%s</Contacts>" % "".join(out)


def render_component(c):
    """TrainingComponent pieces: a list of (mask, bytes); a piece is sent when all bits of mask were requested.
    The runtime type is TrainingComponent4 (see README: base fields, TrainingComponent2.IsLegacyData, then
    CurrencyStatus)."""
    R = TCB["ShowReleases"]
    p = []
    p.append((TCB["ShowClassifications"], _classifications(c["Classifications"])))
    p.append((0, el("Code", c["Code"])))
    p.append((TCB["ShowCompletionMapping"], "<CompletionMapping>%s</CompletionMapping>" % "".join(
        "<NrtCompletion>%s%s<IsMandatory>%s</IsMandatory></NrtCompletion>" % (adto(x), nil("Code", x["Code"]),
                                                                               b(x["IsMandatory"]))
        for x in c["CompletionMapping"])))
    p.append((0, "<ComponentType>%s</ComponentType>" % c["ComponentType"]))
    p.append((TCB["ShowContacts"], _contacts(c["Contacts"])))
    p.append((0, dto("CreatedDate", c["_CreatedDate"])))
    p.append((TCB["ShowCurrencyPeriods"], "<CurrencyPeriods>%s</CurrencyPeriods>" % "".join(
        '<NrtCurrencyPeriod i:type="NrtCurrencyPeriod2">%s%s%s%s</NrtCurrencyPeriod>' % (
            adto(x), nil("Authority", x["Authority"]), el("EndComment", x["EndComment"]),
            el("EndReasonCode", x["EndReasonCode"])) for x in c["CurrencyPeriods"])))
    p.append((TCB["ShowDataManagers"], _assignments("DataManagers", "DataManagerAssignment", c["DataManagers"])))
    p.append((0, ("<IsConfidential>true</IsConfidential>" if c["IsConfidential"] else "")
              + el("IscOrganisationCode", c["IscOrganisationCode"])))
    p.append((TCB["ShowMappingInformation"], "<MappingInformation>%s</MappingInformation>" % "".join(
        "<Mapping>%s<IsEquivalent>%s</IsEquivalent>%s%s%s%s</Mapping>" % (
            nil("Code", x["Code"]), b(x["IsEquivalent"]), nil("MapsToCode", x["MapsToCode"]),
            nil("MapsToTitle", x["MapsToTitle"]), nil("Notes", x["Notes"]), nil("Title", x["Title"]))
        for x in c["MappingInformation"])))
    p.append((0, el("ParentCode", c["ParentCode"]) + el("ParentTitle", c["ParentTitle"])))
    p.append((TCB["ShowRecognitionManagers"], _assignments("RecognitionManagers", "RecognitionManagerAssignment",
                                                           c["RecognitionManagers"])))
    p.append((R, "<Releases>"))
    for r in c["Releases"]:
        p.append((R, '<Release i:type="Release4">' + el("ApprovalProcess", r["ApprovalProcess"])))
        if r["Components"] is not None:
            p.append((R | TCB["ShowComponents"], "<Components>%s</Components>" % "".join(
                "<ReleaseComponent>%s%s%s%s%s<Type>%s</Type></ReleaseComponent>" % (
                    nil("Code", x["Code"]), nil("ReleaseCurrency", x["ReleaseCurrency"]),
                    nil("ReleaseDate", x["ReleaseDate"]), nil("ReleaseNumber", x["ReleaseNumber"]),
                    nil("Title", x["Title"]), x["Type"]) for x in r["Components"])))
        p.append((R, nil("Currency", r["Currency"])))
        p.append((R | TCB["ShowFiles"], "<Files>%s</Files>" % "".join(
            "<ReleaseFile>%s<Size>%d</Size></ReleaseFile>" % (nil("RelativePath", x["RelativePath"]), x["Size"])
            for x in r["Files"])))
        p.append((R, "<ReleaseDate>%s</ReleaseDate>%s" % (r["ReleaseDate"], nil("ReleaseNumber", r["ReleaseNumber"]))))
        if r["UnitGrid"] is not None:
            p.append((R | TCB["ShowUnitGrid"], "<UnitGrid>%s</UnitGrid>" % "".join(
                '<UnitGridEntry i:type="UnitGridEntry3">%s%s<IsEssential>%s</IsEssential></UnitGridEntry>' % (
                    nil("Code", x["Code"]), nil("Title", x["Title"]), b(x["IsEssential"])) for x in r["UnitGrid"])))
        if r["CompanionVolumeLinks"] is not None:
            p.append((R | TCB["ShowCompanionVolumeLinks"], "<CompanionVolumeLinks>%s</CompanionVolumeLinks>" % "".join(
                "<ReleaseCompanionVolumeLink>%s%s%s%s</ReleaseCompanionVolumeLink>" % (
                    el("LinkNotes", x["LinkNotes"]), el("LinkText", x["LinkText"]), el("LinkUrl", x["LinkUrl"]),
                    el("PublishedComponentType", x["PublishedComponentType"])) for x in r["CompanionVolumeLinks"])))
        p.append((R, "</Release>"))
    p.append((R, "</Releases>"))
    p.append((0, el("Title", c["Title"]) + dto("UpdatedDate", c["_UpdatedDate"])))
    p.append((TCB["ShowUsageRecommendation"], "<UsageRecommendations>%s</UsageRecommendations>" % "".join(
        "<UsageRecommendation>%s%s</UsageRecommendation>" % (adto(x), el("State", x["State"]))
        for x in c["UsageRecommendations"])))
    p.append((0, "<IsLegacyData>%s</IsLegacyData>%s" % (b(c["IsLegacyData"]), nil("CurrencyStatus",
                                                                                   c["CurrencyStatus"]))))
    return _merge(p)


def _merge(pieces):
    out = []
    for mask, text in pieces:
        if not text:
            continue
        if out and out[-1][0] == mask:
            out[-1] = (mask, out[-1][1] + text)
        else:
            out.append((mask, text))
    return [(m, t.encode()) for m, t in out]


def render_org(o):
    """Rto3 pieces without Scopes: base Organisation fields, Organisation2.IsLegacyData, then the Rto3 fields (an
    organisation that is not an RTO is an Organisation2: it stops after IsLegacyData)."""
    p = []
    p.append((OB["ShowCodes"], "<Codes>%s</Codes>" % "".join(
        "<OrganisationCode>%s%s</OrganisationCode>" % (adto(x), nil("Code", x["Code"])) for x in o["Codes"])))
    p.append((OB["ShowContacts"], _contacts(o["Contacts"])))
    p.append((0, dto("CreatedDate", o["_CreatedDate"])))
    p.append((OB["ShowDataManagers"], _assignments("DataManagers", "DataManagerAssignment", o["DataManagers"])))
    p.append((OB["ShowLocations"], "<Locations>%s</Locations>" % "".join(
        "<OrganisationLocation>%s%s</OrganisationLocation>" % (adto(x), _address("Address", x["Address"]))
        for x in o["Locations"])))
    p.append((OB["ShowResponsibleLegalPersons"], "<ResponsibleLegalPersons>%s</ResponsibleLegalPersons>" % "".join(
        "<ResponsibleLegalPerson>%s%s%s%s</ResponsibleLegalPerson>" % (
            adto(x),
            ('<Abns xmlns:b="%s">%s</Abns>' % (NS_ARR, "".join("<b:string>%s</b:string>" % esc(a) for a in x["Abns"]))
             if x["Abns"] is not None else ""),
            el("Acn", x["Acn"]), nil("Name", x["Name"])) for x in o["ResponsibleLegalPersons"])))
    p.append((OB["ShowTradingNames"], "<TradingNames>%s</TradingNames>" % "".join(
        "<TradingName>%s%s</TradingName>" % (adto(x), nil("Name", x["Name"])) for x in o["TradingNames"])))
    p.append((0, dto("UpdatedDate", o["_UpdatedDate"])))
    p.append((OB["ShowUrls"], "<Urls>%s</Urls>" % "".join(
        "<Url>%s%s</Url>" % (adto(x), nil("Link", x["Link"])) for x in o["Urls"])))
    p.append((0, "<IsLegacyData>%s</IsLegacyData>" % b(o["IsLegacyData"])))
    if o.get("_kind") == reg.NON_RTO:
        return _merge(p)
    p.append((OB["ShowRtoClassifications"], _classifications(o["Classifications"])))
    p.append((OB["ShowRtoDeliveryNotification"], "<DeliveryNotifications/>"))
    p.append((OB["ShowRegistrationManagers"], _assignments("RegistrationManagers", "RegistrationManagerAssignment",
                                                           o["RegistrationManagers"])))
    p.append((OB["ShowRegistrationPeriods"], "<RegistrationPeriods>%s</RegistrationPeriods>" % "".join(
        "<RegistrationPeriod>%s%s%s%s%s</RegistrationPeriod>" % (
            adto(x), el("EndReasonCode", x["EndReasonCode"]), nil("EndReasonComments", x["EndReasonComments"]),
            nil("Exerciser", x["Exerciser"]), nil("LegalAuthority", x["LegalAuthority"]))
        for x in o["RegistrationPeriods"])))
    p.append((0, nil("RegistrationStatus", o["RegistrationStatus"])))
    p.append((OB["ShowRestrictions"], "<Restrictions>%s</Restrictions>" % "".join(
        "<RtoRestriction2>%s%s%s%s</RtoRestriction2>" % (adto(x), el("Code", x["Code"]),
                                                         nil("Restriction", x["Restriction"]),
                                                         nil("RestrictionTypeCode", x["RestrictionTypeCode"]))
        for x in o["Restrictions"])))
    return _merge(p)


def render_org_item(o):
    """OrganisationSearchResultItem3 for SearchByModifiedDate."""
    trading = o["TradingNames"][0]["Name"] if o["TradingNames"] else None
    active = o["RegistrationStatus"] == "Current"
    return ('<OrganisationSearchResultItem i:type="OrganisationSearchResultItem3">%s%s<HasActiveRegistration>%s'
            '</HasActiveRegistration>%s%s%s<IsLegacyData>%s</IsLegacyData>%s</OrganisationSearchResultItem>'
            % (nil("Code", o["Code"]), nil("DataManagerCode", o["DataManagers"][0]["Code"] if o["DataManagers"]
                                           else None), b(active), nil("LegalPersonName", o["LegalName"]),
               el("TradingName", trading), dto("UpdatedDate", o["_UpdatedDate"]), b(o["IsLegacyData"]),
               nil("RegistrationStatus", o["RegistrationStatus"]))).encode()


def render_scope_rows(rows):
    """Scope2 elements (AbstractDto EndDate/StartDate, Scope fields, Scope2.ScopeDecisionType), as two blocks:
    explicit rows and implicit rows (rows arrive explicit-first, see Register.scope_rows)."""
    ex, im = [], []
    for nrt, ctype, extent, imp, refused, decision, start, end in rows:
        s = ("<Scope2>%s%s%s<IsImplicit>%s</IsImplicit><IsRefused>%s</IsRefused><NrtCode>%s</NrtCode>"
             "<TrainingComponentType>%s</TrainingComponentType><ScopeDecisionType>%s</ScopeDecisionType></Scope2>"
             % ("<EndDate>%s</EndDate>" % end if end else "", "<StartDate>%s</StartDate>" % start if start else "",
                "<ExtentCode>%s</ExtentCode>" % extent if extent else "", "true" if imp else "false",
                "true" if refused else "false", nrt, ctype, decision))
        (im if imp else ex).append(s)
    return "".join(ex).encode(), "".join(im).encode()


# ================================================================================================ the data cache

class Store:
    """Pre-rendered pieces of the register, kept in step with it through Register.on_change.

    Small scale renders everything in memory. Full scale keeps the scope blocks (~2 GB) in one file under the
    cache dir, served with sendfile, and the other pieces in a marshal file, so a second start takes seconds."""

    def __init__(self, register, cache_dir=None, rebuild=False, say=lambda m: None):
        self.r = register
        self.say = say
        self.lock = threading.RLock()
        self.summaries = {}      # code -> bytes
        self.details = {}        # code -> [(mask, bytes)]
        self.org_pieces = {}     # code -> [(mask, bytes)]
        self.org_items = {}      # code -> bytes
        self.org_types = {}      # code -> i:type of an organisation that is not an RTO (the others are Rto3)
        self.scopes = {}         # code -> (explicit, implicit); each bytes or (offset, length) in scope_fd
        self.scope_fd = None
        self._search_cache = collections.OrderedDict()
        self._index_gen = -1
        if cache_dir and register.scale != "small":
            self._load_or_build(cache_dir, rebuild)
        else:
            self._render_all_components()
            self._render_all_orgs()
            for code in self.r.organisations:
                self.scopes[code] = render_scope_rows(self.r.scope_rows(code))
        register.on_change(self._on_change)

    # -------------------------------------------------------------------------------------------- build / load

    def _render_all_components(self):
        for code, c in self.r.components.items():
            self.summaries[code] = render_summary(c)
            self.details[code] = render_component(c)

    def _render_all_orgs(self):
        for code, o in self.r.organisations.items():
            self.org_pieces[code] = render_org(o)
            self.org_items[code] = render_org_item(o)
            if o.get("_kind"):
                self.org_types[code] = o["_kind"]

    def _cache_key(self):
        return fakekit.cache_key(self.r, ("tga_register.py", "fake_tga_soap.py", "nrt_codes.py"), FORMAT)

    def _load_or_build(self, cache_dir, rebuild):
        d = os.path.join(cache_dir, self._cache_key())
        meta_path = os.path.join(d, "pieces.marshal")
        scope_path = os.path.join(d, "scope.bin")
        if not rebuild and os.path.exists(meta_path) and os.path.exists(scope_path):
            t0 = time.time()
            with open(meta_path, "rb") as f:
                m = marshal.load(f)
            self.summaries, self.details = m["summaries"], m["details"]
            self.org_pieces, self.org_items = m["org_pieces"], m["org_items"]
            self.scopes = {k: tuple(v) for k, v in m["scopes"].items()}
            self.scope_fd = os.open(scope_path, os.O_RDONLY)
            self.say("cache: loaded %s in %.1fs" % (d, time.time() - t0))
            return
        os.makedirs(d, exist_ok=True)
        fakekit.remove_stale_caches(cache_dir, self.r, d, self.say)
        t0 = time.time()
        self._render_all_components()
        self.say("cache: rendered %d training components in %.1fs" % (len(self.details), time.time() - t0))
        self._render_all_orgs()
        scopes = self._build_scope_file(scope_path + ".tmp")
        os.replace(scope_path + ".tmp", scope_path)
        self.scopes = scopes
        tmp = meta_path + ".tmp"
        with open(tmp, "wb") as f:
            marshal.dump({"summaries": self.summaries, "details": self.details, "org_pieces": self.org_pieces,
                          "org_items": self.org_items, "scopes": {k: list(v) for k, v in scopes.items()}}, f)
        os.replace(tmp, meta_path)
        self.scope_fd = os.open(scope_path, os.O_RDONLY)
        self.say("cache: built %s in %.1fs (%.2f GB of scope XML)"
                 % (d, time.time() - t0, os.path.getsize(scope_path) / 1e9))

    def _build_scope_file(self, path):
        """Render every RTO's scope blocks into one file. Uses a forked worker per core (the register is inherited
        through fork), each writing its own part file; the parts are then concatenated."""
        codes = sorted(self.r.organisations)
        ncpu = max(1, min(4, os.cpu_count() or 1))
        chunks = [codes[i::ncpu] for i in range(ncpu)]
        parts = ["%s.part%d" % (path, i) for i in range(ncpu)]
        pids = []
        t0 = time.time()
        for i in range(ncpu):
            pid = os.fork()
            if pid == 0:
                code = 1
                try:
                    index = {}
                    off = 0
                    with open(parts[i], "wb", buffering=8 << 20) as f:
                        for j, c in enumerate(chunks[i]):
                            ex, im = render_scope_rows(self.r.scope_rows(c))
                            f.write(ex)
                            f.write(im)
                            index[c] = (off, len(ex), off + len(ex), len(im))
                            off += len(ex) + len(im)
                            if i == 0 and j % 1000 == 999:
                                self.say("cache: scope %d/%d RTOs rendered (%.0fs)"
                                         % ((j + 1) * ncpu, len(codes), time.time() - t0))
                    with open(parts[i] + ".idx", "wb") as f:
                        marshal.dump(index, f)
                    code = 0
                finally:
                    os._exit(code)
            pids.append(pid)
        for pid in pids:
            _, status = os.waitpid(pid, 0)
            if status != 0:
                raise RuntimeError("scope cache worker failed")
        scopes = {}
        base = 0
        with open(path, "wb") as out:
            for part in parts:
                with open(part + ".idx", "rb") as f:
                    index = marshal.load(f)
                for c, (o1, l1, o2, l2) in index.items():
                    scopes[c] = ((base + o1, l1), (base + o2, l2))
                with open(part, "rb") as f:
                    while True:
                        buf = f.read(16 << 20)
                        if not buf:
                            break
                        out.write(buf)
                base += os.path.getsize(part)
                os.unlink(part)
                os.unlink(part + ".idx")
        return scopes

    # -------------------------------------------------------------------------------------------- changes

    def _on_change(self, kind, code):
        with self.lock:
            if kind == "component":
                c = self.r.components.get(code)
                if c is None:
                    self.summaries.pop(code, None)
                    self.details.pop(code, None)
                else:
                    self.summaries[code] = render_summary(c)
                    self.details[code] = render_component(c)
            elif kind == "organisation":
                o = self.r.organisations.get(code)
                self.org_types.pop(code, None)
                if o is None:
                    self.org_pieces.pop(code, None)
                    self.org_items.pop(code, None)
                    self.scopes.pop(code, None)
                else:
                    self.org_pieces[code] = render_org(o)
                    self.org_items[code] = render_org_item(o)
                    if o.get("_kind"):
                        self.org_types[code] = o["_kind"]
                    self.scopes[code] = render_scope_rows(self.r.scope_rows(code))
            self._search_cache.clear()

    # -------------------------------------------------------------------------------------------- searches

    def _indexes(self):
        """Sorted (UpdatedDate ticks, code) lists per component type and for organisations; rebuilt after a change."""
        if self._index_gen != self.r.generation:
            with self.lock:
                gen = self.r.generation
                by_type = collections.defaultdict(list)
                for code, c in self.r.components.items():
                    by_type[c["ComponentType"]].append((c["_UpdatedDate"], code))
                for v in by_type.values():
                    v.sort()
                orgs = sorted((o["_UpdatedDate"], code) for code, o in self.r.organisations.items())
                self._tc_index, self._org_index = dict(by_type), orgs
                self._index_gen = gen
        return self._tc_index, self._org_index

    def modified(self, service, start, end, types, dm_filter):
        """Codes whose UpdatedDate is in [start, end), ordered by (UpdatedDate, code); cached for paging."""
        key = (self.r.generation, service, start, end, types, dm_filter)
        with self.lock:
            hit = self._search_cache.get(key)
            if hit is not None:
                self._search_cache.move_to_end(key)
                return hit
        tc_index, org_index = self._indexes()
        lo_key = (start if start is not None else -1 << 62, "")
        hi_key = (end if end is not None else 1 << 62, "")
        if service == "training":
            out = []
            for t in types:
                lst = tc_index.get(t, ())
                out.extend(lst[bisect_left(lst, lo_key):bisect_left(lst, hi_key)])
            if len(types) > 1:
                out.sort()
            codes = [c for _, c in out]
            if dm_filter:
                codes = [c for c in codes if any(d["Code"] in dm_filter for d in self.r.components[c]["DataManagers"])]
        else:
            codes = [c for _, c in org_index[bisect_left(org_index, lo_key):bisect_left(org_index, hi_key)]]
            if dm_filter:
                codes = [c for c in codes
                         if any(d["Code"] in dm_filter for d in self.r.organisations[c]["DataManagers"])]
        with self.lock:
            self._search_cache[key] = codes
            while len(self._search_cache) > 32:
                self._search_cache.popitem(last=False)
        return codes


bisect_left = bisect.bisect_left


# ================================================================================================ requests

class SoapFault(Exception):
    """A SOAP 1.1 fault answer: HTTP 500, text/xml."""

    def __init__(self, code_xml, text, detail="", secured=False):
        super().__init__(text)
        self.code_xml = code_xml
        self.text = text
        self.detail = detail
        self.secured = secured


def validation_fault(ns, errors):
    """errors: [(Code, Message, ValidationTarget)]."""
    items = "".join(
        "<ValidationError>%s%s<Severity>Error</Severity><SubCode i:nil=\"true\"/>%s<Context i:nil=\"true\"/>"
        "</ValidationError>" % (nil("Code", c), nil("Message", m), nil("ValidationTarget", t)) for c, m, t in errors)
    detail = '<ValidationFault xmlns="%s" xmlns:i="%s"><Errors>%s</Errors></ValidationFault>' % (ns, NS_I, items)
    return SoapFault("<faultcode>s:Client</faultcode>", " ".join(m for _, m, _ in errors), detail, secured=True)


def server_fault(code=None):
    """What WCF answers when the service itself fails (an exception in the operation, the database away): HTTP 500
    with a:InternalServiceFault in the dispatcher namespace and its stock text (includeExceptionDetailInFaults off),
    or a plain s:Server fault (a FaultException with a receiver code)."""
    if code == "Server":
        return SoapFault("<faultcode>s:Server</faultcode>", "The service is temporarily unable to process the request.")
    return SoapFault('<faultcode xmlns:a="%s">a:InternalServiceFault</faultcode>' % NS_DISPATCHER,
                     "The server was unable to process the request due to an internal error.  For more information "
                     "about the error, either turn on IncludeExceptionDetailInFaults (either from "
                     "ServiceBehaviorAttribute or from the <serviceDebug> configuration behavior) on the server in "
                     "order to send the exception information back to the client, or turn on tracing as per the "
                     "Microsoft .NET Framework SDK documentation and inspect the server trace logs.")


def deserialization_fault(ns, op, inner):
    return SoapFault('<faultcode xmlns:a="%s">a:DeserializationFailed</faultcode>' % NS_DISPATCHER,
                     "The formatter threw an exception while trying to deserialize the message: There was an error "
                     "while trying to deserialize parameter %s:request. The InnerException message was '%s'.  Please "
                     "see InnerException for more details." % (ns, inner))


def read_members(elem, ns, members):
    """WCF DataContractSerializer member reading: members in xs:sequence order; a child that does not match a member
    at or after the current position (out of order, unknown, or in another namespace) is skipped."""
    out = {}
    if elem is None:
        return out
    prefix = "{%s}" % ns
    idx = 0
    for child in elem:
        tag = child.tag
        if not isinstance(tag, str) or not tag.startswith(prefix):
            continue
        local = tag[len(prefix):]
        try:
            j = members.index(local, idx)
        except ValueError:
            continue
        if child.get("{%s}nil" % NS_I) in ("true", "1"):
            out[local] = None
        else:
            out[local] = child
        idx = j + 1
    return out


def x_bool(e, default=False):
    if e is None:
        return default
    t = (e.text or "").strip()
    if t in ("true", "1"):
        return True
    if t in ("false", "0"):
        return False
    raise ValueError("The value '%s' cannot be parsed as the type 'Boolean'." % t)


def x_int(e, default=0):
    if e is None:
        return default
    t = (e.text or "").strip()
    try:
        return int(t)
    except ValueError:
        raise ValueError("The value '%s' cannot be parsed as the type 'Int32'." % t)


def x_dto(e):
    """DateTimeOffset -> ticks (None when absent or nil)."""
    if e is None:
        return None
    m = read_members(e, NS_SYS, ["DateTime", "OffsetMinutes"])
    if m.get("DateTime") is None or m.get("OffsetMinutes") is None:
        raise ValueError("Expecting element 'DateTime' from namespace '%s'." % NS_SYS if m.get("DateTime") is None
                         else "Expecting element 'OffsetMinutes' from namespace '%s'." % NS_SYS)
    text = (m["DateTime"].text or "").strip()
    offset = x_int(m["OffsetMinutes"])
    try:
        ticks, has_zone = reg.parse_naive_local(text)
    except ValueError:
        raise ValueError("The value '%s' cannot be parsed as the type 'DateTime'." % text)
    if not has_zone:
        ticks -= offset * 60 * TICKS_PER_SECOND
    return ticks


# ================================================================================================ the server

class Fault:
    def __init__(self, spec):
        self.op = spec.get("op", "*")
        self.service = (spec.get("service") or "").lower() or None
        self.kind = spec["kind"]
        self.count = int(spec.get("count", 1))
        self.after = int(spec.get("after", 0))
        self.rate = float(spec["rate"]) if spec.get("rate") is not None else None
        self.rnd = random.Random(spec.get("seed", 1))
        self.fired = 0
        self.spec = spec

    def fires(self):
        """Called for a matching request: does this one get the fault ("after" and "rate" decide)?"""
        if self.after > 0:
            self.after -= 1
            return False
        return self.rate is None or self.rnd.random() < self.rate

    def matches(self, service, op):
        if self.count == 0:
            return False
        if self.service and self.service != service:
            return False
        return self.op == "*" and op != "wsdl" or self.op == op


TRANSPORT_FAULTS = {"http500", "http503", "http429", "hang", "reset", "truncate", "malformed", "html", "redirect",
                    "slow", "drip"}
PROTOCOL_FAULTS = {"soap_fault", "server_fault", "auth", "missing_code"}


class App(fakekit.FakeApp):
    def __init__(self, args):
        self.args = args
        self.quiet = args.quiet
        self.version = args.version
        self.ns = "http://training.gov.au/services/%s" % ("" if args.version == 1 else "%d/" % args.version)
        self.vtag = "" if args.version == 1 else "V%d" % args.version
        self.username = args.username
        if args.password_file:
            with open(args.password_file, encoding="utf-8") as f:
                self.password = f.read().rstrip("\r\n")
        else:
            self.password = "Asdf098"
        self.clock = reg.Clock(reg.parse_instant(args.now), args.frozen_clock)
        t0 = time.time()
        self.register = reg.Register(args.scale, args.seed, progress=self.say)
        self.store = Store(self.register, args.cache_dir, args.rebuild_cache, self.say)
        # One lock for mutations, re-rendering and anything that iterates the register.
        self.mutate_lock = self.store.lock
        self.say("fake_tga_soap: %s scale ready in %.1fs" % (args.scale, time.time() - t0))
        self.init_state()
        self._wsdl_cache = {}
        path_re = r"^/deewr\.tga\.webservices/(trainingcomponentservice|organisationservice)%s\.svc(/[^?]*)?$" % (
            self.vtag.lower())
        self.path_re = re.compile(path_re)

    def new_stats(self):
        return {"requests": 0, "by_op": collections.Counter(), "by_service_op": collections.Counter(),
                "by_status": collections.Counter(), "bytes_sent": 0, "bytes_by_op": collections.Counter(),
                "soap_faults": collections.Counter(), "faults_injected": collections.Counter(), "control": 0}

    def count(self, service, op, status, nbytes, injected=None, faultcode=None):
        with self.stats_lock:
            s = self.stats
            s["requests"] += 1
            s["by_op"][op] += 1
            s["by_service_op"]["%s.%s" % (PORT_NAMES.get(service, service), op)] += 1
            s["by_status"][str(status)] += 1
            s["bytes_sent"] += nbytes
            s["bytes_by_op"][op] += nbytes
            if injected:
                s["faults_injected"][injected] += 1
            if faultcode:
                s["soap_faults"][faultcode] += 1

    def take_fault(self, service, op, kinds):
        with self.fault_lock:
            for f in self.faults:
                if f.kind in kinds and f.matches(service, op) and f.fires():
                    if f.count > 0:
                        f.count -= 1
                    f.fired += 1
                    return f
        return None

    # -------------------------------------------------------------------------------------------- envelopes

    def envelope(self, secured=True):
        """(head, tail) bytes around a body payload. Successful WCF responses with a UsernameToken over transport
        carry a security header with a wsu:Timestamp (Created now, Expires +5 min)."""
        header = ""
        if secured:
            now = self.clock.now()
            ms = lambda t: time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t // TICKS_PER_SECOND)) + \
                ".%03dZ" % (t % TICKS_PER_SECOND // 10_000)
            header = ('<s:Header><o:Security s:mustUnderstand="1" xmlns:o="%s"><u:Timestamp u:Id="_0">'
                      '<u:Created>%s</u:Created><u:Expires>%s</u:Expires></u:Timestamp></o:Security></s:Header>'
                      % (NS_WSSE, ms(now), ms(now + 300 * TICKS_PER_SECOND)))
        head = ('<s:Envelope xmlns:s="%s" xmlns:u="%s">%s<s:Body>' % (NS_SOAP11, NS_WSU, header)).encode()
        return head, b"</s:Body></s:Envelope>"

    def fault_body(self, f):
        head, tail = self.envelope(secured=f.secured)
        detail = "<detail>%s</detail>" % f.detail if f.detail else ""
        return head + ('<s:Fault>%s<faultstring xml:lang="en-US">%s</faultstring>%s</s:Fault>'
                       % (f.code_xml, esc(f.text), detail)).encode() + tail

    # -------------------------------------------------------------------------------------------- dispatch

    def handle_soap(self, service, port, headers, body):
        """Returns (status, headers, parts, op, soap_faultcode). parts: bytes or (offset, length) file ranges."""
        ctype = headers.get("content-type", "")
        action = headers.get("soapaction")
        op_guess = (action or "").strip().strip('"').rsplit("/", 1)[-1] or "?"
        if port.endswith("12"):
            return self.http_error(415, "Cannot process the message because the content type '%s' was not the "
                                   "expected type 'application/soap+xml; charset=utf-8'." % ctype), op_guess, None
        if not ctype.lower().startswith("text/xml"):
            return self.http_error(415, "Cannot process the message because the content type '%s' was not the "
                                   "expected type 'text/xml; charset=utf-8'." % ctype), op_guess, None
        try:
            env = ET.fromstring(body)
        except ET.ParseError as e:
            return self.http_error(400, "Bad Request (%s)" % e), op_guess, None
        if env.tag == "{%s}Envelope" % NS_SOAP12:
            return self.soap_fault(SoapFault("<faultcode>s:VersionMismatch</faultcode>",
                                             "The message version of the incoming message (Soap12 "
                                             "(http://www.w3.org/2003/05/soap-envelope)) does not match that of the "
                                             "encoder (Soap11 (http://schemas.xmlsoap.org/soap/envelope/)).")), \
                op_guess, "VersionMismatch"
        if env.tag != "{%s}Envelope" % NS_SOAP11:
            return self.http_error(400, "Bad Request (not a SOAP envelope)"), op_guess, None
        # Security comes before dispatch in the WCF channel stack.
        injected = self.take_fault(service, op_guess, {"auth"})
        if injected is not None or not self.check_security(env):
            return self.soap_fault(SoapFault(
                '<faultcode xmlns:a="%s">a:InvalidSecurity</faultcode>' % NS_WSSE,
                "An error occurred when verifying security for the message.")), op_guess, "InvalidSecurity"
        svc_name, iface, ops = SERVICES[service]
        act = (action or "").strip()
        if len(act) >= 2 and act[0] == '"' and act[-1] == '"':
            act = act[1:-1]
        prefix = "%s%s/" % (self.ns, iface)
        op = act[len(prefix):] if act.startswith(prefix) else None
        if op not in ops:
            return self.soap_fault(SoapFault(
                '<faultcode xmlns:a="%s">a:ActionNotSupported</faultcode>' % NS_ADDRESSING_NONE,
                "The message with Action '%s' cannot be processed at the receiver, due to a ContractFilter mismatch "
                "at the EndpointDispatcher. This may be because of either a contract mismatch (mismatched Actions "
                "between sender and receiver) or a binding/security mismatch between the sender and the receiver.  "
                "Check that sender and receiver have the same contract and the same binding (including security "
                "requirements, e.g. Message, Transport, None)." % act)), op_guess, "ActionNotSupported"
        try:
            injected = self.take_fault(service, op, {"server_fault"})
            if injected is not None:
                raise server_fault(injected.spec.get("code"))
            injected = self.take_fault(service, op, {"soap_fault"})
            if injected is not None and injected.spec.get("fault") == "DeserializationFailed":
                raise deserialization_fault(self.ns, op, injected.spec.get("text", "Injected deserialization fault."))
            if injected is not None:
                raise validation_fault(self.ns, [(injected.spec.get("code", "InjectedFault"),
                                                  injected.spec.get("text", "Injected validation fault."),
                                                  injected.spec.get("target"))])
            bodyel = env.find("{%s}Body" % NS_SOAP11)
            wrapper = bodyel[0] if bodyel is not None and len(bodyel) else None
            if wrapper is None or wrapper.tag != "{%s}%s" % (self.ns, op):
                found = ("node type 'Element' with name '%s' and namespace '%s'" % tuple(
                    reversed(wrapper.tag[1:].split("}", 1))) if wrapper is not None and "}" in wrapper.tag
                    else "node type 'EndElement'")
                raise SoapFault('<faultcode xmlns:a="%s">a:DeserializationFailed</faultcode>' % NS_DISPATCHER,
                                "The formatter threw an exception while trying to deserialize the message: Error in "
                                "deserializing body of request message for operation '%s'. OperationFormatter "
                                "encountered an invalid Message body. Expected to find node type 'Element' with name "
                                "'%s' and namespace '%s'. Found %s" % (op, op, self.ns, found))
            if op not in IMPLEMENTED[service]:
                raise SoapFault("<faultcode>s:Client</faultcode>",
                                "Operation '%s' is not implemented by the fake TGA service." % op)
            req = read_members(wrapper, self.ns, ["request"]).get("request")
            handler = getattr(self, "op_%s_%s" % (service, op))
            try:
                parts = handler(req)
            except ValueError as e:
                raise deserialization_fault(self.ns, op, str(e))
            injected = self.take_fault(service, op, {"missing_code"})
            if injected is not None:
                parts = [self.drop_code(service, op, b"".join(self.materialise(parts)))]
            head, tail = self.envelope()
            return (200, [("Content-Type", "text/xml; charset=utf-8")], [head] + parts + [tail]), op, None
        except SoapFault as f:
            code = re.sub(r"<[^>]*>", "", f.code_xml).split(":")[-1]
            return self.soap_fault(f), op, code

    def materialise(self, parts):
        for p in parts:
            if isinstance(p, tuple):
                yield os.pread(self.store.scope_fd, p[1], p[0])
            else:
                yield p

    def drop_code(self, service, op, body):
        pattern = {("training", "GetDetails"): rb"<Code>[^<]*</Code>",
                   ("training", "SearchDeletedByDeletedDate"): rb"<NationalCode>[^<]*</NationalCode>",
                   ("organisation", "SearchDeletedByDeletedDate"): rb"<OrganisationCode>[^<]*</OrganisationCode>",
                   ("organisation", "GetDetails"): rb"<NrtCode>[^<]*</NrtCode>" if b"<NrtCode>" in body
                   else rb"<Code>[^<]*</Code>"}.get((service, op), rb"<Code>[^<]*</Code>")
        return re.sub(pattern, b"", body, count=1)

    def soap_fault(self, f):
        return 500, [("Content-Type", "text/xml; charset=utf-8")], [self.fault_body(f)]

    @staticmethod
    def http_error(status, text):
        return status, [("Content-Type", "text/html")], [("<html><body><p>%s</p></body></html>" % esc(text)).encode()]

    def check_security(self, env):
        header = env.find("{%s}Header" % NS_SOAP11)
        if header is None:
            return False
        sec = header.find("{%s}Security" % NS_WSSE)
        if sec is None:
            return False
        tok = sec.find("{%s}UsernameToken" % NS_WSSE)
        if tok is None:
            return False
        user = tok.find("{%s}Username" % NS_WSSE)
        pw = tok.find("{%s}Password" % NS_WSSE)
        if user is None or pw is None:
            return False
        if pw.get("Type", PASSWORD_TEXT) != PASSWORD_TEXT:
            return False
        return (user.text or "") == self.username and (pw.text or "") == self.password

    # -------------------------------------------------------------------------------------------- operations

    def response(self, op, result_xml):
        return [('<%sResponse xmlns="%s">' % (op, self.ns)).encode(), result_xml, ("</%sResponse>" % op).encode()]

    def op_training_GetServerTime(self, req):
        return self._server_time()

    def op_organisation_GetServerTime(self, req):
        return self._server_time()

    def _server_time(self):
        now = self.clock.now()
        return self.response("GetServerTime", ("<GetServerTimeResult>%s</GetServerTimeResult>" % reg.format_local(
            now, sydney_offset_minutes(now))).encode())

    def _page(self, m):
        number = x_int(m.get("PageNumber"))
        size = x_int(m.get("PageSize"))
        errors = []
        if size < 1 or size > self.args.max_page_size:
            errors.append(("InvalidPageSize", "PageSize must be between 1 and %d." % self.args.max_page_size,
                           "PageSize"))
        if number < 1:
            errors.append(("InvalidPageNumber", "PageNumber must be 1 or greater.", "PageNumber"))
        if errors:
            raise validation_fault(self.ns, errors)
        return number, size

    def _types(self, e):
        if e is None:
            return tuple(sorted(FILTER_TO_TYPE.values()))
        m = read_members(e, self.ns, TYPE_FILTER)
        return tuple(sorted(FILTER_TO_TYPE[k] for k in FILTER_TO_TYPE if x_bool(m.get(k))))

    def _strings(self, e):
        if e is None:
            return None
        vals = frozenset((c.text or "") for c in e if c.tag == "{%s}string" % NS_ARR)
        return vals or None

    def _search_result(self, op, count, number, size, items):
        return self.response(op, b"".join([
            ('<%sResult xmlns:i="%s"><Count>%d</Count><PageNumber>%d</PageNumber><PageSize>%d</PageSize><Results>'
             % (op, NS_I, count, number, size)).encode()] + items + [("</Results></%sResult>" % op).encode()]))

    def op_training_SearchByModifiedDate(self, req):
        members = ["PageNumber", "PageSize", "DataManagerFilter", "EndDate"]
        members += (["IncludeLegacyData"] if self.version >= 2 else []) + ["StartDate", "TrainingComponentTypes"]
        m = read_members(req, self.ns, members)
        number, size = self._page(m)
        start, end = x_dto(m.get("StartDate")), x_dto(m.get("EndDate"))
        codes = self.store.modified("training", start, end, self._types(m.get("TrainingComponentTypes")),
                                    self._strings(m.get("DataManagerFilter")))
        page = codes[(number - 1) * size:number * size]
        summaries = self.store.summaries
        return self._search_result("SearchByModifiedDate", len(codes), number, size,
                                   [summaries[c] for c in page if c in summaries])

    def op_organisation_SearchByModifiedDate(self, req):
        m = read_members(req, self.ns, ["PageNumber", "PageSize", "DataManagerFilter", "EndDate", "StartDate"])
        number, size = self._page(m)
        start, end = x_dto(m.get("StartDate")), x_dto(m.get("EndDate"))
        codes = self.store.modified("organisation", start, end, (), self._strings(m.get("DataManagerFilter")))
        page = codes[(number - 1) * size:number * size]
        items = self.store.org_items
        return self._search_result("SearchByModifiedDate", len(codes), number, size,
                                   [items[c] for c in page if c in items])

    def op_training_Search(self, req):
        members = ["PageNumber", "PageSize", "ClassificationFilters", "Filter", "IncludeDeleted"]
        members += (["IncludeLegacyData"] if self.version >= 2 else [])
        members += ["IncludeSuperseded", "IncludeSuperseeded", "SearchCode", "SearchIndustrySector",
                    "SearchOccupation", "SearchTitle", "TrainingComponentTypes"]
        m = read_members(req, self.ns, members)
        number, size = self._page(m)
        if m.get("Filter") is None:
            raise validation_fault(self.ns, [("FilterRequired", "Filter is required.", "Filter")])
        text = (m["Filter"].text or "").strip().lower()
        by_code, by_title = x_bool(m.get("SearchCode")), x_bool(m.get("SearchTitle"))
        if not by_code and not by_title:
            by_code = by_title = True
        superseded = x_bool(m.get("IncludeSuperseded")) or x_bool(m.get("IncludeSuperseeded"))
        types = set(self._types(m.get("TrainingComponentTypes")))
        codes = []
        with self.mutate_lock:
            comps = sorted(self.register.components.items())
        for code, c in comps:
            if c["ComponentType"] not in types or (not superseded and not c["IsCurrent"]):
                continue
            if not text or (by_code and text in code.lower()) or (by_title and text in c["Title"].lower()):
                codes.append(code)
        page = codes[(number - 1) * size:number * size]
        return self._search_result("Search", len(codes), number, size,
                                   [self.store.summaries[c] for c in page if c in self.store.summaries])

    def _deleted(self, req, tombstones, render):
        m = read_members(req, self.ns, ["PageNumber", "PageSize", "EndDate", "StartDate"])
        number, size = self._page(m)
        start, end = x_dto(m.get("StartDate")), x_dto(m.get("EndDate"))
        with self.mutate_lock:
            tombstones = list(tombstones)
        rows = [d for d in tombstones if (start is None or d["_ticks"] >= start)
                and (end is None or d["_ticks"] < end)]
        return [render(d).encode() for d in rows[(number - 1) * size:number * size]]

    def op_training_SearchDeletedByDeletedDate(self, req):
        items = self._deleted(req, self.register.deleted_components, lambda d: (
            "<DeletedTrainingComponent>%s<Operation>%s</Operation>%s</DeletedTrainingComponent>"
            % (nil("NationalCode", d["NationalCode"]), d["Operation"], dto("UpdatedDate", d["_ticks"]))))
        return self.response("SearchDeletedByDeletedDate", b"".join(
            [('<SearchDeletedByDeletedDateResult xmlns:i="%s">' % NS_I).encode()] + items
            + [b"</SearchDeletedByDeletedDateResult>"]))

    def op_organisation_SearchDeletedByDeletedDate(self, req):
        items = self._deleted(req, self.register.deleted_organisations, lambda d: (
            "<DeletedOrganisation><Operation>%s</Operation>%s%s</DeletedOrganisation>"
            % (d["Operation"], nil("OrganisationCode", d["OrganisationCode"]), dto("UpdatedDate", d["_ticks"]))))
        return self.response("SearchDeletedByDeletedDate", b"".join(
            [('<SearchDeletedByDeletedDateResult xmlns:i="%s">' % NS_I).encode()] + items
            + [b"</SearchDeletedByDeletedDateResult>"]))

    def _details_request(self, req, info_name, flag_names):
        members = ["Code"] + (["IncludeLegacyData"] if self.version >= 2 else []) + [info_name]
        m = read_members(req, self.ns, members)
        code_el = m.get("Code")
        code = (code_el.text or "").strip() if code_el is not None else ""
        if not code:
            raise validation_fault(self.ns, [("CodeRequired", "Code is required.", "Code")])
        mask = 0
        info = m.get(info_name)
        if info is not None:
            names = list(flag_names)
            xtype = info.get("{%s}type" % NS_I, "")
            if info_name == "InformationRequest" and xtype.split(":")[-1] == "TrainingComponentInformationRequested2":
                names = TC_FLAGS2
            fm = read_members(info, self.ns, names)
            for name in names:
                if x_bool(fm.get(name)):
                    mask |= 1 << (TC_FLAGS2 if info_name == "InformationRequest" else ORG_FLAGS).index(name)
        return code, mask

    def op_training_GetDetails(self, req):
        code, mask = self._details_request(req, "InformationRequest", TC_FLAGS)
        pieces = self.store.details.get(code)
        if pieces is None:
            return self.response("GetDetails", ('<GetDetailsResult i:nil="true" xmlns:i="%s"/>' % NS_I).encode())
        body = b"".join(p for m, p in pieces if m & mask == m)
        return self.response("GetDetails", b"".join([
            ('<GetDetailsResult xmlns:i="%s" i:type="TrainingComponent4">' % NS_I).encode(), body,
            b"</GetDetailsResult>"]))

    def op_organisation_GetDetails(self, req):
        code, mask = self._details_request(req, "InformationRequested", ORG_FLAGS)
        pieces = self.store.org_pieces.get(code)
        scopes = self.store.scopes.get(code)
        if pieces is None or scopes is None:
            return self.response("GetDetails", ('<GetDetailsResult i:nil="true" xmlns:i="%s"/>' % NS_I).encode())
        xtype = self.store.org_types.get(code, "Rto3")
        head = ('<GetDetailsResponse xmlns="%s"><GetDetailsResult xmlns:i="%s" i:type="%s">'
                % (self.ns, NS_I, xtype)).encode() + b"".join(p for m, p in pieces if m & mask == m)
        parts = [head]
        # Scopes is a member of Rto: an Organisation2 has none.
        if mask & (OB["ShowExplicitScope"] | OB["ShowImplicitScope"]) and xtype.startswith("Rto"):
            parts.append(b"<Scopes>")
            if mask & OB["ShowExplicitScope"] and scopes[0]:
                parts.append(scopes[0])
            if mask & OB["ShowImplicitScope"] and scopes[1]:
                parts.append(scopes[1])
            parts.append(b"</Scopes>")
        parts.append(b"</GetDetailsResult></GetDetailsResponse>")
        return [p for p in parts if not (isinstance(p, tuple) and p[1] == 0)]

    # -------------------------------------------------------------------------------------------- WSDL / XSD

    def wsdl_response(self, service, query, host):
        key = (service, query, host)
        if key not in self._wsdl_cache:
            self._wsdl_cache[key] = self._build_wsdl(service, query, host)
        return self._wsdl_cache[key]

    def _xsd_files(self, service):
        if service == "training":
            return ["TrainingComponentService.xsd", "TrainingComponentServiceSerialization.xsd",
                    "TrainingComponentServiceSystem.xsd", "TrainingComponentServiceSerializationArrays.xsd",
                    "TrainingComponentServiceModel.xsd"]
        return ["OrganisationService.xsd", "OrganisationServiceSerialization.xsd", "OrganisationServiceSystem.xsd",
                "OrganisationServiceArrays.xsd", "TrainingComponentServiceModel.xsd"]

    def _versioned(self, text):
        return text.replace("http://training.gov.au/services/", self.ns)

    def _xsd_text(self, service, name):
        with open(os.path.join(SAMPLES, name), encoding="utf-8") as f:
            text = f.read()
        text = self._versioned(text)
        if name in ("TrainingComponentService.xsd", "OrganisationService.xsd"):
            text = text.replace("</xs:schema>", (DERIVED_TC if service == "training" else DERIVED_ORG)
                                + "</xs:schema>")
            if self.version >= 2:
                legacy = '<xs:element minOccurs="0" name="IncludeLegacyData" type="xs:boolean"/>'
                for typ, after in (("TrainingComponentDetailsRequest", 'name="Code" nillable="true" type="xs:string"/>'),
                                   ("OrganisationDetailsRequest", 'name="Code" nillable="true" type="xs:string"/>'),
                                   ("TrainingComponentModifiedSearchRequest", None)):
                    i = text.find('<xs:complexType name="%s">' % typ)
                    if i < 0:
                        continue
                    if after is None:
                        j = text.find('name="StartDate"', i)
                        j = text.rfind("<xs:element", i, j)
                    else:
                        j = text.find(after, i) + len(after)
                    text = text[:j] + legacy + text[j:]
            if service == "organisation":
                text = text.replace('<xs:import schemaLocation="OrganisationServiceArrays.xsd"',
                                    '<xs:import schemaLocation="TrainingComponentServiceModel.xsd" '
                                    'namespace="http://schemas.datacontract.org/2004/07/Deewr.Tga.Model"/>'
                                    '<xs:import schemaLocation="OrganisationServiceArrays.xsd"', 1)
        if name == "TrainingComponentServiceModel.xsd":
            text = text.replace("</xs:schema>", SCOPE_DECISION_TYPE + "</xs:schema>")
        return text

    def _build_wsdl(self, service, query, host):
        svc_name = SERVICES[service][0]
        files = self._xsd_files(service)
        base = "http://%s/Deewr.Tga.Webservices/%s%s.svc" % (host, svc_name, self.vtag)
        q = query.lower()
        if q.startswith("xsd=xsd"):
            try:
                name = files[int(q[7:])]
            except (ValueError, IndexError):
                return 404, [("Content-Type", "text/html")], [b"<html><body>Not found</body></html>"]
            text = self._xsd_text(service, name)
            for i, n in enumerate(files):
                text = text.replace('schemaLocation="%s"' % n, 'schemaLocation="%s?xsd=xsd%d"' % (base, i))
            return 200, [("Content-Type", "text/xml; charset=UTF-8")], [text.encode()]
        with open(os.path.join(SAMPLES, "%s.wsdl" % svc_name), encoding="utf-8") as f:
            wsdl = f.read()
        wsdl = self._versioned(wsdl)
        wsdl = re.sub(r"https://ws\.training\.gov\.au/Deewr\.Tga\.WebServices/%s\.svc" % svc_name, base, wsdl)
        if q == "singlewsdl":
            schemas = []
            for n in files:
                t = self._xsd_text(service, n)
                t = re.sub(r"<\?xml[^>]*\?>", "", t)
                t = re.sub(r'<xs:import schemaLocation="[^"]*"', "<xs:import", t)
                schemas.append(t)
            inline = "".join(schemas)
            wsdl = re.sub(r'<xsd:schema targetNamespace="[^"]*/Imports">.*?</xsd:schema>', lambda m: inline, wsdl,
                          flags=re.S)
        else:
            if service == "organisation":
                wsdl = wsdl.replace('<xsd:import schemaLocation="OrganisationServiceArrays.xsd"',
                                    '<xsd:import schemaLocation="TrainingComponentServiceModel.xsd" '
                                    'namespace="http://schemas.datacontract.org/2004/07/Deewr.Tga.Model"/>\n      '
                                    '<xsd:import schemaLocation="OrganisationServiceArrays.xsd"')
            for i, n in enumerate(files):
                wsdl = wsdl.replace('schemaLocation="%s"' % n, 'schemaLocation="%s?xsd=xsd%d"' % (base, i))
        return 200, [("Content-Type", "text/xml; charset=UTF-8")], [wsdl.encode()]

    # -------------------------------------------------------------------------------------------- control plane

    def control(self, method, path, query, body):
        try:
            spec = json.loads(body.decode("utf-8") or "{}") if method == "POST" else {}
        except ValueError as e:
            return self.json(400, {"error": "bad JSON: %s" % e})
        common = fakekit.common_control(self, method, path)
        if common is not None:
            return self.json(*common)
        if path == "/_fake/fault" and method == "POST":
            kind = spec.get("kind")
            if kind not in TRANSPORT_FAULTS | PROTOCOL_FAULTS:
                return self.json(400, {"error": "unknown fault kind %r" % kind,
                                       "kinds": sorted(TRANSPORT_FAULTS | PROTOCOL_FAULTS)})
            op, service = spec.get("op", "*"), (spec.get("service") or "").lower()
            if service and service not in SERVICES:
                return self.json(400, {"error": "unknown service %r" % spec.get("service"),
                                       "services": sorted(PORT_NAMES.values())})
            known = {o for port, (_, _, ops) in SERVICES.items() if not service or port == service for o in ops}
            if op not in known | {"*", "wsdl"}:
                # A fault armed on an op that never comes would never fire: refuse it.
                return self.json(400, {"error": "unknown op %r" % op, "ops": sorted(known | {"*", "wsdl"})})
            with self.fault_lock:
                self.faults.append(Fault(spec))
            return self.json(200, {"ok": True, "armed": len(self.faults)})
        if path == "/_fake/fault" and method == "GET":
            with self.fault_lock:
                return self.json(200, [dict(f.spec, count=f.count, fired=f.fired) for f in self.faults])
        if path == "/_fake/clock":
            if method == "POST":
                try:
                    self.clock.set(spec)
                except (ValueError, KeyError) as e:
                    return self.json(400, {"error": str(e)})
            now = self.clock.now()
            return self.json(200, {"now": format_instant(now), "frozen": self.clock.frozen,
                                   "offset_minutes": sydney_offset_minutes(now)})
        if path == "/_fake/mutate" and method == "POST":
            try:
                with self.mutate_lock:
                    summary = self.register.mutate(spec, self.clock.now())
            except (ValueError, KeyError, TypeError) as e:
                return self.json(400, {"error": str(e)})
            return self.json(200, summary)
        if path == "/_fake/dump" and method == "GET":
            params = urllib.parse.parse_qs(query)
            scopes = params.get("scopes", ["1"])[0].lower() not in ("0", "false", "no")
            return "stream", self.register, scopes
        if path.startswith("/_fake/login"):
            return 200, [("Content-Type", "text/html; charset=utf-8")], [LOGIN_PAGE]
        return self.json(404, {"error": "no such control endpoint %s %s" % (method, path)})

    @staticmethod
    def json(status, obj):
        return status, [("Content-Type", "application/json")], [json.dumps(obj, sort_keys=True).encode()]


# ================================================================================================ HTTP layer

REASONS = {200: "OK", 302: "Found", 400: "Bad Request", 404: "Not Found", 415: "Unsupported Media Type",
           429: "Too Many Requests", 500: "Internal Server Error", 503: "Service Unavailable"}


class Handler(http_wire.Handler):
    """The SOAP services over the shared HTTP layer (http_wire.py), dressed as IIS: Server, X-Powered-By and a
    real-time Date on every response, Cache-Control on successful service responses."""

    name = "fake_tga_soap"
    reasons = REASONS
    malformed_suffix = b"<ValidationError><<&&>> </s:Envelope"
    drip_interval = 0.5

    def serve(self, method, target, headers, body, keep, t0):
        app = self.server.app
        path, _, query = target.partition("?")
        lpath = path.lower()
        service, op, what = "-", "-", None
        fault = None
        faultcode = None
        if lpath.startswith("/_fake/"):
            res = app.control(method, path, query, body)
            if res[0] == "stream":
                return self.stream_dump(res[1], app.mutate_lock, res[2], keep, t0)
            return self.send(res, keep, None, service, "control", t0, method, path, None, control=True)
        m = app.path_re.match(lpath)
        if m is None:
            res = (404, [("Content-Type", "text/html")], [IIS_404])
        else:
            service = "training" if m.group(1) == "trainingcomponentservice" else "organisation"
            port = (m.group(2) or "/").strip("/").lower()
            if method == "GET" and query and query.lower().split("=")[0] in ("wsdl", "singlewsdl", "xsd"):
                op, what = "wsdl", "wsdl"
            elif method != "POST":
                res = (200, [("Content-Type", "text/html; charset=UTF-8")], [HELP_PAGE])
            elif port not in ("training", "training12") and service == "training" or \
                    port not in ("organisation", "organisation12") and service == "organisation":
                res = (404, [("Content-Type", "text/html")], [IIS_404])
            else:
                op, what = (headers.get("soapaction") or "").strip().strip('"').rsplit("/", 1)[-1] or "?", "soap"
        if what is not None:
            fault = app.take_fault(service, op, TRANSPORT_FAULTS)
            if fault is not None and fault.kind in ("http500", "http503", "http429", "html", "redirect"):
                res = self.transport_fault_response(fault)
            elif fault is not None and fault.kind == "hang":
                app.count(service, op, 0, 0, "hang")
                self.log(method, path, op, "hang", 0, t0)
                app.stop.wait()
                return False
            else:
                if fault is not None and fault.kind == "slow":
                    time.sleep(float(fault.spec.get("delay", 5)))
                if what == "wsdl":
                    res = app.wsdl_response(service, query.lower(), headers.get("host", "127.0.0.1"))
                else:
                    res, op, faultcode = app.handle_soap(service, port, headers, body)
        return self.send(res, keep, fault, service, op, t0, method, path, faultcode)

    @staticmethod
    def transport_fault_response(f):
        if f.kind == "http500":
            return 500, [("Content-Type", "text/html")], [IIS_500]
        if f.kind == "http503":
            return 503, [("Content-Type", "text/html; charset=us-ascii")], [HTTP_503]
        if f.kind == "http429":
            return 429, [("Content-Type", "text/html"), ("Retry-After", str(int(f.spec.get("retry_after", 5))))], \
                [b"<html><body><h1>429 Too Many Requests</h1></body></html>"]
        if f.kind == "html":
            return 200, [("Content-Type", "text/html; charset=utf-8")], [ASPNET_ERROR]
        return 302, [("Content-Type", "text/html; charset=utf-8"),
                     ("Location", "/_fake/login?ReturnUrl=%2fDeewr.Tga.Webservices")], \
            [b'<html><head><title>Object moved</title></head><body><h2>Object moved to '
             b'<a href="/_fake/login?ReturnUrl=%2fDeewr.Tga.Webservices">here</a>.</h2></body></html>']

    def file_range(self, part):
        # Scope ranges are (offset, count) in the store's one scope file.
        offset, count = part
        return self.server.app.store.scope_fd, offset, count

    def extra_headers(self, status, control):
        head = ["Server: Microsoft-IIS/10.0", "X-Powered-By: ASP.NET"]
        if status == 200 and not control:
            head.append("Cache-Control: private")
        head.append("Date: %s" % time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime()))
        return head

    def send(self, res, keep, fault, service, op, t0, method, path, faultcode, control=False):
        app = self.server.app
        status, hdrs, parts = res
        injected = fault.kind if fault is not None else None
        sent, keep = self.respond(status, hdrs, parts, keep, fault, control,
                                  lambda n: app.count(service, op, status, n, injected, faultcode),
                                  lambda delta: app.count_bytes(op, delta))
        self.log(method, path, op, status, sent, t0, injected or faultcode)
        return keep


class Server(http_wire.Server):
    handler = Handler


IIS_404 = (b"<!DOCTYPE html><html><head><title>404 - File or directory not found.</title></head><body>"
           b"<h2>404 - File or directory not found.</h2><h3>The resource you are looking for might have been removed,"
           b" had its name changed, or is temporarily unavailable.</h3></body></html>")
IIS_500 = (b"<!DOCTYPE html><html><head><title>500 - Internal server error.</title></head><body>"
           b"<h2>500 - Internal server error.</h2><h3>There is a problem with the resource you are looking for, and "
           b"it cannot be displayed.</h3></body></html>")
HTTP_503 = (b'<!DOCTYPE HTML PUBLIC "-//W3C//DTD HTML 4.01//EN""http://www.w3.org/TR/html4/strict.dtd">\r\n'
            b"<HTML><HEAD><TITLE>Service Unavailable</TITLE></HEAD><BODY><h2>Service Unavailable</h2>"
            b"<hr><p>HTTP Error 503. The service is unavailable.</p></BODY></HTML>\r\n")
ASPNET_ERROR = (b"<html><head><title>Runtime Error</title></head><body bgcolor=\"white\"><span><H1>Server Error in "
                b"'/Deewr.Tga.Webservices' Application.<hr width=100% size=1 color=silver></H1><h2> <i>Runtime Error"
                b"</i> </h2></span><p>An application error occurred on the server.</p></body></html>")
LOGIN_PAGE = (b"<!DOCTYPE html><html><head><title>Sign in</title></head><body><form method=\"post\">"
              b"<input name=\"username\"/><input name=\"password\" type=\"password\"/></form></body></html>")
HELP_PAGE = (b"<html><head><title>Service</title></head><body><h1>Service</h1><p>You have created a service.</p>"
             b"<p>To test this service, you will need to create a client and use it to call the service. You can do "
             b"this using the svcutil.exe tool from the command line with the following syntax: svcutil.exe "
             b"?wsdl</p></body></html>")

# Later derived types (from the CXF stubs regenerated from the live WSDL, reference [S2]), appended to the served
# schema so the WSDL describes what the fake emits. TrainingComponent4 (CurrencyStatus) is this fake's name for
# the type that carries CurrencyStatus (V2+ per the reference); its real name is not known.
DERIVED_TC = """
  <xs:complexType name="TrainingComponent2"><xs:complexContent mixed="false"><xs:extension base="tns:TrainingComponent"><xs:sequence><xs:element minOccurs="0" name="IsLegacyData" type="xs:boolean"/></xs:sequence></xs:extension></xs:complexContent></xs:complexType>
  <xs:element name="TrainingComponent2" nillable="true" type="tns:TrainingComponent2"/>
  <xs:complexType name="TrainingComponent3"><xs:complexContent mixed="false"><xs:extension base="tns:TrainingComponent2"><xs:sequence/></xs:extension></xs:complexContent></xs:complexType>
  <xs:element name="TrainingComponent3" nillable="true" type="tns:TrainingComponent3"/>
  <xs:complexType name="TrainingComponent4"><xs:complexContent mixed="false"><xs:extension base="tns:TrainingComponent3"><xs:sequence><xs:element minOccurs="0" name="CurrencyStatus" nillable="true" type="xs:string"/></xs:sequence></xs:extension></xs:complexContent></xs:complexType>
  <xs:element name="TrainingComponent4" nillable="true" type="tns:TrainingComponent4"/>
  <xs:complexType name="TrainingComponentSummary2"><xs:complexContent mixed="false"><xs:extension base="tns:TrainingComponentSummary"><xs:sequence><xs:element minOccurs="0" name="IsLegacyData" type="xs:boolean"/></xs:sequence></xs:extension></xs:complexContent></xs:complexType>
  <xs:element name="TrainingComponentSummary2" nillable="true" type="tns:TrainingComponentSummary2"/>
  <xs:complexType name="TrainingComponentSummary3"><xs:complexContent mixed="false"><xs:extension base="tns:TrainingComponentSummary2"><xs:sequence><xs:element minOccurs="0" name="CurrencyStatus" nillable="true" type="xs:string"/></xs:sequence></xs:extension></xs:complexContent></xs:complexType>
  <xs:element name="TrainingComponentSummary3" nillable="true" type="tns:TrainingComponentSummary3"/>
  <xs:complexType name="Release3"><xs:complexContent mixed="false"><xs:extension base="tns:Release"><xs:sequence/></xs:extension></xs:complexContent></xs:complexType>
  <xs:element name="Release3" nillable="true" type="tns:Release3"/>
  <xs:complexType name="Release4"><xs:complexContent mixed="false"><xs:extension base="tns:Release3"><xs:sequence><xs:element minOccurs="0" name="CompanionVolumeLinks" nillable="true" type="tns:ArrayOfReleaseCompanionVolumeLink"/></xs:sequence></xs:extension></xs:complexContent></xs:complexType>
  <xs:element name="Release4" nillable="true" type="tns:Release4"/>
  <xs:complexType name="ArrayOfReleaseCompanionVolumeLink"><xs:sequence><xs:element minOccurs="0" maxOccurs="unbounded" name="ReleaseCompanionVolumeLink" nillable="true" type="tns:ReleaseCompanionVolumeLink"/></xs:sequence></xs:complexType>
  <xs:element name="ArrayOfReleaseCompanionVolumeLink" nillable="true" type="tns:ArrayOfReleaseCompanionVolumeLink"/>
  <xs:complexType name="ReleaseCompanionVolumeLink"><xs:sequence><xs:element minOccurs="0" name="LinkNotes" nillable="true" type="xs:string"/><xs:element minOccurs="0" name="LinkText" nillable="true" type="xs:string"/><xs:element minOccurs="0" name="LinkUrl" nillable="true" type="xs:string"/><xs:element minOccurs="0" name="PublishedComponentType" nillable="true" type="xs:string"/></xs:sequence></xs:complexType>
  <xs:element name="ReleaseCompanionVolumeLink" nillable="true" type="tns:ReleaseCompanionVolumeLink"/>
  <xs:complexType name="UnitGridEntry3"><xs:complexContent mixed="false"><xs:extension base="tns:UnitGridEntry"><xs:sequence><xs:element minOccurs="0" name="IsEssential" nillable="true" type="xs:boolean"/></xs:sequence></xs:extension></xs:complexContent></xs:complexType>
  <xs:element name="UnitGridEntry3" nillable="true" type="tns:UnitGridEntry3"/>
  <xs:complexType name="NrtCurrencyPeriod2"><xs:complexContent mixed="false"><xs:extension base="tns:NrtCurrencyPeriod"><xs:sequence><xs:element minOccurs="0" name="EndComment" nillable="true" type="xs:string"/><xs:element minOccurs="0" name="EndReasonCode" nillable="true" type="xs:string"/></xs:sequence></xs:extension></xs:complexContent></xs:complexType>
  <xs:element name="NrtCurrencyPeriod2" nillable="true" type="tns:NrtCurrencyPeriod2"/>
  <xs:complexType name="TrainingComponentInformationRequested2"><xs:complexContent mixed="false"><xs:extension base="tns:TrainingComponentInformationRequested"><xs:sequence><xs:element minOccurs="0" name="ShowCompanionVolumeLinks" type="xs:boolean"/></xs:sequence></xs:extension></xs:complexContent></xs:complexType>
  <xs:element name="TrainingComponentInformationRequested2" nillable="true" type="tns:TrainingComponentInformationRequested2"/>
"""
DERIVED_ORG = """
  <xs:complexType name="Organisation2"><xs:complexContent mixed="false"><xs:extension base="tns:Organisation"><xs:sequence><xs:element minOccurs="0" name="IsLegacyData" type="xs:boolean"/></xs:sequence></xs:extension></xs:complexContent></xs:complexType>
  <xs:element name="Organisation2" nillable="true" type="tns:Organisation2"/>
  <xs:complexType name="Rto3"><xs:complexContent mixed="false"><xs:extension base="tns:Organisation2"><xs:sequence><xs:element minOccurs="0" name="Classifications" nillable="true" type="tns:ArrayOfClassification"/><xs:element minOccurs="0" name="DeliveryNotifications" nillable="true" type="tns:ArrayOfDeliveryNotification"/><xs:element minOccurs="0" name="RegistrationManagers" nillable="true" type="tns:ArrayOfRegistrationManagerAssignment"/><xs:element minOccurs="0" name="RegistrationPeriods" nillable="true" type="tns:ArrayOfRegistrationPeriod"/><xs:element minOccurs="0" name="RegistrationStatus" nillable="true" type="xs:string"/><xs:element minOccurs="0" name="Restrictions" nillable="true" type="tns:ArrayOfRtoRestriction2"/><xs:element minOccurs="0" name="Scopes" nillable="true" type="tns:ArrayOfScope2"/></xs:sequence></xs:extension></xs:complexContent></xs:complexType>
  <xs:element name="Rto3" nillable="true" type="tns:Rto3"/>
  <xs:complexType name="ArrayOfScope2"><xs:sequence><xs:element minOccurs="0" maxOccurs="unbounded" name="Scope2" nillable="true" type="tns:Scope2"/></xs:sequence></xs:complexType>
  <xs:element name="ArrayOfScope2" nillable="true" type="tns:ArrayOfScope2"/>
  <xs:complexType name="Scope2"><xs:complexContent mixed="false"><xs:extension base="tns:Scope"><xs:sequence><xs:element name="ScopeDecisionType" type="q90:ScopeDecisionType" xmlns:q90="http://schemas.datacontract.org/2004/07/Deewr.Tga.Model"/></xs:sequence></xs:extension></xs:complexContent></xs:complexType>
  <xs:element name="Scope2" nillable="true" type="tns:Scope2"/>
  <xs:complexType name="ArrayOfRtoRestriction2"><xs:sequence><xs:element minOccurs="0" maxOccurs="unbounded" name="RtoRestriction2" nillable="true" type="tns:RtoRestriction2"/></xs:sequence></xs:complexType>
  <xs:element name="ArrayOfRtoRestriction2" nillable="true" type="tns:ArrayOfRtoRestriction2"/>
  <xs:complexType name="RtoRestriction2"><xs:complexContent mixed="false"><xs:extension base="tns:RtoRestriction"><xs:sequence><xs:element name="RestrictionTypeCode" nillable="true" type="xs:string"/></xs:sequence></xs:extension></xs:complexContent></xs:complexType>
  <xs:element name="RtoRestriction2" nillable="true" type="tns:RtoRestriction2"/>
  <xs:complexType name="OrganisationSearchResultItem2"><xs:complexContent mixed="false"><xs:extension base="tns:OrganisationSearchResultItem"><xs:sequence><xs:element minOccurs="0" name="IsLegacyData" type="xs:boolean"/></xs:sequence></xs:extension></xs:complexContent></xs:complexType>
  <xs:element name="OrganisationSearchResultItem2" nillable="true" type="tns:OrganisationSearchResultItem2"/>
  <xs:complexType name="OrganisationSearchResultItem3"><xs:complexContent mixed="false"><xs:extension base="tns:OrganisationSearchResultItem2"><xs:sequence><xs:element minOccurs="0" name="RegistrationStatus" nillable="true" type="xs:string"/></xs:sequence></xs:extension></xs:complexContent></xs:complexType>
  <xs:element name="OrganisationSearchResultItem3" nillable="true" type="tns:OrganisationSearchResultItem3"/>
"""
SCOPE_DECISION_TYPE = """
  <xs:simpleType name="ScopeDecisionType"><xs:restriction base="xs:string"><xs:enumeration value="Granted"/><xs:enumeration value="Refused"/><xs:enumeration value="Suspended"/><xs:enumeration value="Cancelled"/></xs:restriction></xs:simpleType>
  <xs:element name="ScopeDecisionType" nillable="true" type="tns:ScopeDecisionType"/>
"""


def main(argv=None):
    ap = argparse.ArgumentParser(description="Fake training.gov.au SOAP web services")
    fakekit.add_listen_args(ap)
    fakekit.add_register_args(ap, reg)
    ap.add_argument("--version", type=int, default=13, help="service version (namespace and path); 1 = unversioned")
    ap.add_argument("--username", default="WebService.Read")
    ap.add_argument("--password-file", help="file holding the password (default: the public sandbox one)")
    ap.add_argument("--max-page-size", type=int, default=1000)
    fakekit.add_clock_cache_args(ap, reg, "fake-tga-soap-cache")
    args = ap.parse_args(argv)

    app = App(args)
    server, port = fakekit.listen(Server, app, args)
    app.say("fake_tga_soap: listening on 127.0.0.1:%d (version %d, scale %s, seed %d)"
            % (port, args.version, args.scale, args.seed))
    fakekit.serve_then_exit(app, server)


if __name__ == "__main__":
    sys.exit(main())
