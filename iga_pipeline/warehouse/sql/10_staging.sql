-- Staging: the harmonised Parquet files of every cycle, as tables.
-- {staging} is replaced by the staging folder (quoted by the caller). The staged outcomes
-- (outcomes.parquet) are not loaded: the participations carry their statuses.
-- Every row of a cycle's folder (cycle=N) has that `cycle` (hive partitioning); the rows of
-- no cycle are the inventory's issues. An incremental build replaces a changed cycle's rows
-- with this same query's rows of that cycle (warehouse/build.py, `_replace_cycles`), and
-- DuckDB then reads only that cycle's files.
CREATE SCHEMA IF NOT EXISTS staging;

CREATE OR REPLACE TABLE staging.participations AS
SELECT * FROM read_parquet({staging} || '/cycle=*/participations.parquet', union_by_name = true, hive_partitioning = true);

CREATE OR REPLACE TABLE staging.interventions AS
SELECT * FROM read_parquet({staging} || '/cycle=*/interventions.parquet', union_by_name = true, hive_partitioning = true);

CREATE OR REPLACE TABLE staging.survey_responses AS
SELECT * FROM read_parquet({staging} || '/cycle=*/survey_responses.parquet', union_by_name = true, hive_partitioning = true);

CREATE OR REPLACE TABLE staging.followup AS
SELECT * FROM read_parquet({staging} || '/cycle=*/followup.parquet', union_by_name = true, hive_partitioning = true);

CREATE OR REPLACE TABLE staging.issues AS
SELECT * FROM read_parquet({staging} || '/cycle=*/issues.parquet', union_by_name = true, hive_partitioning = true)
UNION ALL BY NAME
SELECT * FROM read_parquet({staging} || '/inventory_issues.parquet');

CREATE OR REPLACE TABLE staging.audit AS
SELECT * FROM read_parquet({staging} || '/cycle=*/audit.parquet', union_by_name = true, hive_partitioning = true);
