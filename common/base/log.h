/*
 * Logging in the OpenBSD daemon style: log_warn (with errno), log_warnx, log_info, log_debug, and fatal/fatalx for
 * states the daemon cannot continue from.  Everything goes to stderr: under systemd (JOURNAL_STREAM set) each line
 * carries a <N> syslog priority prefix for journald; on a terminal or in a file it carries an ISO-8601 UTC time.
 * Registered secrets are replaced by "[REDACTED]" in every line, as a last line of defence.
 */
#ifndef RTOPACKS_LOG_H
#define RTOPACKS_LOG_H

#include <stdarg.h>
#include <stddef.h>

enum log_level { LOG_LVL_ERR = 3, LOG_LVL_WARNING = 4, LOG_LVL_NOTICE = 5, LOG_LVL_INFO = 6, LOG_LVL_DEBUG = 7 };

void log_init(const char *progname, int verbose);
void log_setverbose(int verbose);
int log_getverbose(void);
const char *log_progname(void);

void log_warn(const char *, ...) __attribute__((format(printf, 1, 2)));
void log_warnx(const char *, ...) __attribute__((format(printf, 1, 2)));
void log_notice(const char *, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *, ...) __attribute__((format(printf, 1, 2)));
void log_debug(const char *, ...) __attribute__((format(printf, 1, 2)));
void log_emit(enum log_level, const char *, va_list) __attribute__((format(printf, 2, 0)));
_Noreturn void fatal(const char *, ...) __attribute__((format(printf, 1, 2)));
_Noreturn void fatalx(const char *, ...) __attribute__((format(printf, 1, 2)));

/*
 * Secrets: every secret the process loads is registered here, and log lines, run rows, step rows and mails pass
 * through redact() before they leave the process.
 */
void secret_register(const char *secret);
void secret_forget_all(void);
/* Replace registered secrets in buf (NUL-terminated, in place; the result is never longer). */
void redact(char *buf);
/* Return a newly allocated redacted copy of s (NULL stays NULL). */
char *redact_dup(const char *s);

/*
 * Text from an upstream (a SOAP faultstring, a CKAN or QuickBooks error message, a record value) is escaped before
 * it reaches a log line, a run or step row, a mail or a terminal: a newline followed by "<0>" would otherwise be an
 * emergency line in the journal, and an ESC sequence would drive the operator's terminal.  Control characters (C0,
 * DEL and the C1 range U+0080..U+009F) become visible escapes (\n, \r, \t, \x1b, \u009b) and bytes that are not
 * UTF-8 become \xHH; everything else is copied as it is.  With TEXT_KEEP_LINES, line feeds, CR LF pairs and tabs
 * stay (for mail bodies, which are made of lines).
 */
#define TEXT_KEEP_LINES 1
/* For a JSON text (a summary, a step's detail): every escape is one JSON knows (\u007f, \u009b), a byte that is not
 * UTF-8 becomes U+FFFD; cJSON has escaped C0 inside strings already. */
#define TEXT_JSON 2
/* Escape src[0..len) into dst (always NUL-terminated; an escape is never cut in two); returns the length written. */
size_t text_escape(char *dst, size_t dstlen, const char *src, size_t len, int flags);
/* The length of the well-formed UTF-8 sequence (RFC 3629) at s (len > 0), with its code point; 0 if none starts. */
size_t text_utf8_seq(const char *s, size_t len, unsigned *cp);
/* A newly allocated escaped copy of s (NULL stays NULL). */
char *text_escape_dup(const char *s, int flags);
/* In place, for a bounded field: escapes what fits, cutting the rest (buf has room for size bytes). */
void text_escape_inplace(char *buf, size_t size, int flags);
/* Redacted, then escaped: what every sink (log line, row, mail) stores.  NULL stays NULL. */
char *sanitize_dup(const char *s, int flags);

#endif
