/*
 * REST JSON -> the stage records of stage.h.  The mapping (tests/fakes/README.md, "REST content and the SOAP
 * model"; docs/tga-sync.md lists which names are the fake's guesses):
 *
 *   component  code, type (camelCase enum -> ComponentType), title, parent{code,title}, statusLabel
 *              (CurrencyStatus), usageRecommendationLabel, isConfidential, isLegacyData, trainingPackageDeveloper
 *              .code, createdDate, updatedDate; lists classifications, currencyPeriods, mappingInformation,
 *              usageRecommendationHistory; releases (served newest first, stored oldest first like SOAP) with
 *              releaseNumber, releaseDate, currency (current|replaced -> Current|Superseded), approvalProcess;
 *              unit grid entries code, title, isEssential.
 *   RTO        statusLabel, isLegacyData, createdDate, updatedDate; legalNames[name, abns, acn] (the one in
 *              office, as parse-details.c picks it), tradingNames, addresses[address{...}], webAddresses,
 *              registrations[endReason, ...].
 *   scope row  code, isImplicit, componentType, extent, isRefused, statusLabel (the decision), startDate, endDate.
 *
 * Values are stored as SOAP gives them: codes and dates trimmed, texts as sent, booleans "1"/"0", audit instants
 * in the canonical form of tgatime.h, business dates as YYYY-MM-DD (a midnight time part is dropped).  A value of
 * the wrong JSON kind is an error (the API changed shape: better to stop than to store nonsense).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "jscan.h"
#include "jsonlimit.h"
#include "log.h"
#include "parse-rest.h"
#include "parse.h"
#include "tga.h"
#include "tgatime.h"
#include "xmalloc.h"

/* A search page of 1,000 results is ~30,000 values; anything far beyond is no answer of the API's. */
#define PR_MAX_NODES 200000

struct ctx {
	char *msg;
	size_t msglen;
	bool failed;
	struct stage *stage;
};

