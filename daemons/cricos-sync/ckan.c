#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "buf.h"
#include "ckan.h"
#include "jsonlimit.h"
#include "log.h"
#include "xmalloc.h"

/* An error body (at most 64 KiB) of CKAN's is a handful of values. */
#define ERROR_MAX_NODES 10000

/* CKAN's words go into logs, rows and mails: escaped on the way in. */
static char *
escaped(struct buf *b)
{
	char *raw = buf_release(b), *out = text_escape_dup(raw != NULL ? raw : "", 0);

	free(raw);
	if (out == NULL)
		fatalx("out of memory");
	return out;
}

char *
ckan_url(const char *base, const char *action, const char *query)
{
	char *url;
	size_t n = strlen(base);

	/* The base is the CKAN root (https://data.gov.au/data); a trailing slash in the config is forgiven. */
	while (n > 0 && base[n - 1] == '/')
		n--;
	xasprintf(&url, "%.*s/api/3/action/%s%s%s", (int)n, base, action, query && *query ? "?" : "",
	    query ? query : "");
	return url;
}

/* Field errors are {"limit": ["Invalid integer"], ...}; "message" is a string; __type names the class. */
char *
ckan_error_text(const cJSON *error)
{
	const cJSON *type = cJSON_GetObjectItemCaseSensitive(error, "__type"), *it, *m;
	struct buf b;
	bool any = false;

	buf_init(&b);
	if (cJSON_IsString(error)) {
		buf_printf(&b, "%.300s", error->valuestring);
		return escaped(&b);
	}
	buf_printf(&b, "%.80s", cJSON_IsString(type) ? type->valuestring : "CKAN error");
	cJSON_ArrayForEach(it, error) {
		if (it->string == NULL || strcmp(it->string, "__type") == 0)
			continue;
		if (b.len > 400)
			break;
		buf_adds(&b, any ? "; " : ": ");
		any = true;
		if (strcmp(it->string, "message") == 0 && cJSON_IsString(it)) {
			buf_printf(&b, "%.300s", it->valuestring);
			continue;
		}
		buf_printf(&b, "%.60s: ", it->string);
		if (cJSON_IsString(it))
			buf_printf(&b, "%.200s", it->valuestring);
		else if (cJSON_IsArray(it)) {
			bool first = true;

			cJSON_ArrayForEach(m, it) {
				if (cJSON_IsString(m))
					buf_printf(&b, "%s%.200s", first ? "" : ", ", m->valuestring);
				first = false;
			}
		} else
			buf_adds(&b, "(unexpected value)");
	}
	return escaped(&b);
}

/* Whether retrying can help, from the HTTP status and CKAN's error class. */
static bool
fatal_error(long status, const cJSON *error)
{
	const cJSON *type = cJSON_GetObjectItemCaseSensitive(error, "__type");
	const char *t = cJSON_IsString(type) ? type->valuestring : "";

	/* The DataStore's statement timeout is a 409 "Validation Error" {"query": ["Search took too long"]}. */
	if (cJSON_GetObjectItemCaseSensitive(error, "query") != NULL && strcmp(t, "Validation Error") == 0)
		return false;
	if (status == 400 || status == 401 || status == 403 || status == 404 || status == 409)
		return true;
	if (strcmp(t, "Authorization Error") == 0 || strcmp(t, "Not Found Error") == 0 ||
	    strcmp(t, "Validation Error") == 0)
		return true;
	return false;	/* 5xx, 429, an Internal Server Error: the server's trouble, worth another try */
}

char *
ckan_failure(const struct http_result *r, const char *what, bool *fatal)
{
	cJSON *doc = NULL;
	const cJSON *error;
	char *msg = NULL, *text, why[160];

	*fatal = false;
	if (r->status >= 300 && r->status <= 399) {
		/* A redirect from the Action API is a login page or a moved portal: configuration, not luck. */
		*fatal = true;
		return xstrdup(r->error);	/* the HTTP layer's message names the upstream, operation and URL */
	}
	if (r->status >= 400 && r->body_len > 0)
		doc = json_parse_bounded(r->body, r->body_len, ERROR_MAX_NODES, why, sizeof why);
	if (doc != NULL && cJSON_IsObject(doc) && (error = cJSON_GetObjectItemCaseSensitive(doc, "error")) != NULL) {
		text = ckan_error_text(error);
		*fatal = fatal_error(r->status, error);
		xasprintf(&msg, "%s: HTTP %ld %s%s", what, r->status, text, r->attempts > 1 ? " (after retries)" : "");
		free(text);
	} else if (doc != NULL && cJSON_IsString(doc)) {
		/* CKAN's 400: a bare JSON string ("Bad request - Action name not known: ..."). */
		struct buf b;

		*fatal = true;
		buf_init(&b);
		buf_printf(&b, "%.300s", doc->valuestring);
		text = escaped(&b);
		xasprintf(&msg, "%s: HTTP %ld %s", what, r->status, text);
		free(text);
	} else {
		if (r->status == 400 || r->status == 401 || r->status == 403 || r->status == 404)
			*fatal = true;
		msg = xstrdup(r->error);
	}
	cJSON_Delete(doc);
	return msg;
}

