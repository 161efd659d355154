/*
 * cricos-sync: the job definition, its configuration and its lifetime hooks.  The phases are in phase-*.c, the
 * CKAN client in ckan*.c, the tables in tables.c, the edition watch in watch.c (see cricos.h for the cycle).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "cricos.h"
#include "cycle.h"
#include "daemon.h"
#include "db.h"
#include "http.h"
#include "log.h"
#include "publish.h"
#include "timeutil.h"
#include "xmalloc.h"

/* --- small helpers ------------------------------------------------------------------------------------------- */

cJSON *
json_obj(cJSON *parent, const char *key)
{
	cJSON *o = cJSON_GetObjectItemCaseSensitive(parent, key);

	if (cJSON_IsObject(o))
		return o;
	if (o != NULL)
		cJSON_DeleteItemFromObjectCaseSensitive(parent, key);
	return cJSON_AddObjectToObject(parent, key);
}

const char *
json_str(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

	return cJSON_IsString(v) ? v->valuestring : "";
}

double
json_num(const cJSON *o, const char *key, double def)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

	return cJSON_IsNumber(v) ? v->valuedouble : def;
}

void
json_set_str(cJSON *o, const char *key, const char *v)
{
	cJSON_DeleteItemFromObjectCaseSensitive(o, key);
	cJSON_AddStringToObject(o, key, v);
}

void
json_set_num(cJSON *o, const char *key, double v)
{
	cJSON *it = cJSON_GetObjectItemCaseSensitive(o, key);

	if (cJSON_IsNumber(it))
		cJSON_SetNumberValue(it, v);
	else {
		cJSON_DeleteItemFromObjectCaseSensitive(o, key);
		cJSON_AddNumberToObject(o, key, v);
	}
}

void
json_add_num(cJSON *o, const char *key, double v)
{
	json_set_num(o, key, json_num(o, key, 0) + v);
}

bool
ckan_time(const char *s, time_t *t)
{
	/* CKAN writes naive UTC ("2026-05-04T13:23:11.107628"); iso8601_parse reads that as UTC, and a Z too. */
	return s != NULL && *s != '\0' && iso8601_parse(s, t);
}

/* "+10:00", "+1000", "-05:30", "+10", "Z", "0" -> seconds east of UTC. */
static bool
parse_offset(const char *s, long *out)
{
	int sign = 1, h = 0, m = 0, n = 0;

	if (strcmp(s, "Z") == 0 || strcmp(s, "0") == 0 || strcmp(s, "UTC") == 0) {
		*out = 0;
		return true;
	}
	if (*s == '+' || *s == '-')
		sign = *s++ == '-' ? -1 : 1;
	else
		return false;
	if (sscanf(s, "%2d:%2d%n", &h, &m, &n) == 2 && s[n] == '\0')
		;
	else if (strlen(s) == 4 && sscanf(s, "%2d%2d%n", &h, &m, &n) == 2 && s[n] == '\0')
		;
	else if (sscanf(s, "%2d%n", &h, &n) == 1 && s[n] == '\0')
		m = 0;
	else
		return false;
	if (h > 14 || m > 59)
		return false;
	*out = sign * (h * 3600L + m * 60L);
	return true;
}

/* --- configuration ------------------------------------------------------------------------------------------- */

static const char *const resource_keys[T_COUNT] = {
	"resource_institutions", "resource_courses", "resource_locations", "resource_course_locations",
};

static int
configure(struct cricos *c, const struct config *cfg, char **cause)
{
	char where[256];
	long off;
	size_t i;
	const char *v;

	if (!parse_offset(config_str(cfg, CRICOS_SECTION, "timezone_offset"), &off)) {
		xasprintf(cause, "%s: '%s' is not a UTC offset like +10:00",
		    config_where(cfg, CRICOS_SECTION, "timezone_offset", where, sizeof where),
		    config_str(cfg, CRICOS_SECTION, "timezone_offset"));
		return -1;
	}
	for (i = 0; i < T_COUNT; i++) {
		v = config_str(cfg, CRICOS_SECTION, resource_keys[i]);
		if (v == NULL || *v == '\0' || strlen(v) > 60 || strspn(v, "0123456789abcdefABCDEF-") != strlen(v)) {
			xasprintf(cause, "%s: '%s' is not a CKAN resource id",
			    config_where(cfg, CRICOS_SECTION, resource_keys[i], where, sizeof where), v ? v : "");
			return -1;
		}
	}
	v = config_str(cfg, CRICOS_SECTION, "package_id");
	if (v == NULL || *v == '\0') {
		xasprintf(cause, "%s: must not be empty",
		    config_where(cfg, CRICOS_SECTION, "package_id", where, sizeof where));
		return -1;
	}

	free(c->base);
	c->base = xstrdup(config_str(cfg, CRICOS_SECTION, "base_url"));
	free(c->package_id);
	c->package_id = xstrdup(v);
	for (i = 0; i < T_COUNT; i++) {
		free(c->resource_id[i]);
		c->resource_id[i] = xstrdup(config_str(cfg, CRICOS_SECTION, resource_keys[i]));
	}
	c->page_size = (int)config_int(cfg, CRICOS_SECTION, "page_size");
	free(c->page_sort);
	c->page_sort = xstrdup(config_str(cfg, CRICOS_SECTION, "page_sort") ? config_str(cfg, CRICOS_SECTION,
	    "page_sort") : "");
	c->max_page_bytes = config_int(cfg, CRICOS_SECTION, "max_page_bytes");
	c->summary_max = (int)config_int(cfg, CRICOS_SECTION, "summary_max_items");
	c->tz_offset = off;
	c->watch_enabled = config_bool(cfg, CRICOS_SECTION, "edition_watch");
	c->watch_interval_ms = config_ms(cfg, CRICOS_SECTION, "watch_interval");
	c->late_day = (int)config_int(cfg, CRICOS_SECTION, "watch_late_day");
	return 0;
}

