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

/* How an element's text goes into its column: as a token (set_token), as text (set_text) or as a boolean. */
enum field_kind { FK_TOKEN, FK_TEXT, FK_BOOL };

/* One member of a record: element `id` fills column `col`. */
struct field {
	int id;
	int col;
	enum field_kind kind;
};

/* The members of the records that element `parent` holds. */
struct fields {
	int parent;
	const struct field *f;
	size_t n;
};

#define FIELDS(a) (a), sizeof (a) / sizeof (a)[0]

/* Set the column that the table names for element `id`; an element it does not name is ignored. */
static void
set_field(struct xml_parser *p, struct rec *r, const struct field *f, size_t n, int id, const char *text,
    size_t len, bool nil)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (f[i].id != id)
			continue;
		switch (f[i].kind) {
		case FK_TOKEN:
			set_token(r, f[i].col, text, len, nil);
			break;
		case FK_TEXT:
			set_text(r, f[i].col, text, len, nil);
			break;
		case FK_BOOL:
			set_bool(p, r, f[i].col, id, text, len, nil);
			break;
		}
		return;
	}
}

/* Set the column for element `id` inside `parent`, from the table of `parent`'s members. */
static void
set_member(struct xml_parser *p, struct rec *r, const struct fields *t, size_t n, int parent, int id,
    const char *text, size_t len, bool nil)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (t[i].parent == parent) {
			set_field(p, r, t[i].f, t[i].n, id, text, len, nil);
			return;
		}
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

static const struct field tc_head_fields[] = {
	{ XN_Code, TC_CODE, FK_TOKEN }, { XN_ComponentType, TC_TYPE, FK_TOKEN }, { XN_Title, TC_TITLE, FK_TEXT },
	{ XN_ParentCode, TC_PARENT_CODE, FK_TOKEN }, { XN_ParentTitle, TC_PARENT_TITLE, FK_TEXT },
	{ XN_IsConfidential, TC_CONFIDENTIAL, FK_BOOL }, { XN_IsLegacyData, TC_LEGACY, FK_BOOL },
	{ XN_CurrencyStatus, TC_CURRENCY_STATUS, FK_TOKEN }, { XN_CreatedDate, TC_CREATED, FK_TOKEN },
	{ XN_UpdatedDate, TC_UPDATED, FK_TOKEN }, { XN_IscOrganisationCode, TC_ISC_CODE, FK_TOKEN },
};
static const struct field tc_class_fields[] = {
	{ XN_SchemeCode, 0, FK_TOKEN }, { XN_ValueCode, 1, FK_TOKEN }, { XN_PurposeCode, 2, FK_TOKEN },
	{ XN_StartDate, 3, FK_TOKEN }, { XN_EndDate, 4, FK_TOKEN },
};
static const struct field tc_currency_fields[] = {
	{ XN_Authority, 0, FK_TOKEN }, { XN_StartDate, 1, FK_TOKEN }, { XN_EndDate, 2, FK_TOKEN },
	{ XN_EndReasonCode, 3, FK_TOKEN }, { XN_EndComment, 4, FK_TEXT },
};
static const struct field tc_mapping_fields[] = {
	{ XN_Code, 0, FK_TOKEN }, { XN_Title, 1, FK_TEXT }, { XN_MapsToCode, 2, FK_TOKEN },
	{ XN_MapsToTitle, 3, FK_TEXT }, { XN_IsEquivalent, 4, FK_BOOL }, { XN_Notes, 5, FK_TEXT },
};
static const struct field tc_usage_fields[] = {
	{ XN_State, 0, FK_TOKEN }, { XN_StartDate, 1, FK_TOKEN }, { XN_EndDate, 2, FK_TOKEN },
};
static const struct fields tc_children[] = {
	{ XN_Classification, FIELDS(tc_class_fields) }, { XN_NrtCurrencyPeriod, FIELDS(tc_currency_fields) },
	{ XN_Mapping, FIELDS(tc_mapping_fields) }, { XN_UsageRecommendation, FIELDS(tc_usage_fields) },
};
static const struct field tc_release_fields[] = {
	{ XN_ReleaseNumber, 0, FK_TOKEN }, { XN_ReleaseDate, 1, FK_TOKEN }, { XN_Currency, 2, FK_TOKEN },
	{ XN_ApprovalProcess, 3, FK_TEXT },
};
static const struct field tc_grid_fields[] = {
	{ XN_Code, 1, FK_TOKEN }, { XN_Title, 2, FK_TEXT }, { XN_IsEssential, 3, FK_BOOL },
};

