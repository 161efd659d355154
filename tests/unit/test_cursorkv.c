/*
 * The key=value cursor codec (common/engine/cursorkv.c): the strings the daemons build are the ones the releases
 * before the codec stored, byte for byte, and those stored strings still parse (an upgrade resumes the cycle).
 */
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "cursorkv.h"
#include "log.h"

/* The cursors of the release before the codec, one of each format, as they sit in sync_cursor.phase_cursor. */
static const char *const old_cursors[] = {
	"offset=0",						/* cricos-sync sync_* */
	"offset=100",
	"w=2019-03-04T05:06:07.1234567Z+86400 p=2 n=1234",	/* tga-sync sync_training / sync_orgs */
	"w=2019-03-04T05:06:07.1234567Z+3600 p=1 n=-1",
	"refetch",
	"training p=3",						/* tga-sync sweep_deletions */
	"organisation p=1",
	"t=Qualification a= o=0 s=500 g=0 l=",			/* tga-sync REST crawl */
	"t=Unit a=BSBWHS521 o=1500 s=125 g=3 l=BSBWHS599",
	"done",
	"queued:42",						/* notify, qb-reconcile summary */
	"after=9876543210",					/* qb-reconcile push */
	"paged:0",						/* qb-reconcile reconcile */
	"cdc:2024-05-06T07:08:09Z",
	"cdc:2024-05-06T07:08:09-07:00",
};

static void
old_formats(void)
{
	struct ckv c;
	int64_t v;
	int i;
	size_t k;

	/* Every stored form parses. */
	for (k = 0; k < sizeof old_cursors / sizeof old_cursors[0]; k++) {
		CHECK(ckv_parse(&c, old_cursors[k]) == 0);
		if (ckv_parse(&c, old_cursors[k]) != 0)
			fprintf(stderr, "  not parsed: \"%s\"\n", old_cursors[k]);
	}

	CHECK(ckv_parse(&c, "offset=100") == 0);
	CHECK(ckv_get_i64(&c, "offset", 0, INT64_MAX, &v) && v == 100);

	CHECK(ckv_parse(&c, "w=2019-03-04T05:06:07.1234567Z+86400 p=2 n=1234") == 0);
	CHECK(ckv_count(&c) == 3);
	CHECK_STR(ckv_get(&c, "w"), "2019-03-04T05:06:07.1234567Z+86400");
	CHECK(ckv_get_int(&c, "p", 1, 1 << 30, &i) && i == 2);
	CHECK(ckv_get_i64(&c, "n", -1, INT64_MAX, &v) && v == 1234);
	CHECK(ckv_parse(&c, "w=2019-03-04T05:06:07.1234567Z+3600 p=1 n=-1") == 0);
	CHECK(ckv_get_i64(&c, "n", -1, INT64_MAX, &v) && v == -1);

	CHECK(ckv_parse(&c, "refetch") == 0);
	CHECK(ckv_has_word(&c, "refetch"));
	CHECK(ckv_get(&c, "refetch") == NULL);

	CHECK(ckv_parse(&c, "organisation p=1") == 0);
	CHECK(ckv_has_word(&c, "organisation") && !ckv_has_word(&c, "training"));
	CHECK(ckv_get_int(&c, "p", 1, 1 << 30, &i) && i == 1);

	CHECK(ckv_parse(&c, "t=Qualification a= o=0 s=500 g=0 l=") == 0);
	CHECK(ckv_count(&c) == 6);
	CHECK_STR(ckv_get(&c, "t"), "Qualification");
	CHECK_STR(ckv_get(&c, "a"), "");
	CHECK_STR(ckv_get(&c, "l"), "");
	CHECK(ckv_get_i64(&c, "o", 0, INT64_MAX, &v) && v == 0);
	CHECK(ckv_parse(&c, "t=Unit a=BSBWHS521 o=1500 s=125 g=3 l=BSBWHS599") == 0);
	CHECK_STR(ckv_get(&c, "a"), "BSBWHS521");
	CHECK(ckv_get_int(&c, "s", 1, 1 << 30, &i) && i == 125);

	CHECK(ckv_parse(&c, "queued:42") == 0);
	CHECK(ckv_field(&c, "queued") != NULL && ckv_field(&c, "queued")->form == CKV_TAG);
	CHECK(ckv_get_i64(&c, "queued", 1, INT64_MAX, &v) && v == 42);

	CHECK(ckv_parse(&c, "after=9876543210") == 0);
	CHECK(ckv_get_i64(&c, "after", 0, INT64_MAX, &v) && v == 9876543210LL);

	CHECK(ckv_parse(&c, "paged:0") == 0);
	CHECK(ckv_get_i64(&c, "paged", 0, INT64_MAX, &v) && v == 0);
	/* The tag's value keeps its own colons: the form is told by the first byte after the key. */
	CHECK(ckv_parse(&c, "cdc:2024-05-06T07:08:09-07:00") == 0);
	CHECK_STR(ckv_get(&c, "cdc"), "2024-05-06T07:08:09-07:00");
	CHECK(ckv_field(&c, "cdc")->form == CKV_TAG);

	/* The first cycle's empty cursor is no fields. */
	CHECK(ckv_parse(&c, "") == 0 && ckv_count(&c) == 0);
}

