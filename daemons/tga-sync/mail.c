/*
 * The change summary in the completion mail (job_def.format_summary): a table of counts, then what changed by
 * code and title, each list capped ("... and N more"), from the summary write_snapshot stored on the run.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "buf.h"
#include "tga.h"

static const struct {
	const char *type, *plural;
} labels[] = {
	{ "TrainingPackage", "Training packages" },
	{ "Qualification", "Qualifications" },
	{ "Unit", "Units" },
	{ "SkillSet", "Skill sets" },
	{ "AccreditedCourse", "Accredited courses" },
	{ "AccreditedCourseModule", "Accredited course modules" },
	{ "UnitContextualisation", "Unit contextualisations" },
	{ "Organisation", "RTOs" },		/* the REST organisation search (completeness) */
};

static int64_t
num(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

	return cJSON_IsNumber(v) ? (int64_t)v->valuedouble : 0;
}

static const char *
str(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

	return cJSON_IsString(v) ? v->valuestring : "";
}

static const char *
plural_of(const char *type)
{
	size_t i;

	for (i = 0; i < sizeof labels / sizeof labels[0]; i++)
		if (strcmp(labels[i].type, type) == 0)
			return labels[i].plural;
	return type;
}

static void
row(struct buf *out, const char *label, const cJSON *o)
{
	buf_printf(out, "  %-26s %9" PRId64 " %9" PRId64 " %9" PRId64 "\n", label, num(o, "added"), num(o, "updated"),
	    num(o, "removed"));
}

static void
listing(struct buf *out, const char *label, const cJSON *o, const char *what, const char *mark, const char *name_key)
{
	char key[32];
	const cJSON *l, *e;
	int64_t total = num(o, what);
	int shown = 0;

	snprintf(key, sizeof key, "%s_list", what);
	l = cJSON_GetObjectItemCaseSensitive(o, key);
	if (total == 0)
		return;
	buf_printf(out, "\n%s %s (%" PRId64 "):\n", label, what, total);
	cJSON_ArrayForEach(e, l) {
		if (str(e, "kind")[0] != '\0')
			buf_printf(out, "  %s %-12s %s (%s)\n", mark, str(e, "code"), str(e, name_key), str(e, "kind"));
		else
			buf_printf(out, "  %s %-12s %s\n", mark, str(e, "code"), str(e, name_key));
		shown++;
	}
	if (total > shown)
		buf_printf(out, "  ... and %" PRId64 " more\n", total - shown);
}

/* source = rest: what the crawl read against the totals the API announced, and what was missing (phase-rest.c). */
static void
completeness(struct buf *out, const cJSON *cp)
{
	const cJSON *o, *scope = cJSON_GetObjectItemCaseSensitive(cp, "scope"), *e;
	int64_t n = num(cp, "n_shortfalls"), shown = 0;

	if (cp == NULL)
		return;
	buf_printf(out, "\nCompleteness (read / announced by the API):\n");
	cJSON_ArrayForEach(o, cJSON_GetObjectItemCaseSensitive(cp, "search")) {
		if (num(o, "total") >= 0 && cJSON_GetObjectItemCaseSensitive(o, "total") != NULL)
			buf_printf(out, "  %-26s %9" PRId64 " / %" PRId64 "\n", plural_of(o->string), num(o, "read"),
			    num(o, "total"));
		else
			buf_printf(out, "  %-26s %9" PRId64 " / (no total given)\n", plural_of(o->string), num(o, "read"));
	}
	if (scope != NULL)
		buf_printf(out, "  %-26s %9" PRId64 " rows missing of %" PRId64 " announced (%" PRId64 " of %" PRId64
		    " RTOs read short)\n", "RTO scope", num(scope, "rows_missing"), num(scope, "rows_expected"),
		    num(scope, "short_rtos"), num(scope, "rtos"));
	if (n == 0) {
		buf_printf(out, "  nothing missing\n");
		return;
	}
	buf_printf(out, "  Shortfalls (%" PRId64 "; the run is partial, they are read again next cycle):\n", n);
	cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(cp, "shortfalls"))
		if (cJSON_IsString(e)) {
			buf_printf(out, "  ! %s\n", e->valuestring);
			shown++;
		}
	if (n > shown)
		buf_printf(out, "  ... and %" PRId64 " more\n", n - shown);
}

