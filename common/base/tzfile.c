/* TZif reader and POSIX TZ rule evaluator: see tzfile.h for why the daemons do not use TZ + tzset(). */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "timeutil.h"
#include "tzfile.h"
#include "xmalloc.h"

/* Bounds on what a zone file may declare: real zones have a few hundred transitions and a dozen types. */
#define TZ_MAX_FILE (256 * 1024)
#define TZ_MAX_TIMES 4096
#define TZ_MAX_TYPES 256
#define TZ_MAX_CHARS 512

struct ttinfo {
	int32_t utoff;
	bool isdst;
	char abbr[16];
};

/* One end of a POSIX rule: Jn, n or Mm.w.d, and the local time of day it happens at. */
struct rule_date {
	char kind;		/* 'J', 'D' (zero-based day of year) or 'M' */
	int n, m, w, d;
	int32_t secs;		/* time of day; may be negative or past 24h (TZif v3) */
};

struct posix_rule {
	bool present;		/* a footer was given */
	struct ttinfo std, dst;
	bool has_dst;
	struct rule_date start, end;
};

struct tz {
	char *name;
	int64_t *times;		/* transition instants, ascending */
	uint8_t *idx;		/* type after each transition */
	size_t ntimes;
	struct ttinfo *types;
	size_t ntypes;
	struct posix_rule rule;
};

bool
tz_name_valid(const char *name)
{
	const char *p;

	if (name == NULL || *name == '\0' || *name == '/' || strlen(name) > 255 || strstr(name, "..") != NULL)
		return false;
	for (p = name; *p != '\0'; p++)
		if (!isalnum((unsigned char)*p) && *p != '_' && *p != '-' && *p != '+' && *p != '/')
			return false;
	return true;
}

/* --- reading the file ---------------------------------------------------------------------------------------- */

static uint32_t
be32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

static int64_t
be64(const unsigned char *p)
{
	return (int64_t)((uint64_t)be32(p) << 32 | be32(p + 4));
}

struct hdr {
	char version;
	uint32_t isutcnt, isstdcnt, leapcnt, timecnt, typecnt, charcnt;
};

static bool
read_header(const unsigned char *p, size_t len, struct hdr *h)
{
	if (len < 44 || memcmp(p, "TZif", 4) != 0)
		return false;
	h->version = (char)p[4];
	h->isutcnt = be32(p + 20);
	h->isstdcnt = be32(p + 24);
	h->leapcnt = be32(p + 28);
	h->timecnt = be32(p + 32);
	h->typecnt = be32(p + 36);
	h->charcnt = be32(p + 40);
	return h->timecnt <= TZ_MAX_TIMES && h->typecnt >= 1 && h->typecnt <= TZ_MAX_TYPES &&
	    h->charcnt <= TZ_MAX_CHARS && h->leapcnt <= 1000 && (h->isutcnt == 0 || h->isutcnt == h->typecnt) &&
	    (h->isstdcnt == 0 || h->isstdcnt == h->typecnt);
}

static size_t
block_len(const struct hdr *h, int tsize)
{
	return (size_t)h->timecnt * (size_t)tsize + h->timecnt + (size_t)h->typecnt * 6 + h->charcnt +
	    (size_t)h->leapcnt * (size_t)(tsize + 4) + h->isstdcnt + h->isutcnt;
}

/* Fill the zone from one data block (4- or 8-byte times). */
static bool
read_block(struct tz *z, const struct hdr *h, const unsigned char *p, int tsize)
{
	const unsigned char *tt, *ix, *ti, *chars;
	size_t i;

	tt = p;
	ix = tt + (size_t)h->timecnt * (size_t)tsize;
	ti = ix + h->timecnt;
	chars = ti + (size_t)h->typecnt * 6;
	z->ntimes = h->timecnt;
	z->ntypes = h->typecnt;
	z->times = xcalloc(z->ntimes + 1, sizeof *z->times);
	z->idx = xcalloc(z->ntimes + 1, 1);
	z->types = xcalloc(z->ntypes, sizeof *z->types);
	for (i = 0; i < z->ntimes; i++) {
		z->times[i] = tsize == 8 ? be64(tt + i * 8) : (int64_t)(int32_t)be32(tt + i * 4);
		z->idx[i] = ix[i];
		if (z->idx[i] >= z->ntypes || (i > 0 && z->times[i] <= z->times[i - 1]))
			return false;
	}
	for (i = 0; i < z->ntypes; i++) {
		const unsigned char *e = ti + i * 6;
		size_t a = e[5], n;

		z->types[i].utoff = (int32_t)be32(e);
		z->types[i].isdst = e[4] != 0;
		if (a >= h->charcnt || z->types[i].utoff < -25 * 3600 || z->types[i].utoff > 26 * 3600)
			return false;
		n = strnlen((const char *)chars + a, h->charcnt - a);
		if (n >= sizeof z->types[i].abbr)
			n = sizeof z->types[i].abbr - 1;
		memcpy(z->types[i].abbr, chars + a, n);
		z->types[i].abbr[n] = '\0';
	}
	return true;
}

