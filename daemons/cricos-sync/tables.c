/*
 * Table definitions, record cleaning and the upserts.  Column order in each col_def list is the order of the
 * upsert's parameters ?1..?N; then ?N+1 content hash, ?N+2 cycle, ?N+3 time, ?N+4 location_key.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "clean.h"
#include "db.h"
#include "tables.h"
#include "xmalloc.h"

/* --- columns ------------------------------------------------------------------------------------------------- */

static const struct col_def institution_cols[] = {
	{ "CRICOS Provider Code", "provider_code", K_PROVIDER, C_KEY },
	{ "Trading Name", "trading_name", K_TEXT, 0 },
	{ "Institution Name", "institution_name", K_TEXT, 0 },
	{ "Institution Type", "institution_type", K_TEXT, 0 },
	{ "Institution Capacity", "capacity", K_INT, 0 },
	{ "Website", "website", K_TEXT, 0 },
	{ "Postal Address Line 1", "postal_line1", K_TEXT, 0 },
	{ "Postal Address Line 2", "postal_line2", K_TEXT, 0 },
	{ "Postal Address Line 3", "postal_line3", K_TEXT, 0 },
	{ "Postal Address Line 4", "postal_line4", K_TEXT, 0 },
	{ "Postal Address City", "postal_city", K_TEXT, 0 },
	{ "Postal Address State", "postal_state", K_TEXT, 0 },
	{ "Postal Address Postcode", "postal_postcode", K_POSTCODE, 0 },
};

static const struct col_def course_cols[] = {
	{ "CRICOS Provider Code", "provider_code", K_PROVIDER, 0 },
	{ "Institution Name", "institution_name", K_TEXT, C_NOHASH },
	{ "CRICOS Course Code", "course_code", K_COURSE, C_KEY },
	{ "Course Name", "course_name", K_TEXT, 0 },
	{ "VET National Code", "vet_national_code", K_TEXT, 0 },
	{ "Dual Qualification", "dual_qualification", K_YESNO, 0 },
	{ "Field of Education 1 Broad Field", "foe1_broad", K_TEXT, 0 },
	{ "Field of Education 1 Narrow Field", "foe1_narrow", K_TEXT, 0 },
	{ "Field of Education 1 Detailed Field", "foe1_detailed", K_TEXT, 0 },
	{ "Field of Education 2 Broad Field", "foe2_broad", K_TEXT, 0 },
	{ "Field of Education 2 Narrow Field", "foe2_narrow", K_TEXT, 0 },
	{ "Field of Education 2 Detailed Field", "foe2_detailed", K_TEXT, 0 },
	{ "Course Level", "course_level", K_TEXT, 0 },
	{ "Foundation Studies", "foundation_studies", K_YESNO, 0 },
	{ "Work Component", "work_component", K_YESNO, 0 },
	{ "Work Component Hours/Week", "work_hours_per_week", K_DECIMAL, 0 },
	{ "Work Component Weeks", "work_weeks", K_INT, 0 },
	{ "Work Component Total Hours", "work_total_hours", K_INT, 0 },
	{ "Course Language", "course_language", K_TEXT, 0 },
	{ "Duration (Weeks)", "duration_weeks", K_INT, 0 },
	{ "Tuition Fee", "tuition_fee_cents", K_MONEY, 0 },
	{ "Non Tuition Fee", "non_tuition_fee_cents", K_MONEY, 0 },
	{ "Estimated Total Course Cost", "estimated_total_cost_cents", K_MONEY, 0 },
	{ "Expired", "expired", K_YESNO, 0 },
};

static const struct col_def location_cols[] = {
	{ "CRICOS Provider Code", "provider_code", K_PROVIDER, C_KEY },
	{ "Institution Name", "institution_name", K_TEXT, C_NOHASH },
	{ "Location Name", "location_name", K_TEXT, C_KEY },
	{ "Location Type", "location_type", K_TEXT, 0 },
	{ "Address Line 1", "address_line1", K_TEXT, 0 },
	{ "Address Line 2", "address_line2", K_TEXT, 0 },
	{ "Address Line 3", "address_line3", K_TEXT, 0 },
	{ "Address Line 4", "address_line4", K_TEXT, 0 },
	{ "City", "city", K_TEXT, C_UPPERKEY },
	{ "State", "state", K_TEXT, C_UPPERKEY },
	{ "Postcode", "postcode", K_POSTCODE, 0 },
};

