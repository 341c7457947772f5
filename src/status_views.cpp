/*
 * status_views.cpp
 *	  The functions behind the runtime_sweeper.status and stage_status views.
 */
#include "stats_slots.hpp"

#include <cstring>

extern "C"
{
#include "utils/tuplestore.h"
}

using namespace rs;

/*
 * SQL-callable functions behind the views.  They copy the slots under the
 * spinlock and build tuples afterwards; no C++ object is alive while they
 * call into PostgreSQL, so they need no exception boundary.
 */
extern "C"
{

PG_FUNCTION_INFO_V1(runtime_sweeper_status);
PG_FUNCTION_INFO_V1(runtime_sweeper_stage_status);

/* Interval datum from microseconds. */
static Datum
interval_from_us(int64 us)
{
	Interval   *iv = static_cast<Interval *>(palloc0(sizeof(Interval)));

	iv->time = us;
	return IntervalPGetDatum(iv);
}

/* One row per database: the worker, its schedule, liveness and counters. */
Datum
runtime_sweeper_status(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = reinterpret_cast<ReturnSetInfo *>(fcinfo->resultinfo);
	DbSlot	   *slots = static_cast<DbSlot *>(palloc(sizeof(DbSlot) * MAX_SLOTS));
	int			n;

	InitMaterializedSRF(fcinfo, 0);
	n = copy_slots(slots);
	for (int i = 0; i < n; i++)
	{
		DbSlot	   *s = &slots[i];
		const int	fixed = 12;
		Datum		values[fixed + rs::COUNTER_COUNT];
		bool		nulls[fixed + rs::COUNTER_COUNT];
		uint64		errors = 0;

		memset(nulls, 0, sizeof(nulls));
		for (int st = 0; st < rs::STAGE_COUNT; st++)
			errors += s->stages[st].errors;

		values[0] = slot_dbname(s);
		values[1] = Int32GetDatum(s->worker_pid);
		nulls[1] = s->worker_pid == 0;
		values[2] = CStringGetTextDatum(s->worker_pid == 0 ? "stopped" : state_name(s->state));
		values[3] = Int64GetDatum(static_cast<int64>(s->ticks));
		values[4] = TimestampTzGetDatum(s->last_tick_start);
		nulls[4] = s->last_tick_start == 0;
		values[5] = interval_from_us(s->last_tick_us);
		nulls[5] = s->ticks == 0;
		values[6] = TimestampTzGetDatum(s->next_tick);
		nulls[6] = s->next_tick == 0 || s->worker_pid == 0;
		values[7] = CStringGetTextDatum(s->liveness_source);
		values[8] = BoolGetDatum(s->liveness_healthy);
		values[9] = CStringGetTextDatum(s->liveness_error);
		nulls[9] = s->liveness_error[0] == '\0';
		values[10] = Int64GetDatum(static_cast<int64>(errors));
		values[11] = Int64GetDatum(0);
		for (int c = 0; c < rs::COUNTER_COUNT; c++)
			values[fixed + c] = Int64GetDatum(static_cast<int64>(s->counters[c]));
		/* column 11: total tasks failed, the number operators look at first */
		values[11] = Int64GetDatum(static_cast<int64>(s->counters[rs::C_TASKS_FAILED_RUNTIME_OFFLINE] +
													  s->counters[rs::C_TASKS_FAILED_TIMEOUT] +
													  s->counters[rs::C_TASKS_FAILED_QUEUED_EXPIRED]));
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

/* One row per database and stage. */
Datum
runtime_sweeper_stage_status(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = reinterpret_cast<ReturnSetInfo *>(fcinfo->resultinfo);
	DbSlot	   *slots = static_cast<DbSlot *>(palloc(sizeof(DbSlot) * MAX_SLOTS));
	int			n;

	InitMaterializedSRF(fcinfo, 0);
	n = copy_slots(slots);
	for (int i = 0; i < n; i++)
	{
		for (int st = 0; st < rs::STAGE_COUNT; st++)
		{
			StageSlot  *g = &slots[i].stages[st];
			Datum		values[8];
			bool		nulls[8];

			memset(nulls, 0, sizeof(nulls));
			values[0] = slot_dbname(&slots[i]);
			values[1] = CStringGetTextDatum(stage_names[st]);
			values[2] = Int64GetDatum(static_cast<int64>(g->runs));
			values[3] = Int64GetDatum(static_cast<int64>(g->affected));
			values[4] = Int64GetDatum(static_cast<int64>(g->errors));
			values[5] = interval_from_us(g->last_duration_us);
			nulls[5] = g->runs == 0 || g->runs == g->errors;
			values[6] = CStringGetTextDatum(g->last_error);
			nulls[6] = g->last_error[0] == '\0';
			values[7] = TimestampTzGetDatum(g->last_error_at);
			nulls[7] = g->last_error_at == 0;
			tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
		}
	}
	return (Datum) 0;
}

}							/* extern "C" */

