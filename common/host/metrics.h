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
struct qb_health;

/* Render the exposition text for one daemon (qb may be NULL). */
void metrics_render(struct buf *out, const char *daemon, const struct health *, const struct qb_health *qb,
    time_t now);
/* Write text to <dir>/rtopacks-sync-<daemon>.prom atomically.  Returns 0, or -1 with *cause. */
int metrics_write(const char *dir, const char *daemon, const char *text, char **cause);

#endif
