-- Settings (SPEC section 6): defaults, units, rejected values, reserved prefix, privileges.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS runtime_sweeper;
RESET client_min_messages;

-- Every setting with its default, unit and context: database (reload) and
-- role (restart) belong to the worker; every other one is superuser-settable.
SELECT name, setting, unit, context, vartype
FROM pg_settings
WHERE name LIKE 'runtime_sweeper.%'
ORDER BY name;

-- redis_url is left out of pg_settings (its reset_val would show a password
-- set in postgresql.conf); SHOW gives its default.
SHOW runtime_sweeper.redis_url;

-- Time settings read back with their natural unit.
SHOW runtime_sweeper.interval;
SHOW runtime_sweeper.stale_threshold;
SHOW runtime_sweeper.dispatch_timeout;
SHOW runtime_sweeper.running_timeout;
SHOW runtime_sweeper.queued_ttl;
SHOW runtime_sweeper.offline_ttl;
SHOW runtime_sweeper.redis_timeout;

-- Units are accepted: seconds, minutes, hours, days, milliseconds.
SET runtime_sweeper.stale_threshold = '150s';
SHOW runtime_sweeper.stale_threshold;
SET runtime_sweeper.dispatch_timeout = '90s';
SHOW runtime_sweeper.dispatch_timeout;
SET runtime_sweeper.running_timeout = '3h';
SHOW runtime_sweeper.running_timeout;
SET runtime_sweeper.queued_ttl = '2h';
SHOW runtime_sweeper.queued_ttl;
SET runtime_sweeper.offline_ttl = '7d';
SELECT setting, unit FROM pg_settings WHERE name = 'runtime_sweeper.offline_ttl';
SET runtime_sweeper.redis_timeout = '250ms';
SHOW runtime_sweeper.redis_timeout;
SET runtime_sweeper.interval = '1min';
SELECT setting, unit FROM pg_settings WHERE name = 'runtime_sweeper.interval';
SET runtime_sweeper.lock_timeout = '2s';
SHOW runtime_sweeper.lock_timeout;
-- A bare number is in the setting's base unit (seconds here).
SET runtime_sweeper.stale_threshold = 45;
SHOW runtime_sweeper.stale_threshold;
-- Any positive threshold is accepted, down to one second.
SET runtime_sweeper.stale_threshold = '1s';
SHOW runtime_sweeper.stale_threshold;
RESET ALL;

-- Negative and zero thresholds are rejected.
SET runtime_sweeper.stale_threshold = '-5s';
SET runtime_sweeper.stale_threshold = 0;
SET runtime_sweeper.dispatch_timeout = '-1min';
SET runtime_sweeper.running_timeout = '-1h';
SET runtime_sweeper.queued_ttl = '-2h';
SET runtime_sweeper.offline_ttl = '-7d';
SET runtime_sweeper.reconnect_grace = '-1s';
-- A reconnect grace of 0 is meaningful (the original: fail at once).
SET runtime_sweeper.reconnect_grace = 0;
SHOW runtime_sweeper.reconnect_grace;
-- The tick interval has a floor of 100 ms.
SET runtime_sweeper.interval = '99ms';
SET runtime_sweeper.interval = '100ms';
SHOW runtime_sweeper.interval;
-- Unknown units are rejected.
SET runtime_sweeper.stale_threshold = '150 fortnights';

-- Batch sizes must be at least 1.
SET runtime_sweeper.queued_batch_size = 0;
SET runtime_sweeper.task_batch_size = 0;
SET runtime_sweeper.gc_batch_size = -1;
SET runtime_sweeper.queued_batch_size = 1;
SHOW runtime_sweeper.queued_batch_size;

-- The mass-offline guard is a share between 0 and 1.
SET runtime_sweeper.mass_offline_guard = 1.5;
SET runtime_sweeper.mass_offline_guard = -0.1;
SET runtime_sweeper.mass_offline_guard = 0.5;
SHOW runtime_sweeper.mass_offline_guard;

-- The liveness source is one of none, relation, redis.
SET runtime_sweeper.liveness = 'memcached';
SET runtime_sweeper.liveness = 'relation';
SHOW runtime_sweeper.liveness;

