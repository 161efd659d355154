/*
 * The phase cursor as key=value text: one codec for every phase instead of a printf format and an sscanf each.
 *
 * A cursor is fields separated by one space.  A field is one of
 *
 *   key=value    the usual form ("offset=100", "t=Unit a=BSB o=0 s=500 g=0 l=BSBWHS"),
 *   key:value    the tag form that some cursors have always been written in ("queued:17", "cdc:2024-..."): kept so
 *                that what a release before this codec stored reads the same, and written the same,
 *   word         a bare word ("done", "refetch", "training" in "training p=2").
 *
 * Keys and words are [A-Za-z0-9_]+, at most CKV_KEY_MAX - 1 characters: a field's form is told by the first
 * character after its key ('=', ':', or the end), so a value may hold '=' and ':' as they are.  Values are
 * escaped: '%', space and control bytes become %XX; any other byte stays, so the values the daemons have written
 * so far (codes, timestamps, numbers) come out exactly as before and old cursors parse unchanged.
 *
 * Bounded: at most CKV_MAX_FIELDS fields, CKV_VAL_MAX - 1 bytes a value (unescaped), CKV_LEN - 1 bytes in all.
 * Building past a bound is a programming error (fatalx); parsing a cursor past one fails.
 */
#ifndef RTOPACKS_CURSORKV_H
#define RTOPACKS_CURSORKV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CKV_LEN 1024
#define CKV_MAX_FIELDS 16
#define CKV_KEY_MAX 32
#define CKV_VAL_MAX 256

/* Building: ckv_init, then fields in order, then ckv_str (what step_set_cursor(st, "%s", ...) stores). */
struct ckv_builder {
	char s[CKV_LEN];
	size_t len;
	int n;
};
void ckv_init(struct ckv_builder *);
void ckv_word(struct ckv_builder *, const char *word);
void ckv_put(struct ckv_builder *, const char *key, const char *val);		/* key=val */
void ckv_put_i64(struct ckv_builder *, const char *key, int64_t val);
void ckv_tag(struct ckv_builder *, const char *key, const char *val);		/* key:val */
void ckv_tag_i64(struct ckv_builder *, const char *key, int64_t val);
const char *ckv_str(const struct ckv_builder *);

/* Parsing: ckv_parse, then the getters (which find a field by key or word, the first if repeated). */
enum ckv_form { CKV_WORD, CKV_EQ, CKV_TAG };
struct ckv_field {
	enum ckv_form form;
	char key[CKV_KEY_MAX];
	char val[CKV_VAL_MAX];		/* unescaped; "" for a word */
};
struct ckv {
	int n;
	struct ckv_field f[CKV_MAX_FIELDS];
};
/* 0, or -1 when the text is not a cursor of this form (a bad key, an empty field, a bad escape, too long). */
int ckv_parse(struct ckv *, const char *text);
/* The field, in any form, or NULL. */
const struct ckv_field *ckv_field(const struct ckv *, const char *key);
/* A bare word is there. */
bool ckv_has_word(const struct ckv *, const char *word);
/* The value of key=value (or key:value) or NULL if absent or a bare word. */
const char *ckv_get(const struct ckv *, const char *key);
/* The value as a whole decimal number in [min, max]; false (and *out untouched) if absent, malformed or out of
 * range. */
bool ckv_get_i64(const struct ckv *, const char *key, int64_t min, int64_t max, int64_t *out);
bool ckv_get_int(const struct ckv *, const char *key, int min, int max, int *out);
/* How many fields the cursor has (to refuse one with fields nobody asked for). */
int ckv_count(const struct ckv *);

#endif
