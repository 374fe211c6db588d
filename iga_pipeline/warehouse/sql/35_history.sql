-- Every version of every delivery ever built (iga_pipeline/history.py), and
-- which one the warehouse was built from: a re-sent file's old version stays
-- visible, with its hash, as 'superseded'.
CREATE OR REPLACE TABLE staging.delivery_log AS
SELECT * FROM read_parquet({staging} || '/delivery_log.parquet');

CREATE OR REPLACE TABLE marts.delivery_history AS
SELECT
    l.source_file::VARCHAR AS source_file,
    l.sha256::VARCHAR AS sha256,
    l.first_built,
    CASE WHEN a.sha256 = l.sha256 THEN 'current'
         WHEN a.source_file IS NOT NULL THEN 'superseded'
         ELSE 'removed' END AS status,
    l.source_kind::VARCHAR AS source_kind,
    l.cycle::INTEGER AS cycle
FROM staging.delivery_log AS l
LEFT JOIN staging.audit AS a USING (source_file)
ORDER BY source_file, first_built, sha256;
