/*
 * Value cleaning for CRICOS cells.  The grammars are strict on purpose: "$1,2x0.00" or "$12,34.00" is not a fee we
 * can know, so it is reported as unparseable instead of being read as 1200 or 1234.
 */
#include <stdlib.h>
#include <string.h>

#include "clean.h"

/* Integers up to 15 digits: money in cents then stays far below INT64_MAX and doubles stay exact. */
#define MAX_INT_DIGITS 15

static bool
is_space_at(const char *s, size_t len, size_t i, size_t *w)
{
	unsigned char c = (unsigned char)s[i];

	if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
		*w = 1;
		return true;
	}
	/* U+00A0 NO-BREAK SPACE, which spreadsheets leave behind. */
	if (c == 0xc2 && i + 1 < len && (unsigned char)s[i + 1] == 0xa0) {
		*w = 2;
		return true;
	}
	return false;
}

size_t
clean_trim(const char *s, size_t len, const char **start)
{
	size_t i = 0, w, end;

	if (len >= 3 && (unsigned char)s[0] == 0xef && (unsigned char)s[1] == 0xbb && (unsigned char)s[2] == 0xbf)
		i = 3;
	while (i < len && is_space_at(s, len, i, &w))
		i += w;
	end = len;
	while (end > i) {
		unsigned char c = (unsigned char)s[end - 1];

		if (c == ' ' || c == '\t' || c == '\r' || c == '\n')
			end--;
		else if (c == 0xa0 && end - 1 > i && (unsigned char)s[end - 2] == 0xc2)
			end -= 2;
		else
			break;
	}
	*start = s + i;
	return end - i;
}

/*
 * Digits with optional exact thousands groups ("2610", "2,610", "12,345,678"), at s[*i...].  Returns false if
 * there are none, the grouping is wrong or there are too many digits.
 */
static bool
grouped_digits(const char *s, size_t len, size_t *i, int64_t *v)
{
	size_t p = *i, first = 0, ndigits = 0;
	int64_t acc = 0;
	bool grouped = false;

	while (p < len && s[p] >= '0' && s[p] <= '9') {
		acc = acc * 10 + (s[p] - '0');
		p++;
		first++;
		if (++ndigits > MAX_INT_DIGITS)
			return false;
	}
	if (first == 0)
		return false;
	while (p < len && s[p] == ',') {
		size_t k;

		if (!grouped && first > 3)
			return false;
		grouped = true;
		/* Exactly three digits after each comma ("2,61" and "1,2x0" are not numbers). */
		for (k = 1; k <= 3; k++) {
			if (p + k >= len || s[p + k] < '0' || s[p + k] > '9')
				return false;
			acc = acc * 10 + (s[p + k] - '0');
			if (++ndigits > MAX_INT_DIGITS)
				return false;
		}
		p += 4;
	}
	/* "2,6100": a group of more than three digits. */
	if (grouped && p < len && s[p] >= '0' && s[p] <= '9')
		return false;
	*i = p;
	*v = acc;
	return true;
}

bool
clean_money_cents(const char *s, size_t len, int64_t *cents)
{
	size_t i = 0;
	int64_t whole, frac = 0;
	bool neg = false;

	if (len > 64)
		return false;
	if (i < len && s[i] == '-') {
		neg = true;
		i++;
	}
	if (i < len && s[i] == '$')
		i++;
	if (!neg && i < len && s[i] == '-') {
		neg = true;
		i++;
	}
	while (i < len && s[i] == ' ')
		i++;
	if (!grouped_digits(s, len, &i, &whole))
		return false;
	if (i < len && s[i] == '.') {
		size_t k = 0;

		i++;
		while (i < len && s[i] >= '0' && s[i] <= '9' && k < 3) {
			frac = frac * 10 + (s[i] - '0');
			i++;
			k++;
		}
		/* One or two decimals are cents; a third would be a fraction of a cent: not a price we can store. */
		if (k == 0 || k > 2)
			return false;
		if (k == 1)
			frac *= 10;
	}
	if (i != len)
		return false;
	*cents = (whole * 100 + frac) * (neg ? -1 : 1);
	return true;
}

bool
clean_integer(const char *s, size_t len, int64_t *v)
{
	size_t i = 0;
	int64_t whole;
	bool neg = false;

	if (len > 64)
		return false;
	if (i < len && (s[i] == '-' || s[i] == '+')) {
		neg = s[i] == '-';
		i++;
	}
	if (!grouped_digits(s, len, &i, &whole))
		return false;
	if (i < len && s[i] == '.') {
		/* "44.00" is 44; "44.5" is not an integer and is not rounded. */
		i++;
		if (i == len)
			return false;
		while (i < len && s[i] == '0')
			i++;
	}
	if (i != len)
		return false;
	*v = neg ? -whole : whole;
	return true;
}

bool
clean_decimal(const char *s, size_t len, double *v)
{
	char num[80];
	size_t i = 0, k, o = 0;
	int64_t whole;

	if (len > 64)
		return false;
	if (i < len && (s[i] == '-' || s[i] == '+'))
		i++;
	if (!grouped_digits(s, len, &i, &whole))
		return false;
	if (i < len && s[i] == '.') {
		i++;
		for (k = 0; i < len && s[i] >= '0' && s[i] <= '9'; k++)
			i++;
		if (k == 0)
			return false;
	}
	if (i != len)
		return false;
	/* The grammar is checked: strtod (C locale) on the text without its commas rounds it correctly once. */
	for (i = 0; i < len; i++)
		if (s[i] != ',')
			num[o++] = s[i];
	num[o] = '\0';
	*v = strtod(num, NULL);
	return true;
}

bool
clean_yesno(const char *s, size_t len, int64_t *v)
{
	if (len == 3 && (s[0] == 'Y' || s[0] == 'y') && (s[1] == 'E' || s[1] == 'e') && (s[2] == 'S' || s[2] == 's')) {
		*v = 1;
		return true;
	}
	if (len == 2 && (s[0] == 'N' || s[0] == 'n') && (s[1] == 'O' || s[1] == 'o')) {
		*v = 0;
		return true;
	}
	return false;
}

bool
clean_provider_code(const char *s, size_t len)
{
	size_t i;

	if (len != 6)
		return false;
	for (i = 0; i < 5; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	return s[5] >= 'A' && s[5] <= 'Z';
}

bool
clean_course_code(const char *s, size_t len)
{
	size_t i;

	if (len != 7)
		return false;
	for (i = 0; i < 6; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	return (s[6] >= '0' && s[6] <= '9') || (s[6] >= 'A' && s[6] <= 'Z');
}

size_t
clean_postcode(const char *s, size_t len, char *out)
{
	size_t i;

	for (i = 0; i < len; i++)
		if (s[i] < '0' || s[i] > '9')
			break;
	if (i == len && len == 3) {
		out[0] = '0';
		memcpy(out + 1, s, 3);
		out[4] = '\0';
		return 4;
	}
	memcpy(out, s, len);
	out[len] = '\0';
	return len;
}

uint64_t
fnv64(uint64_t h, const void *data, size_t len)
{
	const unsigned char *p = data;
	size_t i;

	for (i = 0; i < len; i++) {
		h ^= p[i];
		h *= 0x100000001b3ULL;
	}
	return h;
}