static void err(struct ctx *, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
err(struct ctx *c, const char *fmt, ...)
{
	va_list ap;

	if (c->failed)
		return;
	c->failed = true;
	va_start(ap, fmt);
	vsnprintf(c->msg, c->msglen, fmt, ap);
	va_end(ap);
}

enum kind { K_TEXT, K_TOKEN, K_DATE, K_INSTANT };

/* YYYY-MM-DD followed by a time of midnight (T00:00:00, optional fraction of zeros, optional zone): the date. */
static void
date_only(const char **s, size_t *len)
{
	const char *t = *s;
	size_t i = 19;

	if (*len < 19 || t[4] != '-' || t[7] != '-' || t[10] != 'T' || memcmp(t + 11, "00:00:00", 8) != 0)
		return;
	if (i < *len && t[i] == '.')
		for (i++; i < *len && t[i] == '0'; i++)
			;
	if (i == *len || (t[i] == 'Z' && i + 1 == *len) || ((t[i] == '+' || t[i] == '-') && i + 6 == *len))
		*len = 10;
}

static void
set_value(struct rec *r, int field, const char *s, size_t len, enum kind k)
{
	char canon[TICKS_LEN];
	int64_t t;
	bool zone;

	if (k != K_TEXT)
		parse_trim(&s, &len);
	if (k == K_DATE)
		date_only(&s, &len);
	if (k == K_INSTANT && ticks_parse(s, len, &t, &zone)) {
		/* As WCF writes DateTimeOffset.DateTime: UTC, a fraction only when not zero (a value without zone is
		 * taken as UTC). */
		rec_set_str(r, field, ticks_format(t, canon));
		return;
	}
	rec_set(r, field, s, len);
}

/* A member as text into r[field]: a string, a number (its shortest text), or null/absent (SQL NULL). */
static void
text(struct ctx *c, const cJSON *o, const char *key, struct rec *r, int field, enum kind k)
{
	const cJSON *v = o != NULL ? cJSON_GetObjectItemCaseSensitive(o, key) : NULL;
	char num[64];

	if (v == NULL || cJSON_IsNull(v)) {
		rec_set_str(r, field, NULL);
		return;
	}
	if (cJSON_IsString(v)) {
		set_value(r, field, v->valuestring, strlen(v->valuestring), k);
		return;
	}
	if (cJSON_IsNumber(v)) {
		double d = v->valuedouble;

		if (d == (double)(long long)d && d > -1e15 && d < 1e15)
			snprintf(num, sizeof num, "%lld", (long long)d);
		else
			snprintf(num, sizeof num, "%.17g", d);
		rec_set_str(r, field, num);
		return;
	}
	err(c, "'%s' is not a string", key);
}

static void
boolean(struct ctx *c, const cJSON *o, const char *key, struct rec *r, int field)
{
	const cJSON *v = o != NULL ? cJSON_GetObjectItemCaseSensitive(o, key) : NULL;

	if (v == NULL || cJSON_IsNull(v))
		rec_set_str(r, field, NULL);
	else if (cJSON_IsBool(v))
		rec_set_bool(r, field, cJSON_IsTrue(v));
	else
		err(c, "'%s' is not a boolean", key);
}

/* An array member (absent or null: none; anything else is an error). */
static const cJSON *
array(struct ctx *c, const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

	if (v == NULL || cJSON_IsNull(v))
		return NULL;
	if (!cJSON_IsArray(v)) {
		err(c, "'%s' is not an array", key);
		return NULL;
	}
	return v;
}

static const cJSON *
object(struct ctx *c, const cJSON *o, const char *key)
{
	const cJSON *v = o != NULL ? cJSON_GetObjectItemCaseSensitive(o, key) : NULL;

	if (v == NULL || cJSON_IsNull(v))
		return NULL;
	if (!cJSON_IsObject(v)) {
		err(c, "'%s' is not an object", key);
		return NULL;
	}
	return v;
}

static void
put(struct ctx *c, const struct rec *r)
{
	char *cause = NULL;

	if (c->failed)
		return;
	if (stage_put(c->stage, r, &cause) == -1) {
		err(c, "%s", cause);
		free(cause);
	}
}

static void
reject(struct ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
reject(struct ctx *c, const char *fmt, ...)
{
	struct rec r;
	char m[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(m, sizeof m, fmt, ap);
	va_end(ap);
	rec_init(&r);
	rec_begin(&r, REC_REJECT, 1);
	rec_set_str(&r, 0, m);
	put(c, &r);
	rec_free(&r);
}

/* --- type names ------------------------------------------------------------------------------------------------ */

static const struct {
	const char *rest, *soap;
	int id;
} types[] = {
	{ "accreditedCourse", "AccreditedCourse", 1 },
	{ "qualification", "Qualification", 2 },
	{ "unit", "Unit", 4 },
	{ "skillSet", "SkillSet", 8 },
	{ "trainingPackage", "TrainingPackage", 16 },
	{ "accreditedUnit", "AccreditedCourseModule", 32 },
};
#define NTYPES (sizeof types / sizeof types[0])

const char *
rest_type_from_soap(const char *soap)
{
	size_t i;

	for (i = 0; i < NTYPES; i++)
		if (strcmp(types[i].soap, soap) == 0)
			return types[i].rest;
	return NULL;
}

int
rest_type_id(const char *soap)
{
	size_t i;

	for (i = 0; i < NTYPES; i++)
		if (strcmp(types[i].soap, soap) == 0)
			return types[i].id;
	return -1;
}

void
rest_type_to_soap(const char *rest, size_t len, char *out, size_t outlen)
{
	size_t i;

	/* Once per scope row: no formatting. */
	for (i = 0; i < NTYPES; i++)
		if (strlen(types[i].rest) == len && strncasecmp(types[i].rest, rest, len) == 0) {
			parse_token_copy(out, outlen, types[i].soap, strlen(types[i].soap));
			return;
		}
	/* Another enum value (a later API): its PascalCase form, as the SOAP names are written. */
	parse_token_copy(out, outlen, rest, len);
	if (out[0] >= 'a' && out[0] <= 'z')
		out[0] = (char)(out[0] - 'a' + 'A');
}

/* Release currency: the REST API writes current|replaced ([S9]), SOAP Current|Superseded. */
static void
release_currency(struct rec *r, int field, const cJSON *rel)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(rel, "currency");
	char out[64];

	if (!cJSON_IsString(v)) {
		rec_set_str(r, field, NULL);
		return;
	}
	if (strcasecmp(v->valuestring, "replaced") == 0 || strcasecmp(v->valuestring, "superseded") == 0)
		snprintf(out, sizeof out, "Superseded");
	else
		rest_type_to_soap(v->valuestring, strlen(v->valuestring), out, sizeof out);
	rec_set_str(r, field, out);
}

/* --- metadata, search ------------------------------------------------------------------------------------------ */

/* The sync time's key: the live API's (a published audit of /api/metadata), then the reference's. */
static const char *const sync_keys[] = { "dataExportSynchronisationDateTime", "dataExportSyncDateTime" };

int
pr_metadata(const char *body, size_t len, int64_t *ticks, char *msg, size_t msglen)
{
	cJSON *d = json_parse_bounded(body, len, PR_MAX_NODES, msg, msglen);
	const cJSON *v = NULL, *k;
	size_t i, n;
	bool zone;
	int rc = -1;

	if (d == NULL)
		goto done;	/* msg says why */
	if (!cJSON_IsObject(d)) {
		snprintf(msg, msglen, "not a JSON object");
		goto done;
	}
	for (i = 0; i < sizeof sync_keys / sizeof sync_keys[0] && v == NULL; i++)
		v = cJSON_GetObjectItemCaseSensitive(d, sync_keys[i]);
	if (v == NULL) {
		/* Name what is there, so that a renamed field is seen at once (keys bounded, no values). */
		n = (size_t)snprintf(msg, msglen, "neither %s nor %s; its keys:", sync_keys[0], sync_keys[1]);
		cJSON_ArrayForEach(k, d) {
			if (n >= msglen)
				break;
			n += (size_t)snprintf(msg + n, msglen - n, " %.40s", k->string ? k->string : "?");
		}
		if (d->child == NULL && n < msglen)
			snprintf(msg + n, msglen - n, " none");
		goto done;
	}
	if (!cJSON_IsString(v))
		snprintf(msg, msglen, "%s is not a string", v->string);
	else if (!ticks_parse(v->valuestring, strlen(v->valuestring), ticks, &zone))
		snprintf(msg, msglen, "%s '%.40s' is not an ISO-8601 time", v->string, v->valuestring);
	else
		rc = 0;
done:
	cJSON_Delete(d);
	return rc;
}

int
pr_search(const char *body, size_t len, enum tga_service svc, const char *expect_type, int page_size,
    struct src_page *out, char *msg, size_t msglen)
{
	cJSON *d = json_parse_bounded(body, len, PR_MAX_NODES, msg, msglen);
	const cJSON *data, *it, *v, *st;
	int rc = -1;

	src_page_clear(out);
	out->count = -1;
	if (d == NULL)
		goto done;
	if (!cJSON_IsObject(d)) {
		snprintf(msg, msglen, "not a JSON object");
		goto done;
	}
	if (!cJSON_IsArray(data = cJSON_GetObjectItemCaseSensitive(d, "data"))) {
		snprintf(msg, msglen, "no \"data\" array");
		goto done;
	}
	/*
	 * The total: totalCount (sourcerer reads it as "total in system").  "count" is the page's own rows in the
	 * audit's example (5 for a page of 5), so it is taken as a total only when it cannot be that: more than the
	 * page holds.  Otherwise the total is unknown and the list ends at an empty page.
	 */
	if ((v = cJSON_GetObjectItemCaseSensitive(d, "totalCount")) != NULL && cJSON_IsNumber(v) &&
	    v->valuedouble >= 0)
		out->count = (int64_t)v->valuedouble;
	else if ((v = cJSON_GetObjectItemCaseSensitive(d, "count")) != NULL && cJSON_IsNumber(v) &&
	    v->valuedouble > cJSON_GetArraySize(data))
		out->count = (int64_t)v->valuedouble;
	if (cJSON_GetArraySize(data) > page_size) {
		snprintf(msg, msglen, "%d results for a page of %d", cJSON_GetArraySize(data), page_size);
		goto done;
	}
	cJSON_ArrayForEach(it, data) {
		struct src_item item;
		const char *code;

		out->returned++;
		if (!cJSON_IsObject(it)) {
			snprintf(msg, msglen, "result #%d is not an object", out->returned);
			goto done;
		}
		memset(&item, 0, sizeof item);
		item.is_current = -1;
		v = cJSON_GetObjectItemCaseSensitive(it, "code");
		code = cJSON_IsString(v) ? v->valuestring : NULL;
		if (code == NULL || !tga_code_valid(code, strlen(code))) {
			v = cJSON_GetObjectItemCaseSensitive(it, svc == SVC_TRAINING ? "title" : "legalName");
			src_rejects_add(&out->rejects, "REST search result #%d of the page has %s code%s%.64s (%.100s)",
			    out->returned, code ? "an invalid" : "no", code ? " " : "", code ? code : "",
			    cJSON_IsString(v) ? v->valuestring : "?");
			continue;
		}
		snprintf(item.code, sizeof item.code, "%s", code);
		if (svc == SVC_TRAINING) {
			st = cJSON_GetObjectItemCaseSensitive(it, "status");
			v = cJSON_IsObject(st) ? cJSON_GetObjectItemCaseSensitive(st, "isCurrent") : NULL;
			if (cJSON_IsBool(v))
				item.is_current = cJSON_IsTrue(v);
			/* A result of another type means the API ignored the type filter: the partition (and the removal
			 * of what it does not list) would be wrong. */
			st = cJSON_GetObjectItemCaseSensitive(it, "type");
			v = cJSON_IsObject(st) ? cJSON_GetObjectItemCaseSensitive(st, "id") : NULL;
			if (expect_type != NULL && cJSON_IsString(v) && strcasecmp(v->valuestring, expect_type) != 0) {
				snprintf(msg, msglen, "%s is of type '%.40s', not the '%s' the filter asked for", item.code,
				    v->valuestring, expect_type);
				goto done;
			}
		}
		if (out->n == out->cap) {
			out->cap = out->cap ? out->cap * 2 : 64;
			out->items = xreallocarray(out->items, out->cap, sizeof *out->items);
		}
		out->items[out->n++] = item;
	}
	rc = 0;
done:
	cJSON_Delete(d);
	return rc;
}

/* --- a training component -------------------------------------------------------------------------------------- */

static bool
grid_type(const char *soap_type)
{
	/* Units and training packages have no unit grid (the API answers [] for them): no request for them. */
	return soap_type != NULL && strcmp(soap_type, "Unit") != 0 && strcmp(soap_type, "TrainingPackage") != 0;
}

int
pr_training(const cJSON *d, struct stage *stage, struct rec *head, char *updated, size_t updlen,
    struct pr_releases *rels, char *msg, size_t msglen)
{
	struct ctx c = { msg, msglen, false, stage };
	const cJSON *l, *x, *o, *v;
	struct rec r;
	char type[64];

	rels->n = 0;
	updated[0] = '\0';
	if (!cJSON_IsObject(d)) {
		snprintf(msg, msglen, "not a JSON object");
		return -1;
	}
	rec_init(&r);
	rec_begin(head, REC_TC_HEAD, TC__N);
	text(&c, d, "code", head, TC_CODE, K_TOKEN);
	v = cJSON_GetObjectItemCaseSensitive(d, "type");
	if (cJSON_IsString(v)) {
		rest_type_to_soap(v->valuestring, strlen(v->valuestring), type, sizeof type);
		rec_set_str(head, TC_TYPE, type);
	} else if (v != NULL && !cJSON_IsNull(v))
		err(&c, "'type' is not a string");
	text(&c, d, "title", head, TC_TITLE, K_TEXT);
	o = object(&c, d, "parent");
	text(&c, o, "code", head, TC_PARENT_CODE, K_TOKEN);
	text(&c, o, "title", head, TC_PARENT_TITLE, K_TEXT);
	boolean(&c, d, "isConfidential", head, TC_CONFIDENTIAL);
	boolean(&c, d, "isLegacyData", head, TC_LEGACY);
	text(&c, d, "statusLabel", head, TC_CURRENCY_STATUS, K_TOKEN);
	text(&c, d, "createdDate", head, TC_CREATED, K_INSTANT);
	text(&c, d, "updatedDate", head, TC_UPDATED, K_INSTANT);
	text(&c, object(&c, d, "trainingPackageDeveloper"), "code", head, TC_ISC_CODE, K_TOKEN);
	/* The recommendation in force; the SOAP summary's UsageReccomendation carries the same value. */
	text(&c, d, "usageRecommendationLabel", head, TC_USAGE_CURRENT, K_TOKEN);
	if (rec_isset(head, TC_UPDATED))
		snprintf(updated, updlen, "%s", rec_str(head, TC_UPDATED));

	if ((l = array(&c, d, "classifications")) != NULL)
		cJSON_ArrayForEach(x, l) {
			rec_begin(&r, REC_TC_CLASS, 5);
			text(&c, x, "schemeCode", &r, 0, K_TOKEN);
			text(&c, x, "valueCode", &r, 1, K_TOKEN);
			text(&c, x, "purposeCode", &r, 2, K_TOKEN);
			text(&c, x, "startDate", &r, 3, K_DATE);
			text(&c, x, "endDate", &r, 4, K_DATE);
			put(&c, &r);
		}
	if ((l = array(&c, d, "currencyPeriods")) != NULL)
		cJSON_ArrayForEach(x, l) {
			rec_begin(&r, REC_TC_CURRENCY, 5);
			text(&c, x, "authority", &r, 0, K_TOKEN);
			text(&c, x, "startDate", &r, 1, K_DATE);
			text(&c, x, "endDate", &r, 2, K_DATE);
			text(&c, x, "endReasonCode", &r, 3, K_TOKEN);
			text(&c, x, "endComment", &r, 4, K_TEXT);
			put(&c, &r);
		}
	if ((l = array(&c, d, "mappingInformation")) != NULL)
		cJSON_ArrayForEach(x, l) {
			rec_begin(&r, REC_TC_MAPPING, 6);
			text(&c, x, "code", &r, 0, K_TOKEN);
			text(&c, x, "title", &r, 1, K_TEXT);
			text(&c, x, "mapsToCode", &r, 2, K_TOKEN);
			text(&c, x, "mapsToTitle", &r, 3, K_TEXT);
			boolean(&c, x, "isEquivalent", &r, 4);
			text(&c, x, "notes", &r, 5, K_TEXT);
			put(&c, &r);
		}
	if ((l = array(&c, d, "usageRecommendationHistory")) != NULL)
		cJSON_ArrayForEach(x, l) {
			rec_begin(&r, REC_TC_USAGE, 3);
			text(&c, x, "usageRecommendationLabel", &r, 0, K_TOKEN);
			text(&c, x, "startDate", &r, 1, K_DATE);
			text(&c, x, "endDate", &r, 2, K_DATE);
			/* Without a label on the component, the one in force (no end date) is the current one. */
			if (!rec_isset(head, TC_USAGE_CURRENT) && !rec_isset(&r, 2) && rec_isset(&r, 0))
				rec_set_str(head, TC_USAGE_CURRENT, rec_str(&r, 0));
			put(&c, &r);
		}
	if ((l = array(&c, d, "releases")) != NULL) {
		int i, n = cJSON_GetArraySize(l);

		/* Served newest first; SOAP (and the tables' seq) list the oldest first. */
		for (i = n - 1; i >= 0 && !c.failed; i--) {
			x = cJSON_GetArrayItem(l, i);
			if (!cJSON_IsObject(x)) {
				err(&c, "release #%d is not an object", i);
				break;
			}
			rec_begin(&r, REC_TC_RELEASE, 4);
			text(&c, x, "releaseNumber", &r, 0, K_TOKEN);
			text(&c, x, "releaseDate", &r, 1, K_DATE);
			release_currency(&r, 2, x);
			text(&c, x, "approvalProcess", &r, 3, K_TEXT);
			put(&c, &r);
			if (grid_type(rec_str(head, TC_TYPE)) && rec_isset(&r, 0) && rec_str(&r, 0)[0] != '\0') {
				if (rels->n == PR_MAX_RELEASES) {
					err(&c, "more than %d releases", PR_MAX_RELEASES);
					break;
				}
				snprintf(rels->number[rels->n++], sizeof rels->number[0], "%s", rec_str(&r, 0));
			}
		}
	}
	rec_free(&r);
	return c.failed ? -1 : 0;
}

int
pr_grid(const cJSON *arr, const char *component, const char *release_number, struct stage *stage, char *msg,
    size_t msglen)
{
	struct ctx c = { msg, msglen, false, stage };
	const cJSON *x;
	struct rec r;
	int pass;

	if (!cJSON_IsArray(arr)) {
		snprintf(msg, msglen, "not a JSON array");
		return -1;
	}
	rec_init(&r);
	/* Check every entry first, then stage: a bad grid is requested again, and must leave nothing behind in the
	 * entity (its other releases are staged already). */
	for (pass = 0; pass < 2 && !c.failed; pass++)
		cJSON_ArrayForEach(x, arr) {
			if (!cJSON_IsObject(x)) {
				err(&c, "an entry is not an object");
				break;
			}
			rec_begin(&r, REC_TC_GRID, 4);
			rec_set_str(&r, 0, release_number);
			text(&c, x, "code", &r, 1, K_TOKEN);
			text(&c, x, "title", &r, 2, K_TEXT);
			boolean(&c, x, "isEssential", &r, 3);
			if (pass == 0 || c.failed)
				continue;
			if (!rec_isset(&r, 1) || rec_str(&r, 1)[0] == '\0') {
				reject(&c, "%s release %s: a unit grid entry without a code (%.100s); skipped", component,
				    release_number, rec_str(&r, 2) ? rec_str(&r, 2) : "?");
				continue;
			}
			put(&c, &r);
		}
	rec_free(&r);
	return c.failed ? -1 : 0;
}

/* --- an organisation ------------------------------------------------------------------------------------------- */

/* An ABN digits only, as both sources store it: the live search serves "12 345 678 901" (sourcerer strips the
 * spaces).  A value with anything but digits and blanks is kept as sent (trimmed), to be seen rather than mangled. */
static void
abn_value(struct rec *r, int field, const char *s)
{
	char d[64];
	size_t len = strlen(s);

	parse_trim(&s, &len);
	if (parse_abn(s, len, d, sizeof d))
		rec_set_str(r, field, d);
	else
		rec_set(r, field, s, len);
}

/* The states and territories as SOAP codes them (StateCode, ABS order), by abbreviation and by name. */
static const struct {
	const char *code, *abbr, *name;
} states[] = {
	{ "01", "NSW", "New South Wales" }, { "02", "VIC", "Victoria" }, { "03", "QLD", "Queensland" },
	{ "04", "SA", "South Australia" }, { "05", "WA", "Western Australia" }, { "06", "TAS", "Tasmania" },
	{ "07", "NT", "Northern Territory" }, { "08", "ACT", "Australian Capital Territory" },
};

/*
 * An address's state and country as the SOAP columns hold them.  Evidenced: address{state} (the audit: a string;
 * unicorn-cms reads address.state), the country by name and ISO alpha-3; sourcerer's search shows a state object
 * {abbreviation}.  The fake's earlier guesses stateCode, countryCode, stateOverseas are still read when present.
 * A state that is no Australian one is an overseas state (state_overseas); a country other than Australia has no
 * SACC code from the REST API (country_code NULL).
 */
static void
address_state(struct ctx *c, const cJSON *a, struct rec *r, int f_state, int f_country, int f_overseas)
{
	const cJSON *v;
	const char *txt = NULL;
	size_t i;

	text(c, a, "stateCode", r, f_state, K_TOKEN);
	text(c, a, "countryCode", r, f_country, K_TOKEN);
	text(c, a, "stateOverseas", r, f_overseas, K_TEXT);
	if (a == NULL)
		return;
	if (!rec_isset(r, f_state)) {
		v = cJSON_GetObjectItemCaseSensitive(a, "state");
		if (cJSON_IsObject(v)) {
			const cJSON *x = cJSON_GetObjectItemCaseSensitive(v, "abbreviation");

			if (!cJSON_IsString(x))
				x = cJSON_GetObjectItemCaseSensitive(v, "code");
			if (!cJSON_IsString(x))
				x = cJSON_GetObjectItemCaseSensitive(v, "name");
			v = x;
		}
		if (cJSON_IsString(v) && v->valuestring[0] != '\0')
			txt = v->valuestring;
		else if (v != NULL && !cJSON_IsNull(v))
			err(c, "'state' is not a string");
		for (i = 0; txt != NULL && i < sizeof states / sizeof states[0]; i++)
			if (strcasecmp(txt, states[i].abbr) == 0 || strcasecmp(txt, states[i].name) == 0 ||
			    strcmp(txt, states[i].code) == 0) {
				rec_set_str(r, f_state, states[i].code);
				txt = NULL;
			}
		if (txt != NULL && !rec_isset(r, f_overseas))
			rec_set_str(r, f_overseas, txt);
	}
	if (!rec_isset(r, f_country)) {
		const cJSON *n = cJSON_GetObjectItemCaseSensitive(a, "country");
		const cJSON *a3 = cJSON_GetObjectItemCaseSensitive(a, "countryCodeAlpha3");

		/* SACC 1101 Australia, as SOAP writes it. */
		if ((cJSON_IsString(n) && strcasecmp(n->valuestring, "Australia") == 0) ||
		    (cJSON_IsString(a3) && strcasecmp(a3->valuestring, "AUS") == 0))
			rec_set_str(r, f_country, "1101");
	}
}

int
pr_org(const cJSON *o, bool legal, struct stage *stage, struct rec *head, char *updated, size_t updlen, char *msg,
    size_t msglen)
{
	struct ctx c = { msg, msglen, false, stage };
	const cJSON *l, *x, *a, *v;
	struct rec r;
	bool have = false, have_current = false;

	updated[0] = '\0';
	if (!cJSON_IsObject(o)) {
		snprintf(msg, msglen, "not a JSON object");
		return -1;
	}
	rec_init(&r);
	rec_begin(head, REC_ORG_HEAD, ORG__N);
	text(&c, o, "createdDate", head, ORG_CREATED, K_INSTANT);
	text(&c, o, "updatedDate", head, ORG_UPDATED, K_INSTANT);
	text(&c, o, "statusLabel", head, ORG_STATUS, K_TOKEN);
	boolean(&c, o, "isLegacyData", head, ORG_LEGACY);
	if (rec_isset(head, ORG_UPDATED))
		snprintf(updated, updlen, "%s", rec_str(head, ORG_UPDATED));
	if (legal && (l = array(&c, o, "legalNames")) != NULL)
		cJSON_ArrayForEach(x, l) {
			const cJSON *abns, *e;
			bool current;

			if (!cJSON_IsObject(x)) {
				err(&c, "a legal name is not an object");
				break;
			}
			v = cJSON_GetObjectItemCaseSensitive(x, "endDate");
			current = v == NULL || cJSON_IsNull(v);
			/* The responsible legal person in office (no end date); failing that, the last one. */
			if (have && have_current)
				continue;
			text(&c, x, "name", head, ORG_LEGAL_NAME, K_TEXT);
			rec_set_str(head, ORG_ABN, NULL);
			if ((abns = array(&c, x, "abns")) != NULL)
				cJSON_ArrayForEach(e, abns)
					if (cJSON_IsString(e)) {
						abn_value(head, ORG_ABN, e->valuestring);
						break;
					}
			text(&c, x, "acn", head, ORG_ACN, K_TOKEN);
			have = true;
			have_current = current;
		}
	if ((l = array(&c, o, "addresses")) != NULL)
		cJSON_ArrayForEach(x, l) {
			rec_begin(&r, REC_ORG_LOCATION, 9);
			a = object(&c, x, "address");
			text(&c, a, "line1", &r, 0, K_TEXT);
			text(&c, a, "line2", &r, 1, K_TEXT);
			text(&c, a, "suburb", &r, 2, K_TEXT);
			text(&c, a, "postcode", &r, 3, K_TOKEN);
			if (!rec_isset(&r, 3))
				text(&c, a, "postCode", &r, 3, K_TOKEN);	/* sourcerer's spelling */
			address_state(&c, a, &r, 4, 5, 6);
			text(&c, x, "startDate", &r, 7, K_DATE);
			text(&c, x, "endDate", &r, 8, K_DATE);
			put(&c, &r);
		}
	if ((l = array(&c, o, "tradingNames")) != NULL)
		cJSON_ArrayForEach(x, l) {
			rec_begin(&r, REC_ORG_TRADING, 3);
			text(&c, x, "name", &r, 0, K_TEXT);
			text(&c, x, "startDate", &r, 1, K_DATE);
			text(&c, x, "endDate", &r, 2, K_DATE);
			put(&c, &r);
		}
	if ((l = array(&c, o, "webAddresses")) != NULL)
		cJSON_ArrayForEach(x, l) {
			rec_begin(&r, REC_ORG_URL, 3);
			text(&c, x, "webAddress", &r, 0, K_TEXT);
			text(&c, x, "startDate", &r, 1, K_DATE);
			text(&c, x, "endDate", &r, 2, K_DATE);
			put(&c, &r);
		}
	if ((l = array(&c, o, "registrations")) != NULL)
		cJSON_ArrayForEach(x, l) {
			rec_begin(&r, REC_ORG_PERIOD, 6);
			text(&c, x, "startDate", &r, 0, K_DATE);
			text(&c, x, "endDate", &r, 1, K_DATE);
			text(&c, x, "endReason", &r, 2, K_TOKEN);
			text(&c, x, "endReasonComments", &r, 3, K_TEXT);
			text(&c, x, "exerciser", &r, 4, K_TOKEN);
			text(&c, x, "legalAuthority", &r, 5, K_TEXT);
			put(&c, &r);
		}
	rec_free(&r);
	return c.failed ? -1 : 0;
}

static int64_t
summary_count(const cJSON *x, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(x, key);

	return cJSON_IsNumber(v) && v->valuedouble >= 0 && v->valuedouble < 1e15 ? (int64_t)v->valuedouble : -1;
}

int
pr_scopesummary(const char *body, size_t len, struct pr_types *out, char *msg, size_t msglen)
{
	cJSON *d = json_parse_bounded(body, len, PR_MAX_NODES, msg, msglen);
	const cJSON *x, *v;
	int rc = -1;
	size_t i;

	out->n = 0;
	if (d == NULL)
		goto done;
	if (!cJSON_IsArray(d)) {
		snprintf(msg, msglen, "not a JSON array");
		goto done;
	}
	cJSON_ArrayForEach(x, d) {
		v = cJSON_GetObjectItemCaseSensitive(x, "componentType");
		if (!cJSON_IsString(v) || v->valuestring[0] == '\0' || strlen(v->valuestring) >= sizeof out->name[0]) {
			snprintf(msg, msglen, "an entry without a usable componentType");
			goto done;
		}
		/* The value goes into a Sieve filter: letters only. */
		for (i = 0; v->valuestring[i] != '\0'; i++)
			if (!((v->valuestring[i] >= 'a' && v->valuestring[i] <= 'z') ||
			    (v->valuestring[i] >= 'A' && v->valuestring[i] <= 'Z'))) {
				snprintf(msg, msglen, "componentType '%.40s' is not a name", v->valuestring);
				goto done;
			}
		if (out->n == PR_MAX_TYPES) {
			snprintf(msg, msglen, "more than %d component types", PR_MAX_TYPES);
			goto done;
		}
		snprintf(out->name[out->n], sizeof out->name[0], "%s", v->valuestring);
		out->total[out->n] = summary_count(x, "totalCount");
		if (out->total[out->n] < 0)
			out->total[out->n] = summary_count(x, "count");
		out->explicit_n[out->n] = summary_count(x, "explicitCount");
		out->implicit_n[out->n] = summary_count(x, "implicitCount");
		out->n++;
	}
	rc = 0;
done:
	cJSON_Delete(d);
	return rc;
}

/* --- scope pages (jscan, row by row) --------------------------------------------------------------------------- */

/* A scalar member value into r[field] (string or null); a boolean member into "1"/"0". */
static int
scope_value(struct jscan *j, enum jtok t, struct rec *r, int field, enum kind k, const char *key, char *msg,
    size_t msglen)
{
	if (t == JT_NULL) {
		rec_set_str(r, field, NULL);
		return 0;
	}
	if (t == JT_STRING || (t == JT_NUMBER && k != K_DATE)) {
		set_value(r, field, j->val, j->len, k);
		return 0;
	}
	snprintf(msg, msglen, "scope row: '%s' is not a string", key);
	return -1;
}

static int
scope_bool(enum jtok t, struct rec *r, int field, const char *key, char *msg, size_t msglen)
{
	if (t == JT_NULL)
		rec_set_str(r, field, NULL);
	else if (t == JT_TRUE || t == JT_FALSE)
		rec_set_bool(r, field, t == JT_TRUE);
	else {
		snprintf(msg, msglen, "scope row: '%s' is not a boolean", key);
		return -1;
	}
	return 0;
}

/* The member names of a scope row (6.2 million rows a cycle: compared by length and bytes, no formatting). */
enum { SK_OTHER, SK_CODE, SK_IMPLICIT, SK_TYPE, SK_EXTENT, SK_REFUSED, SK_STATUS_LABEL, SK_STATUS, SK_START, SK_END };

static int
scope_key(const struct jscan *j)
{
	static const struct {
		const char *name;
		size_t len;
		int key;
	} keys[] = {
		{ "code", 4, SK_CODE }, { "isImplicit", 10, SK_IMPLICIT }, { "componentType", 13, SK_TYPE },
		{ "extent", 6, SK_EXTENT }, { "isRefused", 9, SK_REFUSED }, { "statusLabel", 11, SK_STATUS_LABEL },
		{ "status", 6, SK_STATUS }, { "startDate", 9, SK_START }, { "endDate", 7, SK_END },
	};
	size_t i;

	for (i = 0; i < sizeof keys / sizeof keys[0]; i++)
		if (j->len == keys[i].len && memcmp(j->val, keys[i].name, keys[i].len) == 0)
			return keys[i].key;
	return SK_OTHER;
}

static const char *const scope_key_names[] = { "?", "code", "isImplicit", "componentType", "extent", "isRefused",
	"statusLabel", "status", "startDate", "endDate" };

static int
scope_row(struct jscan *j, struct rec *r, char *status, size_t statuslen, char *msg, size_t msglen)
{
	enum jtok t;
	char type[64];
	int rc = 0, k;

	rec_begin(r, REC_ORG_SCOPE, 8);
	status[0] = '\0';
	while ((t = jscan_next(j)) == JT_KEY) {
		k = scope_key(j);
		t = jscan_next(j);
		if (t == JT_ERROR)
			break;
		switch (k) {
		case SK_CODE:
			rc = scope_value(j, t, r, 0, K_TOKEN, scope_key_names[k], msg, msglen);
			break;
		case SK_IMPLICIT:
			rc = scope_bool(t, r, 1, scope_key_names[k], msg, msglen);
			break;
		case SK_TYPE:
			if (t == JT_STRING) {
				rest_type_to_soap(j->val, j->len, type, sizeof type);
				rec_set_str(r, 2, type);
			} else
				rc = scope_value(j, t, r, 2, K_TOKEN, scope_key_names[k], msg, msglen);
			break;
		case SK_EXTENT:
			rc = scope_value(j, t, r, 3, K_TOKEN, scope_key_names[k], msg, msglen);
			break;
		case SK_REFUSED:
			rc = scope_bool(t, r, 4, scope_key_names[k], msg, msglen);
			break;
		case SK_STATUS_LABEL:
			rc = scope_value(j, t, r, 5, K_TOKEN, scope_key_names[k], msg, msglen);
			break;
		case SK_STATUS:
			if (t == JT_STRING)
				parse_token_copy(status, statuslen, j->val, j->len);
			break;
		case SK_START:
			rc = scope_value(j, t, r, 6, K_DATE, scope_key_names[k], msg, msglen);
			break;
		case SK_END:
			rc = scope_value(j, t, r, 7, K_DATE, scope_key_names[k], msg, msglen);
			break;
		default:
			rc = jscan_skip(j, t) == -1 ? -1 : 0;
			break;
		}
		if (rc == -1)
			return -1;
	}
	if (t != JT_OBJECT_END) {
		snprintf(msg, msglen, "scope row: %s", t == JT_ERROR ? j->err : "not an object");
		return -1;
	}
	return 0;
}

int
pr_scope_page(const char *body, size_t len, const char *rto, bool explicit_on, bool implicit_on,
    struct stage *stage, struct pr_scope *sc, struct pr_scope_page *pg, char *msg, size_t msglen)
{
	struct ctx c = { msg, msglen, false, stage };
	struct jscan j;
	struct rec r;
	enum jtok t;
	char status[64];
	bool have_value = false;
	int rc = -1;

	memset(pg, 0, sizeof *pg);
	pg->total = pg->count = -1;
	jscan_init(&j, body, len);
	rec_init(&r);
	if (jscan_next(&j) != JT_OBJECT) {
		snprintf(msg, msglen, "not a JSON object%s%s", j.err[0] ? ": " : "", j.err);
		goto done;
	}
	while ((t = jscan_next(&j)) == JT_KEY) {
		/* The total: totalCount, or count next to value (how unicorn-cms reads the live scope pages). */
		if (jscan_is(&j, "totalCount") || jscan_is(&j, "count")) {
			int64_t *to = jscan_is(&j, "totalCount") ? &pg->total : &pg->count;
			const char *name = to == &pg->total ? "totalCount" : "count";

			if ((t = jscan_next(&j)) == JT_NUMBER) {
				if (!jscan_uint(&j, to)) {
					snprintf(msg, msglen, "%s is not a count", name);
					goto done;
				}
			} else if (t != JT_NULL) {
				snprintf(msg, msglen, "%s is not a number", name);
				goto done;
			}
		} else if (jscan_is(&j, "value")) {
			if ((t = jscan_next(&j)) != JT_ARRAY) {
				snprintf(msg, msglen, "\"value\" is not an array");
				goto done;
			}
			have_value = true;
			while ((t = jscan_next(&j)) == JT_OBJECT) {
				const char *code;

				if (scope_row(&j, &r, status, sizeof status, msg, msglen) == -1)
					goto done;
				pg->rows++;
				code = rec_str(&r, 0);
				if (code == NULL || !tga_code_valid(code, strlen(code))) {
					reject(&c, "RTO %s: a scope row with %s code%s%.64s (componentType %s, startDate %s)",
					    rto, code ? "an invalid" : "no", code ? " " : "", code ? code : "",
					    rec_str(&r, 2) ? rec_str(&r, 2) : "?", rec_str(&r, 6) ? rec_str(&r, 6) : "?");
					sc->rejects++;
					continue;
				}
				/* Where the rows go on past an offset cap (code>last): a valid code only, as it goes into a
				 * filter. */
				parse_token_copy(pg->last, sizeof pg->last, code, (size_t)r.len[0]);
				/* The decision's label; without one, its enum value in the label's case. */
				if (!rec_isset(&r, 5) && status[0] != '\0') {
					status[0] = (char)(status[0] >= 'a' && status[0] <= 'z' ? status[0] - 'a' + 'A' :
					    status[0]);
					rec_set_str(&r, 5, status);
				}
				/* Booleans that are absent are false, as SOAP omits them (EmitDefaultValue=false). */
				if (!rec_isset(&r, 1))
					rec_set_bool(&r, 1, false);
				if (!rec_isset(&r, 4))
					rec_set_bool(&r, 4, false);
				if ((rec_str(&r, 1)[0] == '1' && !implicit_on) || (rec_str(&r, 1)[0] == '0' && !explicit_on))
					continue;
				sc->hash += pd_scope_row_hash(&r);
				sc->count++;
				put(&c, &r);
				if (c.failed)
					goto done;
			}
			if (t != JT_ARRAY_END) {
				snprintf(msg, msglen, "\"value\": %s", t == JT_ERROR ? j.err : "an entry is not an object");
				goto done;
			}
		} else if (jscan_skip(&j, jscan_next(&j)) == -1)
			break;
	}
	if (t != JT_OBJECT_END || jscan_next(&j) != JT_EOF) {
		snprintf(msg, msglen, "%s", j.err[0] ? j.err : "not a scope page");
		goto done;
	}
	if (!have_value) {
		snprintf(msg, msglen, "no \"value\" array");
		goto done;
	}
	/* count as the total (evidenced), unless it may be the page's own count (equal to its rows): then the total
	 * is unknown, and the scopesummary decides where the type ends. */
	if (pg->total < 0 && pg->count >= 0 && pg->count != pg->rows)
		pg->total = pg->count;
	rc = 0;
done:
	rec_free(&r);
	jscan_free(&j);
	return rc;
}

void
pr_error_text(const char *body, size_t len, char *out, size_t outlen)
{
	cJSON *d;
	const cJSON *v;
	char *errs = NULL, why[160];

	out[0] = '\0';
	if (body == NULL || len == 0)
		return;
	if ((d = json_parse_bounded(body, len, PR_MAX_NODES, why, sizeof why)) != NULL && cJSON_IsObject(d)) {
		/* ProblemDetails (title, detail, errors) or the rate limiter's {statusCode, message}. */
		const cJSON *title = cJSON_GetObjectItemCaseSensitive(d, "title");
		const cJSON *detail = cJSON_GetObjectItemCaseSensitive(d, "detail");

		v = cJSON_GetObjectItemCaseSensitive(d, "errors");
		if (v != NULL)
			errs = cJSON_PrintUnformatted(v);
		if (!cJSON_IsString(title))
			title = cJSON_GetObjectItemCaseSensitive(d, "message");
		snprintf(out, outlen, "%s%s%s%s%s", cJSON_IsString(title) ? title->valuestring : "",
		    cJSON_IsString(detail) ? ": " : "", cJSON_IsString(detail) ? detail->valuestring : "",
		    errs ? " " : "", errs ? errs : "");
		free(errs);
	}
	cJSON_Delete(d);
	if (out[0] == '\0')
		snprintf(out, outlen, "%.*s", (int)(len < 160 ? len : 160), body);
	/* The upstream's words go into logs and rows: escaped on the way in. */
	text_escape_inplace(out, outlen, 0);
}
