#include <errno.h>
#include <fcntl.h>
#include <ini.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "config.h"
#include "log.h"
#include "timeutil.h"
#include "urlpolicy.h"
#include "xmalloc.h"

#define CONFIG_MAX_LINE 4096
#ifndef RTOPACKS_SCHEDULES_DIR	/* set by the build from the install prefix */
#define RTOPACKS_SCHEDULES_DIR "/usr/share/rtopacks-sync/schedules"
#endif
#define SECRET_MAX_BYTES (64 * 1024)

static const struct cfg_key paths_keys[] = {
	{ "state_dir", CFG_PATH, "/var/lib/rtopacks-sync", 0, 0, NULL, 0,
	    "Directory holding the databases (shared by the daemons, group-writable)." },
	{ "ops_db", CFG_PATH, NULL, 0, 0, NULL, 0,
	    "Operations database: runs, steps, cursors, billing. Default: <state_dir>/ops.db." },
	{ "corpus_db", CFG_PATH, NULL, 0, 0, NULL, 0,
	    "Register corpus (rtopacks.db), written only by the sync daemons. Default: <state_dir>/rtopacks.db." },
	{ "spool_dir", CFG_PATH, "/var/tmp", 0, 0, NULL, 0,
	    "Where large responses wait (in unlinked files) between download and parse." },
	{ "busy_timeout", CFG_DURATION, "15s", 0, 600000, NULL, 0,
	    "How long a write waits for another daemon's transaction before the step fails (and is retried)." },
	{ "schedules_dir", CFG_PATH, RTOPACKS_SCHEDULES_DIR, 0, 0, NULL, 0,
	    "Schedule files (<daemon>.schedule), the source of the timers; a daemon reads its own to spot missed runs." },
	{ "metrics_dir", CFG_PATH, "/var/lib/prometheus/node-exporter", 0, 0, NULL, 0,
	    "node_exporter textfile directory: each daemon writes rtopacks-sync-<daemon>.prom there (if it exists)." },
	{ NULL, 0, NULL, 0, 0, NULL, 0, NULL },
};
const struct cfg_section cfg_paths = { "paths", paths_keys, NULL };

static const struct cfg_key control_keys[] = {
	{ "socket_dir", CFG_PATH, "/run/rtopacks-sync", 0, 0, NULL, 0,
	    "Directory of the control sockets (<daemon>.sock)." },
	{ "operators_group", CFG_STR, NULL, 0, 0, NULL, 0,
	    "Group whose members may use the control sockets besides root and the daemon's own user." },
	{ "max_clients", CFG_INT, "32", 1, 1024, NULL, 0, "Most control connections at once." },
	{ "max_clients_per_uid", CFG_INT, "8", 1, 1024, NULL, 0, "Most control connections of one user at once." },
	{ NULL, 0, NULL, 0, 0, NULL, 0, NULL },
};
const struct cfg_section cfg_control = { "control", control_keys, NULL };

static const struct cfg_key smtp_keys[] = {
	{ "url", CFG_SMTP_URL, NULL, 0, 0, NULL, 0,
	    "Mail server, smtp://host:587 (with tls = starttls) or smtps://host:465. Unset: no mail (warned)." },
	{ "tls", CFG_ENUM, "starttls", 0, 0, "starttls|implicit|none", 0,
	    "starttls: require STARTTLS; implicit: smtps://; none: plain text (only to a loopback relay: 127.0.0.0/8, "
	    "::1, localhost)." },
	{ "from", CFG_STR, "RTOpacks Sync <noreply@rtopacks.com.au>", 0, 0, NULL, 0, "From: header." },
	{ "to", CFG_STR, "admin@rtopacks.com.au", 0, 0, NULL, 0, "Recipients, comma-separated." },
	{ "username", CFG_STR, NULL, 0, 0, NULL, 0, "Login name, if the server requires one." },
	{ "password_file", CFG_PATH, NULL, 0, 0, NULL, 0,
	    "File holding the SMTP password (or systemd credential smtp-password)." },
	{ "ca_file", CFG_PATH, NULL, 0, 0, NULL, 0, "CA bundle to verify the server (default: system store)." },
	{ "timeout", CFG_DURATION, "60s", 1000, 600000, NULL, 0, "Time limit for one delivery." },
	{ "retries", CFG_INT, "3", 0, 20, NULL, 0, "Delivery attempts during a run before leaving the mail queued." },
	{ "retry_backoff", CFG_DURATION, "10s", 0, 3600000, NULL, 0, "First wait between delivery attempts." },
	{ "queue_retry", CFG_DURATION, "10m", 1000, 86400000, NULL, 0, "How often queued mail is retried." },
	{ "queue_max_age", CFG_DURATION, "3d", 60000, 2592000000, NULL, 0, "Queued mail older than this is dropped (logged)." },
	{ NULL, 0, NULL, 0, 0, NULL, 0, NULL },
};
const struct cfg_section cfg_smtp = { "smtp", smtp_keys, NULL };

