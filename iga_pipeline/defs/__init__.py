"""The Dagster layer: assets, checks, jobs, schedule and sensors over the pipeline code
(definitions.py assembles them). The rules of rows and marts live outside it; what
lives here is orchestration: which runs may build (`assets.refuse_*`), when the marts
wait or rebuild (`assets.MARTS_AUTOMATION`, `automation.py`) and when a build publishes
(`assets.published_warehouse`)."""
