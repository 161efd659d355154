/*
 * tga-sync: the National Register of VET from training.gov.au, incrementally and resumably.
 *
 * Layers (one responsibility per file):
 *   protocol   soap.c (envelopes, WS-Security, SOAPAction, faults), xml.c (streaming SAX framework),
 *              parse-search.c / parse-details.c (response -> items / staged records), tgatime.c (DateTimeOffset)
 *   source     source.h / source-soap.c: the operations the phases need, asynchronous, with their error classes
 *              (a REST source for the same phases and tables can sit beside it: issue 8)
 *   stage      stage.c: parsed records between arrival and the step's one transaction
 *   tables     store.c (run stamps), store-training.c, store-orgs.c, store-deleted.c
 *   phases     phase-init.c, phase-sync.c (sync_training, sync_orgs), phase-sweep.c, phase-snapshot.c (summary)
 *   job        main.c (job definition, hooks), settings.c (the [tga-sync] keys), mail.c (change summary text)
 */
#ifndef TGA_H
#define TGA_H

#include <stdbool.h>
#include <stdint.h>

#include <cJSON.h>

#include "config.h"
#include "stage.h"

struct buf;
struct daemon;
struct http_client;
struct step;
struct tga_source;

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

struct tga_settings {
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
};

struct tga {
	struct daemon *d;
	struct tga_settings set;
	char *password;			/* secret_load(): never logged */
	struct http_client *http;
	struct tga_source *src;
	char *spool_dir;
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

/* mail.c: the change summary of the completion mail */
void tga_format_summary(const cJSON *summary, struct buf *out);


#endif
