/*
 * The `publish` phase (docs/d1-design.md, "The publish phase and its change-set cursor"): a daemon's corpus tables
 * copied into the corpus database of Cloudflare D1 (net/d1.c), so that after the phase every published table in D1
 * equals the local one.  Generic: a daemon lists its tables (struct pub_table) and calls publish_step() from its
 * phase; the columns, the primary key and D1's DDL are read from the local table (PRAGMA table_info), so a column
 * added by a corpus migration is published without an edit here.
 *
 * The phase is a sequence of steps, one D1 request each (one D1 transaction), the position committed locally with
 * the step (cursor "s=<stage> m=<full|delta> t=<table> n=<rows> k=<last key>", the key also in the cycle state,
 * "publish", which is what a resumed step reads: a key of any length and type):
 *
 *   prep     CREATE TABLE IF NOT EXISTS for the bookkeeping tables (d1_schema_migrations, d1_publish_state) and
 *            every published table, then read D1's schema version, its published_through and each table's columns;
 *   schema   (when D1's copy is older) ALTER TABLE … ADD COLUMN for the columns D1 lacks, and the version row;
 *   data     the change set, table by table in keyset order of the primary key: the rows whose change condition
 *            holds for published_through (all rows for a full republish), as multi-row upserts (d1-sql.c) of at
 *            most [d1] publish_rows rows and 1 MB per request; a child list (rows keyed by parent and seq, with no
 *            stamps of their own) is sent with its changed parents, followed by DELETE … WHERE parent = … AND
 *            seq >= <local count> (a list that got shorter);
 *   verify   one SELECT per table computed identically on both sides (count, summed lengths, summed numbers); a
 *            mismatch republishes the tables named (once per run), a second mismatch fails the step naming them;
 *   end      published_through = this cycle's mark, in D1 (d1_publish_state) and in the job state.
 *
 * A kill or a failed request resumes at the last committed step: at worst a chunk is sent twice, which the upserts
 * and the deletes by key make harmless.  Pacing, the 429 block and the 504 replay are d1.c's.  A full republish
 * happens when the trigger asked for it (`syncctl trigger … --republish`, the cycle flag "republish"), when D1 has
 * no published_through for this scope, or when D1's schema version is older than the daemon's.  The phase is
 * skipped (step row complete, detail "disabled") when [d1] or its corpus_database_id is not configured.
 */
#ifndef RTOPACKS_PUBLISH_H
#define RTOPACKS_PUBLISH_H

#include <cJSON.h>
#include <stdbool.h>
#include <stddef.h>

struct config;
struct db;
struct ev_loop;
struct d1;
struct step;

#define PUB_ROWS_START 2000		/* rows per request at the start of a run */
#define PUB_ROWS_MAX 8000		/* rows per request at most (docs/d1-design.md, "Batching") */

struct pub_table {
	const char *name;		/* the same name locally (schema "corpus") and in D1 */
	/*
	 * The row changed after published_through (bound as ?1): an SQL condition on the table's stamps, e.g.
	 * "added_in > ?1 OR changed_in > ?1 OR deleted_in > ?1".  NULL for a child list (its parent's decides).
	 */
	const char *changed;
	const char *deleted_col;	/* a row with this column set is a soft delete (counted as deleted), or NULL */
	/*
	 * Rows reached through a parent (an earlier table of the list) in a delta: the parents whose condition holds
	 * (parent_changed, else the parent's own `changed`) are read in key order, then their rows here by
	 * parent_col (an index prefix).  With seq_col, a child list: all its rows, then DELETE … WHERE parent_col =
	 * … AND seq_col > <the last local seq> (a list that got shorter).  Without seq_col, rows kept with soft
	 * deletes (scope): the rows of those parents whose own `changed` holds; so a delta never scans the table.
	 */
	int parent;			/* index of the parent table, -1: none */
	const char *parent_col;
	const char *seq_col;
	const char *parent_changed;
};

struct pub_def {
	const char *scope;		/* the job's sync_type: its rows in d1_schema_migrations and d1_publish_state */
	int schema_version;		/* of D1's copy; raise it when a corpus migration changes a published table */
	const char *schema_name;	/* what the version row says */
	const struct pub_table *tables;	/* parents before their child lists */
	size_t ntables;
	bool mark_int;			/* the stamps are integers (else text) */
	/* This cycle's mark: what published_through becomes (e.g. the cycle id, or a cycle number). */
	int (*mark)(struct step *, struct db *, char *out, size_t len, char **cause);
};

struct publisher;

/*
 * A publisher on the daemon's D1 client (daemon.h: one client, one budget; NULL without [d1], and a client without a
 * corpus database: the phase is skipped).  db is the daemon's connection (ops.db with rtopacks.db attached as
 * "corpus"), read outside any transaction.
 */
struct publisher *publish_new(struct ev_loop *, struct d1 *, struct db *, const struct pub_def *);
void publish_free(struct publisher *);
bool publish_enabled(const struct publisher *);
/* For `status`: "publish": {enabled, requests, blocked_until}, and a note while D1's rate limit blocks us. */
void publish_status(const struct publisher *, cJSON *out);
/* The phase: one step (call from the job's phase function). */
void publish_step(struct publisher *, struct step *);

#endif