/*
 * [d1]: publishing to Cloudflare D1 (net/d1.c).  Off while account_id is unset.  The API token is the credential
 * d1-api-token (or the file named by token_file), never a key of this file.
 */
static const struct cfg_key d1_keys[] = {
	{ "account_id", CFG_STR, NULL, 0, 0, NULL, 0,
	    "Cloudflare account id (32 hex digits). Unset: nothing is published to D1." },
	{ "corpus_database_id", CFG_STR, NULL, 0, 0, NULL, 0,
	    "UUID of the corpus database (rtopacks-db), written by the sync daemons' publish phase." },
	{ "ops_database_id", CFG_STR, NULL, 0, 0, NULL, 0,
	    "UUID of the operations database (ops-db), where every daemon mirrors its runs, steps and cursor." },
	{ "api_base", CFG_URL, "https://api.cloudflare.com/client/v4", 0, 0, NULL, 0,
	    "Cloudflare API base URL (https; http only to a loopback test server)." },
	{ "token_file", CFG_PATH, NULL, 0, 0, NULL, 0,
	    "File holding the API token with D1 Edit (or systemd credential d1-api-token)." },
	{ "requests_per_5min", CFG_INT, NULL, 1, 1200, NULL, 0,
	    "Requests per 5 minutes for EACH daemon (of the account's 1,200), evenly spaced."
	    " Unset: each daemon's own share." },
	{ "rate_window", CFG_DURATION, "5m", 100, 3600000, NULL, 0,
	    "The window of requests_per_5min (D1's is 5 minutes; shorter only against a test server)." },
	{ "rate_block", CFG_DURATION, "5m", 100, 3600000, NULL, 0,
	    "How long a 429 from D1 without Retry-After stops all D1 requests (D1 blocks for 5 minutes)." },
	{ "retries", CFG_INT, "6", 0, 100, NULL, 0,
	    "Retries of one request after a connection error, a 5xx or a 504 (writes are idempotent)." },
	{ "backoff", CFG_DURATION, "2s", 0, 3600000, NULL, 0, "First wait before a retry (doubles)." },
	{ "backoff_max", CFG_DURATION, "60s", 0, 86400000, NULL, 0, "Longest wait between retries." },
	{ "timeout", CFG_DURATION, "60s", 1000, 600000, NULL, 0,
	    "Time limit for one request (D1 itself gives up after 30 s)." },
	{ "steps_table", CFG_STR, "tga_sync_steps", 0, 0, NULL, 0,
	    "Step log table in the ops database (the Observatory's name)." },
	{ "runs_table", CFG_STR, "sync_runs", 0, 0, NULL, 0, "Run table in the ops database." },
	{ "cursor_table", CFG_STR, NULL, 0, 0, NULL, 0,
	    "This daemon's cursor table in the ops database. Default: <sync_type>_cursor, the table the Observatory reads." },
	{ NULL, 0, NULL, 0, 0, NULL, 0, NULL },
};
const struct cfg_section cfg_d1 = { "d1", d1_keys, NULL };

