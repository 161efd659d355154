/*
 * What the phases need from the register upstream, independent of the protocol: the server's clock, changes by
 * modified date, tombstones by deleted date, and the details of one record (parsed into a stage).  Every
 * operation is asynchronous on the event loop, puts its requests in the step's HTTP group, and reports exactly
 * once through its callback with an error class the phase maps onto the engine:
 *
 *   SRC_TRANSIENT   -> STEP_RETRY  (timeouts, 5xx after retries, a response still malformed after re-requests)
 *   SRC_FAULT       -> STEP_FATAL  (the service refused the request: a SOAP client fault with its text)
 *   SRC_CREDENTIALS -> STEP_FATAL  ("TGA rejected the credentials: <fault text>")
 *   SRC_CANCELLED   -> the engine aborted the step
 *
 * source-soap.c implements it for the SOAP web services.  The public REST API cannot answer "what changed since"
 * nor give tombstones, so the REST source (source-rest.h, issue 8) offers crawl operations instead, with the same
 * result types (src_error, src_page) and the same stage records, which the same store code writes.
 */
#ifndef TGA_SOURCE_H
#define TGA_SOURCE_H

#include <stdbool.h>
#include <stdint.h>

#include "stage.h"
#include "tga.h"
#include "tgatime.h"

struct http_group;
struct tga_source;

enum src_status { SRC_OK, SRC_CANCELLED, SRC_TRANSIENT, SRC_FAULT, SRC_CREDENTIALS };

/* Of several failures in one step, the one to report: credentials over a fault over a transient error. */
static inline int
src_status_rank(enum src_status s)
{
	switch (s) {
	case SRC_CREDENTIALS:
		return 4;
	case SRC_FAULT:
		return 3;
	case SRC_TRANSIENT:
		return 2;
	case SRC_CANCELLED:
		return 1;
	default:
		return 0;
	}
}

struct src_error {
	enum src_status status;
	char msg[2048];
};

/* Messages about records skipped for lack of a key (the phase counts them with step_reject). */
#define SRC_MAX_REJECT_MSGS 32
struct src_rejects {
	int n;
	char *msg[SRC_MAX_REJECT_MSGS];
};
void src_rejects_add(struct src_rejects *, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void src_rejects_clear(struct src_rejects *);

/* One result of a modified-date search (a TrainingComponentSummary or an OrganisationSearchResultItem). */
struct src_item {
	char code[TGA_CODE_MAX];
	char updated[TICKS_LEN];	/* canonical UpdatedDate, "" if absent */
	int is_current;			/* IsCurrent: 1, 0, -1 unknown */
	char usage[32];			/* UsageReccomendation, "" if absent */
};

struct src_page {
	int64_t count;			/* Count: total matches in the window */
	size_t n, cap;
	struct src_item *items;
	int returned;			/* result elements in the response, with or without a code */
	struct src_rejects rejects;
};

struct src_tomb {
	char code[TGA_CODE_MAX];
	char operation[32];
	char updated[TICKS_LEN];
};

struct src_tombs {
	size_t n, cap;
	struct src_tomb *items;
	int returned;
	struct src_rejects rejects;
};

void src_page_clear(struct src_page *);
void src_tombs_clear(struct src_tombs *);

typedef void (*src_done_fn)(void *arg, const struct src_error *);

struct tga_source *src_soap_new(struct tga *);
void src_free(struct tga_source *);

void src_server_time(struct tga_source *, struct http_group *, int64_t *ticks, src_done_fn, void *arg);
void src_search_modified(struct tga_source *, struct http_group *, enum tga_service, int64_t from, int64_t to,
    int page, int page_size, struct src_page *out, src_done_fn, void *arg);
void src_search_deleted(struct tga_source *, struct http_group *, enum tga_service, int64_t from, int64_t to,
    int page, int page_size, struct src_tombs *out, src_done_fn, void *arg);
/* Appends one entity to the stage (a nil one if the record is gone), or nothing on error. */
void src_get_details(struct tga_source *, struct http_group *, enum tga_service, const char *code, int item,
    struct stage *, src_done_fn, void *arg);

#endif
