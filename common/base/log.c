#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

static const char *log_name = "rtopacks-sync";
static int log_verbose;
static int log_journal;		/* stderr is journald's stream: <N> prefixes, journald adds the time */

#define SECRETS_MAX 32
static char *secrets[SECRETS_MAX];
static size_t nsecrets;

static const char redacted[] = "[REDACTED]";

static const char *
level_name(enum log_level lvl)
{
	switch (lvl) {
	case LOG_LVL_ERR:
		return "error";
	case LOG_LVL_WARNING:
		return "warning";
	case LOG_LVL_NOTICE:
		return "notice";
	case LOG_LVL_INFO:
		return "info";
	default:
		return "debug";
	}
}

/*
 * systemd sets JOURNAL_STREAM to "<dev>:<ino>" of the stream it connected to stderr.  Only trust it while stderr
 * still is that stream: a process started from a unit inherits the variable but maybe not the stream.
 */
static int
stderr_is_journal(void)
{
	unsigned long long dev, ino;
	const char *js;
	struct stat sb;

	if ((js = getenv("JOURNAL_STREAM")) == NULL || sscanf(js, "%llu:%llu", &dev, &ino) != 2)
		return 0;
	if (fstat(STDERR_FILENO, &sb) == -1)
		return 0;
	return (unsigned long long)sb.st_dev == dev && (unsigned long long)sb.st_ino == ino;
}

void
log_init(const char *progname, int verbose)
{
	log_name = progname;
	log_verbose = verbose;
	log_journal = stderr_is_journal();
}

void
log_setverbose(int verbose)
{
	log_verbose = verbose;
}

int
log_getverbose(void)
{
	return log_verbose;
}

const char *
log_progname(void)
{
	return log_name;
}

void
secret_register(const char *secret)
{
	size_t i;

	/* Very short strings would redact ordinary words; config validation rejects secrets that short anyway. */
	if (secret == NULL || strlen(secret) < 4)
		return;
	for (i = 0; i < nsecrets; i++)
		if (strcmp(secrets[i], secret) == 0)
			return;
	if (nsecrets == SECRETS_MAX) {
		/* Forget the oldest: rotating tokens register a new value every day. */
		explicit_bzero(secrets[0], strlen(secrets[0]));
		free(secrets[0]);
		memmove(secrets, secrets + 1, (SECRETS_MAX - 1) * sizeof *secrets);
		nsecrets--;
	}
	if ((secrets[nsecrets] = strdup(secret)) == NULL)
		return;
	nsecrets++;
}

void
secret_forget_all(void)
{
	size_t i;

	for (i = 0; i < nsecrets; i++) {
		explicit_bzero(secrets[i], strlen(secrets[i]));
		free(secrets[i]);
	}
	nsecrets = 0;
}

char *
redact_dup(const char *s)
{
	size_t i, len, cap, n;
	char *out, *tmp, *p, *hit;
	const char *cur;

	if (s == NULL)
		return NULL;
	len = strlen(s);
	/* Worst case: every registered secret is 4 bytes and each becomes sizeof(redacted) - 1 bytes. */
	cap = len / 4 * (sizeof redacted) + len + 1;
	if ((out = malloc(cap)) == NULL)
		return NULL;
	memcpy(out, s, len + 1);
	for (i = 0; i < nsecrets; i++) {
		size_t slen = strlen(secrets[i]);

		if (strstr(out, secrets[i]) == NULL)
			continue;
		if ((tmp = malloc(cap)) == NULL) {
			free(out);
			return NULL;
		}
		p = tmp;
		cur = out;
		while ((hit = strstr(cur, secrets[i])) != NULL) {
			n = (size_t)(hit - cur);
			memcpy(p, cur, n);
			p += n;
			memcpy(p, redacted, sizeof redacted - 1);
			p += sizeof redacted - 1;
			cur = hit + slen;
		}
		memcpy(p, cur, strlen(cur) + 1);
		free(out);
		out = tmp;
	}
	return out;
}