/* [http] holds defaults; a daemon section may override each of these keys for its own upstream. */
#define HTTP_KEYS(def_ct, def_ls_lim, def_ls_time, def_total, def_retries, def_backoff, def_bmax, def_inflight,   \
    def_interval)                                                                                                  \
	{ "connect_timeout", CFG_DURATION, def_ct, 100, 600000, NULL, 0, "TCP+TLS connect time limit." },            \
	{ "low_speed_limit", CFG_INT, def_ls_lim, 1, 1 << 30, NULL, 0,                                             \
	    "Bytes/s below which a transfer counts as stalled." },                                                 \
	{ "low_speed_time", CFG_DURATION, def_ls_time, 1000, 3600000, NULL, 0,                                      \
	    "A transfer stalled this long is aborted (ends hung connections)." },                                  \
	{ "total_timeout", CFG_DURATION, def_total, 1000, 86400000, NULL, 0, "Time limit for one whole request." }, \
	{ "retries", CFG_INT, def_retries, 0, 100, NULL, 0,                                                         \
	    "Retries of one request on connection errors, timeouts, 5xx and 429." },                               \
	{ "backoff", CFG_DURATION, def_backoff, 0, 3600000, NULL, 0, "First retry wait (doubles, with jitter)." },  \
	{ "backoff_max", CFG_DURATION, def_bmax, 0, 86400000, NULL, 0, "Longest retry wait (also caps Retry-After)." }, \
	{ "max_in_flight", CFG_INT, def_inflight, 1, 64, NULL, 0, "Requests in flight at once." },                 \
	{ "min_interval", CFG_DURATION, def_interval, 0, 600000, NULL, 0, "Least time between request starts." },   \
	{ "ca_file", CFG_PATH, NULL, 0, 0, NULL, 0, "CA bundle for TLS (default: system store)." },                \
	{ "follow_redirects", CFG_BOOL, NULL, 0, 0, NULL, 0,                                                        \
	    "Follow HTTP redirects within the same scheme, host and port, each logged (default no: a redirect is "  \
	    "an error; one to another host is always refused)." },                                                  \
	{ "http_version", CFG_ENUM, NULL, 0, 0, "1.1|2", 0, "HTTP version to ask for (default 1.1)." }

static const struct cfg_key http_keys[] = {
	HTTP_KEYS("15s", "1", "60s", "300s", "4", "1s", "60s", "4", "0"),
	{ NULL, 0, NULL, 0, 0, NULL, 0, NULL },
};
const struct cfg_section cfg_http = { "http", http_keys, NULL };