static const struct col_def course_location_cols[] = {
	{ "CRICOS Provider Code", "provider_code", K_PROVIDER, C_KEY },
	{ "Institution Name", "institution_name", K_TEXT, C_NOHASH },
	{ "CRICOS Course Code", "course_code", K_COURSE, C_KEY },
	{ "Location Name", "location_name", K_TEXT, C_KEY },
	{ "Location City", "location_city", K_TEXT, C_UPPERKEY },
	{ "Location State", "location_state", K_TEXT, C_UPPERKEY },
};

/* --- upserts ------------------------------------------------------------------------------------------------- */

/*
 * The stamps of an existing row, evaluated against its old values (SQLite evaluates every SET expression on the
 * row before the update).  The WHERE makes a key seen twice in one edition a no-op: no RETURNING row, which
 * row_write then classifies as an exact duplicate or a conflict.
 */
#define STAMPS(extra_changed)                                                                                    \
	" changed_cycle = CASE WHEN removed_cycle IS NULL AND content_hash IS NOT excluded.content_hash"             \
	" THEN excluded.seen_cycle ELSE changed_cycle END,"                                                         \
	" added_cycle = CASE WHEN removed_cycle IS NOT NULL THEN excluded.added_cycle ELSE added_cycle END,"        \
	" updated_at = CASE WHEN removed_cycle IS NOT NULL OR content_hash IS NOT excluded.content_hash" extra_changed \
	" THEN excluded.updated_at ELSE updated_at END,"                                                            \
	" content_hash = excluded.content_hash, seen_cycle = excluded.seen_cycle, removed_cycle = NULL,"            \
	" deleted_at = NULL WHERE seen_cycle IS NOT excluded.seen_cycle RETURNING added_cycle, changed_cycle"

static const char SQL_UPSERT_INSTITUTION[] =
    "INSERT INTO cricos_institutions (provider_code, trading_name, institution_name, institution_type, capacity,"
    " website, postal_line1, postal_line2, postal_line3, postal_line4, postal_city, postal_state, postal_postcode,"
    " content_hash, added_cycle, seen_cycle, first_seen_at, updated_at)"
    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?15, ?16, ?16)"
    " ON CONFLICT (provider_code) DO UPDATE SET trading_name = excluded.trading_name,"
    " institution_name = excluded.institution_name, institution_type = excluded.institution_type,"
    " capacity = excluded.capacity, website = excluded.website, postal_line1 = excluded.postal_line1,"
    " postal_line2 = excluded.postal_line2, postal_line3 = excluded.postal_line3,"
    " postal_line4 = excluded.postal_line4, postal_city = excluded.postal_city,"
    " postal_state = excluded.postal_state, postal_postcode = excluded.postal_postcode,"
    STAMPS("");

static const char SQL_UPSERT_COURSE[] =
    "INSERT INTO cricos_courses (provider_code, institution_name, course_code, course_name, vet_national_code,"
    " dual_qualification, foe1_broad, foe1_narrow, foe1_detailed, foe2_broad, foe2_narrow, foe2_detailed,"
    " course_level, foundation_studies, work_component, work_hours_per_week, work_weeks, work_total_hours,"
    " course_language, duration_weeks, tuition_fee_cents, non_tuition_fee_cents, estimated_total_cost_cents,"
    " expired, content_hash, added_cycle, seen_cycle, first_seen_at, updated_at)"
    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22,"
    " ?23, ?24, ?25, ?26, ?26, ?27, ?27)"
    " ON CONFLICT (course_code) DO UPDATE SET provider_code = excluded.provider_code,"
    " institution_name = excluded.institution_name, course_name = excluded.course_name,"
    " vet_national_code = excluded.vet_national_code, dual_qualification = excluded.dual_qualification,"
    " foe1_broad = excluded.foe1_broad, foe1_narrow = excluded.foe1_narrow, foe1_detailed = excluded.foe1_detailed,"
    " foe2_broad = excluded.foe2_broad, foe2_narrow = excluded.foe2_narrow, foe2_detailed = excluded.foe2_detailed,"
    " course_level = excluded.course_level, foundation_studies = excluded.foundation_studies,"
    " work_component = excluded.work_component, work_hours_per_week = excluded.work_hours_per_week,"
    " work_weeks = excluded.work_weeks, work_total_hours = excluded.work_total_hours,"
    " course_language = excluded.course_language, duration_weeks = excluded.duration_weeks,"
    " tuition_fee_cents = excluded.tuition_fee_cents, non_tuition_fee_cents = excluded.non_tuition_fee_cents,"
    " estimated_total_cost_cents = excluded.estimated_total_cost_cents, expired = excluded.expired,"
    STAMPS(" OR institution_name IS NOT excluded.institution_name");

