/*
 * Queue the mail, then deliver it (mailstep.h): the two steps a phase that sends one mail shares.
 */
#include <inttypes.h>
#include <stdlib.h>

#include "cursorkv.h"
#include "cycle.h"
#include "log.h"
#include "mailstep.h"
#include "outbox.h"
#include "xmalloc.h"

/* One delivery being waited for. */
struct delivery {
	struct step *st;
	struct outbox *outbox;
	int64_t retry_every_s;
};

bool
mailstep_queued(const char *cursor, int64_t *id)
{
	struct ckv c;
	const struct ckv_field *f;

	/* The tag form, as every release has written it; the id is what strtoll made of it before the codec. */
	if (ckv_parse(&c, cursor) == -1 || (f = ckv_field(&c, "queued")) == NULL || f->form != CKV_TAG)
		return false;
	*id = strtoll(f->val, NULL, 10);
	return true;
}

int
mailstep_queue(struct step *st, struct outbox *ob, const char *key, const char *sync_type, const char *what,
    const char *subject, const char *body, char **cause)
{
	struct ckv_builder b;
	int64_t id;

	if (step_db(st, cause) == NULL ||
	    (id = outbox_queue(ob, key, sync_type, step_run_id(st), subject, body, cause)) == -1)
		return -1;
	log_info("%s queued: %s", what, subject);
	ckv_init(&b);
	ckv_tag_i64(&b, "queued", id);
	step_set_cursor(st, "%s", ckv_str(&b));
	step_done(st, STEP_MORE);
	return 0;
}

static void
finish(struct delivery *dv)
{
	struct step *st = dv->st;

	free(dv);
	step_done(st, STEP_PHASE_DONE);
}

static void
delivered(const char *error, void *arg)
{
	struct delivery *dv = arg;
	char *msg = NULL;

	if (error != NULL && dv->retry_every_s >= 0) {
		xasprintf(&msg, "mail not delivered (%s); it stays queued and is retried every %" PRId64 "s", error,
		    dv->retry_every_s);
		step_set_status(dv->st, "failed", msg);
		free(msg);
	} else if (error != NULL)
		step_set_status(dv->st, "failed", error);
	else
		step_count(dv->st, 0, 1);
	finish(dv);
}

/* A stop cut the wait short: the outbox keeps delivering (and recording) the mail on its own. */
static void
abandon_delivery(void *arg)
{
	outbox_forget(((struct delivery *)arg)->outbox, delivered, arg);
	finish(arg);
}

void
mailstep_deliver(struct step *st, struct outbox *ob, int64_t id, int attempts, int64_t retry_every_s)
{
	struct delivery *dv = xcalloc(1, sizeof *dv);

	dv->st = st;
	dv->outbox = ob;
	dv->retry_every_s = retry_every_s;
	step_on_abort(st, abandon_delivery, dv);
	outbox_deliver(ob, id, attempts, delivered, dv);
}
