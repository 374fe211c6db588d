-- Every version of every delivery ever built (iga_pipeline/history.py), and
-- which one the warehouse was built from: a re-sent file's old version stays
-- visible, with its hash, as 'superseded'. The log is in the order it was
-- written; a row with no hash says the file was found gone.
CREATE OR REPLACE TABLE staging.delivery_log AS
SELECT * FROM read_parquet({staging} || '/delivery_log.parquet', file_row_number = true);

-- One row per period in which a version was the file's: from the build that first read it
-- (first_built) until a build first read another version or found the file gone (ended).
-- A version that came back after another (v1, v2, v1) has a period of its own each time.
CREATE OR REPLACE TABLE marts.delivery_history AS
WITH periods AS (
    SELECT *,
        lead(first_built) OVER path AS ended,
        -- a later version of the file, not only a removal
        count(sha256) OVER (PARTITION BY source_file ORDER BY file_row_number
                            ROWS BETWEEN 1 FOLLOWING AND UNBOUNDED FOLLOWING) AS later_versions
    FROM staging.delivery_log
    WINDOW path AS (PARTITION BY source_file ORDER BY file_row_number)
)
SELECT
    p.source_file::VARCHAR AS source_file,
    p.sha256::VARCHAR AS sha256,
    p.first_built,
    CASE WHEN p.ended IS NULL AND a.sha256 = p.sha256 THEN 'current'
         WHEN a.source_file IS NULL AND p.later_versions = 0 THEN 'removed'
         ELSE 'superseded' END AS status,
    p.source_kind::VARCHAR AS source_kind,
    p.cycle::INTEGER AS cycle,
    p.ended
FROM periods AS p
LEFT JOIN staging.audit AS a USING (source_file)
WHERE p.sha256 IS NOT NULL
ORDER BY source_file, first_built, sha256;