const struct cfg_key cfg_job_common_keys[] = {
	HTTP_KEYS(NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
	{ "step_retries", CFG_INT, "3", 0, 100, NULL, 0, "Retries of a failing step before the run fails." },
	{ "step_backoff", CFG_DURATION, "5s", 0, 3600000, NULL, 0, "First wait before a step is retried (doubles)." },
	{ "step_backoff_max", CFG_DURATION, "5m", 0, 86400000, NULL, 0, "Longest wait between step retries." },
	{ "stop_grace", CFG_DURATION, "20s", 0, 600000, NULL, 0,
	    "On SIGTERM, how long the current step may take to finish before it is rolled back." },
	{ "housekeeping_interval", CFG_DURATION, "60s", 100, 3600000, NULL, 0,
	    "How often the daemon checks schedules, queued mail and stuck runs." },
	{ "missed_alert_delay", CFG_DURATION, "2m", 0, 86400000, NULL, 0,
	    "After start, wait this long before mailing a missed run (a timer's catch-up run at boot starts first)." },
	{ "socket", CFG_PATH, NULL, 0, 0, NULL, 0, "Control socket (default <control.socket_dir>/<daemon>.sock)." },
	{ "notify", CFG_BOOL, "yes", 0, 0, NULL, 0, "Send the completion email." },
	{ NULL, 0, NULL, 0, 0, NULL, 0, NULL },
};

struct cfg_entry {
	const struct cfg_section *section;
	const struct cfg_key *key;
	char *value;		/* NULL: unset */
	int line;		/* 0: default */
	int64_t num;		/* parsed CFG_INT / CFG_DURATION / CFG_BOOL */
};

struct config {
	char *path;
	struct cfg_entry *entries;
	size_t nentries;
};

struct parse_state {
	struct config *cfg;
	const struct cfg_section *const *sections;
	struct buf errors;
	int line;
	int nerrors;
	FILE *fp;
	char last_bad_section[128];
};

static void
cfg_error(struct parse_state *ps, int line, const char *section, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static void
cfg_error(struct parse_state *ps, int line, const char *section, const char *key, const char *fmt, ...)
{
	va_list ap;

	if (line > 0)
		buf_printf(&ps->errors, "%s:%d: ", ps->cfg->path, line);
	else
		buf_printf(&ps->errors, "%s: ", ps->cfg->path);
	if (section != NULL && key != NULL)
		buf_printf(&ps->errors, "[%s] %s: ", section, key);
	else if (section != NULL)
		buf_printf(&ps->errors, "[%s]: ", section);
	va_start(ap, fmt);
	buf_vprintf(&ps->errors, fmt, ap);
	va_end(ap);
	buf_addc(&ps->errors, '\n');
	ps->nerrors++;
}

static bool
is_daemon_section(const char *name)
{
	size_t i;

	for (i = 0; cfg_daemon_sections[i] != NULL; i++)
		if (strcmp(cfg_daemon_sections[i], name) == 0)
			return true;
	return false;
}

static struct cfg_entry *
find_entry(const struct config *cfg, const char *section, const char *key)
{
	size_t i;

	for (i = 0; i < cfg->nentries; i++)
		if (strcmp(cfg->entries[i].section->name, section) == 0 && strcmp(cfg->entries[i].key->name, key) == 0)
			return &cfg->entries[i];
	return NULL;
}

static bool
parse_bool(const char *v, int64_t *out)
{
	static const char *const yes[] = { "yes", "true", "on", "1" }, *const no[] = { "no", "false", "off", "0" };
	size_t i;

	for (i = 0; i < 4; i++) {
		if (strcasecmp(v, yes[i]) == 0) {
			*out = 1;
			return true;
		}
		if (strcasecmp(v, no[i]) == 0) {
			*out = 0;
			return true;
		}
	}
	return false;
}

static bool
in_choices(const char *choices, const char *v)
{
	size_t n = strlen(v);
	const char *p = choices;

	while (*p != '\0') {
		size_t len = strcspn(p, "|");

		if (len == n && strncmp(p, v, n) == 0)
			return true;
		p += len;
		if (*p == '|')
			p++;
	}
	return false;
}

/* Check value against key; on success fill e->num.  Returns an error message or NULL. */
static const char *
validate(const struct cfg_key *k, const char *v, struct cfg_entry *e, char *msg, size_t len)
{
	char *end;
	long long n;
	int64_t ms;

	switch (k->type) {
	case CFG_STR:
		if (*v == '\0')
			return "empty value (remove the line to use the default)";
		break;
	case CFG_INT:
		errno = 0;
		n = strtoll(v, &end, 10);
		if (errno != 0 || end == v || *end != '\0') {
			snprintf(msg, len, "expected an integer, got '%s'", v);
			return msg;
		}
		if (n < k->min || n > k->max) {
			snprintf(msg, len, "%lld is out of range (%lld to %lld)", n, (long long)k->min,
			    (long long)k->max);
			return msg;
		}
		e->num = n;
		break;
	case CFG_BOOL:
		if (!parse_bool(v, &e->num)) {
			snprintf(msg, len, "expected yes or no, got '%s'", v);
			return msg;
		}
		break;
	case CFG_DURATION:
		if (!duration_parse(v, &ms)) {
			snprintf(msg, len, "expected a duration such as 30s, 5m, 250ms or 2h, got '%s'", v);
			return msg;
		}
		if (ms < k->min || ms > k->max) {
			snprintf(msg, len, "'%s' is out of range (%lldms to %lldms)", v, (long long)k->min,
			    (long long)k->max);
			return msg;
		}
		e->num = ms;
		break;
	case CFG_ENUM:
		if (!in_choices(k->choices, v)) {
			snprintf(msg, len, "expected one of %s, got '%s'", k->choices, v);
			return msg;
		}
		break;
	case CFG_URL:
	case CFG_SMTP_URL:
		if (strpbrk(v, " \t\r\n") != NULL)
			return "URL contains white space";
		/* The one policy of urlpolicy.c: no userinfo, https (smtps/STARTTLS) except to a loopback host. */
		return url_policy_check(v, k->type == CFG_SMTP_URL ? URL_SMTP : URL_HTTP, msg, len);
	case CFG_PATH:
		if (*v != '/') {
			snprintf(msg, len, "expected an absolute path, got '%s'", v);
			return msg;
		}
		break;
	}
	return NULL;
}

static const struct cfg_section *
schema_section(struct parse_state *ps, const char *name)
{
	size_t i;

	for (i = 0; ps->sections[i] != NULL; i++)
		if (strcmp(ps->sections[i]->name, name) == 0)
			return ps->sections[i];
	return NULL;
}

static const struct cfg_key *
schema_key(const struct cfg_section *s, const char *name)
{
	const struct cfg_key *k;

	for (k = s->keys; k->name != NULL; k++)
		if (strcmp(k->name, name) == 0)
			return k;
	if (s->more != NULL)
		for (k = s->more; k->name != NULL; k++)
			if (strcmp(k->name, name) == 0)
				return k;
	return NULL;
}

static int
ini_handler_cb(void *user, const char *section, const char *name, const char *value)
{
	struct parse_state *ps = user;
	const struct cfg_section *s;
	struct cfg_entry *e;
	const char *err;
	char msg[512];

	if (*section == '\0') {
		cfg_error(ps, ps->line, NULL, NULL, "'%s' is outside any [section]", name);
		return 1;
	}
	if ((s = schema_section(ps, section)) == NULL) {
		if (is_daemon_section(section))
			return 1;	/* another daemon's section: its own -n checks it */
		if (strcmp(ps->last_bad_section, section) != 0) {
			snprintf(ps->last_bad_section, sizeof ps->last_bad_section, "%s", section);
			cfg_error(ps, ps->line, section, NULL, "unknown section");
		}
		return 1;
	}
	if (schema_key(s, name) == NULL) {
		cfg_error(ps, ps->line, section, name, "unknown key");
		return 1;
	}
	e = find_entry(ps->cfg, section, name);
	if (e->line > 0) {
		cfg_error(ps, ps->line, section, name, "set twice (first on line %d)", e->line);
		return 1;
	}
	if ((err = validate(e->key, value, e, msg, sizeof msg)) != NULL) {
		cfg_error(ps, ps->line, section, name, "%s", err);
		e->line = ps->line;
		return 1;
	}
	free(e->value);
	e->value = xstrdup(value);
	e->line = ps->line;
	return 1;
}

/* fgets-style reader for inih that counts lines (this inih has no line numbers in the handler) and bounds them. */
static char *
ini_reader_cb(char *str, int num, void *stream)
{
	struct parse_state *ps = stream;
	int c, n = 0;

	if (num < 2)
		return NULL;
	while ((c = getc(ps->fp)) != EOF) {
		if (n < num - 2)
			str[n++] = (char)c;
		else if (c != '\n') {
			/* Keep reading to the end of the line so line numbers stay right; the line is rejected. */
			str[0] = '#';
			n = 1;
			while ((c = getc(ps->fp)) != EOF && c != '\n')
				;
			ps->line++;
			cfg_error(ps, ps->line, NULL, NULL, "line longer than %d bytes", num - 2);
			str[n] = '\0';
			return str;
		}
		if (c == '\n')
			break;
	}
	if (n == 0 && c == EOF)
		return NULL;
	str[n] = '\0';
	ps->line++;
	return str;
}

/*
 * Mail without TLS (smtp:// with tls = none) carries the SMTP password and the mails in clear: only to a relay on
 * this machine.  Two keys decide it, so it is checked once both are known.
 */
static void
check_smtp_tls(struct parse_state *ps)
{
	struct cfg_entry *url = find_entry(ps->cfg, "smtp", "url"), *tls = find_entry(ps->cfg, "smtp", "tls");

	if (url == NULL || tls == NULL || url->value == NULL || tls->value == NULL || strcmp(tls->value, "none") != 0)
		return;
	if (strncasecmp(url->value, "smtps://", 8) == 0 || url_policy_plain_ok(url->value))
		return;
	cfg_error(ps, tls->line, "smtp", "tls", "none sends the mails (and the SMTP password) in clear to '%s': "
	    "use tls = starttls (smtp://host:587) or smtps://host:465; plain text only to a loopback relay "
	    "(127.0.0.0/8, ::1, localhost)", url->value);
}

/*
 * The configuration decides where the credentials go (base_url, token_url, [smtp] url): a file that another user
 * could write is as good as giving them the passwords.  Checked on the open file, so it is the file that is read.
 */
static int
check_config_file(const char *path, int fd, char **cause)
{
	struct stat sb;
	unsigned mode;

	if (fstat(fd, &sb) == -1) {
		xasprintf(cause, "%s: cannot stat: %s", path, strerror(errno));
		return -1;
	}
	mode = (unsigned)(sb.st_mode & 07777);
	if (!S_ISREG(sb.st_mode)) {
		xasprintf(cause, "%s: not a regular file: give the configuration file itself with -c FILE", path);
		return -1;
	}
	if (sb.st_uid != 0 && sb.st_uid != geteuid()) {
		xasprintf(cause, "%s: owned by uid %u, neither root nor this program's user (uid %u): whoever owns it "
		    "decides where the credentials go; chown root %s and chmod 0640 it", path,
		    (unsigned)sb.st_uid, (unsigned)geteuid(), path);
		return -1;
	}
	if ((sb.st_mode & S_IWOTH) || ((sb.st_mode & S_IWGRP) && sb.st_gid != 0)) {
		xasprintf(cause, "%s: writable by %s (mode %04o): whoever can write it decides where the credentials "
		    "go; chmod 0640 %s", path, (sb.st_mode & S_IWOTH) ? "every user" : "its group", mode, path);
		return -1;
	}
	return 0;
}

static void
add_schema_entries(struct config *cfg, const struct cfg_section *s, const struct cfg_key *keys)
{
	const struct cfg_key *k;
	struct cfg_entry *e;

	for (k = keys; k != NULL && k->name != NULL; k++) {
		cfg->entries = xreallocarray(cfg->entries, cfg->nentries + 1, sizeof *cfg->entries);
		e = &cfg->entries[cfg->nentries++];
		memset(e, 0, sizeof *e);
		e->section = s;
		e->key = k;
	}
}

struct config *
config_load(const char *path, const struct cfg_section *const *sections, char **cause)
{
	struct parse_state ps;
	struct config *cfg;
	size_t i;
	int rc;

	cfg = xcalloc(1, sizeof *cfg);
	cfg->path = xstrdup(path);
	for (i = 0; sections[i] != NULL; i++) {
		add_schema_entries(cfg, sections[i], sections[i]->keys);
		add_schema_entries(cfg, sections[i], sections[i]->more);
	}

	memset(&ps, 0, sizeof ps);
	ps.cfg = cfg;
	ps.sections = sections;
	buf_init(&ps.errors);
	if ((ps.fp = fopen(path, "re")) == NULL) {
		xasprintf(cause, "%s: cannot open: %s (give another file with -c FILE)", path, strerror(errno));
		config_free(cfg);
		buf_free(&ps.errors);
		return NULL;
	}
	if (check_config_file(path, fileno(ps.fp), cause) == -1) {
		fclose(ps.fp);
		config_free(cfg);
		buf_free(&ps.errors);
		return NULL;
	}
	/* Predictable parsing: no continuation lines, ';' or '#' comments, long lines allowed but bounded. */
	ini_allow_multiline = false;
	ini_use_stack = false;
	/* Without realloc inih's heap buffer stays at its initial size (200 by default): start it at the limit. */
	ini_initial_alloc = CONFIG_MAX_LINE;
	ini_max_line = CONFIG_MAX_LINE;
	ini_allow_realloc = false;
	rc = ini_parse_stream(ini_reader_cb, &ps, ini_handler_cb, &ps);
	fclose(ps.fp);
	/* The handler never fails a line (it records its own errors), so rc > 0 is inih's first syntax error. */
	if (rc > 0)
		cfg_error(&ps, rc, NULL, NULL, "syntax error (expected [section] or key = value)");
	else if (rc < 0)
		cfg_error(&ps, 0, NULL, NULL, "cannot parse (out of memory?)");

	/* Defaults and required keys. */
	for (i = 0; i < cfg->nentries; i++) {
		struct cfg_entry *e = &cfg->entries[i];
		const char *err;
		char msg[512];

		if (e->line > 0)
			continue;
		if (e->key->flags & CFG_REQUIRED) {
			cfg_error(&ps, 0, e->section->name, e->key->name, "required but not set (%s)", e->key->help);
			continue;
		}
		if (e->key->def == NULL)
			continue;
		if ((err = validate(e->key, e->key->def, e, msg, sizeof msg)) != NULL)
			fatalx("config: bad built-in default for [%s] %s: %s", e->section->name, e->key->name, err);
		e->value = xstrdup(e->key->def);
	}

	check_smtp_tls(&ps);

	if (ps.nerrors > 0) {
		/* Drop the final newline: callers print the cause with their own. */
		if (ps.errors.len > 0 && ps.errors.data[ps.errors.len - 1] == '\n')
			ps.errors.data[--ps.errors.len] = '\0';
		*cause = buf_release(&ps.errors);
		config_free(cfg);
		return NULL;
	}
	buf_free(&ps.errors);
	return cfg;
}

void
config_free(struct config *cfg)
{
	size_t i;

	if (cfg == NULL)
		return;
	for (i = 0; i < cfg->nentries; i++)
		free(cfg->entries[i].value);
	free(cfg->entries);
	free(cfg->path);
	free(cfg);
}

const char *
config_path(const struct config *cfg)
{
	return cfg->path;
}

static struct cfg_entry *
must_find(const struct config *cfg, const char *section, const char *key)
{
	struct cfg_entry *e;

	if ((e = find_entry(cfg, section, key)) == NULL)
		fatalx("config: [%s] %s is not in the schema of this program", section, key);
	return e;
}

const char *
config_str(const struct config *cfg, const char *section, const char *key)
{
	return must_find(cfg, section, key)->value;
}

int64_t
config_int(const struct config *cfg, const char *section, const char *key)
{
	struct cfg_entry *e = must_find(cfg, section, key);

	return e->value != NULL ? e->num : 0;
}

bool
config_bool(const struct config *cfg, const char *section, const char *key)
{
	struct cfg_entry *e = must_find(cfg, section, key);

	return e->value != NULL && e->num != 0;
}

int64_t
config_ms(const struct config *cfg, const char *section, const char *key)
{
	return config_int(cfg, section, key);
}

bool
config_isset(const struct config *cfg, const char *section, const char *key)
{
	return must_find(cfg, section, key)->value != NULL;
}

const char *
config_where(const struct config *cfg, const char *section, const char *key, char *buf, size_t len)
{
	struct cfg_entry *e = must_find(cfg, section, key);

	if (e->line > 0)
		snprintf(buf, len, "%s:%d: [%s] %s", cfg->path, e->line, section, key);
	else
		snprintf(buf, len, "%s: [%s] %s (%s)", cfg->path, section, key, e->value != NULL ? "default" : "not set");
	return buf;
}

static const char *
job_section(const struct config *cfg, const char *section, const char *key)
{
	struct cfg_entry *e = find_entry(cfg, section, key);

	if (e != NULL && e->value != NULL)
		return section;
	if (find_entry(cfg, "http", key) != NULL)
		return "http";
	return section;
}

const char *
config_job_str(const struct config *cfg, const char *section, const char *key)
{
	return config_str(cfg, job_section(cfg, section, key), key);
}

int64_t
config_job_int(const struct config *cfg, const char *section, const char *key)
{
	return config_int(cfg, job_section(cfg, section, key), key);
}

int64_t
config_job_ms(const struct config *cfg, const char *section, const char *key)
{
	return config_int(cfg, job_section(cfg, section, key), key);
}

/*
 * Read a whole small secret file: bounded, trailing newline removed.  A file named in the configuration must be
 * for its owner only (strict).  A systemd credential is not held to that: it lives in the unit's private
 * credentials directory, and systemd may grant the daemon's user read access with an ACL, which shows in the group
 * bits of the mode.
 */
static char *
read_secret_file(const char *path, const char *what, bool strict, char **cause)
{
	struct stat sb;
	char *data;
	ssize_t n;
	size_t len = 0;
	int fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) == -1 && errno == ELOOP)
		fd = open(path, O_RDONLY | O_CLOEXEC);	/* systemd credentials may be symlinks */
	if (fd == -1) {
		xasprintf(cause, "%s: cannot open %s: %s", what, path, strerror(errno));
		return NULL;
	}
	if (fstat(fd, &sb) == -1 || !S_ISREG(sb.st_mode)) {
		xasprintf(cause, "%s: %s is not a regular file", what, path);
		close(fd);
		return NULL;
	}
	if (sb.st_size > SECRET_MAX_BYTES) {
		xasprintf(cause, "%s: %s is larger than %d bytes: not a secret file?", what, path, SECRET_MAX_BYTES);
		close(fd);
		return NULL;
	}
	if (strict && (sb.st_mode & (S_IRWXG | S_IRWXO))) {
		xasprintf(cause, "%s: %s is open to %s (mode %04o): a secret file is for its owner only; chmod 0600 %s",
		    what, path, (sb.st_mode & S_IRWXO) ? "every user" : "its group", (unsigned)(sb.st_mode & 07777),
		    path);
		close(fd);
		return NULL;
	}
	if (sb.st_mode & S_IROTH)
		log_warnx("%s: %s is readable by every user (mode %04o): chmod 0600 it", what, path,
		    (unsigned)(sb.st_mode & 07777));
	data = xmalloc((size_t)sb.st_size + 1);
	while (len < (size_t)sb.st_size && (n = read(fd, data + len, (size_t)sb.st_size - len)) > 0)
		len += (size_t)n;
	close(fd);
	data[len] = '\0';
	while (len > 0 && (data[len - 1] == '\n' || data[len - 1] == '\r'))
		data[--len] = '\0';
	if (len == 0) {
		xasprintf(cause, "%s: %s is empty", what, path);
		free(data);
		return NULL;
	}
	if (strlen(data) != len) {
		xasprintf(cause, "%s: %s contains a NUL byte", what, path);
		secret_free(data);
		return NULL;
	}
	return data;
}