static const char SQL_UPSERT_LOCATION[] =
    "INSERT INTO cricos_locations (provider_code, institution_name, location_name, location_type, address_line1,"
    " address_line2, address_line3, address_line4, city, state, postcode, content_hash, added_cycle, seen_cycle,"
    " first_seen_at, updated_at, location_key)"
    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?13, ?14, ?14, ?15)"
    " ON CONFLICT (location_key) DO UPDATE SET provider_code = excluded.provider_code,"
    " institution_name = excluded.institution_name, location_name = excluded.location_name,"
    " location_type = excluded.location_type, address_line1 = excluded.address_line1,"
    " address_line2 = excluded.address_line2, address_line3 = excluded.address_line3,"
    " address_line4 = excluded.address_line4, city = excluded.city, state = excluded.state,"
    " postcode = excluded.postcode,"
    STAMPS(" OR institution_name IS NOT excluded.institution_name");

static const char SQL_UPSERT_COURSE_LOCATION[] =
    "INSERT INTO cricos_course_locations (provider_code, institution_name, course_code, location_name,"
    " location_city, location_state, content_hash, added_cycle, seen_cycle, first_seen_at, updated_at,"
    " location_key)"
    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8, ?9, ?9, ?10)"
    " ON CONFLICT (course_code, location_key) DO UPDATE SET provider_code = excluded.provider_code,"
    " institution_name = excluded.institution_name, location_name = excluded.location_name,"
    " location_city = excluded.location_city, location_state = excluded.location_state,"
    STAMPS(" OR institution_name IS NOT excluded.institution_name");

static const char SQL_CONTENT_INSTITUTION[] = "SELECT content_hash FROM cricos_institutions WHERE provider_code = ?1";
static const char SQL_CONTENT_COURSE[] = "SELECT content_hash FROM cricos_courses WHERE course_code = ?1";
static const char SQL_CONTENT_LOCATION[] = "SELECT content_hash FROM cricos_locations WHERE location_key = ?1";
static const char SQL_CONTENT_COURSE_LOCATION[] =
    "SELECT content_hash FROM cricos_course_locations WHERE course_code = ?1 AND location_key = ?2";

#define NCOLS(a) (sizeof(a) / sizeof((a)[0]))

const struct table_def cricos_tables[T_COUNT] = {
	[T_INSTITUTIONS] = { "institutions", "sync_institutions", "cricos_institutions",
	    "7f6941f3-5327-4db7-b556-5f16d77f63c1", "CRICOS Institutions.csv", institution_cols,
	    NCOLS(institution_cols), false, { -1, -1, -1, -1 }, 0, 2, SQL_UPSERT_INSTITUTION,
	    SQL_CONTENT_INSTITUTION },
	[T_COURSES] = { "courses", "sync_courses", "cricos_courses", "48cacf69-2082-415e-9595-f17d0c3a4af0",
	    "CRICOS Courses.csv", course_cols, NCOLS(course_cols), false, { -1, -1, -1, -1 }, 2, 3,
	    SQL_UPSERT_COURSE, SQL_CONTENT_COURSE },
	[T_LOCATIONS] = { "locations", "sync_locations", "cricos_locations", "45d29535-1360-4486-8242-3850e61b5524",
	    "CRICOS Locations.csv", location_cols, NCOLS(location_cols), true, { 0, 2, 8, 9 }, 0, 2,
	    SQL_UPSERT_LOCATION, SQL_CONTENT_LOCATION },
	[T_COURSE_LOCATIONS] = { "course_locations", "sync_course_locations", "cricos_course_locations",
	    "4cd2de02-8ba3-4eb2-bac2-fe272cae3f5f", "CRICOS Course Locations.csv", course_location_cols,
	    NCOLS(course_location_cols), true, { 0, 3, 4, 5 }, 2, 3, SQL_UPSERT_COURSE_LOCATION,
	    SQL_CONTENT_COURSE_LOCATION },
};

