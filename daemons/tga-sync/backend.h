/*
 * Where the register comes from, as one table of operations (the way OpenSMTPD's table and queue backends are
 * tables of function pointers): the SOAP web services (backend-soap.c) or the public REST API (backend-rest.c).
 * The table is chosen once, when the settings load ([tga-sync] source), into tga->be; the job hooks and the phase
 * dispatch in main.c call through it, and nothing else asks which source is configured.
 *
 * A backend owns its source object in struct tga (tga->src for SOAP, tga->rest for REST): open makes it from the
 * settings in force, close frees it.  Its phases are the cycle's init, sync_training, sync_orgs and
 * sweep_deletions; write_snapshot and notify are the same for both.
 */
#ifndef TGA_BACKEND_H
#define TGA_BACKEND_H

#include <stdbool.h>

#include <cJSON.h>

#include "tga.h"

struct http_settings;
struct step;

struct tga_backend {
	const char *name;		/* "soap", "rest": the [tga-sync] source value */
	const char *http_name;		/* the upstream's name in HTTP messages */
	bool needs_password;		/* password_file is read (and -n checks it) */
	/* Adjust the HTTP client's settings read from [tga-sync] (NULL: as read). */
	void (*http_settings)(struct tga *, struct http_settings *);
	void (*open)(struct tga *);
	void (*close)(struct tga *);
	/* The start-up log line: where the register is read from. */
	void (*describe)(const struct tga *, const struct http_settings *);
	/* Fields of the "tga" object of `syncctl status` after "source". */
	void (*status)(const struct tga *, cJSON *);
	/* The phases. */
	void (*init)(struct step *);
	void (*sync_training)(struct step *);
	void (*sync_orgs)(struct step *);
	void (*sweep)(struct step *);
};

extern const struct tga_backend tga_backend_soap;
extern const struct tga_backend tga_backend_rest;

/* The backend of a [tga-sync] source. */
const struct tga_backend *tga_backend_of(enum tga_source_kind);

#endif
