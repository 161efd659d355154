/*
 * The four CRICOS tables: their DataStore columns (the CSV header strings), how each value is cleaned, their keys,
 * and writing one cleaned record into rtopacks.db.  Nothing here knows about HTTP or JSON pages: a record arrives
 * as a cJSON object keyed by header strings (any BOM on a key is ignored).
 *
 * Keys (../shared/reference/cricos-data.md §3):
 *   institutions      provider_code (\d{5}[A-Z])
 *   courses           course_code (7 characters: 6 digits + check letter, or 7 digits)
 *   locations         location_key = "<provider>|<Location Name>|<CITY>|<STATE>" (no id upstream; provider and name
 *                     are almost unique, the 4 exceptions are campuses in different cities, and course locations
 *                     name a location by exactly these four values, so the key is stable across editions and
 *                     joins course locations to their location; city and state are upper-cased in the key
 *                     because their case varies)
 *   course_locations  (course_code, location_key)
 *
 * Row stamps (the change summary is derived from them, so a page replayed after a crash counts nothing twice):
 *   added_cycle    the cycle in which the row appeared (or reappeared after removal)
 *   changed_cycle  the last cycle in which its content changed (NULL: never)
 *   seen_cycle     the last cycle whose edition contained it
 *   removed_cycle  the cycle whose edition no longer had it (soft delete; deleted_at is then set)
 */
#ifndef CRICOS_TABLES_H
#define CRICOS_TABLES_H

#include <cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"

struct db;

enum cricos_table { T_INSTITUTIONS, T_COURSES, T_LOCATIONS, T_COURSE_LOCATIONS, T_COUNT };

enum col_kind {
	K_TEXT,		/* trimmed text, blank = NULL */
	K_PROVIDER,	/* a provider code */
	K_COURSE,	/* a course code */
	K_INT,		/* "2,610" -> 2610 */
	K_MONEY,	/* "$13,300.00" -> 1330000 (cents) */
	K_DECIMAL,	/* "4.00" -> 4.0 */
	K_YESNO,	/* Yes/No -> 1/0 (Expired=Yes is kept as a flag) */
	K_POSTCODE,	/* text; a 3-digit postcode gets its leading zero back */
};

#define C_KEY 0x1	/* part of the key: a record without a valid value is rejected */
#define C_NOHASH 0x2	/* not part of the content: a provider rename is one change, not one per course */
#define C_UPPERKEY 0x4	/* enters the location key upper-cased (city, state) */

struct col_def {
	const char *header;	/* the DataStore field id (the CSV header) */
	const char *column;	/* our column */
	enum col_kind kind;
	unsigned flags;
};

struct table_def {
	const char *name;		/* "courses": config keys, cycle state, summary */
	const char *phase;		/* "sync_courses" */
	const char *sql_table;		/* "cricos_courses" */
	const char *default_resource_id;
	const char *default_resource_name;
	const struct col_def *cols;
	size_t ncols;
	bool location_key;		/* has a computed location_key (locations, course_locations) */
	int loc_cols[4];		/* columns of provider, location name, city, state for the key */
	int code_col, name_col;		/* what the change summary shows (code, name) */
	const char *sql_upsert;
	const char *sql_content_of;	/* content_hash of a key (duplicate check) */
};

extern const struct table_def cricos_tables[T_COUNT];

/* A cleaned value. */
enum val_type { V_NULL, V_TEXT, V_INT, V_REAL };
struct val {
	enum val_type type;
	const char *s;		/* V_TEXT: not NUL-terminated */
	size_t len;
	int64_t i;
	double d;
};

#define ROW_MAX_COLS 24

struct row {
	const struct table_def *t;
	struct val v[ROW_MAX_COLS];
	bool unparseable[ROW_MAX_COLS];	/* a value was there but could not be read: stored as NULL */
	char tmp[ROW_MAX_COLS][40];	/* storage for converted values (padded postcodes) */
	char num[ROW_MAX_COLS][40];	/* a JSON number as text, for a text column */
	struct buf key;			/* location_key */
	char hash[17];			/* content hash, hex */
};

enum row_status {
	ROW_OK,
	ROW_BLANK,		/* every value empty: the CSV's trailing empty rows */
	ROW_REJECT,		/* no valid key: skipped and counted as rejected */
};

/* Column of a DataStore field id (a leading BOM is ignored), or -1. */
int table_col(const struct table_def *, const char *field);

/*
 * Clean a record into row (the row points into rec's strings: keep rec alive while the row is used).  On
 * ROW_REJECT, why says what is wrong (naming the record).
 */
enum row_status row_clean(const struct table_def *, const cJSON *rec, struct row *row, char *why, size_t whylen);
void row_init(struct row *);
void row_free(struct row *);

enum write_result {
	W_NEW,			/* inserted, or back after a removal */
	W_CHANGED,		/* content changed */
	W_SAME,			/* seen again, unchanged */
	W_DUPLICATE,		/* the same key again in this edition with the same content (an exact duplicate row) */
	W_CONFLICT,		/* the same key again in this edition with other content: the first one is kept */
	W_ERROR,
};

/* Upsert a cleaned row, stamped with the cycle.  W_ERROR sets *cause. */
enum write_result row_write(struct db *, const struct row *, const char *cycle, const char *now, char **cause);

/* Text of the row's key for messages ("course 001623A"). */
void row_describe(const struct row *, char *out, size_t len);

#endif