/* --- cleaning ------------------------------------------------------------------------------------------------ */

static const char *
skip_bom(const char *s)
{
	if ((unsigned char)s[0] == 0xef && (unsigned char)s[1] == 0xbb && (unsigned char)s[2] == 0xbf)
		return s + 3;
	return s;
}

int
table_col(const struct table_def *t, const char *field)
{
	size_t i;

	field = skip_bom(field);
	for (i = 0; i < t->ncols; i++)
		if (strcmp(t->cols[i].header, field) == 0)
			return (int)i;
	return -1;
}

void
row_init(struct row *r)
{
	memset(r, 0, sizeof *r);
	buf_init(&r->key);
}

void
row_free(struct row *r)
{
	buf_free(&r->key);
}

static void
set_text(struct val *v, const char *s, size_t len)
{
	v->type = V_TEXT;
	v->s = s;
	v->len = len;
}

/* A value could not be read: NULL in the table, the raw text kept for messages. */
static void
set_bad(struct row *r, int col, const char *s, size_t len)
{
	r->v[col].type = V_NULL;
	r->v[col].s = s;
	r->v[col].len = len;
	r->unparseable[col] = true;
}

/* Clean a text cell (already trimmed, non-empty) by the column's kind. */
static void
clean_text_value(struct row *r, int col, const char *s, size_t len)
{
	const struct col_def *c = &r->t->cols[col];
	struct val *v = &r->v[col];

	if (len > CLEAN_MAX_VALUE) {
		set_bad(r, col, s, 80);
		return;
	}
	switch (c->kind) {
	case K_TEXT:
		set_text(v, s, len);
		return;
	case K_PROVIDER:
		if (clean_provider_code(s, len))
			set_text(v, s, len);
		else
			set_bad(r, col, s, len);
		return;
	case K_COURSE:
		if (clean_course_code(s, len))
			set_text(v, s, len);
		else
			set_bad(r, col, s, len);
		return;
	case K_INT:
		if (clean_integer(s, len, &v->i))
			v->type = V_INT;
		else
			set_bad(r, col, s, len);
		return;
	case K_MONEY:
		if (clean_money_cents(s, len, &v->i))
			v->type = V_INT;
		else
			set_bad(r, col, s, len);
		return;
	case K_DECIMAL:
		if (clean_decimal(s, len, &v->d))
			v->type = V_REAL;
		else
			set_bad(r, col, s, len);
		return;
	case K_YESNO:
		if (clean_yesno(s, len, &v->i))
			v->type = V_INT;
		else
			set_bad(r, col, s, len);
		return;
	case K_POSTCODE:
		if (len + 2 <= sizeof r->tmp[col]) {
			size_t n = clean_postcode(s, len, r->tmp[col]);

			set_text(v, r->tmp[col], n);
		} else
			set_text(v, s, len);
		return;
	}
}

/* DataStore tables loaded by XLoader are all text, but a typed table would send numbers: accept them exactly. */
static void
clean_number_value(struct row *r, int col, double d)
{
	const struct col_def *c = &r->t->cols[col];
	struct val *v = &r->v[col];
	int n;

	switch (c->kind) {
	case K_INT:
		if (d == floor(d) && fabs(d) < 9007199254740992.0) {
			v->type = V_INT;
			v->i = (int64_t)d;
		} else
			set_bad(r, col, "(a number)", 10);
		return;
	case K_MONEY: {
		double cents = d * 100.0, rounded = nearbyint(cents);

		/* 104793.75 is exactly 10479375 cents; 1.005 is not a price in cents and is not rounded. */
		if (fabs(cents) < 9e15 && fabs(cents - rounded) < 1e-6) {
			v->type = V_INT;
			v->i = (int64_t)rounded;
		} else
			set_bad(r, col, "(a number)", 10);
		return;
	}
	case K_DECIMAL:
		v->type = V_REAL;
		v->d = d;
		return;
	case K_YESNO:
		set_bad(r, col, "(a number)", 10);
		return;
	default:
		/* As text, in the row's own storage (the value, or the raw text of a bad one, points into it). */
		if (d == floor(d) && fabs(d) < 1e15)
			n = snprintf(r->num[col], sizeof r->num[col], "%lld", (long long)d);
		else
			n = snprintf(r->num[col], sizeof r->num[col], "%.15g", d);
		clean_text_value(r, col, r->num[col], (size_t)n);
		return;
	}
}