char *
secret_load(const struct config *cfg, const char *section, const char *file_key, const char *credential,
    char **cause)
{
	const char *dir = getenv("CREDENTIALS_DIRECTORY"), *path;
	char where[512], *p, *secret;

	if (dir != NULL && *dir != '\0' && credential != NULL) {
		xasprintf(&p, "%s/%s", dir, credential);
		if (access(p, F_OK) == 0) {
			secret = read_secret_file(p, "systemd credential", false, cause);
			free(p);
			if (secret != NULL)
				secret_register(secret);
			return secret;
		}
		free(p);
	}
	if ((path = config_str(cfg, section, file_key)) == NULL) {
		xasprintf(cause, "%s: [%s] %s is not set and there is no systemd credential '%s': give the secret "
		    "in a file (mode 0600) named by %s, or with LoadCredential=%s:FILE", config_path(cfg), section,
		    file_key, credential ? credential : "-", file_key, credential ? credential : "-");
		return NULL;
	}
	config_where(cfg, section, file_key, where, sizeof where);
	if ((secret = read_secret_file(path, where, true, cause)) != NULL)
		secret_register(secret);
	return secret;
}

void
secret_free(char *s)
{
	if (s == NULL)
		return;
	explicit_bzero(s, strlen(s));
	free(s);
}

void
config_print_sample(const struct cfg_section *const *sections)
{
	const struct cfg_key *lists[2], *k;
	size_t i, j;

	for (i = 0; sections[i] != NULL; i++) {
		printf("[%s]\n", sections[i]->name);
		lists[0] = sections[i]->keys;
		lists[1] = sections[i]->more;
		for (j = 0; j < 2; j++)
			for (k = lists[j]; k != NULL && k->name != NULL; k++)
				printf("# %s\n%s%s = %s\n", k->help, (k->flags & CFG_REQUIRED) ? "" : ";", k->name,
				    k->def ? k->def : "");
		printf("\n");
	}
}
