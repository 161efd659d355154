-- rtopacks.db 0006 (issue 14): change stamps the publish phase to D1 needs (common/engine/publish.c).  The phase
-- sends a table's rows whose stamps are later than what D1 already has; a column that changes without moving a
-- stamp would never reach D1.  cricos_courses.tga_link is set by cricos-sync's link phase, also in cycles that did
-- not read the courses (only another resource changed), so it gets its own stamp: link_cycle, the cycle whose link
-- phase last changed tga_link (NULL: never changed since this migration; the first publish sends every row anyway).
ALTER TABLE cricos_courses ADD COLUMN link_cycle TEXT;