void
tga_format_summary(const cJSON *sum, struct buf *out)
{
	const cJSON *comps = cJSON_GetObjectItemCaseSensitive(sum, "components"), *o;
	const cJSON *rtos = cJSON_GetObjectItemCaseSensitive(sum, "rtos");
	/* Organisations that are not RTOs (kind Organisation2); absent from summaries written before issue 12. */
	const cJSON *orgs = cJSON_GetObjectItemCaseSensitive(sum, "organisations");
	const cJSON *scope = cJSON_GetObjectItemCaseSensitive(sum, "scope");
	const cJSON *tombs = cJSON_GetObjectItemCaseSensitive(sum, "tombstones");
	const cJSON *w = cJSON_GetObjectItemCaseSensitive(sum, "window"), *e;
	int64_t nscope;
	int shown = 0;

	if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(sum, "no_change"))) {
		/* source = rest, and /api/metadata's data export sync time has not moved: nothing was read. */
		buf_printf(out, "No change at training.gov.au: the REST API's data export sync time is still %s,\n"
		    "as at the last complete cycle, so nothing was read or written.\n", str(sum, "data_sync"));
		return;
	}
	buf_printf(out, "Window:  %s .. %s%s\n", str(w, "from"), str(w, "to"),
	    cJSON_IsTrue(cJSON_GetObjectItem(w, "read_all")) ? " (the whole register was read)" : "");
	if (strcmp(str(sum, "source"), "rest") == 0)
		buf_printf(out, "Source:  the training.gov.au REST API, data export sync time %s\n"
		    "         (records it no longer finds are soft-deleted: the tombstones below)\n", str(sum, "data_sync"));
	buf_printf(out, "\n");
	buf_printf(out, "  %-26s %9s %9s %9s\n", "", "added", "updated", "removed");
	cJSON_ArrayForEach(o, comps)
		row(out, plural_of(o->string), o);
	row(out, "RTOs", rtos);
	if (cJSON_IsObject(orgs))
		row(out, "Other organisations", orgs);
	buf_printf(out, "  %-26s %9" PRId64 " %9" PRId64 " %9" PRId64 "   (rows; in %" PRId64 " RTO%s)\n",
	    "RTO scope", num(scope, "rows_added"), num(scope, "rows_changed"), num(scope, "rows_removed"),
	    num(scope, "rtos"), num(scope, "rtos") == 1 ? "" : "s");
	buf_printf(out, "  Tombstones: %" PRId64 " new, %" PRId64 " applied to stored rows\n", num(tombs, "new"),
	    num(tombs, "applied"));
	completeness(out, cJSON_GetObjectItemCaseSensitive(sum, "completeness"));

	cJSON_ArrayForEach(o, comps) {
		listing(out, plural_of(o->string), o, "added", "+", "title");
		listing(out, plural_of(o->string), o, "updated", "~", "title");
		listing(out, plural_of(o->string), o, "removed", "-", "title");
	}
	listing(out, "RTOs", rtos, "added", "+", "name");
	listing(out, "RTOs", rtos, "updated", "~", "name");
	listing(out, "RTOs", rtos, "removed", "-", "name");
	if (cJSON_IsObject(orgs)) {
		listing(out, "Other organisations", orgs, "added", "+", "name");
		listing(out, "Other organisations", orgs, "updated", "~", "name");
		listing(out, "Other organisations", orgs, "removed", "-", "name");
	}
	nscope = num(scope, "rtos");
	if (nscope > 0) {
		buf_printf(out, "\nRTO scope changes (%" PRId64 " RTO%s):\n", nscope, nscope == 1 ? "" : "s");
		cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(scope, "list")) {
			buf_printf(out, "  %-12s %s: %" PRId64 " added, %" PRId64 " removed, %" PRId64 " changed\n",
			    str(e, "code"), str(e, "name"), num(e, "added"), num(e, "removed"), num(e, "changed"));
			shown++;
		}
		if (nscope > shown)
			buf_printf(out, "  ... and %" PRId64 " more\n", nscope - shown);
	}
}
