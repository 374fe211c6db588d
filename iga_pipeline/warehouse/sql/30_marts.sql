-- Marts: the public interface (warehouse.md). Shares are unrounded fractions.
CREATE SCHEMA IF NOT EXISTS marts;

CREATE OR REPLACE TABLE marts.fct_participation AS
SELECT participation_id, person_key, cycle::INTEGER AS cycle, municipality_code, municipality, provider,
       target_group, gender, birth_region, completed, dropout_reason,
       status_end, status_end_detail, status_90d, status_90d_detail
FROM intermediate.participation
ORDER BY cycle, participation_id;

CREATE OR REPLACE TABLE marts.fct_intervention AS
SELECT i.participation_id, i.intervention, i.hours
FROM staging.interventions AS i
SEMI JOIN intermediate.participation AS p USING (participation_id)
ORDER BY participation_id, intervention;

CREATE OR REPLACE TABLE marts.outcomes_by_cycle AS
WITH counts AS (
    SELECT cycle,
           sum(enrolled)::BIGINT AS enrolled, sum(completed)::BIGINT AS completed,
           sum(dropped_out)::BIGINT AS dropped_out,
           sum(work_at_end)::BIGINT AS work_at_end, sum(studies_at_end)::BIGINT AS studies_at_end,
           sum(other_at_end)::BIGINT AS other_at_end, sum(unknown_at_end)::BIGINT AS unknown_at_end,
           sum(work_90d)::BIGINT AS work_90d, sum(studies_90d)::BIGINT AS studies_90d,
           sum(other_90d)::BIGINT AS other_90d, sum(unknown_90d)::BIGINT AS unknown_90d,
           min(target_group_min) AS tg_min, max(target_group_max) AS tg_max
    FROM intermediate.outcomes_by_cycle_municipality
    GROUP BY cycle
)
SELECT
    c.cycle,
    c.provider,
    CASE WHEN k.tg_min IS NULL THEN c.target_group
         WHEN k.tg_min = k.tg_max THEN k.tg_min
         ELSE 'mixed' END AS target_group,
    coalesce(k.enrolled, 0) AS enrolled,
    coalesce(k.completed, 0) AS completed,
    coalesce(k.dropped_out, 0) AS dropped_out,
    coalesce(k.work_at_end, 0) AS work_at_end,
    coalesce(k.studies_at_end, 0) AS studies_at_end,
    coalesce(k.unknown_at_end, 0) AS unknown_at_end,
    coalesce(f.followed_up, false) AS followed_up,
    CASE WHEN f.followed_up THEN coalesce(k.work_90d, 0) END AS work_90d,
    CASE WHEN f.followed_up THEN coalesce(k.studies_90d, 0) END AS studies_90d,
    CASE WHEN f.followed_up THEN coalesce(k.unknown_90d, 0) END AS unknown_90d,
    k.work_at_end / nullif(k.completed, 0) AS share_work_at_end,
    k.studies_at_end / nullif(k.completed, 0) AS share_studies_at_end,
    CASE WHEN f.followed_up THEN k.work_90d / nullif(k.completed, 0) END AS share_work_90d,
    CASE WHEN f.followed_up THEN k.studies_90d / nullif(k.completed, 0) END AS share_studies_90d,
    -- Beyond the contract's columns: the rest of the outcome classes, so that
    -- work + studies + other + unknown = completed can be checked.
    coalesce(k.other_at_end, 0) AS other_at_end,
    CASE WHEN f.followed_up THEN coalesce(k.other_90d, 0) END AS other_90d
FROM reference.cycles AS c
LEFT JOIN counts AS k USING (cycle)
LEFT JOIN staging.followup AS f USING (cycle)
ORDER BY c.cycle;

