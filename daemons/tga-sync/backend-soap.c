/*
 * The SOAP web services backend (backend.h): source-soap.c for the operations, the incremental phases
 * (phase-init.c, phase-sync.c, phase-sweep.c).
 */
#include <stdlib.h>

#include "backend.h"
#include "log.h"
#include "soap.h"
#include "source.h"
#include "tga.h"

static void
soap_open(struct tga *t)
{
	t->src = src_soap_new(t);
}

static void
soap_close(struct tga *t)
{
	src_free(t->src);
	t->src = NULL;
}

static void
soap_describe(const struct tga *t, const struct http_settings *hs)
{
	char *tc = soap_url(&t->set, SVC_TRAINING), *org = soap_url(&t->set, SVC_ORGANISATION);

	(void)hs;
	log_info("TGA web services: %s and %s as %s (namespace %s)", tc, org, t->set.username, t->set.ns);
	free(tc);
	free(org);
}

static void
soap_status(const struct tga *t, cJSON *o)
{
	cJSON_AddStringToObject(o, "base_url", t->set.base_url);
	cJSON_AddNumberToObject(o, "version", t->set.version);
}

const struct tga_backend tga_backend_soap = {
	.name = "soap",
	.http_name = "TGA",
	.needs_password = true,
	.http_settings = NULL,
	.open = soap_open,
	.close = soap_close,
	.describe = soap_describe,
	.status = soap_status,
	.init = phase_init_run,
	.sync_training = phase_training_run,
	.sync_orgs = phase_orgs_run,
	.sweep = phase_sweep_run,
};

const struct tga_backend *
tga_backend_of(enum tga_source_kind kind)
{
	return kind == TGA_SOURCE_REST ? &tga_backend_rest : &tga_backend_soap;
}
