/* The configuration parser and its schema checks, on arbitrary file contents. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const struct cfg_key own_keys[] = {
	{ "url", CFG_URL, NULL, 0, 0, NULL, 0, "" },
	{ "page_size", CFG_INT, "100", 1, 1000, NULL, 0, "" },
	{ "mode", CFG_ENUM, "soap", 0, 0, "soap|rest", 0, "" },
	{ NULL, 0, NULL, 0, 0, NULL, 0, NULL },
};

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int fd = -1;
	static char path[64];
	struct cfg_section own = { "tga-sync", cfg_job_common_keys, own_keys };
	const struct cfg_section *sections[] = { &cfg_paths, &cfg_control, &cfg_smtp, &cfg_http, &own, NULL };
	struct config *cfg;
	char *cause = NULL;

	if (fd == -1) {
		log_init("fuzz", 0);
		fd = memfd_create("fuzz-config", 0);
		fchmod(fd, 0600);	/* a memfd is 0777: config_load refuses a file others can write */
		snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
	}
	if (ftruncate(fd, 0) == -1 || pwrite(fd, data, size, 0) != (ssize_t)size)
		return 0;
	if ((cfg = config_load(path, sections, &cause)) != NULL) {
		(void)config_str(cfg, "paths", "state_dir");
		(void)config_job_ms(cfg, "tga-sync", "low_speed_time");
		config_free(cfg);
	}
	free(cause);
	return 0;
}