/* --- POSIX TZ strings (the TZif footer) ---------------------------------------------------------------------- */

static bool
parse_name(const char **pp, char *out, size_t len)
{
	const char *p = *pp, *start;
	size_t n;

	if (*p == '<') {
		start = ++p;
		while (*p != '\0' && *p != '>')
			p++;
		if (*p != '>')
			return false;
		n = (size_t)(p - start);
		p++;
	} else {
		start = p;
		while (isalpha((unsigned char)*p))
			p++;
		n = (size_t)(p - start);
	}
	if (n < 3 || n >= len)
		return false;
	memcpy(out, start, n);
	out[n] = '\0';
	*pp = p;
	return true;
}

/* [+-]hh[:mm[:ss]], hours up to 167 (TZif v3 times of day). */
static bool
parse_hms(const char **pp, int32_t *out)
{
	const char *p = *pp;
	int sign = 1, part = 0;
	long v[3] = { 0, 0, 0 };

	if (*p == '+' || *p == '-')
		sign = *p++ == '-' ? -1 : 1;
	for (;;) {
		char *end;

		if (!isdigit((unsigned char)*p))
			return false;
		v[part] = strtol(p, &end, 10);
		if (end - p > 3)
			return false;
		p = end;
		if (*p != ':' || part == 2)
			break;
		p++;
		part++;
	}
	if (v[0] > 167 || v[1] > 59 || v[2] > 59)
		return false;
	*out = sign * (int32_t)(v[0] * 3600 + v[1] * 60 + v[2]);
	*pp = p;
	return true;
}

static bool
parse_rule_date(const char **pp, struct rule_date *r)
{
	const char *p = *pp;
	char *end;

	memset(r, 0, sizeof *r);
	if (*p == 'M') {
		r->kind = 'M';
		r->m = (int)strtol(p + 1, &end, 10);
		if (end == p + 1 || *end != '.')
			return false;
		p = end + 1;
		r->w = (int)strtol(p, &end, 10);
		if (end == p || *end != '.')
			return false;
		p = end + 1;
		r->d = (int)strtol(p, &end, 10);
		if (end == p)
			return false;
		p = end;
		if (r->m < 1 || r->m > 12 || r->w < 1 || r->w > 5 || r->d < 0 || r->d > 6)
			return false;
	} else if (*p == 'J') {
		r->kind = 'J';
		r->n = (int)strtol(p + 1, &end, 10);
		if (end == p + 1 || r->n < 1 || r->n > 365)
			return false;
		p = end;
	} else if (isdigit((unsigned char)*p)) {
		r->kind = 'D';
		r->n = (int)strtol(p, &end, 10);
		if (r->n < 0 || r->n > 365)
			return false;
		p = end;
	} else
		return false;
	r->secs = 2 * 3600;
	if (*p == '/') {
		p++;
		if (!parse_hms(&p, &r->secs))
			return false;
	}
	*pp = p;
	return true;
}

