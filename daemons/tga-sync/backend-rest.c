/*
 * The public REST API backend (backend.h; issue 8): source-rest.c for the operations, the crawl in phase-rest.c.
 * The API is public: no password.  Its own request pacing ([tga-sync] rest_max_in_flight, rest_min_interval)
 * overrides the HTTP settings, and the requests in flight are the crawl's lanes.
 */
#include "backend.h"
#include "http.h"
#include "log.h"
#include "source-rest.h"
#include "tga.h"

static void
rest_http_settings(struct tga *t, struct http_settings *hs)
{
	if (t->set.rest_max_in_flight > 0)
		hs->max_in_flight = t->set.rest_max_in_flight;
	if (t->set.rest_min_interval_ms >= 0)
		hs->min_interval_ms = t->set.rest_min_interval_ms;
	t->rest_lanes = hs->max_in_flight;
}

static void
rest_open(struct tga *t)
{
	t->rest = rest_source_new(t);
}

static void
rest_describe(const struct tga *t, const struct http_settings *hs)
{
	log_info("TGA REST API: %s (public, no credentials; %d request%s in flight, %lld ms apart)",
	    t->set.rest_base_url, t->rest_lanes, t->rest_lanes == 1 ? "" : "s", (long long)hs->min_interval_ms);
}

static void
rest_status(const struct tga *t, cJSON *o)
{
	cJSON_AddStringToObject(o, "base_url", t->set.rest_base_url);
}

static void
rest_close(struct tga *t)
{
	rest_source_free(t->rest);
	t->rest = NULL;
}

const struct tga_backend tga_backend_rest = {
	.name = "rest",
	.http_name = "TGA REST",
	.needs_password = false,
	.http_settings = rest_http_settings,
	.open = rest_open,
	.close = rest_close,
	.describe = rest_describe,
	.status = rest_status,
	.init = phase_rest_init_run,
	.sync_training = phase_rest_training_run,
	.sync_orgs = phase_rest_orgs_run,
	.sweep = phase_rest_sweep_run,
};