char *
ckan_envelope_check(const cJSON *doc, const char *what, const cJSON **result, bool *fatal)
{
	const cJSON *success, *error;
	char *msg = NULL, *text;

	*fatal = false;
	*result = NULL;
	if (!cJSON_IsObject(doc)) {
		xasprintf(&msg, "%s: the answer is not a CKAN envelope (not a JSON object)", what);
		return msg;
	}
	success = cJSON_GetObjectItemCaseSensitive(doc, "success");
	if (!cJSON_IsBool(success)) {
		xasprintf(&msg, "%s: the answer has no \"success\" member: not a CKAN Action API answer", what);
		return msg;
	}
	if (cJSON_IsFalse(success)) {
		error = cJSON_GetObjectItemCaseSensitive(doc, "error");
		text = error != NULL ? ckan_error_text(error) : xstrdup("no error given");
		/* success:false with HTTP 200 is not how CKAN answers; judge it by its error class alone. */
		*fatal = error != NULL && fatal_error(200, error);
		xasprintf(&msg, "%s: CKAN answered success=false: %s", what, text);
		free(text);
		return msg;
	}
	*result = cJSON_GetObjectItemCaseSensitive(doc, "result");
	if (!cJSON_IsObject(*result)) {
		*result = NULL;
		xasprintf(&msg, "%s: the answer has success=true but no \"result\" object", what);
		return msg;
	}
	return NULL;
}

long long
ckan_count(const cJSON *obj, const char *key, long long def, long long max)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);

	if (!cJSON_IsNumber(v))
		return def;
	if (!(v->valuedouble >= 0 && v->valuedouble <= (double)max))
		return -1;
	return (long long)v->valuedouble;
}

static void
copy_str(char *dst, size_t len, const cJSON *v)
{
	if (cJSON_IsString(v))
		snprintf(dst, len, "%s", v->valuestring);
	else
		dst[0] = '\0';
}

bool
ckan_resource_read(const cJSON *res, struct ckan_resource *out)
{
	const cJSON *v;

	memset(out, 0, sizeof *out);
	out->size = -1;
	if (!cJSON_IsObject(res))
		return false;
	copy_str(out->id, sizeof out->id, cJSON_GetObjectItemCaseSensitive(res, "id"));
	if (out->id[0] == '\0')
		return false;
	copy_str(out->name, sizeof out->name, cJSON_GetObjectItemCaseSensitive(res, "name"));
	copy_str(out->last_modified, sizeof out->last_modified, cJSON_GetObjectItemCaseSensitive(res, "last_modified"));
	/* Some CKAN resources have no last_modified (never re-uploaded): created is then their upload time. */
	if (out->last_modified[0] == '\0')
		copy_str(out->last_modified, sizeof out->last_modified, cJSON_GetObjectItemCaseSensitive(res, "created"));
	copy_str(out->hash, sizeof out->hash, cJSON_GetObjectItemCaseSensitive(res, "hash"));
	copy_str(out->format, sizeof out->format, cJSON_GetObjectItemCaseSensitive(res, "format"));
	out->size = ckan_count(res, "size", -1, CKAN_COUNT_MAX);
	/*
	 * Whether data.gov.au's resource dicts carry datastore_active is unverified (reference §2): only an explicit
	 * false (or "false") says the table is not there; absent means "try it".
	 */
	v = cJSON_GetObjectItemCaseSensitive(res, "datastore_active");
	out->datastore_active = !(cJSON_IsFalse(v) || (cJSON_IsString(v) && strcmp(v->valuestring, "false") == 0));
	return true;
}

bool
ckan_resource_loadable(const struct ckan_resource *r)
{
	/* The formats ckanext-xloader loads by default (its ckanext.xloader.formats), by name and by media type. */
	static const char *const formats[] = { "csv", "tsv", "tab", "txt", "xls", "xlsx", "ods", "text/csv",
		"application/csv", "text/plain", "text/tsv", "application/vnd.ms-excel",
		"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
		"application/vnd.oasis.opendocument.spreadsheet", NULL };
	const char *f = r->format;
	size_t i;

	while (*f == '.')
		f++;
	if (*f == '\0')
		return true;	/* no format given: try it */
	for (i = 0; formats[i] != NULL; i++)
		if (strcasecmp(f, formats[i]) == 0)
			return true;
	return false;
}
