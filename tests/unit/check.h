/* A minimal assertion kit for the C unit tests (tests/unit/test_*.c and the daemons' self-tests): failures print
 * file:line and the expression, and count. */
#ifndef RTOPACKS_CHECK_H
#define RTOPACKS_CHECK_H

#include <stdio.h>
#include <string.h>

static int check_failures, check_count;

#define CHECK(expr)                                                                                                \
	do {                                                                                                       \
		check_count++;                                                                                     \
		if (!(expr)) {                                                                                     \
			check_failures++;                                                                          \
			fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #expr);                  \
		}                                                                                                  \
	} while (0)

/* CHECK_MSG(expr, fmt, ...): as CHECK, followed by a printf-style note (the case, the value seen), for checks in a
 * loop over cases (the daemons' self-tests use it). */
#define CHECK_MSG(expr, ...)                                                                                       \
	do {                                                                                                       \
		check_count++;                                                                                     \
		if (!(expr)) {                                                                                     \
			check_failures++;                                                                          \
			fprintf(stderr, "%s:%d: CHECK failed: %s: ", __FILE__, __LINE__, #expr);                  \
			fprintf(stderr, __VA_ARGS__);                                                              \
			fputc('\n', stderr);                                                                       \
		}                                                                                                  \
	} while (0)

#define CHECK_STR(a, b)                                                                                            \
	do {                                                                                                       \
		const char *a_ = (a), *b_ = (b);                                                                   \
		check_count++;                                                                                     \
		if (a_ == NULL || b_ == NULL || strcmp(a_, b_) != 0) {                                             \
			check_failures++;                                                                          \
			fprintf(stderr, "%s:%d: CHECK_STR failed: %s == \"%s\", expected \"%s\"\n", __FILE__,     \
			    __LINE__, #a, a_ ? a_ : "(null)", b_ ? b_ : "(null)");                                 \
		}                                                                                                  \
	} while (0)

#define CHECK_DONE()                                                                                               \
	do {                                                                                                       \
		fprintf(stderr, "%d checks, %d failed\n", check_count, check_failures);                           \
		return check_failures == 0 ? 0 : 1;                                                                \
	} while (0)

#endif