/* The builder writes what the old printf formats wrote. */
static void
same_strings(void)
{
	struct ckv_builder b;

	ckv_init(&b);
	ckv_put_i64(&b, "offset", 100);
	CHECK_STR(ckv_str(&b), "offset=100");

	ckv_init(&b);
	ckv_put(&b, "w", "2019-03-04T05:06:07.1234567Z+86400");
	ckv_put_i64(&b, "p", 2);
	ckv_put_i64(&b, "n", -1);
	CHECK_STR(ckv_str(&b), "w=2019-03-04T05:06:07.1234567Z+86400 p=2 n=-1");

	ckv_init(&b);
	ckv_word(&b, "training");
	ckv_put_i64(&b, "p", 3);
	CHECK_STR(ckv_str(&b), "training p=3");

	ckv_init(&b);
	ckv_put(&b, "t", "Qualification");
	ckv_put(&b, "a", "");
	ckv_put_i64(&b, "o", 0);
	ckv_put_i64(&b, "s", 500);
	ckv_put_i64(&b, "g", 0);
	ckv_put(&b, "l", "");
	CHECK_STR(ckv_str(&b), "t=Qualification a= o=0 s=500 g=0 l=");

	ckv_init(&b);
	ckv_word(&b, "done");
	CHECK_STR(ckv_str(&b), "done");

	ckv_init(&b);
	ckv_tag_i64(&b, "queued", 42);
	CHECK_STR(ckv_str(&b), "queued:42");

	ckv_init(&b);
	ckv_tag(&b, "cdc", "2024-05-06T07:08:09-07:00");
	CHECK_STR(ckv_str(&b), "cdc:2024-05-06T07:08:09-07:00");

	ckv_init(&b);
	CHECK_STR(ckv_str(&b), "");
}

/* Values with the separator, the escape and control bytes go through escaped and come back whole. */
static void
escapes(void)
{
	struct ckv_builder b;
	struct ckv c;

	ckv_init(&b);
	ckv_put(&b, "name", "a b%c\n=d:e");
	ckv_tag(&b, "t", " ");
	CHECK_STR(ckv_str(&b), "name=a%20b%25c%0A=d:e t:%20");
	CHECK(ckv_parse(&c, ckv_str(&b)) == 0);
	CHECK(ckv_count(&c) == 2);
	CHECK_STR(ckv_get(&c, "name"), "a b%c\n=d:e");
	CHECK_STR(ckv_get(&c, "t"), " ");
	CHECK(ckv_parse(&c, "x=%41%6a") == 0);
	CHECK_STR(ckv_get(&c, "x"), "Aj");
}

/* What is not a cursor, and what a getter refuses. */
static void
refusals(void)
{
	static const char *const bad[] = {
		" offset=1", "offset=1 ", "a=1  b=2", "=1", ":1", "of-set=1", "x=%4", "x=%zz", "x=1%", "x=a\tb",
		"k0123456789012345678901234567890123=1",
	};
	struct ckv c;
	char big[CKV_LEN + 8], val[CKV_VAL_MAX + 8];
	int64_t v = 7;
	int i;
	size_t k;

	for (k = 0; k < sizeof bad / sizeof bad[0]; k++) {
		CHECK(ckv_parse(&c, bad[k]) == -1);
		CHECK(ckv_count(&c) == 0);
	}
	/* Too many fields, a value too long, a cursor too long. */
	strcpy(big, "a");
	for (i = 0; i < CKV_MAX_FIELDS; i++)
		strcat(big, " a");
	CHECK(ckv_parse(&c, big) == -1);
	memset(val, 'v', sizeof val);
	memcpy(val, "x=", 2);
	val[CKV_VAL_MAX + 2] = '\0';
	CHECK(ckv_parse(&c, val) == -1);
	val[CKV_VAL_MAX + 1] = '\0';	/* exactly CKV_VAL_MAX - 1 bytes of value */
	CHECK(ckv_parse(&c, val) == 0);
	memset(big, 'x', sizeof big);
	big[CKV_LEN] = '\0';
	CHECK(ckv_parse(&c, big) == -1);

	/* Getters: absent, a word, not a number, out of range, trailing bytes: false, *out untouched. */
	CHECK(ckv_parse(&c, "done n=12x m=-5 big=99999999999999999999 e=") == 0);
	CHECK(!ckv_get_i64(&c, "missing", 0, 10, &v) && v == 7);
	CHECK(!ckv_get_i64(&c, "done", 0, 10, &v) && v == 7);
	CHECK(!ckv_get_i64(&c, "n", 0, 100, &v) && v == 7);
	CHECK(!ckv_get_i64(&c, "m", 0, 100, &v) && v == 7);
	CHECK(ckv_get_i64(&c, "m", -10, 100, &v) && v == -5);
	CHECK(!ckv_get_i64(&c, "big", 0, INT64_MAX, &v));
	CHECK(!ckv_get_i64(&c, "e", 0, 10, &v));
	CHECK(!ckv_get_int(&c, "m", 0, 10, &i));
	CHECK(ckv_get_int(&c, "m", -5, -5, &i) && i == -5);
	CHECK(!ckv_has_word(&c, "n"));
}

int
main(void)
{
	log_init("test_cursorkv", 0);
	old_formats();
	same_strings();
	escapes();
	refusals();
	CHECK_DONE();
}
