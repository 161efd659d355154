/*
 * The mail outbox (mail_outbox in ops.db).  Mail is queued inside the transaction that records what it reports,
 * then delivered; delivery state is committed right after the server accepts the message, so a crash after
 * sending does not send again (the window is the commit itself).  A mail server that is down is retried on every
 * housekeeping pass (smtp.queue_retry) until smtp.queue_max_age; nothing is lost and the sync never waits for it.
 */
#ifndef RTOPACKS_OUTBOX_H
#define RTOPACKS_OUTBOX_H

#include <ev.h>
#include <stdbool.h>
#include <stdint.h>

struct db;
struct mailer;
struct config;
struct outbox;

typedef void (*outbox_done_fn)(const char *error, void *arg);

/* The outbox of one daemon (sync_type): it queues and delivers that daemon's mail. */
struct outbox *outbox_new(struct ev_loop *, struct db *, struct mailer *, const struct config *, const char *sync_type);
void outbox_free(struct outbox *);
void outbox_reconfigure(struct outbox *, struct mailer *, const struct config *);

/*
 * Queue a mail (inside the caller's transaction).  key identifies it: queueing the same key again does nothing.
 * Returns the row id (existing or new), or -1 with *cause.
 */
int64_t outbox_queue(struct outbox *, const char *key, const char *sync_type, const char *run_id,
    const char *subject, const char *body, char **cause);
/*
 * Deliver one queued mail now, trying up to attempts times (smtp.retry_backoff, doubling).  done gets NULL when
 * the mail is sent (or was sent before), else the last error; the row then stays queued for later passes.
 */
void outbox_deliver(struct outbox *, int64_t id, int attempts, outbox_done_fn done, void *arg);
/* Stop waiting: the delivery goes on, done(arg) will not be called. */
void outbox_forget(struct outbox *, outbox_done_fn done, void *arg);
/* Deliver every queued mail that is due (housekeeping), or every queued mail whatever its backoff (start-up). */
void outbox_kick(struct outbox *, bool all);
/* Mail being delivered right now. */
int outbox_busy(const struct outbox *);

#endif
