/*
 * GetDetails responses, streamed into stage records (see stage.h for the record layouts).
 *
 * TrainingComponentService: GetDetailsResponse/GetDetailsResult (i:type TrainingComponent4, or i:nil when the
 * code is gone) with, in XSD order: Classifications/Classification, Code, ComponentType, CreatedDate (DTO),
 * CurrencyPeriods/NrtCurrencyPeriod(2), IsConfidential, IscOrganisationCode, MappingInformation/Mapping,
 * ParentCode, ParentTitle, Releases/Release(4)/{ApprovalProcess, Currency, ReleaseDate, ReleaseNumber,
 * UnitGrid/UnitGridEntry(3)/{Code, Title, IsEssential}}, Title, UpdatedDate (DTO),
 * UsageRecommendations/UsageRecommendation, IsLegacyData, CurrencyStatus.
 *
 * OrganisationService: GetDetailsResult i:type Rto3 (or Organisation2, an organisation that is not an RTO: the
 * base members only; the i:type is kept as ORG_KIND): CreatedDate, Locations/OrganisationLocation/{Address},
 * ResponsibleLegalPersons/ResponsibleLegalPerson/{Abns/string, Acn, Name}, TradingNames/TradingName, UpdatedDate,
 * Urls/Url, IsLegacyData, RegistrationPeriods/RegistrationPeriod, RegistrationStatus, Scopes/Scope2 (an
 * ArrayOfScope2: its items are <Scope2>; <Scope> is accepted too).  The organisation's code is not in the body
 * (it is inside Codes, which we do not ask for): it is the code requested.
 *
 * What we did not ask for (Contacts, Files, Components, ...) is skipped without being read into memory.  A scope
 * row without NrtCode is skipped and reported; a component without Code is reported by the writer.  The RTO's
 * scope gets an order-independent hash (the sum of its rows' FNV-1a hashes), so a writer can tell an unchanged
 * 30,000-row scope without touching its rows.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "parse.h"
#include "tga.h"
#include "xmalloc.h"

void
pd_init(struct pd_ctx *c, enum tga_service svc, unsigned flags, struct stage *stage, const char *code)
{
	memset(c, 0, sizeof *c);
	c->svc = svc;
	c->flags = flags;
	c->stage = stage;
	c->code = code;
	c->result_depth = -1;
	rec_init(&c->head);
	rec_init(&c->child);
	rec_init(&c->rel);
}

void
pd_free(struct pd_ctx *c)
{
	rec_free(&c->head);
	rec_free(&c->child);
	rec_free(&c->rel);
	free(c->cause);
}

/* Text as sent (titles, names, notes). */
static void
set_text(struct rec *r, int i, const char *text, size_t len, bool nil)
{
	if (nil)
		rec_set_str(r, i, NULL);
	else
		rec_set(r, i, text, len);
}

/* Codes, dates, enumerations: surrounding white space is not part of the value. */
static void
set_token(struct rec *r, int i, const char *text, size_t len, bool nil)
{
	if (nil) {
		rec_set_str(r, i, NULL);
		return;
	}
	parse_trim(&text, &len);
	rec_set(r, i, text, len);
}

static void
set_bool(struct xml_parser *p, struct rec *r, int i, int id, const char *text, size_t len, bool nil)
{
	bool b;

	if (nil) {
		rec_set_str(r, i, NULL);
		return;
	}
	if (!xml_bool(text, len, &b)) {
		xml_fail(p, "<%s> '%.*s' is not a boolean", xml_name(id), (int)(len < 32 ? len : 32), text);
		return;
	}
	rec_set_bool(r, i, b);
}

static void
put(struct xml_parser *p, struct pd_ctx *c, const struct rec *r)
{
	if (c->cause == NULL && stage_put(c->stage, r, &c->cause) == -1)
		xml_fail(p, "%s", c->cause);
}

