/*
 * The daemon's own watch over its schedule (missed runs), its runs (overrun) and its cursor (stuck), and its
 * Prometheus textfile.  The daemon skeleton calls it at start, on every housekeeping pass and at the end of every
 * run; `status` shows what it found.  The decisions are health_check()'s (health.h), shared with syncctl doctor.
 *
 * Mail: a missed scheduled run sends "[<daemon>] MISSED scheduled run — expected <local time>" once per scheduled
 * time, and a run running past max_runtime sends "[<daemon>] run OVERRUNNING — ..." once per run (both through
 * daemon_alert_once, so a restart never repeats them).  A missed alert waits until the daemon has been up for
 * [<daemon>] missed_alert_delay, so that a timer's catch-up run at boot (Persistent=true) gets to start first.
 * A stuck cycle is shown in status, metrics and doctor but not mailed: the failure or cancel that left it was.
 */
#ifndef RTOPACKS_MONITOR_H
#define RTOPACKS_MONITOR_H

#include <cJSON.h>

struct daemon;

void monitor_start(struct daemon *);
void monitor_housekeeping(struct daemon *);
void monitor_run_end(struct daemon *);
/* Add "health", "schedule" and notes to a status reply. */
void monitor_status(struct daemon *, cJSON *out);
void monitor_free(struct daemon *);

#endif