static void
hash_val(uint64_t *h, const struct val *v)
{
	char num[40];
	unsigned char tag = (unsigned char)v->type;
	int n;

	*h = fnv64(*h, &tag, 1);
	switch (v->type) {
	case V_NULL:
		break;
	case V_TEXT:
		*h = fnv64(*h, v->s, v->len);
		break;
	case V_INT:
		n = snprintf(num, sizeof num, "%lld", (long long)v->i);
		*h = fnv64(*h, num, (size_t)n);
		break;
	case V_REAL:
		n = snprintf(num, sizeof num, "%.17g", v->d);
		*h = fnv64(*h, num, (size_t)n);
		break;
	}
	*h = fnv64(*h, "\x1f", 1);
}

static void
key_part(struct buf *b, const struct val *v, bool upper)
{
	size_t i;

	if (v->type != V_TEXT)
		return;
	if (!upper) {
		buf_add(b, v->s, v->len);
		return;
	}
	for (i = 0; i < v->len; i++) {
		char c = v->s[i];

		buf_addc(b, c >= 'a' && c <= 'z' ? (char)(c - 'a' + 'A') : c);
	}
}

void
row_describe(const struct row *r, char *out, size_t len)
{
	const struct table_def *t = r->t;
	const struct val *code = &r->v[t->code_col];

	if (t->location_key && r->key.len > 0)
		snprintf(out, len, "%s %.*s", t->name, (int)(r->key.len > 200 ? 200 : r->key.len), r->key.data);
	else if (code->s != NULL)
		snprintf(out, len, "%s %.*s", t->name, (int)(code->len > 80 ? 80 : code->len), code->s);
	else
		snprintf(out, len, "a %s record", t->name);
}

enum row_status
row_clean(const struct table_def *t, const cJSON *rec, struct row *r, char *why, size_t whylen)
{
	const cJSON *it;
	size_t i, pos = 0;
	uint64_t h = FNV64_INIT;
	bool any = false;
	int col;

	r->t = t;
	for (i = 0; i < ROW_MAX_COLS; i++) {
		memset(&r->v[i], 0, sizeof r->v[i]);
		r->unparseable[i] = false;
	}
	buf_reset(&r->key);
	cJSON_ArrayForEach(it, rec) {
		const char *s;
		size_t len;

		if (it->string == NULL || strcmp(it->string, "_id") == 0)
			continue;
		/* Records list the fields in table order: try the expected column before searching. */
		if (pos < t->ncols && strcmp(skip_bom(it->string), t->cols[pos].header) == 0)
			col = (int)pos;
		else
			col = table_col(t, it->string);
		pos++;
		if (col < 0)
			continue;
		if (cJSON_IsNull(it))
			continue;
		any = true;
		if (cJSON_IsString(it)) {
			len = clean_trim(it->valuestring, strlen(it->valuestring), &s);
			if (len > 0)
				clean_text_value(r, col, s, len);
		} else if (cJSON_IsNumber(it))
			clean_number_value(r, col, it->valuedouble);
		else
			set_bad(r, col, "(not a string)", 14);
	}
	/* Blank rows (the CSV's trailing ",,,,") have every value null or empty. */
	for (i = 0; i < t->ncols; i++)
		if (r->v[i].type != V_NULL || r->unparseable[i])
			break;
	if (!any || i == t->ncols)
		return ROW_BLANK;
	for (i = 0; i < t->ncols; i++) {
		const struct col_def *c = &t->cols[i];

		if (!(c->flags & C_KEY))
			continue;
		if (r->unparseable[i]) {
			snprintf(why, whylen, "%s record with an invalid %s '%.*s'", t->name, c->header,
			    (int)(r->v[i].len > 40 ? 40 : r->v[i].len), r->v[i].s);
			return ROW_REJECT;
		}
		if (r->v[i].type == V_NULL) {
			char d[160];

			row_describe(r, d, sizeof d);
			snprintf(why, whylen, "%s record without a %s (%s)", t->name, c->header, d);
			return ROW_REJECT;
		}
	}
	if (t->location_key) {
		for (i = 0; i < 4; i++) {
			if (i > 0)
				buf_addc(&r->key, '|');
			key_part(&r->key, &r->v[t->loc_cols[i]], (t->cols[t->loc_cols[i]].flags & C_UPPERKEY) != 0);
		}
	}
	for (i = 0; i < t->ncols; i++)
		if (!(t->cols[i].flags & C_NOHASH))
			hash_val(&h, &r->v[i]);
	snprintf(r->hash, sizeof r->hash, "%016llx", (unsigned long long)h);
	return ROW_OK;
}

