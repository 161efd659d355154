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

#endif