void
redact(char *buf)
{
	size_t i;
	char *hit;

	/* In place, so never longer: each secret is overwritten by '*' of its own length. */
	for (i = 0; i < nsecrets; i++) {
		size_t slen = strlen(secrets[i]);

		while ((hit = strstr(buf, secrets[i])) != NULL)
			memset(hit, '*', slen);
	}
}

/*
 * The length of a well-formed UTF-8 sequence at s (RFC 3629: no overlong forms, no surrogates, nothing above
 * U+10FFFF) and its code point, or 0 if s does not start one.
 */
size_t
text_utf8_seq(const char *str, size_t len, unsigned *cp)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t n, i;
	unsigned c = s[0], min;

	if (c < 0x80) {
		*cp = c;
		return 1;
	}
	if (c >= 0xc2 && c <= 0xdf)
		n = 2, c &= 0x1f, min = 0x80;
	else if (c >= 0xe0 && c <= 0xef)
		n = 3, c &= 0x0f, min = 0x800;
	else if (c >= 0xf0 && c <= 0xf4)
		n = 4, c &= 0x07, min = 0x10000;
	else
		return 0;
	if (len < n)
		return 0;
	for (i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		c = (c << 6) | (s[i] & 0x3f);
	}
	if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
		return 0;
	*cp = c;
	return n;
}

size_t
text_escape(char *dst, size_t dstlen, const char *src, size_t len, int flags)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *s = (const unsigned char *)src;
	size_t i = 0, o = 0;

	if (dstlen == 0)
		return 0;
	while (i < len) {
		char tmp[8];
		size_t tl, n;
		unsigned cp;

		if ((n = text_utf8_seq(src + i, len - i, &cp)) == 0 && (flags & TEXT_JSON)) {
			n = 1;
			tl = 6;
			memcpy(tmp, "\\ufffd", 6);
		} else if (n == 0) {
			n = 1;
			tl = 4;
			memcpy(tmp, "\\x", 2);
			tmp[2] = hex[s[i] >> 4];
			tmp[3] = hex[s[i] & 15];
		} else if ((flags & TEXT_JSON) && (cp == '\n' || cp == '\t' || cp == '\r')) {
			tl = 1;		/* white space between tokens (cJSON escapes them inside strings) */
			tmp[0] = (char)cp;
		} else if ((flags & TEXT_JSON) && (cp < 0x20 || (cp >= 0x7f && cp <= 0x9f))) {
			tl = 6;
			memcpy(tmp, "\\u00", 4);
			tmp[4] = hex[cp >> 4];
			tmp[5] = hex[cp & 15];
		} else if ((flags & TEXT_KEEP_LINES) && (cp == '\n' || cp == '\t' ||
		    (cp == '\r' && i + 1 < len && s[i + 1] == '\n'))) {
			tl = 1;
			tmp[0] = (char)cp;
		} else if (cp == '\n' || cp == '\r' || cp == '\t') {
			tl = 2;
			tmp[0] = '\\';
			tmp[1] = cp == '\n' ? 'n' : cp == '\r' ? 'r' : 't';
		} else if (cp < 0x20 || cp == 0x7f) {
			tl = 4;
			memcpy(tmp, "\\x", 2);
			tmp[2] = hex[cp >> 4];
			tmp[3] = hex[cp & 15];
		} else if (cp >= 0x80 && cp <= 0x9f) {
			/* C1 controls: U+009B is a CSI to many terminals. */
			tl = 6;
			memcpy(tmp, "\\u00", 4);
			tmp[4] = hex[cp >> 4];
			tmp[5] = hex[cp & 15];
		} else {
			tl = n;
			memcpy(tmp, s + i, n);
		}
		if (o + tl >= dstlen)
			break;
		memcpy(dst + o, tmp, tl);
		o += tl;
		i += n;
	}
	dst[o] = '\0';
	return o;
}

