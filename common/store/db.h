/*
 * SQLite helpers.  Every connection: WAL, a busy timeout, foreign keys on, synchronous=FULL (cursor commits must
 * survive power loss, and every step commit moves a cursor).  Schemas are versioned with PRAGMA user_version and
 * the numbered migrations in schema/<db>/ (embedded at build time).  Data only ever goes through prepared
 * statements; db_stmt() keeps them cached per connection, keyed by the SQL text's address (use string literals).
 *
 * Two files: rtopacks.db (the register corpus, written only by the sync daemons) and ops.db (runs, steps, cursors,
 * billing).  A daemon that writes the corpus attaches it to its ops.db connection as schema "corpus", so one
 * transaction covers a step's data and its cursor.
 */
#ifndef RTOPACKS_DB_H
#define RTOPACKS_DB_H

#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>

struct migration {
	const char *name;
	const char *sql;
};

/* Embedded migrations (generated from the numbered files in schema/ops/ and schema/corpus/). */
extern const struct migration ops_migrations[];
extern const struct migration corpus_migrations[];

#define DB_READONLY 0x1

struct db;

struct db *db_open(const char *path, int flags, int busy_timeout_ms, char **cause);
void db_close(struct db *);
sqlite3 *db_handle(struct db *);
const char *db_path(const struct db *);

/* Bring the main schema up to date.  A schema newer than the program is an error (refuse to guess). */
int db_migrate(struct db *, const struct migration *, char **cause);
int db_schema_version(struct db *, const char *schema, int *version, char **cause);
/* Attach another database file under a schema name. */
int db_attach(struct db *, const char *path, const char *schema, char **cause);

/* Constant SQL only (DDL, PRAGMA, BEGIN/COMMIT): never anything built from input. */
int db_exec(struct db *, const char *sql, char **cause);
int db_begin(struct db *, char **cause);	/* BEGIN IMMEDIATE: take the write lock now, not at first write */
int db_commit(struct db *, char **cause);
void db_rollback(struct db *);
bool db_in_tx(struct db *);

/* A cached prepared statement, reset and with bindings cleared.  Returns NULL with *cause on error. */
sqlite3_stmt *db_stmt(struct db *, const char *sql, char **cause);
/* Step a statement that returns no rows (or ignore them); returns 0 or -1 with *cause. */
int db_step_done(struct db *, sqlite3_stmt *, char **cause);
/* Set *cause to "<file>: <sqlite message>" with a context; returns -1. */
int db_error(struct db *, char **cause, const char *context);

/* Bind helpers: NULL text binds SQL NULL. */
int db_bind_text(sqlite3_stmt *, int idx, const char *);
int db_bind_int(sqlite3_stmt *, int idx, int64_t);
const char *db_col_text(sqlite3_stmt *, int col);	/* "" for NULL */

#endif
