/*
 * Reading QuickBooks' answers: an invoice's members, a query's rows, a customer row, a CDC answer's objects.  The
 * push (pusher.c) and the reconcile (phase-reconcile.c) read them through these, and so does the fuzz target
 * (fuzz/fuzz_qbo_response.c): what is fuzzed is what the daemon runs.  Every pointer returned points into the
 * cJSON tree it was read from.
 */
#ifndef QBR_QBO_READ_H
#define QBR_QBO_READ_H

#include <stdbool.h>
#include <stdint.h>

#include <cJSON.h>

#include "timeutil.h"

struct qbo_invoice {
	const char *id, *sync_token, *doc_number;
	const char *customer;		/* CustomerRef.value */
	const char *status;		/* "Deleted" in a CDC answer */
	const char *note;		/* PrivateNote */
	bool amounts;			/* TotalAmt and Balance are both there, in cents */
	int64_t total_cents, balance_cents;
	bool updated_ok;		/* MetaData.LastUpdatedTime was a QuickBooks time */
	char updated[ISO8601_LEN];	/* ... in UTC */
};

/* The members of an invoice object (missing ones NULL / false). */
void qbo_invoice_read(const cJSON *qi, struct qbo_invoice *);

/* QueryResponse.<entity> when it is an array, else NULL. */
const cJSON *qbo_query_rows(const cJSON *json, const char *entity);

/* A Customer row's DisplayName and Id; false if either is missing. */
bool qbo_customer_row(const cJSON *row, const char **name, const char **id);

/* Each object of each entity array of a CDCResponse (an array of one, or the object): fn(entity, object, arg);
 * fn returning -1 stops the walk and qbo_cdc_each returns -1. */
typedef int (*qbo_cdc_fn)(const char *entity, const cJSON *obj, void *arg);
int qbo_cdc_each(const cJSON *json, qbo_cdc_fn, void *arg);

#endif
