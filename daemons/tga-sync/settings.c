/* The [tga-sync] configuration keys and their checked, parsed form. */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config.h"
#include "tga.h"
#include "tgatime.h"
#include "xmalloc.h"

const char *const tct_names[TCT_COUNT] = {
	"AccreditedCourse", "AccreditedCourseModule", "Qualification", "SkillSet", "TrainingPackage", "Unit",
	"UnitContextualisation",
};
const char *const tct_filter_names[TCT_COUNT] = {
	"IncludeAccreditedCourse", "IncludeAccreditedCourseModule", "IncludeQualification", "IncludeSkillSet",
	"IncludeTrainingPackage", "IncludeUnit", "IncludeUnitContextualisation",
};
const char *const tc_flag_names[TC_FLAG_COUNT] = {
	"ShowClassifications", "ShowCompletionMapping", "ShowComponents", "ShowContacts", "ShowCurrencyPeriods",
	"ShowDataManagers", "ShowFiles", "ShowMappingInformation", "ShowRecognitionManagers", "ShowReleases",
	"ShowUnitGrid", "ShowUsageRecommendation",
};
const char *const org_flag_names[ORG_FLAG_COUNT] = {
	"ShowCodes", "ShowContacts", "ShowDataManagers", "ShowExplicitScope", "ShowImplicitScope", "ShowLocations",
	"ShowRegistrationManagers", "ShowRegistrationPeriods", "ShowResponsibleLegalPersons", "ShowRestrictions",
	"ShowRtoClassifications", "ShowRtoDeliveryNotification", "ShowTradingNames", "ShowUrls",
};

#define DEFAULT_TC_DETAILS \
	"ShowClassifications ShowCurrencyPeriods ShowMappingInformation ShowReleases ShowUnitGrid ShowUsageRecommendation"
#define DEFAULT_ORG_DETAILS \
	"ShowExplicitScope ShowImplicitScope ShowLocations ShowRegistrationPeriods ShowResponsibleLegalPersons " \
	"ShowTradingNames ShowUrls"

