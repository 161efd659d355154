/*
 * tga-sync: the National Register of VET from training.gov.au, incrementally and resumably.
 *
 * Layers (one responsibility per file):
 *   protocol   soap.c (envelopes, WS-Security, SOAPAction, faults), xml.c (streaming SAX framework),
 *              parse-search.c / parse-details.c (response -> items / staged records), tgatime.c (DateTimeOffset)
 *   source     source.h / source-soap.c: the operations the phases need, asynchronous, with their error classes;
 *              source-rest.h / source-rest.c: the public REST API ([tga-sync] source = rest, issue 8), crawled by
 *              phase-rest.c into the same stage records and tables
 *   stage      stage.c: parsed records between arrival and the step's one transaction
 *   tables     store.c (run stamps), store-training.c, store-orgs.c, store-deleted.c
 *   phases     plan.c (the cycle plan and error mapping they share), phase-init.c, phase-sync.c (sync_training,
 *              sync_orgs), phase-sweep.c, phase-snapshot.c (summary)
 *   backends   backend.h: each source as one table of its operations and phases, chosen once from the settings
 *              (backend-soap.c, backend-rest.c)
 *   job        main.c (job definition, hooks), settings.c (the [tga-sync] keys), mail.c (change summary text)
 */
#ifndef TGA_H
#define TGA_H
#define TGA_D1_BUDGET 800		/* D1 requests per 5 minutes when [d1] names none (docs/d1-design.md) */

#include <stdbool.h>
#include <stdint.h>

#include <cJSON.h>

#include "config.h"
#include "stage.h"

struct buf;
struct daemon;
struct http_client;
struct pub_def;
struct publisher;
struct step;
struct tga_backend;
struct tga_source;
struct rest_source;

enum tga_service { SVC_TRAINING = 0, SVC_ORGANISATION = 1 };

/* Training component types as in TrainingComponentTypeFilter (XSD order of the Include* flags). */
enum {
	TCT_ACCREDITED_COURSE = 1 << 0,
	TCT_ACCREDITED_MODULE = 1 << 1,
	TCT_QUALIFICATION = 1 << 2,
	TCT_SKILL_SET = 1 << 3,
	TCT_TRAINING_PACKAGE = 1 << 4,
	TCT_UNIT = 1 << 5,
	TCT_UNIT_CONTEXTUALISATION = 1 << 6,
};
#define TCT_COUNT 7
extern const char *const tct_names[TCT_COUNT];		/* "AccreditedCourse", ... (ComponentType values) */
extern const char *const tct_filter_names[TCT_COUNT];	/* "IncludeAccreditedCourse", ... */

/* Show* flags, in XSD order (TrainingComponentInformationRequested / OrganisationInformationRequested). */
#define TC_FLAG_COUNT 12
#define ORG_FLAG_COUNT 14
extern const char *const tc_flag_names[TC_FLAG_COUNT];
extern const char *const org_flag_names[ORG_FLAG_COUNT];
/* The bits the tables depend on. */
#define TCF(name) (1u << tc_flag_index(name))
#define ORGF(name) (1u << org_flag_index(name))
int tc_flag_index(const char *);
int org_flag_index(const char *);

/* Where the register comes from ([tga-sync] source). */
enum tga_source_kind { TGA_SOURCE_SOAP = 0, TGA_SOURCE_REST = 1 };

struct tga_settings {
	enum tga_source_kind source;
	char *base_url;			/* .../Deewr.Tga.Webservices, no trailing slash */
	int version;			/* 13; 1 = the unversioned contract */
	char *ns;			/* http://training.gov.au/services/13/ */
	char *username;
	bool ws_timestamp;
	int page_size;
	int64_t window_s, max_window_s, overlap_s;
	int64_t epoch_ticks;
	unsigned tc_types;		/* TCT_* */
	unsigned tc_flags;		/* bits in tc_flag_names order */
	unsigned org_flags;
	char *tc_info_element;		/* InformationRequest */
	char *org_info_element;		/* InformationRequested */
	int legacy;			/* IncludeLegacyData: -1 not sent, 0 false, 1 true */
	int summary_list_max;
	bool skip_unchanged;
	int parse_retries;		/* re-requests of a response that did not parse */
	/* source = rest (docs/tga-sync.md, "The REST source") */
	char *rest_base_url;		/* https://training.gov.au/api, no trailing slash */
	int rest_page_size;		/* search results per page (one page per step) */
	int rest_scope_page_size;	/* scope rows per request */
	int64_t rest_offset_cap;	/* the API refuses offsets from here on (0: no cap) */
	bool rest_probe;		/* end a cycle early when /api/metadata says nothing changed */
	int64_t rest_max_removals;	/* records one cycle may find gone before it stops (0: no limit) */
	int rest_max_in_flight;		/* 0: max_in_flight */
	int64_t rest_min_interval_ms;	/* -1: min_interval */
};

struct tga {
	struct daemon *d;
	struct tga_settings set;
	char *password;			/* secret_load(): never logged */
	struct http_client *http;
	const struct tga_backend *be;	/* of the settings in force (backend.h) */
	const struct tga_backend *opened;	/* whose source object is open (NULL: none) */
	struct tga_source *src;		/* source = soap */
	struct rest_source *rest;	/* source = rest (source-rest.h) */
	int rest_lanes;			/* source = rest: records fetched at once (the requests in flight) */
	char *spool_dir;
	struct publisher *pub;		/* the publish phase (off without [d1]) */
};

/* settings.c */
extern const struct cfg_key tga_config_keys[];
int tga_settings_load(struct tga_settings *, const struct config *, const char *section, char **cause);
void tga_settings_free(struct tga_settings *);
bool tga_code_valid(const char *s, size_t len);

/* phases */
void phase_init_run(struct step *);
void phase_training_run(struct step *);
void phase_orgs_run(struct step *);
void phase_sweep_run(struct step *);
void phase_snapshot_run(struct step *);
void phase_publish(struct step *);		/* phase-publish.c */
extern const struct pub_def tga_publish;
/* phase-rest.c: the same phases over the public REST API (source = rest) */
void phase_rest_init_run(struct step *);
void phase_rest_training_run(struct step *);
void phase_rest_orgs_run(struct step *);
void phase_rest_sweep_run(struct step *);

/* mail.c: the change summary of the completion mail */
void tga_format_summary(const cJSON *summary, struct buf *out);


#endif