static void
free_settings(struct cricos *c)
{
	size_t i;

	free(c->base);
	free(c->package_id);
	for (i = 0; i < T_COUNT; i++)
		free(c->resource_id[i]);
	free(c->page_sort);
}

/* -n: what configure() refuses, with nothing kept. */
static int
cricos_check(const struct config *cfg, const char *section, char **cause)
{
	struct cricos tmp;
	int rc;

	memset(&tmp, 0, sizeof tmp);
	rc = configure(&tmp, cfg, cause);
	free_settings(&tmp);
	return rc;
}

static int
cricos_init(struct daemon *d, char **cause)
{
	struct cricos *c = xcalloc(1, sizeof *c);
	struct http_settings hs;

	c->d = d;
	if (configure(c, d->cfg, cause) == -1) {
		d->job_ctx = c;
		return -1;
	}
	http_settings_from_config(&hs, d->cfg, CRICOS_SECTION, "data.gov.au");
	c->http = http_client_new(d->ec, d->loop, &hs);
	d->job_ctx = c;
	c->pub = publish_new(d->loop, d->d1, d->db, &cricos_publish);
	return 0;
}

static int
cricos_reload(struct daemon *d, char **cause)
{
	struct cricos *c = d->job_ctx;
	struct http_settings hs;

	if (configure(c, d->cfg, cause) == -1)
		return -1;
	http_settings_from_config(&hs, d->cfg, CRICOS_SECTION, "data.gov.au");
	http_client_settings(c->http, &hs);
	/* The publisher keeps the daemon's D1 client: [d1] changes take effect at restart (daemon.h). */
	return 0;
}

static void
cricos_fini(struct daemon *d)
{
	struct cricos *c = d->job_ctx;

	if (c == NULL)
		return;
	publish_free(c->pub);
	http_client_free(c->http);
	free_settings(c);
	free(c);
	d->job_ctx = NULL;
}

/* `syncctl status cricos-sync`: the edition in the corpus and the watch. */
static const char SQL_JOB_STATE[] = "SELECT job_state FROM cricos_sync_cursor WHERE id = 1";

static void
cricos_status(struct daemon *d, cJSON *out)
{
	struct cricos *c = d->job_ctx;
	sqlite3_stmt *q;
	cJSON *js = NULL, *it;

	publish_status(c->pub, out);
	if (db_in_tx(d->db) || (q = db_stmt(d->db, SQL_JOB_STATE, NULL)) == NULL)
		return;
	if (sqlite3_step(q) == SQLITE_ROW)
		js = cJSON_Parse(db_col_text(q, 0));
	sqlite3_reset(q);
	if (js == NULL)
		return;
	if ((it = cJSON_GetObjectItemCaseSensitive(js, "edition")) != NULL)
		cJSON_AddItemToObject(out, "edition", cJSON_Duplicate(it, 1));
	if ((it = cJSON_GetObjectItemCaseSensitive(js, "watch")) != NULL)
		cJSON_AddItemToObject(out, "edition_watch", cJSON_Duplicate(it, 1));
	cJSON_Delete(js);
}

/* --- the job ------------------------------------------------------------------------------------------------- */

static const struct phase_def phases[] = {
	{ "init", phase_init, 0 },
	{ "sync_institutions", phase_sync_institutions, PHASE_CORPUS },
	{ "sync_courses", phase_sync_courses, PHASE_CORPUS },
	{ "sync_locations", phase_sync_locations, PHASE_CORPUS },
	{ "sync_course_locations", phase_sync_course_locations, PHASE_CORPUS },
	{ "link", phase_link, PHASE_CORPUS },
	{ "write_snapshot", phase_snapshot, PHASE_CORPUS },
	{ "publish", phase_publish, 0 },
	{ "notify", phase_notify, 0 },
};

static const struct job_def cricos_job = {
	.daemon = "cricos-sync",
	.sync_type = "cricos_sync",
	.description = "Keeps the CRICOS register (institutions, courses, locations) in step with data.gov.au.",
	.phases = phases,
	.nphases = sizeof phases / sizeof phases[0],
	.uses_corpus = true,
	.config_keys = cricos_config_keys,
	.d1_budget = CRICOS_D1_BUDGET,
	.check = cricos_check,
	.init = cricos_init,
	.fini = cricos_fini,
	.reload = cricos_reload,
	.format_summary = cricos_format_summary,
	.housekeeping = watch_housekeeping,
	.status = cricos_status,
};

int
main(int argc, char **argv)
{
	return daemon_main(argc, argv, &cricos_job);
}
