/*
 * predicates.hpp
 *	  The selection rule of each stage, shared by the stage (which writes)
 *	  and preview() (which only reads), so the two can never disagree.
 *	  Parameters are numbered per statement: each macro takes its own.
 */
#pragma once

/* Stage 1, on runtime r: $s the stale threshold. */
#define STALE_RUNTIME_PREDICATE(s) \
	"r.status = 'online' AND r.last_seen_at < pg_catalog.now() - " s

/* offline_tasks, on task t joined to its runtime r: $g the grace. */
#define OFFLINE_TASK_PREDICATE(g) \
	"r.status = 'offline'" \
	" AND t.status IN ('dispatched', 'running', 'waiting_local_directory')" \
	" AND (" g " <= '0'::interval" \
	"      OR COALESCE(r.last_seen_at, r.updated_at) < pg_catalog.now() - " g ")"

/*
 * Stage 2, on task t left-joined to its runtime r: $d the dispatch timeout,
 * $r the running timeout, $g the reconnect grace, $th the stale threshold.
 * With a grace, a running task fails only when its runtime cannot prove
 * liveness within the grace, and a dispatched one only when its runtime is
 * gone, online and fresh (it had every chance to start the task), or silent
 * beyond the grace.  A dispatched task whose prepare lease is still in the
 * future is never timed out (@LEASE_GUARD@, when the column exists).
 */
#define STALE_TASK_PREDICATE(d, r, g, th) \
	"((t.status = 'dispatched' AND t.dispatched_at < pg_catalog.now() - " d "@LEASE_GUARD@" \
	"  AND (" g " <= '0'::interval OR r.id IS NULL" \
	"       OR (r.status = 'online' AND r.last_seen_at >= pg_catalog.now() - " th ")" \
	"       OR COALESCE(r.last_seen_at, r.updated_at) < pg_catalog.now() - " g "))" \
	" OR (t.status = 'running' AND t.started_at < pg_catalog.now() - " r \
	"  AND (" g " <= '0'::interval OR r.id IS NULL" \
	"       OR COALESCE(r.last_seen_at, r.updated_at) < pg_catalog.now() - " g ")))"

/* Stage 3, on task t: $ttl the queued TTL. */
#define QUEUED_EXPIRY_PREDICATE(ttl) \
	"t.status = 'queued' AND t.created_at < pg_catalog.now() - " ttl

/*
 * Stage 4, on runtime r: $ttl the offline TTL.  NOT EXISTS, not NOT IN: one
 * agent with a NULL runtime_id must not stop collection for everyone.
 */
#define GC_PREDICATE(ttl) GC_BASE_PREDICATE(ttl) "@HISTORY_GUARD@"

/* GC_PREDICATE without the gc_keep_history guard. */
#define GC_BASE_PREDICATE(ttl) \
	"r.status = 'offline' AND r.last_seen_at < pg_catalog.now() - " ttl \
	" AND NOT EXISTS (SELECT 1 FROM @S@.agent a WHERE a.runtime_id = r.id)" \
	" AND NOT EXISTS (SELECT 1 FROM @S@.agent_task_queue t WHERE t.runtime_id = r.id" \
	"                 AND t.status IN ('queued', 'dispatched', 'running', 'waiting_local_directory', 'deferred'))"