const struct cfg_key tga_config_keys[] = {
	{ "source", CFG_ENUM, "soap", 0, 0, "soap|rest", 0,
	    "soap: the TGA web services (incremental; needs a TGA account), or rest: the public training.gov.au REST "
	    "API (no account; a full crawl every cycle; the rest_* keys)." },
	{ "base_url", CFG_URL, "https://ws.training.gov.au/Deewr.Tga.Webservices", 0, 0, NULL, 0,
	    "TGA web services root: production https://ws.training.gov.au/Deewr.Tga.Webservices, sandbox "
	    "https://ws.sandbox.training.gov.au/Deewr.Tga.Webservices (plain http only to a loopback address)." },
	{ "version", CFG_INT, "13", 1, 99, NULL, 0,
	    "Service version: paths ...ServiceV<n>.svc and namespace http://training.gov.au/services/<n>/ (1 = the "
	    "unversioned contract)." },
	{ "namespace", CFG_STR, NULL, 0, 0, NULL, 0,
	    "Override the service namespace (default derived from version)." },
	{ "username", CFG_STR, NULL, 0, 0, NULL, 0,
	    "WS-Security user name (the TGA account): required with source = soap, the default (the public sandbox "
	    "uses WebService.Read)." },
	{ "password_file", CFG_PATH, NULL, 0, 0, NULL, 0,
	    "File (mode 0600) holding the password, unless the systemd credential tga-password is given." },
	{ "ws_timestamp", CFG_BOOL, "yes", 0, 0, NULL, 0,
	    "Send a wsu:Timestamp (Created/Expires) in the security header, as the WSDL policy advertises." },
	{ "page_size", CFG_INT, "500", 1, 1000, NULL, 0,
	    "Results per search page (TGA's maximum is 1000; 100-500 is kind to the service). A step writes one page." },
	{ "window", CFG_DURATION, "1d", 60000, 31622400000LL, NULL, 0,
	    "Modified-date window of a search (one day, as onCourse walked it); sparse history widens it (max_window)." },
	{ "max_window", CFG_DURATION, "90d", 60000, 31622400000LL, NULL, 0,
	    "Widest window when windows come back nearly empty (the first cycle walks years of history)." },
	{ "epoch", CFG_STR, "2000-01-01", 0, 0, NULL, 0,
	    "Where the first cycle (and --full) starts: YYYY-MM-DD or an ISO-8601 UTC time." },
	{ "overlap", CFG_DURATION, "1h", 0, 2592000000LL, NULL, 0,
	    "Later cycles start this long before the last cycle's high-water mark (clock and commit skew upstream)." },
	{ "component_types", CFG_STR, "TrainingPackage Qualification Unit SkillSet AccreditedCourse", 0, 0, NULL, 0,
	    "Training component types to sync (ComponentType names, space-separated)." },
	{ "component_details", CFG_STR, DEFAULT_TC_DETAILS, 0, 0, NULL, 0,
	    "Show* flags of TrainingComponentService.GetDetails (only what the tables store)." },
	{ "organisation_details", CFG_STR, DEFAULT_ORG_DETAILS, 0, 0, NULL, 0,
	    "Show* flags of OrganisationService.GetDetails." },
	{ "tc_information_element", CFG_STR, "InformationRequest", 0, 0, NULL, 0,
	    "Name of the Show* container in TrainingComponentDetailsRequest (the XSD: InformationRequest)." },
	{ "org_information_element", CFG_STR, "InformationRequested", 0, 0, NULL, 0,
	    "Name of the Show* container in OrganisationDetailsRequest (the XSD: InformationRequested)." },
	{ "include_legacy_data", CFG_ENUM, "omit", 0, 0, "omit|false|true", 0,
	    "IncludeLegacyData in GetDetails and TC SearchByModifiedDate (V2+): omit sends nothing (the server default)." },
	{ "skip_unchanged", CFG_BOOL, "yes", 0, 0, NULL, 0,
	    "Skip GetDetails when a search result's UpdatedDate equals the stored one (never on --full cycles)." },
	{ "parse_retries", CFG_INT, "2", 0, 10, NULL, 0,
	    "Re-requests of a response that is malformed or cut short before the step fails." },
	{ "summary_list_max", CFG_INT, "50", 0, 10000, NULL, 0,
	    "Codes listed per kind of change in the run summary and the mail (the rest as \"and N more\")." },
	{ "rest_base_url", CFG_URL, "https://training.gov.au/api", 0, 0, NULL, 0,
	    "source = rest: the public REST API root (plain http only to a loopback address)." },
	{ "rest_page_size", CFG_INT, "500", 1, 1000, NULL, 0,
	    "source = rest: search results per page (the API answers 417 above 1000). A step reads one page and the "
	    "details of every record on it." },
	{ "rest_scope_page_size", CFG_INT, "1000", 1, 1000, NULL, 0,
	    "source = rest: RTO scope rows per request." },
	{ "rest_offset_cap", CFG_INT, "50000", 0, 1000000000, NULL, 0,
	    "source = rest: the API refuses offsets from this one on; a crawl that would page past it goes on with the "
	    "codes after the last one read (0: no cap)." },
	{ "rest_max_in_flight", CFG_INT, NULL, 1, 64, NULL, 0,
	    "source = rest: requests in flight at once (default: max_in_flight)." },
	{ "rest_min_interval", CFG_DURATION, NULL, 0, 600000, NULL, 0,
	    "source = rest: least time between request starts (default: min_interval)." },
	{ "rest_probe", CFG_BOOL, "yes", 0, 0, NULL, 0,
	    "source = rest: read /api/metadata first and end the cycle early as \"no change\" when its data export "
	    "sync time is the one the last complete cycle read (never with --full)." },
	{ "rest_max_removals", CFG_INT, "1000", 0, 1000000000, NULL, 0,
	    "source = rest: a cycle that finds more records gone (404) than this fails instead of soft-deleting them, "
	    "so that a changed API cannot empty the register (0: no limit)." },
	{ NULL, 0, NULL, 0, 0, NULL, 0, NULL },
};

