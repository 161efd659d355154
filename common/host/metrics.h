/*
 * Prometheus metrics as a node_exporter textfile (collector.textfile): <metrics_dir>/rtopacks-sync-<daemon>.prom,
 * rewritten whole and atomically (a temporary file in the same directory, then rename), mode 0644 so
 * node_exporter can read it whatever the daemon's umask.  Series carry the label daemon="<daemon>"; no sample
 * has a timestamp (the textfile collector does not accept them).  See docs/install.md for the list.
 */
#ifndef RTOPACKS_METRICS_H
#define RTOPACKS_METRICS_H

#include <time.h>

struct buf;
struct health;

/* Render the shared exposition text for one daemon; the job's own series follow (job_def.metrics). */
void metrics_render(struct buf *out, const char *daemon, const struct health *, time_t now);
/* For a job's metrics hook: a family's HELP and TYPE (gauge) lines, a sample (lk/lv: one more label, or NULL),
 * and the two together. */
void metrics_family(struct buf *out, const char *name, const char *help);
void metrics_sample(struct buf *out, const char *name, const char *daemon, const char *lk, const char *lv,
    long long v);
void metrics_gauge(struct buf *out, const char *name, const char *help, const char *daemon, long long v);
/* Write text to <dir>/rtopacks-sync-<daemon>.prom atomically.  Returns 0, or -1 with *cause. */
int metrics_write(const char *dir, const char *daemon, const char *text, char **cause);

#endif
