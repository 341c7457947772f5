/*
 * stats_slots.hpp
 *	  The layout of a database's slot in shared memory, shared by the code
 *	  that writes it (stats.cpp) and the functions that read it (the status
 *	  views, metrics()).  Internal: nothing outside those files includes it.
 */
#pragma once

#include "stats.hpp"

namespace rs
{

constexpr int MAX_SLOTS = 32;
constexpr int ERROR_TEXT = 256;

struct StageSlot
{
	uint64		runs;
	uint64		affected;
	uint64		errors;
	int64		last_duration_us;
	TimestampTz last_error_at;
	char		last_error[ERROR_TEXT];
};

struct DbSlot
{
	bool		in_use;
	Oid			dboid;
	char		dbname[NAMEDATALEN];
	pid_t		worker_pid;
	Latch	   *worker_latch;
	bool		wake_requested; /* wake() since the worker last looked */
	WorkerState state;
	uint64		ticks;
	TimestampTz last_tick_start;
	int64		last_tick_us;
	TimestampTz next_tick;
	char		liveness_source[16];
	bool		liveness_healthy;
	char		liveness_error[ERROR_TEXT];
	uint64		counters[COUNTER_COUNT];
	StageSlot	stages[STAGE_COUNT];
};

extern const char *const stage_names[STAGE_COUNT];
extern const char *const counter_names[COUNTER_COUNT];

/* Name of a worker state as the status view prints it. */
const char *state_name(WorkerState state);

/* Copies the slots in use (copy has room for MAX_SLOTS); returns how many. */
int			copy_slots(DbSlot *copy);

/*
 * The database name of a slot as a text Datum.  A slot first claimed by a
 * SQL API call (not by a worker) has no stored name: it is looked up by OID
 * ("" if the database is gone).  Call outside the spinlock.
 */
Datum		slot_dbname(const DbSlot *s);

}							/* namespace rs */
