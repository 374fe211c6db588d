-- Intermediate: one row per participation with everything the marts count,
-- and the unsuppressed outcome counts per cycle and per municipality.
CREATE SCHEMA IF NOT EXISTS intermediate;

CREATE OR REPLACE VIEW intermediate.participation AS
SELECT
    p.participation_id,
    p.person_key,
    p.cycle,
    p.municipality_code,
    m.municipality,
    c.provider,
    p.target_group,
    p.gender,
    p.birth_region,
    p.completed,
    p.dropout_reason,
    p.status_end,
    p.status_end_detail,
    p.status_90d,
    p.status_90d_detail,
    coalesce(f.followed_up, false) AS followed_up
FROM staging.participations AS p
JOIN reference.cycles AS c USING (cycle)
JOIN reference.municipalities AS m USING (municipality_code)
LEFT JOIN staging.followup AS f USING (cycle);

-- Counts per (cycle, municipality); per cycle they are summed over municipalities.
CREATE OR REPLACE TABLE intermediate.outcomes_by_cycle_municipality AS
SELECT
    cycle,
    municipality_code,
    any_value(municipality) AS municipality,
    count(*) AS enrolled,
    count_if(completed) AS completed,
    count_if(NOT completed) AS dropped_out,
    count_if(completed AND status_end = 'work') AS work_at_end,
    count_if(completed AND status_end = 'studies') AS studies_at_end,
    count_if(completed AND status_end = 'other') AS other_at_end,
    count_if(completed AND status_end = 'unknown') AS unknown_at_end,
    bool_or(followed_up) AS followed_up,
    count_if(completed AND status_90d = 'work') AS work_90d,
    count_if(completed AND status_90d = 'studies') AS studies_90d,
    count_if(completed AND status_90d = 'other') AS other_90d,
    count_if(completed AND status_90d = 'unknown') AS unknown_90d,
    min(target_group) AS target_group_min,
    max(target_group) AS target_group_max
FROM intermediate.participation
GROUP BY cycle, municipality_code;

-- Rule R10's two scopes, the one place their rows are spelled: each participation once per
-- scope it is in, with the 90-day status the scope counts. 'followed_up': the followed-up
-- cycles, their 90-day status; 'all': every cycle, the end status carried forward where the
-- cycle was not followed up. marts.outcomes_summary and the benchmarks by birth region count
-- these rows (outcomes_summary's label names each scope's cycles from reference.cycles, so
-- that a cycle without participations is named too).
CREATE OR REPLACE VIEW intermediate.participation_by_scope AS
SELECT 'followed_up' AS scope, cycle, birth_region, completed, status_end, status_90d
FROM intermediate.participation WHERE followed_up
UNION ALL
SELECT 'all', cycle, birth_region, completed, status_end,
       CASE WHEN followed_up THEN status_90d ELSE status_end END
FROM intermediate.participation;
