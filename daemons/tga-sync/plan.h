/*
 * What the phases share, below all of them (plan.c): the cycle plan in cycle_state, and mapping a source error
 * onto the engine.  A phase file calls only this, the sources, the stage and the store: never another phase file.
 */
#ifndef TGA_PLAN_H
#define TGA_PLAN_H

#include <stdbool.h>
#include <stdint.h>

#include "source.h"

struct step;

/*
 * The plan init stores in cycle_state (canonical UTC text, ticks precision):
 *   "to"        the server's time when the cycle began: every window ends by it; the next high-water mark
 *   "from"      where sync_training and sync_orgs start (the epoch, or the last mark minus the overlap)
 *   "del_from"  where sweep_deletions starts
 *   "refetch"   {"training": [codes], "organisation": [codes]} to fetch first (skipped last cycle)
 */
bool plan_get(struct step *, const char *key, int64_t *ticks);
void plan_set(struct step *, const char *key, int64_t ticks);

/* step_fail with the class of the error: credentials and client faults are fatal, the rest is retried. */
void phase_fail(struct step *, const struct src_error *);

#endif