int
tc_flag_index(const char *name)
{
	int i;

	for (i = 0; i < TC_FLAG_COUNT; i++)
		if (strcmp(tc_flag_names[i], name) == 0)
			return i;
	return -1;
}

int
org_flag_index(const char *name)
{
	int i;

	for (i = 0; i < ORG_FLAG_COUNT; i++)
		if (strcmp(org_flag_names[i], name) == 0)
			return i;
	return -1;
}

bool
tga_code_valid(const char *s, size_t len)
{
	size_t i;

	if (len == 0 || len >= TGA_CODE_MAX)
		return false;
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (!isalnum(c) && c != '-' && c != '_' && c != '.' && c != '/')
			return false;
	}
	return true;
}

static int where_error(char **cause, const struct config *cfg, const char *section, const char *key,
    const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static int
where_error(char **cause, const struct config *cfg, const char *section, const char *key, const char *fmt, ...)
{
	char where[512], *msg = NULL;
	va_list ap;

	config_where(cfg, section, key, where, sizeof where);
	va_start(ap, fmt);
	xvasprintf(&msg, fmt, ap);
	va_end(ap);
	xasprintf(cause, "%s: %s", where, msg);
	free(msg);
	return -1;
}

/* A space- or comma-separated list of names from a table: returns the bit set, or -1 naming the bad word. */
static int
parse_list(const char *v, const char *const *table, int n, unsigned *out, char *bad, size_t badlen)
{
	char *copy = xstrdup(v), *tok, *save;
	int i;

	*out = 0;
	for (tok = strtok_r(copy, " ,\t", &save); tok != NULL; tok = strtok_r(NULL, " ,\t", &save)) {
		for (i = 0; i < n; i++)
			if (strcmp(table[i], tok) == 0)
				break;
		if (i == n) {
			snprintf(bad, badlen, "%s", tok);
			free(copy);
			return -1;
		}
		*out |= 1u << i;
	}
	free(copy);
	return 0;
}

static bool
ncname(const char *s)
{
	if (s == NULL || !isalpha((unsigned char)*s))
		return false;
	for (; *s != '\0'; s++)
		if (!isalnum((unsigned char)*s) && *s != '_')
			return false;
	return true;
}

int
tga_settings_load(struct tga_settings *s, const struct config *cfg, const char *sec, char **cause)
{
	const char *v;
	char bad[128];
	size_t len;
	bool zone;
	int64_t t;
	int rc;

	memset(s, 0, sizeof *s);
	s->source = strcmp(config_str(cfg, sec, "source"), "rest") == 0 ? TGA_SOURCE_REST : TGA_SOURCE_SOAP;
	/* base_url and rest_base_url passed the URL policy (urlpolicy.h) when the file was loaded. */
	v = config_str(cfg, sec, "base_url");
	s->base_url = xstrdup(v);
	len = strlen(s->base_url);
	while (len > 0 && s->base_url[len - 1] == '/')
		s->base_url[--len] = '\0';
	s->version = (int)config_int(cfg, sec, "version");
	if ((v = config_str(cfg, sec, "namespace")) != NULL)
		xasprintf(&s->ns, "%s%s", v, v[0] != '\0' && v[strlen(v) - 1] == '/' ? "" : "/");
	else if (s->version == 1)
		s->ns = xstrdup("http://training.gov.au/services/");
	else
		xasprintf(&s->ns, "http://training.gov.au/services/%d/", s->version);
	/* The REST API is public: only the SOAP services need an account. */
	if ((v = config_str(cfg, sec, "username")) == NULL && s->source == TGA_SOURCE_SOAP) {
		tga_settings_free(s);
		return where_error(cause, cfg, sec, "username", "required with source = soap (the TGA account; or set "
		    "source = rest to read the public REST API without one)");
	}
	s->username = xstrdup(v != NULL ? v : "");
	s->ws_timestamp = config_bool(cfg, sec, "ws_timestamp");
	s->page_size = (int)config_int(cfg, sec, "page_size");
	s->window_s = config_ms(cfg, sec, "window") / 1000;
	s->max_window_s = config_ms(cfg, sec, "max_window") / 1000;
	if (s->max_window_s < s->window_s)
		s->max_window_s = s->window_s;
	s->overlap_s = config_ms(cfg, sec, "overlap") / 1000;
	v = config_str(cfg, sec, "epoch");
	{
		char full[64];

		snprintf(full, sizeof full, strlen(v) == 10 ? "%sT00:00:00Z" : "%s", v);
		if (!ticks_parse(full, strlen(full), &t, &zone)) {
			tga_settings_free(s);
			return where_error(cause, cfg, sec, "epoch", "'%s' is not YYYY-MM-DD or an ISO-8601 time", v);
		}
		s->epoch_ticks = t;
	}
	if ((rc = parse_list(config_str(cfg, sec, "component_types"), tct_names, TCT_COUNT, &s->tc_types, bad,
	    sizeof bad)) == -1 || s->tc_types == 0) {
		if (rc == 0)
			snprintf(bad, sizeof bad, "(nothing)");
		tga_settings_free(s);
		return where_error(cause, cfg, sec, "component_types", "'%s' is not a training component type "
		    "(TrainingPackage, Qualification, Unit, SkillSet, AccreditedCourse, ...)", bad);
	}
	if (parse_list(config_str(cfg, sec, "component_details"), tc_flag_names, TC_FLAG_COUNT, &s->tc_flags, bad,
	    sizeof bad) == -1) {
		tga_settings_free(s);
		return where_error(cause, cfg, sec, "component_details", "'%s' is not a Show* flag of "
		    "TrainingComponentInformationRequested", bad);
	}
	if (parse_list(config_str(cfg, sec, "organisation_details"), org_flag_names, ORG_FLAG_COUNT, &s->org_flags,
	    bad, sizeof bad) == -1) {
		tga_settings_free(s);
		return where_error(cause, cfg, sec, "organisation_details", "'%s' is not a Show* flag of "
		    "OrganisationInformationRequested", bad);
	}
	v = config_str(cfg, sec, "tc_information_element");
	if (!ncname(v)) {
		tga_settings_free(s);
		return where_error(cause, cfg, sec, "tc_information_element", "'%s' is not an element name", v);
	}
	s->tc_info_element = xstrdup(v);
	v = config_str(cfg, sec, "org_information_element");
	if (!ncname(v)) {
		tga_settings_free(s);
		return where_error(cause, cfg, sec, "org_information_element", "'%s' is not an element name", v);
	}
	s->org_info_element = xstrdup(v);
	v = config_str(cfg, sec, "include_legacy_data");
	s->legacy = strcmp(v, "omit") == 0 ? -1 : strcmp(v, "true") == 0;
	s->skip_unchanged = config_bool(cfg, sec, "skip_unchanged");
	s->parse_retries = (int)config_int(cfg, sec, "parse_retries");
	s->summary_list_max = (int)config_int(cfg, sec, "summary_list_max");
	v = config_str(cfg, sec, "rest_base_url");
	s->rest_base_url = xstrdup(v);
	len = strlen(s->rest_base_url);
	while (len > 0 && s->rest_base_url[len - 1] == '/')
		s->rest_base_url[--len] = '\0';
	s->rest_page_size = (int)config_int(cfg, sec, "rest_page_size");
	s->rest_scope_page_size = (int)config_int(cfg, sec, "rest_scope_page_size");
	s->rest_offset_cap = config_int(cfg, sec, "rest_offset_cap");
	s->rest_probe = config_bool(cfg, sec, "rest_probe");
	s->rest_max_removals = config_int(cfg, sec, "rest_max_removals");
	s->rest_max_in_flight = config_isset(cfg, sec, "rest_max_in_flight") ?
	    (int)config_int(cfg, sec, "rest_max_in_flight") : 0;
	s->rest_min_interval_ms = config_isset(cfg, sec, "rest_min_interval") ?
	    config_ms(cfg, sec, "rest_min_interval") : -1;
	return 0;
}

void
tga_settings_free(struct tga_settings *s)
{
	free(s->base_url);
	free(s->ns);
	free(s->username);
	free(s->tc_info_element);
	free(s->org_info_element);
	free(s->rest_base_url);
	memset(s, 0, sizeof *s);
}