-- A malformed Redis URL is rejected with what is wrong, never echoing the URL.
SET runtime_sweeper.redis_url = 'localhost:6379';
SET runtime_sweeper.redis_url = 'redis://localhost:99999';
SET runtime_sweeper.redis_url = 'redis://localhost:port';
SET runtime_sweeper.redis_url = 'redis://:s3cret@localhost:0/1';
SET runtime_sweeper.redis_url = 'redis://localhost:6379/db';
SET runtime_sweeper.redis_url = 'redis://:6379';
SET runtime_sweeper.redis_url = 'unix://relative/socket';
-- Well-formed URLs are accepted; SHOW masks the password, even for a superuser.
SET runtime_sweeper.redis_url = 'redis://:s3cret@cache.internal:6380/2';
SHOW runtime_sweeper.redis_url;
SELECT current_setting('runtime_sweeper.redis_url');
SET runtime_sweeper.redis_url = 'redis://user:s3cret@cache.internal';
SHOW runtime_sweeper.redis_url;
SET runtime_sweeper.redis_url = 'unix:///var/run/redis/redis.sock';
SHOW runtime_sweeper.redis_url;

-- Identifier settings: app_schema and notify_channel must not be empty,
-- analytics_channel may be (no analytics records), none may exceed 63 bytes.
SET runtime_sweeper.app_schema = '';
SET runtime_sweeper.notify_channel = '';
SET runtime_sweeper.analytics_channel = '';
SHOW runtime_sweeper.analytics_channel;
SET runtime_sweeper.app_schema = 'a23456789b123456789c123456789d123456789e123456789f123456789g1234';
SET runtime_sweeper.notify_channel = 'a23456789b123456789c123456789d123456789e123456789f123456789g1234';
-- Exactly 63 bytes is fine.
SET runtime_sweeper.app_schema = 'a23456789b123456789c123456789d123456789e123456789f123456789g123';
SHOW runtime_sweeper.app_schema;
RESET ALL;

-- The key prefix is bounded.
SELECT set_config('runtime_sweeper.redis_key_prefix', repeat('k', 201), false);
SELECT length(set_config('runtime_sweeper.redis_key_prefix', repeat('k', 200), false));
RESET runtime_sweeper.redis_key_prefix;

-- database and role are the worker's: never set in a session.
SET runtime_sweeper.database = 'other';
SET runtime_sweeper.role = 'other';

-- The runtime_sweeper prefix is reserved: a misspelt setting is an error, not
-- a silently ignored placeholder.
SET runtime_sweeper.bogus = 1;
SET runtime_sweeper.stale_treshold = '10s';

-- Bad values are also refused in per-role settings (ALTER ROLE ... SET).
CREATE ROLE regress_rs_settings;
ALTER ROLE regress_rs_settings SET runtime_sweeper.liveness = 'memcached';
ALTER ROLE regress_rs_settings SET runtime_sweeper.queued_ttl = '-1h';
ALTER ROLE regress_rs_settings SET runtime_sweeper.queued_ttl = '30min';
-- A Redis password is never stored where every role can read it.
ALTER ROLE regress_rs_settings SET runtime_sweeper.redis_url = 'redis://:s3cret@cache.internal:6380';
SELECT unnest(setconfig) AS role_setting
FROM pg_db_role_setting s JOIN pg_roles r ON r.oid = s.setrole
WHERE r.rolname = 'regress_rs_settings';
ALTER ROLE regress_rs_settings RESET ALL;

-- A non-superuser reads the ordinary settings, but cannot change any of them
-- (PGC_SUSET) and cannot see the Redis URL (it may hold a password).
SET runtime_sweeper.redis_url = 'redis://:s3cret@cache.internal:6380/2';
SET ROLE regress_rs_settings;
SHOW runtime_sweeper.stale_threshold;
SET runtime_sweeper.stale_threshold = '10s';
SET runtime_sweeper.enabled = off;
SET runtime_sweeper.app_schema = 'elsewhere';
SET runtime_sweeper.event_log = on;
SELECT set_config('runtime_sweeper.notify_channel', 'spy', false);
SHOW runtime_sweeper.redis_url;
SELECT current_setting('runtime_sweeper.redis_url');
SELECT count(*) AS visible_redis_url FROM pg_settings WHERE name = 'runtime_sweeper.redis_url';
SELECT count(*) FILTER (WHERE setting LIKE '%s3cret%') AS leaked FROM pg_settings;
RESET ROLE;
-- The superuser's values are unchanged by the attempts above.
SHOW runtime_sweeper.stale_threshold;
SHOW runtime_sweeper.notify_channel;
RESET ALL;

DROP ROLE regress_rs_settings;
