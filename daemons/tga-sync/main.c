/*
 * tga-sync: keeps rtopacks.db's copy of the National Register of VET in step with training.gov.au.
 *
 *   init             read the server's clock; plan the cycle (from the epoch, or the last mark minus the overlap)
 *   sync_training    TrainingComponentService: changed components by modified-date window, their details
 *   sync_orgs        OrganisationService: changed RTOs, each with its whole scope in one transaction
 *   sweep_deletions  tombstones of both services: soft deletes
 *   write_snapshot   the change summary from the rows' stamps; advance the high-water mark
 *   publish          the rows changed since D1's copy into D1's corpus database (phase-publish.c)
 *   notify           the completion mail
 *
 * With [tga-sync] source = rest the same phases run over the public REST API (phase-rest.c, source-rest.c): init
 * reads /api/metadata, the sync phases crawl the whole register, and the tables are the same.  Each source is one
 * table of operations and phases (backend.h), chosen once when the settings load.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "config.h"
#include "cycle.h"
#include "daemon.h"
#include "db.h"
#include "http.h"
#include "log.h"
#include "publish.h"
#include "tga.h"
#include "xmalloc.h"

/* The scope diff notes the keys of an answer here (per connection, never on disk for long). */
static const char DDL_TEMP[] =
    "CREATE TEMP TABLE IF NOT EXISTS tga_scope_seen (nrt_code TEXT NOT NULL, is_implicit INTEGER NOT NULL,"
    " PRIMARY KEY (nrt_code, is_implicit)) WITHOUT ROWID";
/* 16 MiB of page cache for rtopacks.db: enough for the B-tree interiors of 6.2 million scope rows, and well inside
 * the 64 MB the daemon may use. */
static const char PRAGMA_CACHE[] = "PRAGMA corpus.cache_size = -16384";
/* Checkpoint the WAL every 64 MiB rather than every 4 MiB: a page of the first cycle writes a few MiB, and a
 * checkpoint (a sync of the database file) after nearly every commit cost more than the writes themselves. */
static const char PRAGMA_CHECKPOINT[] = "PRAGMA wal_autocheckpoint = 16384";

/* The source objects of the settings in force (after a reload that failed, the old ones). */
static void
make_sources(struct tga *t)
{
	if (t->opened != NULL)
		t->opened->close(t);
	t->be->open(t);
	t->opened = t->be;
}

/* -n: what setup() refuses (the settings, and the password for the SOAP source), without keeping anything. */
static int
tga_check(const struct config *cfg, const char *section, char **cause)
{
	struct tga_settings set;
	char *password;

	if (tga_settings_load(&set, cfg, section, cause) == -1)
		return -1;
	if (tga_backend_of(set.source)->needs_password) {
		if ((password = secret_load(cfg, section, "password_file", "tga-password", cause)) == NULL) {
			tga_settings_free(&set);
			return -1;
		}
		secret_free(password);
	}
	tga_settings_free(&set);
	return 0;
}

static int
setup(struct daemon *d, struct tga *t, char **cause)
{
	struct http_settings hs;

	if (tga_settings_load(&t->set, d->cfg, d->section, cause) == -1)
		return -1;
	t->be = tga_backend_of(t->set.source);
	/* The REST API is public: no password (and none is looked for). */
	if (t->be->needs_password &&
	    (t->password = secret_load(d->cfg, d->section, "password_file", "tga-password", cause)) == NULL)
		return -1;
	http_settings_from_config(&hs, d->cfg, d->section, t->be->http_name);
	if (t->be->http_settings != NULL)
		t->be->http_settings(t, &hs);
	if (t->http == NULL)
		t->http = http_client_new(d->ec, d->loop, &hs);
	else
		http_client_settings(t->http, &hs);
	make_sources(t);
	free(t->spool_dir);
	t->spool_dir = xstrdup(config_str(d->cfg, "paths", "spool_dir"));
	t->be->describe(t, &hs);
	return 0;
}

static void
teardown(struct tga *t)
{
	tga_settings_free(&t->set);
	secret_free(t->password);
	t->password = NULL;
}

static int
tga_init(struct daemon *d, char **cause)
{
	struct tga *t = xcalloc(1, sizeof *t);

	t->d = d;
	d->job_ctx = t;
	if (db_exec(d->db, DDL_TEMP, cause) == -1 || db_exec(d->db, PRAGMA_CACHE, cause) == -1 ||
	    db_exec(d->db, PRAGMA_CHECKPOINT, cause) == -1)
		return -1;
	t->pub = publish_new(d->loop, d->d1, d->db, &tga_publish);
	return setup(d, t, cause);
}

