-- rtopacks.db 0003: the CRICOS register, kept by cricos-sync from data.gov.au (dataset "cricos").
-- Four tables mirror the four DataStore resources, cleaned (docs/cricos-sync.md): blanks are NULL, text is trimmed,
-- money is integer cents, "2,610" is 2610, Yes/No is 1/0.  A value that could not be parsed is NULL (and counted
-- in the step row's detail), never guessed.
--
-- Rows are never deleted: a row missing from a new edition is soft-deleted (removed_cycle, deleted_at), and comes
-- back (added_cycle) if a later edition has it again.  Stamps name cycles (sync_runs.cycle_id in ops.db):
--   added_cycle    cycle in which the row appeared, or reappeared after a removal
--   changed_cycle  last cycle in which its content changed (NULL: never)
--   seen_cycle     last cycle whose edition contained it
--   removed_cycle  cycle whose edition no longer contained it (NULL while present)
-- content_hash is a hash of the cleaned content (the denormalised institution_name excluded in the child tables,
-- so a provider rename is one change, not one per course).  Times are ISO-8601 UTC.

CREATE TABLE cricos_institutions (
    provider_code    TEXT PRIMARY KEY,      -- CRICOS Provider Code, \d{5}[A-Z]
    trading_name     TEXT,                  -- may list several names; cut at 255 characters upstream
    institution_name TEXT,
    institution_type TEXT,                  -- Government | Private
    capacity         INTEGER,               -- Institution Capacity: most international students permitted
    website          TEXT,
    postal_line1     TEXT,
    postal_line2     TEXT,
    postal_line3     TEXT,
    postal_line4     TEXT,
    postal_city      TEXT,
    postal_state     TEXT,
    postal_postcode  TEXT,
    content_hash     TEXT NOT NULL,
    added_cycle      TEXT NOT NULL,
    changed_cycle    TEXT,
    seen_cycle       TEXT,
    removed_cycle    TEXT,
    first_seen_at    TEXT NOT NULL,
    updated_at       TEXT NOT NULL,
    deleted_at       TEXT                   -- set when removed_cycle is
);

CREATE TABLE cricos_courses (
    course_code                TEXT PRIMARY KEY,  -- CRICOS Course Code: 6 digits + check letter, or 7 digits
    provider_code              TEXT,
    institution_name           TEXT,
    course_name                TEXT,
    vet_national_code          TEXT,              -- TGA/NRT code (qualification, accredited course or unit), or NULL
    dual_qualification         INTEGER,           -- 1 Yes, 0 No
    foe1_broad                 TEXT,              -- ASCED labels as published ("08 - Management and Commerce")
    foe1_narrow                TEXT,
    foe1_detailed              TEXT,
    foe2_broad                 TEXT,
    foe2_narrow                TEXT,
    foe2_detailed              TEXT,
    course_level               TEXT,
    foundation_studies         INTEGER,
    work_component             INTEGER,
    work_hours_per_week        REAL,              -- "4.00"
    work_weeks                 INTEGER,           -- -1 occurs upstream and is kept
    work_total_hours           INTEGER,           -- "1,050"
    course_language            TEXT,
    duration_weeks             INTEGER,
    tuition_fee_cents          INTEGER,           -- whole-of-course fees in AUD cents ("$13,300.00" -> 1330000)
    non_tuition_fee_cents      INTEGER,
    estimated_total_cost_cents INTEGER,
    expired                    INTEGER,           -- Expired: 1 Yes (still listed), 0 No
    tga_link                   TEXT,              -- set by the link phase: matched | deleted | unmatched | NULL (no code)
    content_hash               TEXT NOT NULL,
    added_cycle                TEXT NOT NULL,
    changed_cycle              TEXT,
    seen_cycle                 TEXT,
    removed_cycle              TEXT,
    first_seen_at              TEXT NOT NULL,
    updated_at                 TEXT NOT NULL,
    deleted_at                 TEXT
);
CREATE INDEX cricos_courses_by_provider ON cricos_courses (provider_code);
CREATE INDEX cricos_courses_by_vet_code ON cricos_courses (vet_national_code) WHERE vet_national_code IS NOT NULL;

-- Locations have no id upstream.  location_key = provider_code|Location Name|CITY|STATE (city and state upper-
-- cased): unique in every edition seen, stable across editions, and what a course location names.
CREATE TABLE cricos_locations (
    location_key     TEXT PRIMARY KEY,
    provider_code    TEXT NOT NULL,
    institution_name TEXT,
    location_name    TEXT NOT NULL,
    location_type    TEXT,
    address_line1    TEXT,
    address_line2    TEXT,
    address_line3    TEXT,
    address_line4    TEXT,
    city             TEXT,
    state            TEXT,
    postcode         TEXT,                  -- a 3-digit postcode (NT "800") gets its leading zero back
    content_hash     TEXT NOT NULL,
    added_cycle      TEXT NOT NULL,
    changed_cycle    TEXT,
    seen_cycle       TEXT,
    removed_cycle    TEXT,
    first_seen_at    TEXT NOT NULL,
    updated_at       TEXT NOT NULL,
    deleted_at       TEXT
);
CREATE INDEX cricos_locations_by_provider ON cricos_locations (provider_code);

-- One row per course and location; exact duplicate rows upstream are stored once.
CREATE TABLE cricos_course_locations (
    course_code      TEXT NOT NULL,
    location_key     TEXT NOT NULL,         -- joins cricos_locations.location_key
    provider_code    TEXT NOT NULL,
    institution_name TEXT,
    location_name    TEXT NOT NULL,
    location_city    TEXT,
    location_state   TEXT,
    content_hash     TEXT NOT NULL,
    added_cycle      TEXT NOT NULL,
    changed_cycle    TEXT,
    seen_cycle       TEXT,
    removed_cycle    TEXT,
    first_seen_at    TEXT NOT NULL,
    updated_at       TEXT NOT NULL,
    deleted_at       TEXT,
    PRIMARY KEY (course_code, location_key)
);
CREATE INDEX cricos_course_locations_by_location ON cricos_course_locations (location_key);

-- The editions synced: one row per resource per cycle that synced it (what was read, and when).
CREATE TABLE cricos_editions (
    cycle_id      TEXT NOT NULL,
    table_name    TEXT NOT NULL,            -- institutions | courses | locations | course_locations
    resource_id   TEXT NOT NULL,
    resource_name TEXT,
    last_modified TEXT,                     -- the resource's last upload (UTC; CKAN's own text if unreadable)
    hash          TEXT,
    size          INTEGER,
    total         INTEGER,                  -- records the DataStore said it had
    synced_at     TEXT NOT NULL,
    PRIMARY KEY (cycle_id, table_name)
);
