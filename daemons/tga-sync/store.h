/*
 * Writing the register into rtopacks.db (schema/corpus/0002-tga.sql), inside a step's transaction.
 *
 * Every upsert only writes when something differs (ON CONFLICT ... DO UPDATE ... WHERE old IS NOT new), so a
 * record fetched again (an overlapping window, a page repeated after a crash) changes nothing and stamps nothing.
 * An entity (a component or an RTO) and all its child rows are written from one staged GetDetails answer.
 */
#ifndef TGA_STORE_H
#define TGA_STORE_H

#include <stdbool.h>
#include <stdint.h>

#include <cJSON.h>

#include "source.h"
#include "stage.h"
#include "tga.h"

struct db;
struct step;

struct store {
	struct step *st;
	struct tga *t;
	struct db *db;
	int64_t run_n, cycle_n;
	bool full;
	int64_t changed;		/* entities whose rows changed in this step */
	int64_t scope_rows_written;
	struct rec head, r;
};

/*
 * A child list of an entity (releases, unit grid, trading names, ...): its staged record type, the Show* flags that
 * bring it, its upsert (code ?1, seq ?2, the staged fields ?3.., updated_date and run after them) and the DELETE
 * that trims rows past the new end of the list.
 */
struct store_child {
	int type;
	const char *flag;
	const char *flag2;		/* also needed (the unit grid comes inside releases); NULL if none */
	const char *upsert, *tail;
	int nfields;
	int bools;			/* bit mask of staged fields that are booleans ("1"/"0" -> 1/0) */
};

const struct store_child *store_child_of(const struct store_child *children, size_t n, int type);
/* Upsert the staged record s->r as row seq of the child list of code. */
int store_write_child(struct store *, const struct store_child *, const char *code, int64_t seq, const char *updated,
    int64_t *changes, char **cause);

/* Open the step's transaction and make sure this run has its number in tga_runs. */
int store_begin(struct store *, struct step *, struct tga *, char **cause);
void store_end(struct store *);

/* Write one staged entity.  summary: the search result it came from (NULL for a re-fetch). */
int store_component(struct store *, struct stage *, const struct stage_entity *, const struct src_item *summary,
    char **cause);
int store_rto(struct store *, struct stage *, const struct stage_entity *, char **cause);
/* Record a tombstone and soft-delete the row it names if the row is not newer. */
int store_tombstone(struct store *, enum tga_service, const struct src_tomb *, char **cause);
/* Soft-delete a live component or RTO (an RTO's scope rows leave with it) as of at_ticks: 1 if a row was deleted,
 * 0 if none was live, -1 on error. */
int store_soft_delete(struct store *, enum tga_service, const char *code, int64_t at_ticks, const char *operation,
    char **cause);
/* store-rest.c: a record the REST crawl no longer finds (404): soft-deleted as of at_ticks (the data export sync
 * time), noted in tga_deletions with the operation "NotFound".  1 if a live row was deleted, else 0; -1 on error. */
int store_removed(struct store *, enum tga_service, const char *code, int64_t at_ticks, char **cause);
/* The live codes of a component type (NULL: RTOs) in (after, upto] ("" / NULL: unbounded), in code order. */
int store_live_codes(struct db *, const char *type, const char *after, const char *upto, char ***codes, size_t *n,
    char **cause);

/* Outside a transaction: the stored UpdatedDate of a live row ("" if none), for skipping unchanged records. */
int store_stored_updated(struct db *, enum tga_service, const char *code, char *out, size_t len, char **cause);
/* Is the corpus empty of TGA rows (a replaced rtopacks.db must not be synced incrementally)? */
int store_is_empty(struct db *, bool *empty, char **cause);

/* Codes to fetch again next cycle (a record that came without a key part): kept in job_state. */
void store_refetch_add(struct step *, enum tga_service, const char *code);

/* Bind helpers over a staged record. */
void store_bind_field(void *stmt, int idx, const struct rec *, int field);
/* A staged "1"/"0" as an integer (NULL stays NULL). */
void store_bind_bool(void *stmt, int idx, const struct rec *, int field);

#endif
