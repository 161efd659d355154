/*
 * Numbers for people: 1234567 -> "1,234,567".  The completion mail, the publish detail lines and syncctl's
 * tables all print counts this way, so they share one formatter.
 */
#ifndef RTOPACKS_FMT_H
#define RTOPACKS_FMT_H

#include <stddef.h>
#include <stdint.h>

/* v with a comma every three digits (and a leading '-' when negative) into buf; returns buf.  Truncated, never
 * overrun, when len is too small. */
const char *fmt_thousands(int64_t v, char *buf, size_t len);

#endif
