-- rtopacks.db 0002: the National Register of VET from training.gov.au, written only by tga-sync (docs/tga-sync.md).
--
-- Provenance on every row: updated_date is the upstream UpdatedDate (DateTimeOffset, normalised to UTC text as WCF
-- writes it: 2019-03-04T05:06:07.1234567Z, fraction only when not zero) of the record version that last wrote the
-- row (child rows carry their parent's), and run is the tga_runs.n of the run that last wrote it.
--
-- Change stamps: added_in / changed_in / deleted_in (removed_in for scope rows) hold the cycle number (tga_runs.cycle_n)
-- in which a row appeared, last changed in content, or was removed.  The change summary of a cycle is derived from
-- these stamps, never from counters, so a page replayed after a crash counts nothing twice.  changed_in moves only
-- when content changes (an UpdatedDate that moves alone does not count as a change).
--
-- Deletions are soft: rows stay, deleted_at is set (the tombstone's time, YYYY-MM-DDTHH:MM:SSZ) with the operation.
-- Child lists (releases, unit grid, classifications, ...) are replaced with their parent, in one transaction.
--
-- Contract (cricos-sync reads it): tga_components(code TEXT PRIMARY KEY, component_type, title, ..., deleted_at).

-- Runs of tga-sync that wrote this file: small numbers keep 6.2 million scope rows small.
CREATE TABLE tga_runs (
    n           INTEGER PRIMARY KEY,
    run_id      TEXT NOT NULL UNIQUE,       -- sync_runs.run_id in ops.db
    cycle_id    TEXT NOT NULL,              -- sync_runs.cycle_id: the run that started the cycle
    cycle_n     INTEGER NOT NULL,           -- n of the cycle's first run: the number rows are stamped with
    started_at  TEXT NOT NULL
);
CREATE INDEX tga_runs_cycle ON tga_runs (cycle_id);

-- Training components: training packages, qualifications, units, skill sets, accredited courses.
CREATE TABLE tga_components (
    code                  TEXT PRIMARY KEY,
    component_type        TEXT NOT NULL,    -- TrainingPackage | Qualification | Unit | SkillSet | AccreditedCourse
    title                 TEXT,
    parent_code           TEXT,             -- the training package (ParentCode)
    parent_title          TEXT,
    usage_recommendation  TEXT,             -- Current | Superseded | Deleted (search summary, else the one in force)
    is_current            INTEGER,          -- IsCurrent of the search summary (0/1)
    currency_status       TEXT,             -- CurrencyStatus (Current | Superseded | ...)
    is_confidential       INTEGER NOT NULL DEFAULT 0,
    is_legacy             INTEGER,
    isc_organisation_code TEXT,
    created_date          TEXT,             -- upstream CreatedDate
    updated_date          TEXT,             -- upstream UpdatedDate
    deleted_at            TEXT,             -- NULL unless removed upstream (tombstone time)
    deleted_operation     TEXT,             -- PhysicalDelete | LogicalDelete
    added_in              INTEGER NOT NULL,
    changed_in            INTEGER NOT NULL,
    deleted_in            INTEGER,
    run                   INTEGER NOT NULL
);
CREATE INDEX tga_components_changed ON tga_components (changed_in);
CREATE INDEX tga_components_deleted ON tga_components (deleted_in) WHERE deleted_in IS NOT NULL;
CREATE INDEX tga_components_parent ON tga_components (parent_code);

-- Releases of a component, oldest first (seq).
CREATE TABLE tga_releases (
    component_code   TEXT NOT NULL,
    seq              INTEGER NOT NULL,
    release_number   TEXT,
    release_date     TEXT,                  -- xs:date
    currency         TEXT,                  -- Current | Superseded
    approval_process TEXT,
    updated_date     TEXT,
    run              INTEGER NOT NULL,
    PRIMARY KEY (component_code, seq)
) WITHOUT ROWID;

-- The unit grid of each release (qualifications, skill sets, accredited courses): core or elective.
CREATE TABLE tga_unit_grid (
    component_code  TEXT NOT NULL,
    seq             INTEGER NOT NULL,       -- position across all releases of the component
    release_number  TEXT,
    unit_code       TEXT NOT NULL,
    title           TEXT,
    is_essential    INTEGER,                -- IsEssential: 1 core, 0 elective, NULL not stated
    updated_date    TEXT,
    run             INTEGER NOT NULL,
    PRIMARY KEY (component_code, seq)
) WITHOUT ROWID;
CREATE INDEX tga_unit_grid_unit ON tga_unit_grid (unit_code);

-- Supersession and equivalence (MappingInformation): MapsToCode, IsEquivalent.
CREATE TABLE tga_mappings (
    component_code  TEXT NOT NULL,
    seq             INTEGER NOT NULL,
    code            TEXT,                   -- Mapping.Code (the component itself)
    title           TEXT,
    maps_to_code    TEXT,
    maps_to_title   TEXT,
    is_equivalent   INTEGER,
    notes           TEXT,
    updated_date    TEXT,
    run             INTEGER NOT NULL,
    PRIMARY KEY (component_code, seq)
) WITHOUT ROWID;
CREATE INDEX tga_mappings_to ON tga_mappings (maps_to_code);

-- Classifications: scheme 01 ANZSCO, 04 field of education (ASCED), 05 level of education, ...
CREATE TABLE tga_classifications (
    component_code  TEXT NOT NULL,
    seq             INTEGER NOT NULL,
    scheme_code     TEXT,
    value_code      TEXT,
    purpose_code    TEXT,
    start_date      TEXT,
    end_date        TEXT,
    updated_date    TEXT,
    run             INTEGER NOT NULL,
    PRIMARY KEY (component_code, seq)
) WITHOUT ROWID;

-- Usage recommendations over time (UsageRecommendations): Current, Superseded, Deleted.
CREATE TABLE tga_usage_recommendations (
    component_code  TEXT NOT NULL,
    seq             INTEGER NOT NULL,
    state           TEXT,
    start_date      TEXT,
    end_date        TEXT,
    updated_date    TEXT,
    run             INTEGER NOT NULL,
    PRIMARY KEY (component_code, seq)
) WITHOUT ROWID;

-- Currency periods (CurrencyPeriods).
CREATE TABLE tga_currency_periods (
    component_code  TEXT NOT NULL,
    seq             INTEGER NOT NULL,
    authority       TEXT,
    start_date      TEXT,
    end_date        TEXT,
    end_reason_code TEXT,
    end_comment     TEXT,
    updated_date    TEXT,
    run             INTEGER NOT NULL,
    PRIMARY KEY (component_code, seq)
) WITHOUT ROWID;

-- Registered training organisations.
CREATE TABLE tga_rtos (
    code                TEXT PRIMARY KEY,
    legal_name          TEXT,               -- the responsible legal person in office
    abn                 TEXT,
    acn                 TEXT,
    registration_status TEXT,               -- Current | Cancelled | Lapsed | Suspended | ...
    is_legacy           INTEGER,
    created_date        TEXT,
    updated_date        TEXT,
    scope_rows          INTEGER NOT NULL DEFAULT 0,   -- live rows in tga_rto_scope
    scope_hash          INTEGER,            -- hash of the scope as last received (NULL: do not trust, re-diff)
    deleted_at          TEXT,
    deleted_operation   TEXT,
    added_in            INTEGER NOT NULL,
    changed_in          INTEGER NOT NULL,   -- the RTO or its names, locations, URLs, registration periods
    scope_changed_in    INTEGER,            -- its scope
    scope_added         INTEGER NOT NULL DEFAULT 0,   -- in cycle scope_changed_in: scope rows added, removed,
    scope_removed       INTEGER NOT NULL DEFAULT 0,   -- changed; counted from the rows' stamps each time the RTO
    scope_changed       INTEGER NOT NULL DEFAULT 0,   -- is written (a recount, never an increment)
    deleted_in          INTEGER,
    run                 INTEGER NOT NULL
);
CREATE INDEX tga_rtos_changed ON tga_rtos (changed_in);
CREATE INDEX tga_rtos_scope_changed ON tga_rtos (scope_changed_in);
CREATE INDEX tga_rtos_deleted ON tga_rtos (deleted_in) WHERE deleted_in IS NOT NULL;

CREATE TABLE tga_rto_registration_periods (
    rto_code            TEXT NOT NULL,
    seq                 INTEGER NOT NULL,
    start_date          TEXT,
    end_date            TEXT,
    end_reason_code     TEXT,
    end_reason_comments TEXT,
    exerciser           TEXT,
    legal_authority     TEXT,
    updated_date        TEXT,
    run                 INTEGER NOT NULL,
    PRIMARY KEY (rto_code, seq)
) WITHOUT ROWID;

CREATE TABLE tga_rto_trading_names (
    rto_code      TEXT NOT NULL,
    seq           INTEGER NOT NULL,
    name          TEXT,
    start_date    TEXT,
    end_date      TEXT,
    updated_date  TEXT,
    run           INTEGER NOT NULL,
    PRIMARY KEY (rto_code, seq)
) WITHOUT ROWID;

CREATE TABLE tga_rto_locations (
    rto_code        TEXT NOT NULL,
    seq             INTEGER NOT NULL,
    line1           TEXT,
    line2           TEXT,
    suburb          TEXT,
    postcode        TEXT,
    state_code      TEXT,                   -- 01 NSW ... 08 ACT, 09 other territories
    country_code    TEXT,
    state_overseas  TEXT,
    start_date      TEXT,
    end_date        TEXT,
    updated_date    TEXT,
    run             INTEGER NOT NULL,
    PRIMARY KEY (rto_code, seq)
) WITHOUT ROWID;

CREATE TABLE tga_rto_urls (
    rto_code      TEXT NOT NULL,
    seq           INTEGER NOT NULL,
    link          TEXT,
    start_date    TEXT,
    end_date      TEXT,
    updated_date  TEXT,
    run           INTEGER NOT NULL,
    PRIMARY KEY (rto_code, seq)
) WITHOUT ROWID;

-- RTO scope: what each RTO may deliver (explicit rows and the units implied by qualifications on scope).
-- Keyed by (RTO, NRT code, implicit); rows that leave the scope are kept with removed_in set.
CREATE TABLE tga_rto_scope (
    rto_code        TEXT NOT NULL,
    nrt_code        TEXT NOT NULL,
    is_implicit     INTEGER NOT NULL,
    component_type  TEXT,                   -- TrainingComponentType
    extent_code     TEXT,
    is_refused      INTEGER NOT NULL,
    decision_type   TEXT,                   -- ScopeDecisionType: Granted | Refused | Suspended | Cancelled
    start_date      TEXT,
    end_date        TEXT,
    updated_date    TEXT,
    added_in        INTEGER NOT NULL,
    changed_in      INTEGER NOT NULL,
    removed_in      INTEGER,
    run             INTEGER NOT NULL,
    PRIMARY KEY (rto_code, nrt_code, is_implicit)
) WITHOUT ROWID;

-- Tombstones from SearchDeletedByDeletedDate, both services, as received (also for codes never stored here).
CREATE TABLE tga_deletions (
    service       TEXT NOT NULL,            -- training | organisation
    code          TEXT NOT NULL,            -- NationalCode / OrganisationCode
    operation     TEXT,                     -- PhysicalDelete | LogicalDelete
    updated_date  TEXT NOT NULL,            -- the tombstone's UpdatedDate
    applied       INTEGER NOT NULL,         -- 1 if it soft-deleted a stored row
    added_in      INTEGER NOT NULL,
    run           INTEGER NOT NULL,
    PRIMARY KEY (service, code, updated_date)
) WITHOUT ROWID;
CREATE INDEX tga_deletions_added ON tga_deletions (added_in);
