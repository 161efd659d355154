/*
 * The publish phase's step detail (engine/publish.c writes it: "<table>.upserted", "<table>.deleted",
 * "d1_requests", "d1_ms", "d1_wall_ms", "d1_rows_written", "d1_rate_blocks", "d1_timeouts_replayed", "full",
 * "verified_tables", "verified_rows", "verify_mismatches", "disabled") as text, for the completion mail
 * (engine/notify.c) and `syncctl steps` (ctl/cmd-steps.c), which read it from sync_steps.detail.
 */
#ifndef RTOPACKS_PUBLISH_DETAIL_H
#define RTOPACKS_PUBLISH_DETAIL_H

#include <cJSON.h>
#include <stdbool.h>

struct buf;

/* A detail of the publish phase (it has "d1_requests" or "disabled")? */
bool pubdetail_is(const cJSON *detail);
/* Add two details (numbers summed), for a cycle whose publish phase ran over several runs.  a may be NULL. */
cJSON *pubdetail_add(cJSON *a, const cJSON *b);
/* The block: a heading line, a line per table, a line of requests and times; each line starts with indent. */
void pubdetail_format(const cJSON *detail, const char *status, struct buf *out, const char *indent);

#endif
