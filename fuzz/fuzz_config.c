/*
 * The configuration parser and its schema checks on arbitrary file contents, with the sections the daemons really
 * have: daemon_config_sections() (what daemon.c loads) for tga-sync, cricos-sync and qb-reconcile, each with its
 * own key table (tga_config_keys, cricos_config_keys, qbr_config_keys: fuzz/config.sources links them).  The first
 * byte picks the daemon; every key of the table read is then read back with its typed getter.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "daemon.h"
#include "log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
const char *__ubsan_default_options(void);

/* Undefined behaviour is a finding like a crash (the ASan test build has -fno-sanitize-recover too). */
const char *
__ubsan_default_options(void)
{
	return "halt_on_error=1:print_stacktrace=1";
}

/* The daemons' tables (daemons/tga-sync/settings.c, daemons/cricos-sync/keys.c, daemons/qb-reconcile/keys.c);
 * declared here rather than through the daemons' headers, which pull in each daemon's whole world. */
extern const struct cfg_key tga_config_keys[], cricos_config_keys[], qbr_config_keys[];

static void
read_back(const struct config *cfg, const char *section, const struct cfg_key *keys)
{
	const struct cfg_key *k;

	for (k = keys; k->name != NULL; k++) {
		switch (k->type) {
		case CFG_INT:
			(void)config_int(cfg, section, k->name);
			break;
		case CFG_BOOL:
			(void)config_bool(cfg, section, k->name);
			break;
		case CFG_DURATION:
			(void)config_ms(cfg, section, k->name);
			break;
		default:
			(void)config_str(cfg, section, k->name);
			break;
		}
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int fd = -1;
	static char path[64];
	static const struct {
		const char *daemon;
		const struct cfg_key *keys;
	} daemons[] = {
		{ "tga-sync", tga_config_keys },
		{ "cricos-sync", cricos_config_keys },
		{ "qb-reconcile", qbr_config_keys },
	};
	struct job_def job = { 0 };
	struct cfg_section own;
	const struct cfg_section *sections[7];
	struct config *cfg;
	char *cause = NULL;
	int i;

	if (fd == -1) {
		log_init("fuzz", 0);
		fd = memfd_create("fuzz-config", 0);
		fchmod(fd, 0600);	/* a memfd is 0777: config_load refuses a file others can write */
		snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
	}
	if (ftruncate(fd, 0) == -1 || pwrite(fd, data, size, 0) != (ssize_t)size)
		return 0;
	i = size > 0 ? data[0] % 3 : 0;
	job.daemon = daemons[i].daemon;
	job.config_keys = daemons[i].keys;
	daemon_config_sections(&job, &own, sections);
	if ((cfg = config_load(path, sections, &cause)) != NULL) {
		read_back(cfg, "paths", cfg_paths.keys);
		read_back(cfg, "smtp", cfg_smtp.keys);
		read_back(cfg, job.daemon, cfg_job_common_keys);
		read_back(cfg, job.daemon, job.config_keys);
		(void)config_job_ms(cfg, job.daemon, "low_speed_time");
		config_free(cfg);
	}
	free(cause);
	return 0;
}