static bool
parse_posix(const char *s, struct posix_rule *r)
{
	const char *p = s;
	int32_t off;

	memset(r, 0, sizeof *r);
	if (*p == '\0')
		return true;	/* an empty footer: no rule */
	if (!parse_name(&p, r->std.abbr, sizeof r->std.abbr) || !parse_hms(&p, &off))
		return false;
	/* POSIX offsets count west of Greenwich: "AEST-10" is UTC+10. */
	r->std.utoff = -off;
	r->present = true;
	if (*p == '\0')
		return true;
	if (!parse_name(&p, r->dst.abbr, sizeof r->dst.abbr))
		return false;
	r->has_dst = true;
	r->dst.isdst = true;
	r->dst.utoff = r->std.utoff + 3600;
	if (*p != ',' && *p != '\0') {
		if (!parse_hms(&p, &off))
			return false;
		r->dst.utoff = -off;
	}
	/* A zone file's footer always spells out its rule: a bare "EST5EDT" would mean an implementation default. */
	if (*p++ != ',' || !parse_rule_date(&p, &r->start) || *p++ != ',' || !parse_rule_date(&p, &r->end))
		return false;
	return *p == '\0';
}

/* Local seconds (since the epoch, as if UTC) at which a rule date happens in year y. */
static int64_t
rule_local(const struct rule_date *r, int64_t y)
{
	int64_t day;

	switch (r->kind) {
	case 'J':
		/* 1..365, February 29 never counted. */
		day = days_from_civil(y, 1, 1) + r->n - 1 + (is_leap_year(y) && r->n >= 60 ? 1 : 0);
		break;
	case 'D':
		day = days_from_civil(y, 1, 1) + r->n;
		break;
	default: {
		int64_t first = days_from_civil(y, r->m, 1);
		int wd1 = (int)(((first % 7) + 7 + 4) % 7);	/* 1970-01-01 was a Thursday */
		int md = 1 + (r->d - wd1 + 7) % 7 + 7 * (r->w - 1);

		while (md > days_in_month(y, r->m))
			md -= 7;
		day = first + md - 1;
		break;
	}
	}
	return day * 86400 + r->secs;
}

static int64_t
year_of(int64_t secs)
{
	time_t t = (time_t)secs;
	struct tm tm;

	if (gmtime_r(&t, &tm) == NULL)
		return 1970;
	return (int64_t)tm.tm_year + 1900;
}

static const struct ttinfo *
rule_type(const struct posix_rule *r, int64_t t)
{
	int64_t y, start, end;

	if (!r->has_dst)
		return &r->std;
	y = year_of(t + r->std.utoff);
	/* DST starts at a local standard time and ends at a local daylight time. */
	start = rule_local(&r->start, y) - r->std.utoff;
	end = rule_local(&r->end, y) - r->dst.utoff;
	if (start < end)
		return t >= start && t < end ? &r->dst : &r->std;
	/* Southern hemisphere: DST spans the new year. */
	return t >= end && t < start ? &r->std : &r->dst;
}

/* --- loading and converting ---------------------------------------------------------------------------------- */

static unsigned char *
slurp(const char *path, size_t *len, char **cause)
{
	unsigned char *data;
	struct stat sb;
	size_t got = 0;
	ssize_t n;
	int fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1) {
		xasprintf(cause, "cannot open %s: %s", path, strerror(errno));
		return NULL;
	}
	if (fstat(fd, &sb) == -1 || !S_ISREG(sb.st_mode) || sb.st_size <= 0 || sb.st_size > TZ_MAX_FILE) {
		xasprintf(cause, "%s is not a time zone file", path);
		close(fd);
		return NULL;
	}
	data = xmalloc((size_t)sb.st_size + 1);
	while (got < (size_t)sb.st_size && (n = read(fd, data + got, (size_t)sb.st_size - got)) > 0)
		got += (size_t)n;
	close(fd);
	data[got] = '\0';
	*len = got;
	return data;
}

