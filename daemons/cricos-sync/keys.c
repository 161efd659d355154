/* cricos-sync's configuration keys ([cricos-sync]): main.c's job and the fuzz target fuzz/fuzz_config.c share
 * this table. */
#include <stddef.h>

#include "config.h"

#include "cricos.h"

const struct cfg_key cricos_config_keys[] = {
	{ "base_url", CFG_URL, "https://data.gov.au/data", 0, 0, NULL, 0,
	    "CKAN root of data.gov.au; the Action API is <base_url>/api/3/action/." },
	{ "package_id", CFG_STR, "cricos", 0, 0, NULL, 0,
	    "The CRICOS dataset (name or id e5ae7059-bfa8-4fa4-a5c0-c13cf3520193), read with package_show." },
	{ "resource_institutions", CFG_STR, "7f6941f3-5327-4db7-b556-5f16d77f63c1", 0, 0, NULL, 0,
	    "Resource id of CRICOS Institutions.csv." },
	{ "resource_courses", CFG_STR, "48cacf69-2082-415e-9595-f17d0c3a4af0", 0, 0, NULL, 0,
	    "Resource id of CRICOS Courses.csv." },
	{ "resource_locations", CFG_STR, "45d29535-1360-4486-8242-3850e61b5524", 0, 0, NULL, 0,
	    "Resource id of CRICOS Locations.csv." },
	{ "resource_course_locations", CFG_STR, "4cd2de02-8ba3-4eb2-bac2-fe272cae3f5f", 0, 0, NULL, 0,
	    "Resource id of CRICOS Course Locations.csv." },
	{ "page_size", CFG_INT, "5000", 1, 32000, NULL, 0,
	    "Records per datastore_search page (CKAN caps it at 32000 and says so; the smaller size CKAN echoes wins)." },
	{ "page_sort", CFG_STR, "_id", 0, 0, NULL, 0,
	    "Sort of the pages (\"_id\": a stable order, so offsets never skip or repeat a record; empty: none)." },
	{ "max_page_bytes", CFG_INT, "268435456", 1048576, 4294967296LL, NULL, 0,
	    "Largest page answer accepted (bytes, spooled to disk, never held in memory)." },
	{ "summary_max_items", CFG_INT, "100", 0, 100000, NULL, 0,
	    "Most items listed per kind of change (new, changed, removed) in the summary and the mail." },
	{ "timezone_offset", CFG_STR, "+10:00", 0, 0, NULL, 0,
	    "UTC offset of the calendar the edition watch uses (AEST): which month it is, and the late day." },
	{ "edition_watch", CFG_BOOL, "yes", 0, 0, NULL, 0,
	    "After a run finds no new edition at the start of a month, re-check every watch_interval." },
	{ "watch_interval", CFG_DURATION, "1d", 1000, 2678400000LL, NULL, 0,
	    "How often the edition watch re-checks data.gov.au for the new edition." },
	{ "watch_late_day", CFG_INT, "10", 1, 28, NULL, 0,
	    "Day of the month after which a missing edition is reported once: \"[cricos-sync] edition late\"." },
	{ NULL, 0, NULL, 0, 0, NULL, 0, NULL },
};
