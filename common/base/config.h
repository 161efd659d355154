/*
 * Configuration: one INI file (default /etc/rtopacks-sync/sync.conf) parsed with inih, checked against a schema of
 * known sections and keys.  Every problem is reported as "FILE:LINE: [section] key: what is wrong", all of them at
 * once, so `-n` shows an operator the whole list.  Values are validated at load time; the getters never fail.
 *
 * Shared sections: [paths], [control], [smtp], [http], [d1].  One section per daemon ([tga-sync], [cricos-sync],
 * [qb-reconcile]); a daemon checks its own section and leaves the other daemons' sections to them.
 */
#ifndef RTOPACKS_CONFIG_H
#define RTOPACKS_CONFIG_H

#include <stdbool.h>
#include <stdint.h>

#define CONFIG_DEFAULT_PATH "/etc/rtopacks-sync/sync.conf"

enum cfg_type {
	CFG_STR,
	CFG_INT,	/* integer within [min, max] */
	CFG_BOOL,	/* yes/no, true/false, on/off, 1/0 */
	CFG_DURATION,	/* "30s", "5m", "250ms"; stored in ms, bounded by [min, max] ms */
	CFG_ENUM,	/* one of choices, "a|b|c" */
	CFG_URL,	/* an HTTP upstream: https://, or http:// to a loopback host (urlpolicy.h) */
	CFG_SMTP_URL,	/* a mail server: smtp:// or smtps:// (without TLS only to a loopback host, see [smtp] tls) */
	CFG_PATH,	/* absolute path */
};

#define CFG_REQUIRED 0x1	/* no default: must be set */

struct cfg_key {
	const char *name;
	enum cfg_type type;
	const char *def;	/* default, as text; NULL = unset unless CFG_REQUIRED */
	int64_t min, max;
	const char *choices;
	unsigned flags;
	const char *help;
};

struct cfg_section {
	const char *name;
	const struct cfg_key *keys;	/* terminated by an entry with name NULL */
	const struct cfg_key *more;	/* a second list (a daemon's own keys), may be NULL */
};

struct config;

/* Sections shared by all programs. */
extern const struct cfg_section cfg_paths, cfg_control, cfg_smtp, cfg_http, cfg_d1;
/* Keys every daemon section has (retries, timeouts, ...). */
extern const struct cfg_key cfg_job_common_keys[];
/*
 * Names of all daemon sections (so one daemon does not reject another's): generated at build time from the daemons'
 * folders (cmake/Daemons.cmake writes generated/daemon-sections.c).
 */
extern const char *const cfg_daemon_sections[];

/*
 * Load and check path against sections (NULL-terminated).  Sections named in cfg_daemon_sections but not in
 * sections are skipped.  On error returns NULL and sets *cause (allocated, may hold several lines).
 */
struct config *config_load(const char *path, const struct cfg_section *const *sections, char **cause);
void config_free(struct config *);
const char *config_path(const struct config *);

/* Getters: the key must be in the schema (a programming error otherwise).  Unset without default: NULL / false / 0. */
const char *config_str(const struct config *, const char *section, const char *key);
int64_t config_int(const struct config *, const char *section, const char *key);
bool config_bool(const struct config *, const char *section, const char *key);
int64_t config_ms(const struct config *, const char *section, const char *key);
bool config_isset(const struct config *, const char *section, const char *key);
/* "FILE:LINE" of a key (or "FILE" for a default), for error messages about a value. */
const char *config_where(const struct config *, const char *section, const char *key, char *buf, size_t len);

/* A daemon section key that falls back to the same key in [http] when the daemon section does not set it. */
const char *config_job_str(const struct config *, const char *section, const char *key);
int64_t config_job_int(const struct config *, const char *section, const char *key);
int64_t config_job_ms(const struct config *, const char *section, const char *key);

/*
 * Secrets never come from argv or the config file itself: from $CREDENTIALS_DIRECTORY/<credential> (systemd
 * LoadCredential=) when present, else from the file named by the config key.  The value is registered for
 * redaction.  Returns NULL with *cause set when neither is available or the file is unusable.
 */
char *secret_load(const struct config *, const char *section, const char *file_key, const char *credential,
    char **cause);
void secret_free(char *);

/* Print the documented sample of the given sections (used by --help-config). */
void config_print_sample(const struct cfg_section *const *sections);

#endif
