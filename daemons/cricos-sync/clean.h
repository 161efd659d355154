/*
 * Cleaning CRICOS values (../shared/reference/cricos-data.md §4).  Pure functions, no I/O: every input is a
 * bounded byte string from one DataStore record, every result is either a clean value or "cannot parse", never a
 * guess.  The caller stores "cannot parse" as NULL and counts it per column.
 */
#ifndef CRICOS_CLEAN_H
#define CRICOS_CLEAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Longest value we accept in one cell.  The longest real cells are 255-character trading names. */
#define CLEAN_MAX_VALUE 4096

/*
 * Trim a cell: a leading UTF-8 BOM, then leading and trailing white space (ASCII space, tab, CR, LF and the
 * UTF-8 no-break space).  Returns the length of the trimmed text, which starts at *start.  0 means blank (NULL).
 */
size_t clean_trim(const char *s, size_t len, const char **start);

/* "$13,300.00", "$150.00", "-$5.00", "13300", "13,300.5" -> cents.  Thousands groups must be exact. */
bool clean_money_cents(const char *s, size_t len, int64_t *cents);
/* "2,610", "-1", "44", "44.00" -> integer (a fraction must be all zeros: nothing is rounded). */
bool clean_integer(const char *s, size_t len, int64_t *v);
/* "4.00", "10.30", "1,050.5" -> a decimal number. */
bool clean_decimal(const char *s, size_t len, double *v);
/* "Yes" / "No" (any case) -> 1 / 0. */
bool clean_yesno(const char *s, size_t len, int64_t *v);
/* CRICOS provider code: five digits and a capital letter (00001K). */
bool clean_provider_code(const char *s, size_t len);
/* CRICOS course code: seven characters, six digits and a check letter or digit (001623A, 0100000). */
bool clean_course_code(const char *s, size_t len);
/*
 * Australian postcode: four digits kept; three digits are a postcode whose leading zero was lost (NT, "800") and
 * get it back.  Anything else is kept as text.  out: at least len + 2 bytes.  Returns the length written.
 */
size_t clean_postcode(const char *s, size_t len, char *out);

/* 64-bit FNV-1a, for content hashes of cleaned rows. */
#define FNV64_INIT 0xcbf29ce484222325ULL
uint64_t fnv64(uint64_t h, const void *data, size_t len);

#endif
