/*
 * tga-sync: keeps rtopacks.db's copy of the National Register of VET in step with training.gov.au.
 *
 *   init             read the server's clock; plan the cycle (from the epoch, or the last mark minus the overlap)
 *   sync_training    TrainingComponentService: changed components by modified-date window, their details
 *   sync_orgs        OrganisationService: changed RTOs, each with its whole scope in one transaction
 *   sweep_deletions  tombstones of both services: soft deletes
 *   write_snapshot   the change summary from the rows' stamps; advance the high-water mark
 *   notify           the completion mail
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "cycle.h"
#include "daemon.h"
#include "db.h"
#include "http.h"
#include "log.h"
#include "soap.h"
#include "source.h"
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

static int
setup(struct daemon *d, struct tga *t, char **cause)
{
	struct http_settings hs;

	if (tga_settings_load(&t->set, d->cfg, d->section, cause) == -1)
		return -1;
	if ((t->password = secret_load(d->cfg, d->section, "password_file", "tga-password", cause)) == NULL)
		return -1;
	http_settings_from_config(&hs, d->cfg, d->section, "TGA");
	if (t->http == NULL)
		t->http = http_client_new(d->ec, d->loop, &hs);
	else
		http_client_settings(t->http, &hs);
	src_free(t->src);
	t->src = src_soap_new(t);
	free(t->spool_dir);
	t->spool_dir = xstrdup(config_str(d->cfg, "paths", "spool_dir"));
	{
		char *tc = soap_url(&t->set, SVC_TRAINING), *org = soap_url(&t->set, SVC_ORGANISATION);

		log_info("TGA web services: %s and %s as %s (namespace %s)", tc, org, t->set.username, t->set.ns);
		free(tc);
		free(org);
	}
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
		src_free(t->src);
		t->src = src_soap_new(t);
		return -1;
	}
	tga_settings_free(&old);
	secret_free(old_password);
	return 0;
}

static void
tga_fini(struct daemon *d)
{
	struct tga *t = d->job_ctx;

	if (t == NULL)
		return;
	src_free(t->src);
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

	cJSON_AddStringToObject(o, "base_url", t->set.base_url);
	cJSON_AddNumberToObject(o, "version", t->set.version);
	if (t->http != NULL) {
		http_client_stats(t->http, &hs);
		cJSON_AddNumberToObject(o, "requests", (double)hs.requests);
		cJSON_AddNumberToObject(o, "retries", (double)hs.retries);
		cJSON_AddNumberToObject(o, "failures", (double)hs.failures);
		cJSON_AddNumberToObject(o, "bytes_in", (double)hs.bytes_in);
	}
}

static const struct phase_def phases[] = {
	{ "init", phase_init_run, 0 },
	{ "sync_training", phase_training_run, PHASE_CORPUS },
	{ "sync_orgs", phase_orgs_run, PHASE_CORPUS },
	{ "sweep_deletions", phase_sweep_run, PHASE_CORPUS },
	{ "write_snapshot", phase_snapshot_run, 0 },
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
