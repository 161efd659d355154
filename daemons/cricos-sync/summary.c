/*
 * The change summary as the completion mail shows it (common/notify.c puts it under the phase table).  Input is
 * the JSON that write_snapshot stored on the run; every member is optional here, so a summary written by an older
 * version still renders.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "buf.h"
#include "cricos.h"

static const char *const TITLES[T_COUNT] = { "Institutions", "Courses", "Locations", "Course locations" };

static void
num(struct buf *b, double v)
{
	char raw[32], out[48];
	size_t n, i, o = 0;

	snprintf(raw, sizeof raw, "%.0f", v < 0 ? -v : v);
	n = strlen(raw);
	if (v < 0)
		out[o++] = '-';
	for (i = 0; i < n && o + 2 < sizeof out; i++) {
		if (i > 0 && (n - i) % 3 == 0)
			out[o++] = ',';
		out[o++] = raw[i];
	}
	out[o] = '\0';
	buf_adds(b, out);
}

/* The number at `key` in o, written as num() does, then the text after it. */
static void
num_text(struct buf *b, const cJSON *o, const char *key, const char *text)
{
	num(b, json_num(o, key, 0));
	buf_adds(b, text);
}

static void
items(struct buf *b, const cJSON *t, const char *key, const char *mark, double count)
{
	const cJSON *arr = cJSON_GetObjectItemCaseSensitive(t, key), *it;
	int shown = 0;

	cJSON_ArrayForEach(it, arr) {
		const char *extra = json_str(it, "provider")[0] ? json_str(it, "provider") : json_str(it, "where");

		buf_printf(b, "    %s %-8s %s", mark, json_str(it, "code"), json_str(it, "name"));
		if (extra[0] != '\0')
			buf_printf(b, "  (%s)", extra);
		buf_addc(b, '\n');
		shown++;
	}
	if (count > shown && shown > 0) {
		buf_adds(b, "      ... and ");
		num(b, count - shown);
		buf_adds(b, " more\n");
	}
}

static void
edition_lines(struct buf *b, const cJSON *ed, bool show_read)
{
	size_t i;

	for (i = 0; i < T_COUNT; i++) {
		const cJSON *e = cJSON_GetObjectItemCaseSensitive(ed, cricos_tables[i].name);

		if (e == NULL)
			continue;
		buf_printf(b, "  %-30s last modified %s", json_str(e, "name"), json_str(e, "last_modified_utc")[0] ?
		    json_str(e, "last_modified_utc") : json_str(e, "last_modified"));
		if (show_read)
			buf_adds(b, cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(e, "sync")) ? "  (read)" :
			    "  (unchanged, not read)");
		buf_addc(b, '\n');
	}
}

static void
watch_lines(struct buf *b, const cJSON *w)
{
	const char *state = json_str(w, "state");

	if (strcmp(state, "armed") == 0)
		buf_printf(b,
		    "\nEdition watch: waiting for the %s edition (armed %s, %.0f re-check%s so far).\n"
		    "  Next check %s; it syncs the edition as soon as it appears.  From %s (late day) a missing\n"
		    "  edition is reported once: \"edition late\".\n",
		    json_str(w, "month"), json_str(w, "armed_at"), json_num(w, "checks", 0),
		    json_num(w, "checks", 0) == 1 ? "" : "s", json_str(w, "next_check"), json_str(w, "late_day"));
	else if (strcmp(state, "picked_up") == 0)
		buf_printf(b, "\nEdition watch: this is the %s edition it had been waiting for since %s (%.0f re-check%s).\n",
		    json_str(w, "month"), json_str(w, "armed_at"), json_num(w, "checks", 0),
		    json_num(w, "checks", 0) == 1 ? "" : "s");
	else if (strcmp(state, "current") == 0)
		buf_printf(b, "\nThis month's edition is already synced (newest upload %s): nothing to wait for.\n",
		    json_str(w, "since"));
}