-- Table 1's Delsumma (scope followed_up) and TOTALT (scope all, rule R10).
CREATE OR REPLACE TABLE marts.outcomes_summary AS
-- The scopes' cycles, as rule R10 defines them (every cycle; the followed-up ones), with or
-- without participations: the label agrees with outcomes_by_cycle and goal_attainment.
WITH islands AS (
    SELECT 'all' AS scope, cycle FROM reference.cycles
    UNION ALL
    SELECT 'followed_up', cycle FROM reference.cycles JOIN staging.followup USING (cycle)
    WHERE followed_up
),
ranges AS (
    SELECT scope, min(cycle) AS lo, max(cycle) AS hi
    FROM (SELECT scope, cycle, cycle - row_number() OVER (PARTITION BY scope ORDER BY cycle) AS grp
          FROM islands)
    GROUP BY scope, grp
),
labels AS (
    SELECT scope, string_agg(CASE WHEN lo = hi THEN lo::VARCHAR ELSE lo || '-' || hi END, ','
                             ORDER BY lo) AS cycles
    FROM ranges GROUP BY scope
),
totals AS (
    SELECT scope, count_if(completed)::BIGINT AS completed,
           count_if(completed AND status_end = 'work')::BIGINT AS work_at_end,
           count_if(completed AND status_end = 'studies')::BIGINT AS studies_at_end,
           count_if(completed AND status_90d = 'work')::BIGINT AS work_90d,
           count_if(completed AND status_90d = 'studies')::BIGINT AS studies_90d
    FROM intermediate.participation_by_scope GROUP BY scope
)
-- Both scopes always have a row; a scope with no cycle (nothing followed up) has
-- cycles '' and zero counts.
SELECT s.scope, coalesce(l.cycles, '') AS cycles, coalesce(t.completed, 0) AS completed,
       coalesce(t.work_at_end, 0) AS work_at_end, coalesce(t.studies_at_end, 0) AS studies_at_end,
       coalesce(t.work_90d, 0) AS work_90d, coalesce(t.studies_90d, 0) AS studies_90d,
       t.work_at_end / nullif(t.completed, 0) AS share_work_at_end,
       t.studies_at_end / nullif(t.completed, 0) AS share_studies_at_end,
       t.work_90d / nullif(t.completed, 0) AS share_work_90d,
       t.studies_90d / nullif(t.completed, 0) AS share_studies_90d
FROM (VALUES ('followed_up', 1), ('all', 2)) AS s(scope, ord)
LEFT JOIN totals AS t USING (scope)
LEFT JOIN labels AS l USING (scope)
ORDER BY s.ord;

-- marts.outcomes_by_municipality (small-count disclosure control, primary and
-- complementary suppression) is built in Python from
-- intermediate.outcomes_by_cycle_municipality: see iga_pipeline/evaluation/suppression.py.

-- Besides the staged issues: a raw file with data rows whose bytes are another file's (a copy
-- under a second name: a survey of cycle 3 sent again as cycle 5's doubled its answers). Each
-- is read as named; the warning says which files are the same.
CREATE OR REPLACE TABLE marts.data_quality_issues AS
WITH copies AS (
    SELECT a.source_file, a.cycle, string_agg(b.source_file, ', ' ORDER BY b.source_file) AS others
    FROM staging.audit AS a
    JOIN staging.audit AS b ON a.sha256 = b.sha256 AND a.source_file <> b.source_file
    WHERE a.rows_read > 0
    GROUP BY a.source_file, a.cycle
)
SELECT source_file::VARCHAR AS source_file, source_row::VARCHAR AS source_row,
       severity::VARCHAR AS severity, reason::VARCHAR AS reason, detail::VARCHAR AS detail,
       cycle::INTEGER AS cycle
FROM staging.issues
UNION ALL
SELECT source_file, NULL, 'warning', 'unexpected_file',
       'the same bytes as ' || others || ': one of them is probably misnamed (each is read as named)',
       cycle::INTEGER
FROM copies
-- source_row and detail last: no tie (one row's two missing statuses) left to the order the staged issues were read in
ORDER BY cycle NULLS FIRST, source_file, severity, try_cast(regexp_extract(source_row, '(\d+)$', 1) AS INTEGER) NULLS FIRST, reason,
         source_row, detail;

CREATE OR REPLACE TABLE marts.ingest_audit AS
SELECT source_file::VARCHAR AS source_file, source_kind::VARCHAR AS source_kind,
       status::VARCHAR AS status, rows_read::BIGINT AS rows_read, rows_loaded::BIGINT AS rows_loaded,
       rows_rejected::BIGINT AS rows_rejected, rows_duplicate::BIGINT AS rows_duplicate,
       sha256::VARCHAR AS sha256, reason::VARCHAR AS reason, cycle::INTEGER AS cycle
FROM staging.audit
ORDER BY source_file;

CREATE OR REPLACE TABLE marts.survey_by_cycle AS
SELECT c.cycle,
       count(s.response_id) AS questionnaires,
       count(s.increased_chance) AS answered,
       count(*) FILTER (WHERE s.increased_chance >= 4) AS large_or_very_large,  -- 0, not NULL, without answers
       o.completed,
       count(s.increased_chance) / nullif(o.completed, 0) AS coverage
FROM reference.cycles AS c
JOIN marts.outcomes_by_cycle AS o USING (cycle)
LEFT JOIN staging.survey_responses AS s USING (cycle)
GROUP BY c.cycle, o.completed
ORDER BY c.cycle;