/* --- writing ------------------------------------------------------------------------------------------------- */

static void
bind_val(sqlite3_stmt *q, int idx, const struct val *v)
{
	switch (v->type) {
	case V_NULL:
		sqlite3_bind_null(q, idx);
		break;
	case V_TEXT:
		sqlite3_bind_text(q, idx, v->s, (int)v->len, SQLITE_TRANSIENT);
		break;
	case V_INT:
		sqlite3_bind_int64(q, idx, v->i);
		break;
	case V_REAL:
		sqlite3_bind_double(q, idx, v->d);
		break;
	}
}

/* The key seen twice in one edition: an exact duplicate row, or a conflicting one. */
static enum write_result
duplicate_or_conflict(struct db *db, const struct row *r, char **cause)
{
	const struct table_def *t = r->t;
	sqlite3_stmt *q;
	enum write_result res;
	int rc;

	if ((q = db_stmt(db, t->sql_content_of, cause)) == NULL)
		return W_ERROR;
	if (t->location_key && t->code_col != t->loc_cols[0]) {
		bind_val(q, 1, &r->v[t->code_col]);
		sqlite3_bind_text(q, 2, r->key.data, (int)r->key.len, SQLITE_TRANSIENT);
	} else if (t->location_key)
		sqlite3_bind_text(q, 1, r->key.data, (int)r->key.len, SQLITE_TRANSIENT);
	else
		bind_val(q, 1, &r->v[t->code_col]);
	if ((rc = sqlite3_step(q)) != SQLITE_ROW) {
		if (rc == SQLITE_DONE)
			xasprintf(cause, "%s: a row written in this edition is missing", t->sql_table);
		else
			db_error(db, cause, "read a row's content hash");
		sqlite3_reset(q);
		return W_ERROR;
	}
	res = strcmp(db_col_text(q, 0), r->hash) == 0 ? W_DUPLICATE : W_CONFLICT;
	sqlite3_reset(q);
	return res;
}

enum write_result
row_write(struct db *db, const struct row *r, const char *cycle, const char *now, char **cause)
{
	const struct table_def *t = r->t;
	sqlite3_stmt *q;
	int n = (int)t->ncols, rc;
	size_t i;
	enum write_result res;

	if ((q = db_stmt(db, t->sql_upsert, cause)) == NULL)
		return W_ERROR;
	for (i = 0; i < t->ncols; i++)
		bind_val(q, (int)i + 1, &r->v[i]);
	sqlite3_bind_text(q, n + 1, r->hash, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(q, n + 2, cycle, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(q, n + 3, now, -1, SQLITE_TRANSIENT);
	if (t->location_key)
		sqlite3_bind_text(q, n + 4, r->key.data, (int)r->key.len, SQLITE_TRANSIENT);
	rc = sqlite3_step(q);
	if (rc == SQLITE_ROW) {
		const char *added = db_col_text(q, 0), *changed = db_col_text(q, 1);

		if (strcmp(added, cycle) == 0)
			res = W_NEW;
		else if (strcmp(changed, cycle) == 0)
			res = W_CHANGED;
		else
			res = W_SAME;
		/* RETURNING: the change is made by the first step; run the statement to its end. */
		while ((rc = sqlite3_step(q)) == SQLITE_ROW)
			;
		if (rc != SQLITE_DONE) {
			db_error(db, cause, t->sql_table);
			sqlite3_reset(q);
			return W_ERROR;
		}
		sqlite3_reset(q);
		return res;
	}
	if (rc != SQLITE_DONE) {
		db_error(db, cause, t->sql_table);
		sqlite3_reset(q);
		return W_ERROR;
	}
	sqlite3_reset(q);
	return duplicate_or_conflict(db, r, cause);
}