struct tz *
tz_load(const char *name, char **cause)
{
	const char *dir = getenv("TZDIR");
	unsigned char *data, *p;
	struct hdr h, h2;
	struct tz *z;
	size_t len, b1;
	char *path, *footer, *nl;

	if (name != NULL && *name != '\0') {
		if (!tz_name_valid(name)) {
			xasprintf(cause, "'%s' is not a time zone name (expected e.g. Australia/Brisbane)", name);
			return NULL;
		}
		xasprintf(&path, "%s/%s", dir != NULL && *dir == '/' ? dir : "/usr/share/zoneinfo", name);
	} else
		path = xstrdup("/etc/localtime");
	if ((data = slurp(path, &len, cause)) == NULL) {
		free(path);
		return NULL;
	}
	z = xcalloc(1, sizeof *z);
	z->name = xstrdup(name != NULL && *name != '\0' ? name : "localtime");
	if (!read_header(data, len, &h) || len - 44 < block_len(&h, 4))
		goto bad;
	b1 = 44 + block_len(&h, 4);
	if (h.version == '\0') {
		if (!read_block(z, &h, data + 44, 4))
			goto bad;
	} else {
		/* Version 2+: a second header and block with 64-bit times, then the footer. */
		p = data + b1;
		if (!read_header(p, len - b1, &h2) || len - b1 - 44 < block_len(&h2, 8) ||
		    !read_block(z, &h2, p + 44, 8))
			goto bad;
		p += 44 + block_len(&h2, 8);
		if ((size_t)(p - data) < len) {
			if (*p != '\n' || (nl = memchr(p + 1, '\n', len - (size_t)(p - data) - 1)) == NULL)
				goto bad;
			footer = xstrndup((const char *)p + 1, (size_t)(nl - (char *)p - 1));
			if (!parse_posix(footer, &z->rule)) {
				free(footer);
				goto bad;
			}
			free(footer);
		}
	}
	free(data);
	free(path);
	return z;
bad:
	xasprintf(cause, "%s is not a valid TZif time zone file", path);
	free(data);
	free(path);
	tz_free(z);
	return NULL;
}

void
tz_free(struct tz *z)
{
	if (z == NULL)
		return;
	free(z->name);
	free(z->times);
	free(z->idx);
	free(z->types);
	free(z);
}

const char *
tz_name(const struct tz *z)
{
	return z->name;
}

static const struct ttinfo *
type_at(const struct tz *z, int64_t t)
{
	size_t lo = 0, hi = z->ntimes;

	if (z->ntimes == 0 || t < z->times[0]) {
		if (z->ntimes == 0 && z->rule.present)
			return rule_type(&z->rule, t);
		return &z->types[0];
	}
	if (t >= z->times[z->ntimes - 1] && z->rule.present)
		return rule_type(&z->rule, t);
	/* The last transition at or before t. */
	while (hi - lo > 1) {
		size_t mid = lo + (hi - lo) / 2;

		if (z->times[mid] <= t)
			lo = mid;
		else
			hi = mid;
	}
	return &z->types[z->idx[lo]];
}

int32_t
tz_utoff(const struct tz *z, time_t t)
{
	return type_at(z, (int64_t)t)->utoff;
}

void
tz_to_local(const struct tz *z, time_t t, struct tz_local *out)
{
	const struct ttinfo *ti = type_at(z, (int64_t)t);
	time_t lt = t + ti->utoff;

	memset(out, 0, sizeof *out);
	gmtime_r(&lt, &out->tm);
	out->tm.tm_isdst = ti->isdst;
	out->tm.tm_gmtoff = ti->utoff;
	out->utoff = ti->utoff;
	out->isdst = ti->isdst;
	snprintf(out->abbr, sizeof out->abbr, "%s", ti->abbr);
}

int
tz_from_local(const struct tz *z, int64_t local, time_t out[2])
{
	int32_t offs[TZ_MAX_TYPES + 2];
	size_t noffs = 0, i, j;
	int n = 0;

	/* Every offset the zone ever uses is a candidate; an instant is valid if the zone has that offset then. */
	for (i = 0; i < z->ntypes + 2; i++) {
		int32_t o;

		if (i < z->ntypes)
			o = z->types[i].utoff;
		else if (i == z->ntypes && z->rule.present)
			o = z->rule.std.utoff;
		else if (i == z->ntypes + 1 && z->rule.has_dst)
			o = z->rule.dst.utoff;
		else
			continue;
		for (j = 0; j < noffs; j++)
			if (offs[j] == o)
				break;
		if (j == noffs)
			offs[noffs++] = o;
	}
	for (i = 0; i < noffs; i++) {
		int64_t t = local - offs[i];

		if (type_at(z, t)->utoff != offs[i])
			continue;
		if (n == 1 && out[0] == (time_t)t)
			continue;
		if (n < 2)
			out[n++] = (time_t)t;
	}
	if (n == 2 && out[1] < out[0]) {
		time_t x = out[0];

		out[0] = out[1];
		out[1] = x;
	}
	return n;
}