static void
reject(struct xml_parser *p, struct pd_ctx *c, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void
reject(struct xml_parser *p, struct pd_ctx *c, const char *fmt, ...)
{
	struct rec r;
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	rec_init(&r);
	rec_begin(&r, REC_REJECT, 1);
	rec_set_str(&r, 0, msg);
	put(p, c, &r);
	rec_free(&r);
	c->rejects++;
}

static enum xml_mode
result_start(struct pd_ctx *c, int id, int depth, bool nil)
{
	c->saw_result = true;
	c->nil = nil;
	c->result_depth = depth;
	if (c->svc == SVC_TRAINING)
		rec_begin(&c->head, REC_TC_HEAD, TC__N);
	else
		rec_begin(&c->head, REC_ORG_HEAD, ORG__N);
	return XM_TEXT;
}

/* Above the result: walk Envelope/Body/GetDetailsResponse down to GetDetailsResult, skip anything else. */
static enum xml_mode
envelope_start(struct pd_ctx *c, int id, int parent, int depth, bool nil)
{
	if (depth == 1 && id != XN_Body)
		return XM_SKIP;
	if (depth == 3 && id == XN_GetDetailsResult && parent == XN_GetDetailsResponse)
		return result_start(c, id, depth, nil);
	return depth < 3 ? XM_TEXT : XM_SKIP;
}

/* --- training components ------------------------------------------------------------------------------------ */

static enum xml_mode
tc_start(struct xml_parser *p, void *h, int id, int parent, int depth, bool nil)
{
	struct pd_ctx *c = h;
	int rel;

	if (c->result_depth < 0)
		return envelope_start(c, id, parent, depth, nil);
	rel = depth - c->result_depth;
	switch (rel) {
	case 1:
		switch (id) {
		case XN_CreatedDate:
		case XN_UpdatedDate:
			return XM_DTO;
		case XN_Code: case XN_ComponentType: case XN_IsConfidential: case XN_IscOrganisationCode:
		case XN_ParentCode: case XN_ParentTitle: case XN_Title: case XN_IsLegacyData: case XN_CurrencyStatus:
		case XN_Classifications: case XN_CurrencyPeriods: case XN_MappingInformation: case XN_Releases:
		case XN_UsageRecommendations:
			return XM_TEXT;
		}
		return XM_SKIP;
	case 2:
		if (id == XN_Classification && parent == XN_Classifications)
			rec_begin(&c->child, REC_TC_CLASS, 5);
		else if (id == XN_NrtCurrencyPeriod && parent == XN_CurrencyPeriods)
			rec_begin(&c->child, REC_TC_CURRENCY, 5);
		else if (id == XN_Mapping && parent == XN_MappingInformation)
			rec_begin(&c->child, REC_TC_MAPPING, 6);
		else if (id == XN_UsageRecommendation && parent == XN_UsageRecommendations)
			rec_begin(&c->child, REC_TC_USAGE, 3);
		else if (id == XN_Release && parent == XN_Releases) {
			rec_begin(&c->rel, REC_TC_RELEASE, 4);
			c->release_has_number = false;
		} else
			return XM_SKIP;
		return XM_TEXT;
	case 3:
		if (parent == XN_Release) {
			switch (id) {
			case XN_ApprovalProcess: case XN_Currency: case XN_ReleaseDate: case XN_ReleaseNumber:
			case XN_UnitGrid:
				return XM_TEXT;
			}
			return XM_SKIP;	/* Components, Files, CompanionVolumeLinks, ... */
		}
		return XM_TEXT;
	case 4:
		if (id == XN_UnitGridEntry && parent == XN_UnitGrid) {
			rec_begin(&c->child, REC_TC_GRID, 4);
			/* ReleaseNumber precedes UnitGrid in the XSD sequence, and WCF writes in that order. */
			if (c->release_has_number)
				rec_set(&c->child, 0, c->release_number, strlen(c->release_number));
			return XM_TEXT;
		}
		return XM_SKIP;
	case 5:
		return parent == XN_UnitGridEntry ? XM_TEXT : XM_SKIP;
	}
	return XM_SKIP;
}

static void
tc_end(struct xml_parser *p, void *h, int id, int parent, int grandparent, int depth, const char *text,
    size_t len, bool nil)
{
	struct pd_ctx *c = h;
	struct rec *r;
	int rel;

	if (c->result_depth < 0)
		return;
	rel = depth - c->result_depth;
	switch (rel) {
	case 0:
		c->result_depth = -1;
		return;
	case 1:
		r = &c->head;
		switch (id) {
		case XN_Code: set_token(r, TC_CODE, text, len, nil); break;
		case XN_ComponentType: set_token(r, TC_TYPE, text, len, nil); break;
		case XN_Title: set_text(r, TC_TITLE, text, len, nil); break;
		case XN_ParentCode: set_token(r, TC_PARENT_CODE, text, len, nil); break;
		case XN_ParentTitle: set_text(r, TC_PARENT_TITLE, text, len, nil); break;
		case XN_IsConfidential: set_bool(p, r, TC_CONFIDENTIAL, id, text, len, nil); break;
		case XN_IsLegacyData: set_bool(p, r, TC_LEGACY, id, text, len, nil); break;
		case XN_CurrencyStatus: set_token(r, TC_CURRENCY_STATUS, text, len, nil); break;
		case XN_CreatedDate: set_token(r, TC_CREATED, text, len, nil); break;
		case XN_UpdatedDate: set_token(r, TC_UPDATED, text, len, nil); break;
		case XN_IscOrganisationCode: set_token(r, TC_ISC_CODE, text, len, nil); break;
		}
		return;
	case 2:
		if (id == XN_Release)
			put(p, c, &c->rel);
		else if (id == XN_UsageRecommendation) {
			/* The recommendation in force: the one without an end date. */
			if (!rec_isset(&c->child, 2) && rec_isset(&c->child, 0))
				rec_set_str(&c->head, TC_USAGE_CURRENT, rec_str(&c->child, 0));
			put(p, c, &c->child);
		} else if (id == XN_Classification || id == XN_NrtCurrencyPeriod || id == XN_Mapping)
			put(p, c, &c->child);
		return;
	case 3:
		r = &c->child;
		switch (parent) {
		case XN_Classification:
			switch (id) {
			case XN_SchemeCode: set_token(r, 0, text, len, nil); break;
			case XN_ValueCode: set_token(r, 1, text, len, nil); break;
			case XN_PurposeCode: set_token(r, 2, text, len, nil); break;
			case XN_StartDate: set_token(r, 3, text, len, nil); break;
			case XN_EndDate: set_token(r, 4, text, len, nil); break;
			}
			break;
		case XN_NrtCurrencyPeriod:
			switch (id) {
			case XN_Authority: set_token(r, 0, text, len, nil); break;
			case XN_StartDate: set_token(r, 1, text, len, nil); break;
			case XN_EndDate: set_token(r, 2, text, len, nil); break;
			case XN_EndReasonCode: set_token(r, 3, text, len, nil); break;
			case XN_EndComment: set_text(r, 4, text, len, nil); break;
			}
			break;
		case XN_Mapping:
			switch (id) {
			case XN_Code: set_token(r, 0, text, len, nil); break;
			case XN_Title: set_text(r, 1, text, len, nil); break;
			case XN_MapsToCode: set_token(r, 2, text, len, nil); break;
			case XN_MapsToTitle: set_text(r, 3, text, len, nil); break;
			case XN_IsEquivalent: set_bool(p, r, 4, id, text, len, nil); break;
			case XN_Notes: set_text(r, 5, text, len, nil); break;
			}
			break;
		case XN_UsageRecommendation:
			switch (id) {
			case XN_State: set_token(r, 0, text, len, nil); break;
			case XN_StartDate: set_token(r, 1, text, len, nil); break;
			case XN_EndDate: set_token(r, 2, text, len, nil); break;
			}
			break;
		case XN_Release:
			r = &c->rel;
			switch (id) {
			case XN_ReleaseNumber:
				set_token(r, 0, text, len, nil);
				if (!nil) {
					parse_trim(&text, &len);
					if (len >= sizeof c->release_number)
						len = sizeof c->release_number - 1;
					memcpy(c->release_number, text, len);
					c->release_number[len] = '\0';
					c->release_has_number = true;
				}
				break;
			case XN_ReleaseDate: set_token(r, 1, text, len, nil); break;
			case XN_Currency: set_token(r, 2, text, len, nil); break;
			case XN_ApprovalProcess: set_text(r, 3, text, len, nil); break;
			}
			break;
		}
		return;
	case 4:
		if (id == XN_UnitGridEntry)
			put(p, c, &c->child);
		return;
	case 5:
		r = &c->child;
		switch (id) {
		case XN_Code: set_token(r, 1, text, len, nil); break;
		case XN_Title: set_text(r, 2, text, len, nil); break;
		case XN_IsEssential: set_bool(p, r, 3, id, text, len, nil); break;
		}
		return;
	}
}

const struct xml_handler pd_tc_handler = { tc_start, tc_end };

/* --- organisations ------------------------------------------------------------------------------------------ */

static enum xml_mode
org_start(struct xml_parser *p, void *h, int id, int parent, int depth, bool nil)
{
	struct pd_ctx *c = h;
	enum xml_mode mode;
	int rel;

	if (c->result_depth < 0) {
		mode = envelope_start(c, id, parent, depth, nil);
		/* Rto3 for an RTO; an organisation that is not one (Organisation2) has no registration and no scope. */
		if (c->result_depth == depth && xml_xsi_type(p)[0] != '\0')
			rec_set_str(&c->head, ORG_KIND, xml_xsi_type(p));
		return mode;
	}
	rel = depth - c->result_depth;
	switch (rel) {
	case 1:
		switch (id) {
		case XN_CreatedDate:
		case XN_UpdatedDate:
			return XM_DTO;
		case XN_Scopes:
			c->scope_seen = true;
			return XM_TEXT;
		case XN_IsLegacyData: case XN_RegistrationStatus: case XN_Locations: case XN_ResponsibleLegalPersons:
		case XN_TradingNames: case XN_Urls: case XN_RegistrationPeriods:
			return XM_TEXT;
		}
		return XM_SKIP;
	case 2:
		if (id == XN_OrganisationLocation && parent == XN_Locations)
			rec_begin(&c->child, REC_ORG_LOCATION, 9);
		else if (id == XN_ResponsibleLegalPerson && parent == XN_ResponsibleLegalPersons) {
			rec_begin(&c->rel, REC_NONE, 5);	/* name, abn, acn, start, end: folded into the head */
			c->abn_seen = false;
		} else if (id == XN_TradingName && parent == XN_TradingNames)
			rec_begin(&c->child, REC_ORG_TRADING, 3);
		else if (id == XN_Url && parent == XN_Urls)
			rec_begin(&c->child, REC_ORG_URL, 3);
		else if (id == XN_RegistrationPeriod && parent == XN_RegistrationPeriods)
			rec_begin(&c->child, REC_ORG_PERIOD, 6);
		else if ((id == XN_Scope2 || id == XN_Scope) && parent == XN_Scopes)
			rec_begin(&c->child, REC_ORG_SCOPE, 8);
		else
			return XM_SKIP;
		return XM_TEXT;
	case 3:
		return XM_TEXT;
	case 4:
		if (parent == XN_Address || (parent == XN_Abns && id == XN_string))
			return XM_TEXT;
		return XM_SKIP;
	}
	return XM_SKIP;
}

static uint64_t
fnv1a(uint64_t h, const char *s, int32_t len)
{
	int32_t i;

	if (len < 0)
		return (h ^ 0x1e) * 1099511628211ull;	/* NULL differs from "" */
	for (i = 0; i < len; i++)
		h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
	return (h ^ 0x1f) * 1099511628211ull;
}

uint64_t
pd_scope_row_hash(const struct rec *r)
{
	uint64_t h = 14695981039346656037ull;
	int i;

	for (i = 0; i < r->n; i++)
		h = fnv1a(h, rec_str(r, i), r->len[i]);
	return h;
}

static void
scope_end(struct xml_parser *p, struct pd_ctx *c)
{
	struct rec *r = &c->child;
	const char *code = rec_str(r, 0);

	if (code == NULL || !tga_code_valid(code, strlen(code))) {
		reject(p, c, "RTO %s: a scope row with %s NrtCode%s%s (TrainingComponentType %s, StartDate %s)", c->code,
		    code ? "an invalid" : "no", code ? " " : "", code ? code : "", rec_str(r, 2) ? rec_str(r, 2) : "?",
		    rec_str(r, 6) ? rec_str(r, 6) : "?");
		return;
	}
	/* Booleans that are not nillable: absent means false (EmitDefaultValue=false). */
	if (!rec_isset(r, 1))
		rec_set_bool(r, 1, false);
	if (!rec_isset(r, 4))
		rec_set_bool(r, 4, false);
	c->scope_hash += pd_scope_row_hash(r);
	c->scope_count++;
	put(p, c, r);
}

static void
legal_end(struct pd_ctx *c)
{
	bool current = !rec_isset(&c->rel, 4);
	int i;

	/* The legal name is the responsible legal person in office (no end date); failing that, the last one. */
	if (c->legal_any && c->legal_current && !current)
		return;
	if (c->legal_any && c->legal_current && current)
		return;		/* the first current one wins */
	for (i = 0; i < 3; i++)
		rec_set_str(&c->head, ORG_LEGAL_NAME + i, rec_str(&c->rel, i));
	c->legal_any = true;
	c->legal_current = current;
}

static void
org_end(struct xml_parser *p, void *h, int id, int parent, int grandparent, int depth, const char *text,
    size_t len, bool nil)
{
	struct pd_ctx *c = h;
	struct rec *r = &c->child;
	int rel;

	if (c->result_depth < 0)
		return;
	rel = depth - c->result_depth;
	switch (rel) {
	case 0: {
		char hash[32], count[32];

		snprintf(hash, sizeof hash, "%lld", (long long)c->scope_hash);
		snprintf(count, sizeof count, "%lld", (long long)c->scope_count);
		rec_set_str(&c->head, ORG_SCOPE_HASH, hash);
		rec_set_str(&c->head, ORG_SCOPE_COUNT, count);
		rec_set_str(&c->head, ORG_SCOPE_SEEN, c->scope_seen ? "1" : "0");
		c->result_depth = -1;
		return;
	}
	case 1:
		switch (id) {
		case XN_CreatedDate: set_token(&c->head, ORG_CREATED, text, len, nil); break;
		case XN_UpdatedDate: set_token(&c->head, ORG_UPDATED, text, len, nil); break;
		case XN_RegistrationStatus: set_token(&c->head, ORG_STATUS, text, len, nil); break;
		case XN_IsLegacyData: set_bool(p, &c->head, ORG_LEGACY, id, text, len, nil); break;
		}
		return;
	case 2:
		switch (id) {
		case XN_Scope:
		case XN_Scope2:
			scope_end(p, c);
			break;
		case XN_ResponsibleLegalPerson:
			legal_end(c);
			break;
		case XN_OrganisationLocation: case XN_TradingName: case XN_Url: case XN_RegistrationPeriod:
			put(p, c, r);
			break;
		}
		return;
	case 3:
		switch (parent) {
		case XN_Scope:
		case XN_Scope2:
			switch (id) {
			case XN_NrtCode: set_token(r, 0, text, len, nil); break;
			case XN_IsImplicit: set_bool(p, r, 1, id, text, len, nil); break;
			case XN_TrainingComponentType: set_token(r, 2, text, len, nil); break;
			case XN_ExtentCode: set_token(r, 3, text, len, nil); break;
			case XN_IsRefused: set_bool(p, r, 4, id, text, len, nil); break;
			case XN_ScopeDecisionType: set_token(r, 5, text, len, nil); break;
			case XN_StartDate: set_token(r, 6, text, len, nil); break;
			case XN_EndDate: set_token(r, 7, text, len, nil); break;
			}
			break;
		case XN_OrganisationLocation:
			if (id == XN_StartDate)
				set_token(r, 7, text, len, nil);
			else if (id == XN_EndDate)
				set_token(r, 8, text, len, nil);
			break;
		case XN_ResponsibleLegalPerson:
			switch (id) {
			case XN_Name: set_text(&c->rel, 0, text, len, nil); break;
			case XN_Acn: set_token(&c->rel, 2, text, len, nil); break;
			case XN_StartDate: set_token(&c->rel, 3, text, len, nil); break;
			case XN_EndDate: set_token(&c->rel, 4, text, len, nil); break;
			}
			break;
		case XN_TradingName:
		case XN_Url:
			switch (id) {
			case XN_Name:
			case XN_Link: set_text(r, 0, text, len, nil); break;
			case XN_StartDate: set_token(r, 1, text, len, nil); break;
			case XN_EndDate: set_token(r, 2, text, len, nil); break;
			}
			break;
		case XN_RegistrationPeriod:
			switch (id) {
			case XN_StartDate: set_token(r, 0, text, len, nil); break;
			case XN_EndDate: set_token(r, 1, text, len, nil); break;
			case XN_EndReasonCode: set_token(r, 2, text, len, nil); break;
			case XN_EndReasonComments: set_text(r, 3, text, len, nil); break;
			case XN_Exerciser: set_token(r, 4, text, len, nil); break;
			case XN_LegalAuthority: set_text(r, 5, text, len, nil); break;
			}
			break;
		}
		return;
	case 4:
		if (parent == XN_Address) {
			switch (id) {
			case XN_Line1: set_text(r, 0, text, len, nil); break;
			case XN_Line2: set_text(r, 1, text, len, nil); break;
			case XN_Suburb: set_text(r, 2, text, len, nil); break;
			case XN_Postcode: set_token(r, 3, text, len, nil); break;
			case XN_StateCode: set_token(r, 4, text, len, nil); break;
			case XN_CountryCode: set_token(r, 5, text, len, nil); break;
			case XN_StateOverseas: set_text(r, 6, text, len, nil); break;
			}
		} else if (parent == XN_Abns && id == XN_string && !c->abn_seen && !nil) {
			/* The first ABN of the legal person (the register has one), digits only as the REST source
			 * stores it (parse.h). */
			char abn[64];

			if (parse_abn(text, len, abn, sizeof abn))
				rec_set_str(&c->rel, 1, abn);
			else
				set_token(&c->rel, 1, text, len, nil);
			c->abn_seen = true;
		}
		return;
	}
}

const struct xml_handler pd_org_handler = { org_start, org_end };

int
pd_check(const struct pd_ctx *c, char *msg, size_t len)
{
	if (!c->saw_result) {
		snprintf(msg, len, "the response has no GetDetailsResult");
		return -1;
	}
	return 0;
}
