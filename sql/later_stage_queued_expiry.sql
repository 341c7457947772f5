-- sql/stage_queued_expiry.sql again, on the later application schema (nullable runtime_id, 'deferred', prepare_lease_expires_at): same rules, same results.
\set fixture test/fixtures/app_schema_later.sql
\i sql/stage_queued_expiry.sql
