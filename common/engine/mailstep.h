/*
 * A phase that sends one mail, in two steps that survive a crash between them ("queue the mail, then deliver it";
 * notify.c's completion mail and qb-reconcile's summary both are one):
 *
 *   1. mailstep_queue: the mail goes into the outbox in the step's own transaction, with the cursor
 *      "queued:<outbox id>", and the step ends STEP_MORE; a crash before the commit leaves neither.
 *   2. the next step finds the cursor (mailstep_queued) and mailstep_deliver sends it, then ends the phase.  A
 *      crash after delivery finds the outbox row 'sent' and does not send again; a mail server that is down leaves
 *      the row queued for the outbox's housekeeping, marks the step 'failed' with the reason, and the phase still
 *      completes: a mail problem never fails the sync.  A stop during delivery leaves it to the outbox.
 */
#ifndef RTOPACKS_MAILSTEP_H
#define RTOPACKS_MAILSTEP_H

#include <stdbool.h>
#include <stdint.h>

struct outbox;
struct step;

/* The cursor is "queued:<id>" (a mail of this phase is in the outbox): *id. */
bool mailstep_queued(const char *cursor, int64_t *id);

/*
 * Step 1: queue subject/body under the outbox key, in the step's transaction, log "<what> queued: <subject>", set
 * the cursor and end the step with STEP_MORE.  0, or -1 with *cause (the step is not ended: the caller fails it).
 */
int mailstep_queue(struct step *, struct outbox *, const char *key, const char *sync_type, const char *what,
    const char *subject, const char *body, char **cause);

/*
 * Step 2: deliver mail id (attempts tries) and end the phase.  When it is not delivered, the step's status is
 * 'failed' with the error; with retry_every_s >= 0 the text says the mail stays queued and is retried that often
 * (-1: the error alone).
 */
void mailstep_deliver(struct step *, struct outbox *, int64_t id, int attempts, int64_t retry_every_s);

#endif