static void
tc_end(struct xml_parser *p, void *h, int id, int parent, int grandparent, int depth, const char *text,
    size_t len, bool nil)
{
	struct pd_ctx *c = h;
	int rel;

	if (c->result_depth < 0)
		return;
	rel = depth - c->result_depth;
	switch (rel) {
	case 0:
		c->result_depth = -1;
		return;
	case 1:
		set_field(p, &c->head, FIELDS(tc_head_fields), id, text, len, nil);
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
		if (parent != XN_Release) {
			set_member(p, &c->child, FIELDS(tc_children), parent, id, text, len, nil);
			return;
		}
		set_field(p, &c->rel, FIELDS(tc_release_fields), id, text, len, nil);
		if (id == XN_ReleaseNumber && !nil) {
			parse_trim(&text, &len);
			if (len >= sizeof c->release_number)
				len = sizeof c->release_number - 1;
			memcpy(c->release_number, text, len);
			c->release_number[len] = '\0';
			c->release_has_number = true;
		}
		return;
	case 4:
		if (id == XN_UnitGridEntry)
			put(p, c, &c->child);
		return;
	case 5:
		set_field(p, &c->child, FIELDS(tc_grid_fields), id, text, len, nil);
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

static const struct field org_head_fields[] = {
	{ XN_CreatedDate, ORG_CREATED, FK_TOKEN }, { XN_UpdatedDate, ORG_UPDATED, FK_TOKEN },
	{ XN_RegistrationStatus, ORG_STATUS, FK_TOKEN }, { XN_IsLegacyData, ORG_LEGACY, FK_BOOL },
};
static const struct field org_scope_fields[] = {
	{ XN_NrtCode, 0, FK_TOKEN }, { XN_IsImplicit, 1, FK_BOOL }, { XN_TrainingComponentType, 2, FK_TOKEN },
	{ XN_ExtentCode, 3, FK_TOKEN }, { XN_IsRefused, 4, FK_BOOL }, { XN_ScopeDecisionType, 5, FK_TOKEN },
	{ XN_StartDate, 6, FK_TOKEN }, { XN_EndDate, 7, FK_TOKEN },
};
static const struct field org_location_fields[] = { { XN_StartDate, 7, FK_TOKEN }, { XN_EndDate, 8, FK_TOKEN } };
/* A trading name's Name or a URL's Link, then the dates. */
static const struct field org_named_fields[] = {
	{ XN_Name, 0, FK_TEXT }, { XN_Link, 0, FK_TEXT }, { XN_StartDate, 1, FK_TOKEN },
	{ XN_EndDate, 2, FK_TOKEN },
};
static const struct field org_period_fields[] = {
	{ XN_StartDate, 0, FK_TOKEN }, { XN_EndDate, 1, FK_TOKEN }, { XN_EndReasonCode, 2, FK_TOKEN },
	{ XN_EndReasonComments, 3, FK_TEXT }, { XN_Exerciser, 4, FK_TOKEN }, { XN_LegalAuthority, 5, FK_TEXT },
};
static const struct fields org_children[] = {
	{ XN_Scope, FIELDS(org_scope_fields) }, { XN_Scope2, FIELDS(org_scope_fields) },
	{ XN_OrganisationLocation, FIELDS(org_location_fields) }, { XN_TradingName, FIELDS(org_named_fields) },
	{ XN_Url, FIELDS(org_named_fields) }, { XN_RegistrationPeriod, FIELDS(org_period_fields) },
};
/* The responsible legal person (c->rel): name, abn (from Abns, below), acn, start, end. */
static const struct field org_legal_fields[] = {
	{ XN_Name, 0, FK_TEXT }, { XN_Acn, 2, FK_TOKEN }, { XN_StartDate, 3, FK_TOKEN },
	{ XN_EndDate, 4, FK_TOKEN },
};
static const struct field org_address_fields[] = {
	{ XN_Line1, 0, FK_TEXT }, { XN_Line2, 1, FK_TEXT }, { XN_Suburb, 2, FK_TEXT }, { XN_Postcode, 3, FK_TOKEN },
	{ XN_StateCode, 4, FK_TOKEN }, { XN_CountryCode, 5, FK_TOKEN }, { XN_StateOverseas, 6, FK_TEXT },
};

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
		set_field(p, &c->head, FIELDS(org_head_fields), id, text, len, nil);
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
		if (parent == XN_ResponsibleLegalPerson)
			set_field(p, &c->rel, FIELDS(org_legal_fields), id, text, len, nil);
		else
			set_member(p, r, FIELDS(org_children), parent, id, text, len, nil);
		return;
	case 4:
		if (parent == XN_Address)
			set_field(p, r, FIELDS(org_address_fields), id, text, len, nil);
		else if (parent == XN_Abns && id == XN_string && !c->abn_seen && !nil) {
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
