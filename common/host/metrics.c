/* Prometheus textfile for node_exporter's textfile collector (see metrics.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "fdio.h"
#include "health.h"
#include "metrics.h"
#include "ownfile.h"
#include "xmalloc.h"

#define P "rtopacks_sync_"

/* Label values can come from the database (a job's state words): escape as the exposition format requires. */
static void
label_value(struct buf *out, const char *v)
{
	size_t n = 0;

	for (; *v != '\0' && n < 64; v++, n++) {
		if (*v == '\\' || *v == '"')
			buf_addc(out, '\\');
		if (*v == '\n') {
			buf_adds(out, "\\n");
			continue;
		}
		buf_addc(out, *v);
	}
}

static void
family(struct buf *out, const char *name, const char *help)
{
	buf_printf(out, "# HELP " P "%s %s\n# TYPE " P "%s gauge\n", name, help, name);
}

static void
sample(struct buf *out, const char *name, const char *daemon, const char *lk, const char *lv, long long v)
{
	buf_printf(out, P "%s{daemon=\"", name);
	label_value(out, daemon);
	if (lk != NULL) {
		buf_printf(out, "\",%s=\"", lk);
		label_value(out, lv);
	}
	buf_printf(out, "\"} %lld\n", v);
}

static void
gauge(struct buf *out, const char *name, const char *help, const char *daemon, long long v)
{
	family(out, name, help);
	sample(out, name, daemon, NULL, NULL, v);
}

/* The same, for a job's metrics hook. */
void
metrics_family(struct buf *out, const char *name, const char *help)
{
	family(out, name, help);
}

void
metrics_sample(struct buf *out, const char *name, const char *daemon, const char *lk, const char *lv, long long v)
{
	sample(out, name, daemon, lk, lv, v);
}

void
metrics_gauge(struct buf *out, const char *name, const char *help, const char *daemon, long long v)
{
	gauge(out, name, help, daemon, v);
}

void
metrics_render(struct buf *out, const char *daemon, const struct health *h, time_t now)
{
	static const char *const statuses[] = { "running", "complete", "partial", "degraded", "failed", "cancelled",
	    "stale" };
	const struct run_info *lf = &h->last_finished;
	size_t i;

	gauge(out, "metrics_written_timestamp_seconds", "When the daemon last wrote this file (Unix time).", daemon,
	    (long long)now);
	if (h->last.present)
		gauge(out, "last_run_start_timestamp_seconds", "Start of the most recent run, finished or not.", daemon,
		    (long long)h->last.started);
	gauge(out, "running", "1 while a run is in progress.", daemon, h->running.present ? 1 : 0);
	if (lf->present) {
		gauge(out, "last_run_end_timestamp_seconds", "End of the last finished run.", daemon,
		    (long long)lf->finished);
		gauge(out, "last_run_duration_seconds", "Duration of the last finished run.", daemon,
		    lf->finished >= lf->started ? (long long)(lf->finished - lf->started) : 0);
		family(out, "last_run_status", "Status of the last finished run (1 for its status, 0 for the others).");
		for (i = 1; i < sizeof statuses / sizeof statuses[0]; i++)
			sample(out, "last_run_status", daemon, "status", statuses[i], strcmp(lf->status, statuses[i]) == 0);
		gauge(out, "last_run_success", "1 if the last finished run completed (complete or partial).", daemon,
		    strcmp(lf->status, "complete") == 0 || strcmp(lf->status, "partial") == 0);
		family(out, "last_run_records", "Records read (in) and written (out) by the last finished run.");
		sample(out, "last_run_records", daemon, "direction", "in", (long long)lf->records_in);
		sample(out, "last_run_records", daemon, "direction", "out", (long long)lf->records_out);
		gauge(out, "last_run_changes", "Changes reported by the last finished run.", daemon,
		    (long long)lf->changes);
	}
	if (h->last_success.present)
		gauge(out, "last_success_timestamp_seconds", "End of the last run that completed (complete or partial).",
		    daemon, (long long)h->last_success.finished);
	if (h->scheduled) {
		if (h->next != 0)
			gauge(out, "next_run_timestamp_seconds", "Next scheduled start (from the schedule file).", daemon,
			    (long long)h->next);
		if (h->expected != 0)
			gauge(out, "expected_run_timestamp_seconds",
			    "The last scheduled start whose grace has passed (the one judged for 'missed').", daemon,
			    (long long)h->expected);
		gauge(out, "missed", "1 if the last scheduled run did not start within its grace.", daemon, h->missed);
	}
	gauge(out, "overrun", "1 if a run has been running longer than the schedule's max_runtime.", daemon, h->overrun);
	gauge(out, "stuck", "1 if the cycle is unfinished with no run in progress for longer than max_runtime.", daemon,
	    h->stuck);
}

int
metrics_write(const char *dir, const char *daemon, const char *text, char **cause)
{
	char *path, *tmp;
	size_t len = strlen(text);
	int fd, rc = -1;

	xasprintf(&path, "%s/rtopacks-sync-%s.prom", dir, daemon);
	/* node_exporter reads only *.prom, so it never sees the temporary file half-written. */
	xasprintf(&tmp, "%s.tmp", path);
	/* The directory is shared (group-writable): only a file of our own, truncated once it is checked. */
	if ((fd = ownfile_open(tmp, O_WRONLY, 0644, cause)) == -1)
		goto out;
	if (ftruncate(fd, 0) == -1) {
		xasprintf(cause, "truncate %s: %s", tmp, strerror(errno));
		goto fail;
	}
	/* Metrics are not secret, and node_exporter runs as another user: readable by all, whatever the umask. */
	if (fchmod(fd, 0644) == -1) {
		xasprintf(cause, "chmod %s: %s", tmp, strerror(errno));
		goto fail;
	}
	if (write_full(fd, text, len) == -1) {
		xasprintf(cause, "write %s: %s", tmp, strerror(errno));
		goto fail;
	}
	if (close(fd) == -1) {
		fd = -1;
		xasprintf(cause, "close %s: %s", tmp, strerror(errno));
		goto fail;
	}
	fd = -1;
	if (rename(tmp, path) == -1) {
		xasprintf(cause, "rename %s to %s: %s", tmp, path, strerror(errno));
		goto fail;
	}
	rc = 0;
	goto out;
fail:
	if (fd != -1)
		close(fd);
	unlink(tmp);
out:
	free(tmp);
	free(path);
	return rc;
}
