/*
 * The observatory mirror (issue 14 item 5, docs/d1-design.md "The observatory in D1"): this daemon's run rows,
 * step rows and cursor, copied to the ops database in Cloudflare D1 in the shape admin → Observatory reads:
 *   - sync_steps → [d1] steps_table (tga_sync_steps, shared by every worker), written with
 *     INSERT … ON CONFLICT(run_id, sync_type, step) DO UPDATE;
 *   - sync_runs → [d1] runs_table (sync_runs), upserted on run_id, last in each request, so a reader never sees a
 *     run "complete" before its steps;
 *   - the cursor → [d1] cursor_table (<sync_type>_cursor), one row per sync_type, with cycle_phase ('done' idle).
 * Statuses are D1's running|complete|partial|failed|stale: our 'cancelled' is written 'failed' with the error
 * "cancelled by the operator", 'degraded' (the cycle completed, something needs the operator) is 'partial'.
 *
 * The changes are queued in ops.db's d1_outbox by triggers, in the transaction that makes them (schema/ops/0005).
 * A drain (d1_mirror_kick: after the cycle's events and on every housekeeping pass) reads the current rows and sends
 * them in one request; a failure never reaches the sync: the rows wait, with back-off, and go out later.
 */
#ifndef RTOPACKS_D1_MIRROR_H
#define RTOPACKS_D1_MIRROR_H

#include <ev.h>
#include <stdbool.h>

#include <cJSON.h>

#include "evcurl.h"

struct config;
struct d1;
struct db;
struct d1_mirror;

/*
 * The mirror of sync_type's rows in ops (the daemon's connection, outside any transaction), sent through the
 * daemon's D1 client (not owned: shared with the daemon's other D1 work).  With [d1] not set (no client, or no
 * ops_database_id) it is off: d1_mirror unregisters sync_type, so nothing is queued, and every call is a no-op.
 * NULL with *cause when [d1] is set but unusable (the checks -n makes) or ops.db cannot be prepared.
 */
struct d1_mirror *d1_mirror_new(struct ev_loop *, struct d1 *, struct db *ops, const struct config *,
    const char *sync_type, char **cause);
void d1_mirror_free(struct d1_mirror *);
bool d1_mirror_enabled(const struct d1_mirror *);
/* Send what is queued: soon (now = false: coalesces a burst of events), or at once if nothing is in flight.  A
 * mirror backing off after a failure waits for its back-off either way. */
void d1_mirror_kick(struct d1_mirror *, bool now);
/* A request is in flight or about to start (--once waits for it, bounded, before exiting). */
bool d1_mirror_busy(const struct d1_mirror *);
/*
 * The daemon's D1 client, shared with the daemon's own D1 work (one request budget paces both: [d1]
 * requests_per_5min is the daemon's share of the account's limit); NULL when the mirror is off.
 */
struct d1 *d1_mirror_client(struct d1_mirror *);
/* For `status`: "d1" {enabled, waiting, since, attempts, last_error, blocked_until} and a line in "notes". */
void d1_mirror_status(struct d1_mirror *, cJSON *out);

#endif
