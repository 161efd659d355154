/*
 * cJSON for answers from upstreams, bounded: a cheap pass over the text checks it before cJSON builds a tree (a
 * 32 MB body of "0," items is 16 million nodes, over 1 GB of tree).  The pass refuses, with a reason:
 *   - more than max_nodes values (objects, arrays, strings, numbers, literals; member names count too);
 *   - nesting deeper than JSON_MAX_DEPTH (cJSON recurses per level);
 *   - a number longer than JSON_MAX_NUMBER characters (nothing an upstream sends is; cJSON would make it inf);
 *   - a \u0000 escape (cJSON would cut the string there, silently) and a string that is not UTF-8.
 * Anything else (syntax) is left to cJSON.
 */
#ifndef RTOPACKS_JSONLIMIT_H
#define RTOPACKS_JSONLIMIT_H

#include <stddef.h>

#include <cJSON.h>

#define JSON_MAX_DEPTH 32
#define JSON_MAX_NUMBER 40

/* 0 if text may be parsed; -1 with why (a NUL-terminated reason naming the byte offset) otherwise. */
int json_precheck(const char *text, size_t len, size_t max_nodes, char *why, size_t whylen);
/* json_precheck, then cJSON_ParseWithLength; NULL with why set ("not valid JSON at byte N" for a syntax error). */
cJSON *json_parse_bounded(const char *text, size_t len, size_t max_nodes, char *why, size_t whylen);

#endif