char *
text_escape_dup(const char *s, int flags)
{
	size_t len;
	char *out;

	if (s == NULL)
		return NULL;
	len = strlen(s);
	/* Worst case: every byte becomes \xHH, or \u00HH / \ufffd for JSON (a C1 control is 2 bytes for its 6). */
	if ((out = malloc(len * 6 + 1)) == NULL)
		return NULL;
	text_escape(out, len * 6 + 1, s, len, flags);
	return out;
}

void
text_escape_inplace(char *buf, size_t size, int flags)
{
	char *copy;

	if (size == 0 || (copy = strdup(buf)) == NULL)
		return;
	text_escape(buf, size, copy, strlen(copy), flags);
	free(copy);
}

char *
sanitize_dup(const char *s, int flags)
{
	char *clean, *out;

	if (s == NULL || (clean = redact_dup(s)) == NULL)
		return NULL;
	out = text_escape_dup(clean, flags);
	free(clean);
	return out;
}

void
log_emit(enum log_level lvl, const char *fmt, va_list ap)
{
	char msg[4096], *full = NULL, *clean;
	int saved = errno, n;
	va_list aq;

	if (lvl == LOG_LVL_DEBUG && log_verbose < 1)
		return;
	va_copy(aq, ap);
	n = vsnprintf(msg, sizeof msg, fmt, ap);
	/*
	 * Redact the whole message before cutting it to a line: a secret cut in two at the end of the buffer would
	 * no longer be recognised, and its first half would be logged.
	 */
	if (n >= (int)sizeof msg && (full = malloc((size_t)n + 1)) != NULL)
		vsnprintf(full, (size_t)n + 1, fmt, aq);
	va_end(aq);
	/* One line per message, whatever the text quotes: an upstream's "\n<0>..." must not become a journal line. */
	clean = sanitize_dup(full != NULL ? full : msg, 0);
	free(full);
	if (clean == NULL) {
		redact(msg);
		text_escape_inplace(msg, sizeof msg, 0);
		clean = msg;
	} else if (strlen(clean) >= sizeof msg)
		strcpy(clean + sizeof msg - 5, "...");
	if (log_journal) {
		fprintf(stderr, "<%d>%s\n", (int)lvl, clean);
	} else {
		char ts[32];
		time_t now = time(NULL);
		struct tm tm;

		gmtime_r(&now, &tm);
		strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", &tm);
		fprintf(stderr, "%s %s[%ld]: %s: %s\n", ts, log_name, (long)getpid(), level_name(lvl), clean);
	}
	fflush(stderr);
	if (clean != msg)
		free(clean);
	errno = saved;
}

#define LOG_FN(name, lvl)                                                                                          \
	void name(const char *fmt, ...)                                                                            \
	{                                                                                                          \
		va_list ap;                                                                                        \
		va_start(ap, fmt);                                                                                 \
		log_emit(lvl, fmt, ap);                                                                            \
		va_end(ap);                                                                                        \
	}

LOG_FN(log_warnx, LOG_LVL_WARNING)
LOG_FN(log_notice, LOG_LVL_NOTICE)
LOG_FN(log_info, LOG_LVL_INFO)
LOG_FN(log_debug, LOG_LVL_DEBUG)

static void log_emitf(enum log_level, const char *, ...) __attribute__((format(printf, 2, 3)));
static void emit_errno(enum log_level, const char *, va_list) __attribute__((format(printf, 2, 0)));

static void
log_emitf(enum log_level lvl, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_emit(lvl, fmt, ap);
	va_end(ap);
}

/* Log fmt followed by ": strerror(errno)". */
static void
emit_errno(enum log_level lvl, const char *fmt, va_list ap)
{
	char buf[3072];
	int saved = errno;

	vsnprintf(buf, sizeof buf, fmt, ap);
	log_emitf(lvl, "%s: %s", buf, strerror(saved));
}

void
log_warn(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	emit_errno(LOG_LVL_WARNING, fmt, ap);
	va_end(ap);
}

void
fatal(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	emit_errno(LOG_LVL_ERR, fmt, ap);
	va_end(ap);
	exit(1);
}

void
fatalx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_emit(LOG_LVL_ERR, fmt, ap);
	va_end(ap);
	exit(1);
}
