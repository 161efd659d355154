/*
 * tga-sync's REST source on arbitrary bodies, through the daemon's own code (fuzz/rest_response.sources): the
 * jscan tokenizer over the whole text (every token's bytes inside the input or its decode buffer, lengths within
 * the bounds jscan.h promises), then every parse-rest.c entry point source-rest.c calls with a response body -
 * metadata, a search page of either service, the scope summary, a scope page (scope rows into the stage), the error
 * text - and, for a body that is a JSON value, a component's or an RTO's details and a release's unit grid, staged
 * as source-rest.c stages them.  The input is copied to a buffer of exactly its size (no NUL after it): every
 * parser takes a length, and reading one byte past the end is a finding under ASan.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "log.h"

#include "../jscan.h"
#include "../parse-rest.h"
#include "../stage.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
const char *__ubsan_default_options(void);

/* Undefined behaviour is a finding like a crash (the ASan test build has -fno-sanitize-recover too). */
const char *
__ubsan_default_options(void)
{
	return "halt_on_error=1:print_stacktrace=1";
}

static struct stage *stage;

/* Tokens: each value must lie in the input (or jscan's decode buffer for escaped strings), within its bounds. */
static void
tokens(const char *text, size_t len)
{
	struct jscan j;
	enum jtok t;
	int64_t v;
	size_t n = 0;

	jscan_init(&j, text, len);
	while ((t = jscan_next(&j)) > JT_EOF && n++ < 1000000) {
		if (t == JT_KEY || t == JT_STRING || t == JT_NUMBER) {
			bool in_text = j.val >= text && j.val + j.len <= text + len;
			bool in_buf = j.str.data != NULL && j.val >= j.str.data && j.val + j.len <= j.str.data + j.str.len;

			if (j.len > JSCAN_MAX_STRING || (!in_text && !in_buf))
				abort();
			if (t == JT_NUMBER)
				(void)jscan_uint(&j, &v);
			else
				(void)jscan_is(&j, "code");
		}
		if (j.depth > JSCAN_MAX_DEPTH)
			abort();
	}
	if (t == JT_ERROR && j.err[0] == '\0')
		abort();	/* an error always says what */
	jscan_free(&j);

	/* Skipping a whole value must agree with tokenizing it. */
	jscan_init(&j, text, len);
	if ((t = jscan_next(&j)) == JT_OBJECT || t == JT_ARRAY)
		(void)jscan_skip(&j, t);
	jscan_free(&j);
}

/* A details document or a unit grid, staged as source-rest.c does (one entity, closed or aborted). */
static void
details(const char *text, size_t len, uint8_t flags)
{
	cJSON *doc = cJSON_ParseWithLength(text, len);
	struct pr_releases rels;
	struct rec head;
	char updated[64], msg[256];
	char *cause = NULL;
	int rc;

	if (doc == NULL)
		return;
	stage_reset(stage);
	rec_init(&head);
	stage_entity_begin(stage);
	memset(&rels, 0, sizeof rels);
	if (flags & 1)
		rc = pr_training(doc, stage, &head, updated, sizeof updated, &rels, msg, sizeof msg);
	else
		rc = pr_org(doc, (flags & 2) != 0, stage, &head, updated, sizeof updated, msg, sizeof msg);
	if (rc == 0 && (rels.n < 0 || rels.n > PR_MAX_RELEASES || strlen(updated) >= sizeof updated))
		abort();
	if (rc == 0)
		(void)stage_entity_end(stage, "BSB40920", 0, &head, &cause);
	else
		stage_entity_abort(stage, NULL);
	free(cause);
	cause = NULL;
	rec_free(&head);
	if (cJSON_IsArray(doc)) {
		stage_reset(stage);
		stage_entity_begin(stage);
		(void)pr_grid(doc, "BSB40920", "1", stage, msg, sizeof msg);
		stage_entity_abort(stage, NULL);
	}
	cJSON_Delete(doc);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct src_page page;
	struct pr_types types;
	struct pr_scope scope;
	struct pr_scope_page sp;
	char msg[256], text[300], *cause = NULL, *body;
	uint8_t flags = size > 0 ? data[0] : 0;
	int64_t ticks;

	if (stage == NULL) {
		log_init("fuzz", 0);
		if ((stage = stage_new("/tmp", &cause)) == NULL) {
			fprintf(stderr, "fuzz_rest_response: setup: %s\n", cause ? cause : "stage_new");
			abort();
		}
	}
	/* Exactly size bytes: nothing after the body to lean on. */
	body = malloc(size > 0 ? size : 1);
	memcpy(body, data, size);

	tokens(body, size);
	(void)pr_metadata(body, size, &ticks, msg, sizeof msg);
	memset(&page, 0, sizeof page);
	(void)pr_search(body, size, SVC_TRAINING, (flags & 4) ? "unit" : NULL, 1000, &page, msg, sizeof msg);
	src_page_clear(&page);
	memset(&page, 0, sizeof page);
	(void)pr_search(body, size, SVC_ORGANISATION, NULL, 3, &page, msg, sizeof msg);
	src_page_clear(&page);
	memset(&types, 0, sizeof types);
	if (pr_scopesummary(body, size, &types, msg, sizeof msg) == 0 && (types.n < 0 || types.n > PR_MAX_TYPES))
		abort();

	stage_reset(stage);
	stage_entity_begin(stage);
	memset(&scope, 0, sizeof scope);
	memset(&sp, 0, sizeof sp);
	if (pr_scope_page(body, size, "0275", (flags & 8) == 0, (flags & 16) == 0, stage, &scope, &sp, msg,
	    sizeof msg) == 0 && (sp.rows < 0 || strlen(sp.last) >= sizeof sp.last))
		abort();
	stage_entity_abort(stage, NULL);

	pr_error_text(body, size, text, sizeof text);
	if (strlen(text) >= sizeof text)
		abort();
	details(body, size, flags);
	free(body);
	return 0;
}
