/*
 * stats.hpp
 *	  Shared-memory state: one slot per database with the worker's state,
 *	  its schedule, and the counters the status views show.
 */
#pragma once

#include "pg_bridge.hpp"

#include <string>

extern "C"
{
#include "storage/latch.h"
}

namespace rs
{

/* The stages of one tick, in the order they run. */
enum Stage
{
	STAGE_STALE_RUNTIMES = 0,
	STAGE_OFFLINE_TASKS,
	STAGE_STALE_TASKS,
	STAGE_QUEUED_EXPIRY,
	STAGE_RUNTIME_GC,
	STAGE_COUNT
};

/* Name of a stage as sweep() and the views print it. */
const char *stage_name(Stage stage);

/* Counters kept per database. */
enum Counter
{
	C_RUNTIMES_OFFLINE = 0,
	C_TASKS_FAILED_RUNTIME_OFFLINE,
	C_TASKS_FAILED_TIMEOUT,
	C_TASKS_FAILED_QUEUED_EXPIRED,
	C_RETRIES_CREATED,
	C_RETRIES_SKIPPED,
	C_ISSUES_ROLLED_BACK,
	C_AGENTS_RECONCILED,
	C_RUNTIMES_COLLECTED,
	C_GC_HELD_BACK,
	C_EVENTS_SENT,
	C_EVENTS_TRUNCATED,
	C_ANALYTICS_RECORDS,
	C_LIVENESS_CHECKS,
	C_LIVENESS_FALLBACKS,
	C_LIVENESS_KEPT_ALIVE,
	C_MASS_OFFLINE_BLOCKED,
	C_OUTAGE_DEFERRED,
	C_ROWS_SKIPPED,
	COUNTER_COUNT
};

/* Name of a counter as the status view and metrics print it. */
const char *counter_name(Counter counter);

/*
 * Counts gathered while a stage runs, added to shared memory only once the
 * stage's work has committed (or its subtransaction has been released).
 */
struct Tally
{
	uint64		counters[COUNTER_COUNT] = {};
	uint64		affected = 0;

	void		add(Counter c, uint64 n = 1) { counters[c] += n; }
};

/* What the worker is doing, for the status view. */
enum class WorkerState
{
	Starting,
	Idle,
	Sweeping,
	Paused,
	WaitingForSchema,
	Standby,
	Stopped
};

/* Shared-memory plumbing, called from _PG_init and the hooks. */
void		stats_request_shmem();
void		stats_init_shmem();
bool		stats_available();

/*
 * The worker announces itself in its database's slot, and leaves it.
 * Attach fails (false) when another live worker already serves the database.
 */
bool		stats_worker_attach(Oid dboid, const char *dbname, Latch *latch);

/* Pid of the live worker serving a database (by name), or 0. */
pid_t		stats_worker_pid(const char *dbname);
void		stats_worker_detach();
void		stats_worker_state(WorkerState state);
void		stats_tick_started(TimestampTz start);
void		stats_tick_finished(TimestampTz start, TimestampTz end, TimestampTz next);
void		stats_next_tick(TimestampTz next);

/* Adds what a stage did (committed) to the current database's slot. */
void		stats_stage_done(Stage stage, const Tally &tally, int64 duration_us);
void		stats_stage_failed(Stage stage, const char *message);

/* Adds counters that belong to no stage (an explicit agent refresh). */
void		stats_count(const Tally &tally);

/* Liveness health of the current database's worker. */
void		stats_liveness(const char *source, bool healthy, const char *last_error);

/* Sets the latch of this database's worker; false when none runs. */
bool		stats_wake_worker(Oid dboid);

/*
 * For the worker: whether wake() was called since the last call (and
 * forget it).  True when the worker has no slot, so that it ticks.
 */
bool		stats_take_wake_request();

}							/* namespace rs */