static int
tga_reload(struct daemon *d, char **cause)
{
	struct tga *t = d->job_ctx;
	struct tga_settings old = t->set;
	char *old_password = t->password;
	int rc;

	memset(&t->set, 0, sizeof t->set);
	t->password = NULL;
	if ((rc = setup(d, t, cause)) == -1) {
		/* Keep running with what worked. */
		tga_settings_free(&t->set);
		secret_free(t->password);
		t->set = old;
		t->password = old_password;
		t->be = tga_backend_of(t->set.source);
		make_sources(t);
		return -1;
	}
	tga_settings_free(&old);
	secret_free(old_password);
	/* The publisher keeps the daemon's D1 client: [d1] changes take effect at restart (daemon.h). */
	return 0;
}

static void
tga_fini(struct daemon *d)
{
	struct tga *t = d->job_ctx;

	if (t == NULL)
		return;
	if (t->opened != NULL)
		t->opened->close(t);
	publish_free(t->pub);
	http_client_free(t->http);
	teardown(t);
	free(t->spool_dir);
	free(t);
	d->job_ctx = NULL;
}

static void
tga_status(struct daemon *d, cJSON *out)
{
	struct tga *t = d->job_ctx;
	struct http_stats hs;
	cJSON *o = cJSON_AddObjectToObject(out, "tga");

	cJSON_AddStringToObject(o, "source", t->be->name);
	t->be->status(t, o);
	if (t->http != NULL) {
		http_client_stats(t->http, &hs);
		cJSON_AddNumberToObject(o, "requests", (double)hs.requests);
		cJSON_AddNumberToObject(o, "retries", (double)hs.retries);
		cJSON_AddNumberToObject(o, "failures", (double)hs.failures);
		cJSON_AddNumberToObject(o, "bytes_in", (double)hs.bytes_in);
	}
	publish_status(t->pub, out);
}

/*
 * The phases of the configured source.  A cycle keeps the source it began with (init notes a REST one in its
 * cycle state): a configuration switched in the middle of a cycle fails the run with a message rather than
 * resuming a SOAP cursor with the REST crawl, or the reverse.
 */
static bool
same_source(struct step *st)
{
	struct tga *t = step_job(st);
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(step_cycle_state(st), "source");
	const char *began = cJSON_IsString(v) && strcmp(v->valuestring, "rest") == 0 ? "rest" : "soap";

	if (strcmp(began, t->be->name) == 0)
		return true;
	step_fail(st, STEP_FATAL, "this cycle began with source = %s and the configuration now says source = %s: "
	    "set it back to finish the cycle, or start a new one with `syncctl trigger tga-sync --full`",
	    began, t->be->name);
	return false;
}

static const struct tga_backend *
be(struct step *st)
{
	return ((struct tga *)step_job(st))->be;
}

static void
run_init(struct step *st)
{
	be(st)->init(st);
}

static void
run_training(struct step *st)
{
	if (same_source(st))
		be(st)->sync_training(st);
}

static void
run_orgs(struct step *st)
{
	if (same_source(st))
		be(st)->sync_orgs(st);
}

static void
run_sweep(struct step *st)
{
	if (same_source(st))
		be(st)->sweep(st);
}

static void
run_snapshot(struct step *st)
{
	if (same_source(st))
		phase_snapshot_run(st);
}

static const struct phase_def phases[] = {
	{ "init", run_init, 0 },
	{ "sync_training", run_training, PHASE_CORPUS },
	{ "sync_orgs", run_orgs, PHASE_CORPUS },
	{ "sweep_deletions", run_sweep, PHASE_CORPUS },
	{ "write_snapshot", run_snapshot, 0 },
	{ "publish", phase_publish, 0 },
	{ "notify", phase_notify, 0 },
};

static const struct job_def tga_sync_job = {
	.daemon = "tga-sync",
	.sync_type = "tga_sync",
	.description = "Keeps rtopacks.db's copy of the National Register of VET in step with training.gov.au.",
	.phases = phases,
	.nphases = sizeof phases / sizeof phases[0],
	.uses_corpus = true,
	.config_keys = tga_config_keys,
	.d1_budget = TGA_D1_BUDGET,
	.check = tga_check,
	.init = tga_init,
	.fini = tga_fini,
	.reload = tga_reload,
	.format_summary = tga_format_summary,
	.status = tga_status,
};

int
main(int argc, char **argv)
{
	return daemon_main(argc, argv, &tga_sync_job);
}
