-- rtopacks.db 0005 (issue 12): OrganisationService answers for every organisation, not only RTOs.  An organisation
-- that is not an RTO (GetDetailsResult i:type Organisation2, e.g. a training package developer) is kept in tga_rtos
-- with its kind, and counted and reported apart from the RTOs (docs/tga-sync.md).  kind is 'RTO' for Rto, Rto2,
-- Rto3 (and for the rows written before this migration, all read as RTOs; a --full cycle corrects them), otherwise
-- the i:type TGA gave, e.g. 'Organisation2'.
ALTER TABLE tga_rtos ADD COLUMN kind TEXT NOT NULL DEFAULT 'RTO';
CREATE INDEX tga_rtos_kind ON tga_rtos (kind) WHERE kind <> 'RTO';
