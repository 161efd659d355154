/*
 * Reading a CKAN datastore_search answer without holding it in memory.
 *
 * A page of 32,000 course records is about 29 MB of JSON; as a cJSON tree it would be several times that, far over
 * the daemon's 32 MB budget.  So the answer is spooled to an unlinked file by the HTTP layer and read here as a
 * stream: one pass checks that it is a single well-formed JSON object and splits it into
 *
 *   - the envelope: everything except the elements of result.records (help, success, error, result.limit,
 *     offset, total, fields, _links, ...), a few kilobytes, parsed with cJSON; and
 *   - the records: each element of result.records as its own small JSON text, handed to a callback (which parses
 *     it with cJSON and writes it), one at a time.
 *
 * Memory is bounded by the largest single record and the envelope (each capped), not by the page.
 */
#ifndef CRICOS_CKAN_PAGE_H
#define CRICOS_CKAN_PAGE_H

#include <cJSON.h>
#include <stddef.h>

#define PAGE_MAX_RECORD (1024 * 1024)	/* one record; real ones are about 1 KB */
#define PAGE_MAX_ENVELOPE (1024 * 1024)	/* fields and links of 25 columns are about 3 KB */
#define PAGE_MAX_DEPTH 64
/* cJSON trees: a record has a value per column (25-40), the envelope fields and links (a few hundred). */
#define PAGE_MAX_RECORD_NODES 4096
#define PAGE_MAX_ENVELOPE_NODES 50000

/* Where the answer is: a spooled file (read with pread, from offset 0) or memory. */
struct page_src {
	int fd;			/* -1: use mem */
	const char *mem;
	size_t memlen;
};

/* A record: its JSON text (not NUL-terminated), its index in the page.  Return 0 to go on, -1 to stop. */
typedef int (*page_record_fn)(const char *json, size_t len, size_t index, void *arg);

/*
 * Scan the answer.  fn may be NULL (a checking pass that only counts the records).  On success returns 0 with
 * *envelope (owned by the caller) and *nrecords; -1 with *cause ("malformed JSON at byte N: ...", or the
 * callback's stop) on failure, nothing allocated.
 */
int ckan_page_scan(const struct page_src *, page_record_fn fn, void *arg, cJSON **envelope, size_t *nrecords,
    char **cause);

#endif
