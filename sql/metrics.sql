-- runtime_sweeper.metrics(): the Prometheus text format an exporter scrapes.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS runtime_sweeper;
RESET client_min_messages;
CREATE SCHEMA t_metrics;
SET search_path = t_metrics, public;
\set ECHO none
\i test/fixtures/app_schema.sql
\i test/fixtures/sample_data.sql
\set ECHO all
SET runtime_sweeper.app_schema = t_metrics;

-- A database's series appear once it has swept (worker or SQL API).
SELECT count(*) AS nothing_due FROM runtime_sweeper.fail_stale_tasks();

CREATE TEMP VIEW scrape AS
SELECT line FROM regexp_split_to_table(runtime_sweeper.metrics(), E'\n') AS line WHERE line <> '';

-- Every line is a comment or a sample: name{labels} number.
SELECT count(*) AS malformed FROM scrape
WHERE line !~ '^# (HELP|TYPE) runtime_sweeper_[a-z_]+ '
  AND line !~ '^runtime_sweeper_[a-z_]+\{database="([^"\\]|\\.)*"(,[a-z]+="([^"\\]|\\.)*")?\} -?[0-9.e+]+$';

-- Every family has one HELP and one TYPE line, counters end in _total.
SELECT count(*) FILTER (WHERE line LIKE '# HELP %') = count(*) FILTER (WHERE line LIKE '# TYPE %') AS help_per_type,
       count(*) FILTER (WHERE line ~ '^# TYPE runtime_sweeper_[a-z_]+ counter$'
                          AND line !~ '_total counter$') AS counters_without_total
FROM scrape;

-- The families an operator alerts on are there, with the database label.
SELECT DISTINCT substring(line from '^runtime_sweeper_[a-z_]+') AS family
FROM scrape
WHERE line LIKE '%database="contrib_regression"%'
  AND substring(line from '^runtime_sweeper_[a-z_]+') IN
      ('runtime_sweeper_up', 'runtime_sweeper_stage_errors_total', 'runtime_sweeper_tasks_failed_total',
       'runtime_sweeper_liveness_fallbacks_total', 'runtime_sweeper_due_rows')
ORDER BY 1;

-- tasks_failed_total has one series per reason; due_rows one per stage.
SELECT substring(line from 'reason="([a-z_]+)"') AS reason
FROM scrape WHERE line LIKE 'runtime_sweeper_tasks_failed_total{database="contrib_regression"%' ORDER BY 1;

-- due_rows counts what each stage would change now.
SELECT fx_workspace() AS ws \gset
SELECT fx_runtime(:'ws', 'online', '1 h') AS rt \gset
SELECT fx_agent(:'ws', :'rt') AS agent \gset
SELECT fx_task(:'agent', :'rt', NULL, 'queued', '3 h') IS NOT NULL AS queued_task;
SELECT fx_task(:'agent', :'rt', NULL, 'queued', '4 h') IS NOT NULL AS queued_task;
SELECT line FROM scrape WHERE line LIKE 'runtime_sweeper_due_rows{database="contrib_regression"%';

-- A failed task moves its reason's counter.
SELECT substring(line from ' ([0-9]+)$')::int AS before
FROM scrape WHERE line LIKE 'runtime_sweeper_tasks_failed_total{database="contrib_regression",reason="queued_expired"}%' \gset
SELECT count(*) FROM runtime_sweeper.expire_queued_tasks();
SELECT substring(line from ' ([0-9]+)$')::int - :before AS expired_delta
FROM scrape WHERE line LIKE 'runtime_sweeper_tasks_failed_total{database="contrib_regression",reason="queued_expired"}%';

-- Without the application tables the counters are still served.
SET runtime_sweeper.app_schema = t_metrics_missing;
SELECT count(*) > 0 AS counters_served, bool_and(line NOT LIKE 'runtime_sweeper_due_rows%') AS no_due_rows FROM scrape;

RESET runtime_sweeper.app_schema;
SET client_min_messages = warning;
DROP SCHEMA t_metrics CASCADE;