void
cricos_format_summary(const cJSON *sum, struct buf *b)
{
	const cJSON *ed = cJSON_GetObjectItemCaseSensitive(sum, "edition"), *tables, *link, *unp, *recs, *it, *list;
	size_t i;

	if (!cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(sum, "new_edition"))) {
		buf_adds(b, "No new CRICOS edition: every resource on data.gov.au is unchanged since the last sync.\n");
		edition_lines(b, ed, false);
		watch_lines(b, cJSON_GetObjectItemCaseSensitive(sum, "watch"));
		return;
	}
	if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(sum, "first_sync")))
		buf_adds(b, "First sync of the CRICOS register: every row is new (counts only).\n");
	if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(sum, "full")))
		buf_adds(b, "Full re-sync of every resource (requested with --full):\n");
	else
		buf_adds(b, "New CRICOS data on data.gov.au:\n");
	edition_lines(b, ed, true);
	watch_lines(b, cJSON_GetObjectItemCaseSensitive(sum, "watch"));

	tables = cJSON_GetObjectItemCaseSensitive(sum, "tables");
	for (i = 0; i < T_COUNT; i++) {
		const cJSON *t = cJSON_GetObjectItemCaseSensitive(tables, cricos_tables[i].name);

		if (t == NULL)
			continue;
		buf_printf(b, "\n%s: ", TITLES[i]);
		num_text(b, t, "new", " new, ");
		num_text(b, t, "changed", " changed, ");
		num_text(b, t, "removed", " removed (");
		num_text(b, t, "rows", " current)");
		if (!cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(t, "synced")))
			buf_adds(b, " - not read: unchanged upstream");
		buf_addc(b, '\n');
		items(b, t, "new_items", "+", json_num(t, "new", 0));
		items(b, t, "changed_items", "~", json_num(t, "changed", 0));
		items(b, t, "removed_items", "-", json_num(t, "removed", 0));
	}

	if ((link = cJSON_GetObjectItemCaseSensitive(sum, "link")) != NULL) {
		const cJSON *codes = cJSON_GetObjectItemCaseSensitive(link, "unmatched_list");
		int shown = 0;

		buf_adds(b, "\nTGA link: ");
		num_text(b, link, "courses_with_code", " current courses have a VET National Code: ");
		num_text(b, link, "matched", " matched, ");
		num_text(b, link, "deleted", " to a component removed on TGA, ");
		num_text(b, link, "unmatched", " unmatched (");
		num_text(b, link, "unmatched_codes", " codes)\n");
		if (json_str(link, "note")[0] != '\0')
			buf_printf(b, "  Note: %s.\n", json_str(link, "note"));
		if (cJSON_GetArraySize(codes) > 0) {
			buf_adds(b, "  Unmatched codes:");
			cJSON_ArrayForEach(it, codes) {
				buf_printf(b, "%s%s", shown % 8 == 0 ? "\n    " : " ", it->valuestring);
				shown++;
			}
			if (json_num(link, "unmatched_codes", 0) > shown) {
				buf_adds(b, "\n    ... and ");
				num(b, json_num(link, "unmatched_codes", 0) - shown);
				buf_adds(b, " more");
			}
			buf_addc(b, '\n');
		}
	}

	if ((unp = cJSON_GetObjectItemCaseSensitive(sum, "unparseable")) != NULL && cJSON_GetArraySize(unp) > 0) {
		buf_adds(b, "\nValues that could not be read (stored as NULL, see `syncctl steps`):\n");
		cJSON_ArrayForEach(it, unp) {
			buf_printf(b, "  %-50s ", it->string);
			num(b, it->valuedouble);
			buf_addc(b, '\n');
		}
	}
	if ((recs = cJSON_GetObjectItemCaseSensitive(sum, "records")) != NULL) {
		double blank = 0, dup = 0, rej = 0;

		cJSON_ArrayForEach(it, recs) {
			blank += json_num(it, "blank", 0);
			dup += json_num(it, "duplicates", 0);
			rej += json_num(it, "rejected", 0);
		}
		if (blank + dup + rej > 0) {
			buf_adds(b, "\nRecords skipped: ");
			num(b, blank);
			buf_adds(b, " blank, ");
			num(b, dup);
			buf_adds(b, " exact duplicates, ");
			num(b, rej);
			buf_adds(b, " rejected (no valid key, or a key twice with different content)\n");
		}
		if ((list = cJSON_GetObjectItemCaseSensitive(sum, "rejected")) != NULL && cJSON_GetArraySize(list) > 0) {
			/* By DataStore _id: datastore_search?resource_id=...&filters={"_id":N} shows the record. */
			buf_adds(b, "\nRejected records (table, DataStore _id, code: why):\n");
			cJSON_ArrayForEach(it, list)
				buf_printf(b, "  %-16s _id %-8.0f %s: %s\n", json_str(it, "table"), json_num(it, "_id", -1),
				    json_str(it, "code"), json_str(it, "why"));
			if (rej > cJSON_GetArraySize(list)) {
				buf_adds(b, "  ... and ");
				num(b, rej - cJSON_GetArraySize(list));
				buf_adds(b, " more (the log names each)\n");
			}
		}
	}
}
