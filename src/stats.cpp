/*
 * stats.cpp
 *	  Shared-memory slots (one per database) and the functions behind the
 *	  runtime_sweeper.status and runtime_sweeper.stage_status views.
 *
 * A spinlock guards the whole array: every critical section copies a few
 * hundred bytes at most, and the worker touches it a handful of times per
 * tick, so finer locking would buy nothing.
 */
#include "stats.hpp"

#include "settings.hpp"

#include <cerrno>
#include <csignal>
#include <cstring>

extern "C"
{
#include "commands/dbcommands.h"
#include "mb/pg_wchar.h"
#include "lib/stringinfo.h"
#include "storage/ipc.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#include "storage/spin.h"
#include "utils/tuplestore.h"
}

namespace
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
	rs::WorkerState state;
	uint64		ticks;
	TimestampTz last_tick_start;
	int64		last_tick_us;
	TimestampTz next_tick;
	char		liveness_source[16];
	bool		liveness_healthy;
	char		liveness_error[ERROR_TEXT];
	uint64		counters[rs::COUNTER_COUNT];
	StageSlot	stages[rs::STAGE_COUNT];
};

struct SharedState
{
	slock_t		mutex;
	DbSlot		slots[MAX_SLOTS];
};

SharedState *shared = nullptr;
DbSlot	   *my_worker_slot = nullptr;

const char *const stage_names[rs::STAGE_COUNT] = {
	"stale_runtimes", "offline_tasks", "stale_tasks", "queued_expiry", "runtime_gc"
};

const char *const counter_names[rs::COUNTER_COUNT] = {
	"runtimes_offline",
	"tasks_failed_runtime_offline",
	"tasks_failed_timeout",
	"tasks_failed_queued_expired",
	"retries_created",
	"retries_skipped",
	"issues_rolled_back",
	"agents_reconciled",
	"runtimes_collected",
	"gc_held_back",
	"events_sent",
	"events_truncated",
	"analytics_records",
	"liveness_checks",
	"liveness_fallbacks",
	"liveness_kept_alive",
	"mass_offline_blocked",
	"outage_deferred",
	"rows_skipped",
};

const char *
state_name(rs::WorkerState state)
{
	switch (state)
	{
		case rs::WorkerState::Starting:
			return "starting";
		case rs::WorkerState::Idle:
			return "idle";
		case rs::WorkerState::Sweeping:
			return "sweeping";
		case rs::WorkerState::Paused:
			return "paused";
		case rs::WorkerState::WaitingForSchema:
			return "waiting for schema";
		case rs::WorkerState::Standby:
			return "standby";
		case rs::WorkerState::Stopped:
			return "stopped";
	}
	return "unknown";
}

/*
 * The slot of a database, claimed when first needed.  Caller holds the
 * mutex.  NULL when every slot is taken by other databases.
 */
DbSlot *
slot_for(Oid dboid, const char *dbname)
{
	DbSlot	   *free_slot = nullptr;

	for (int i = 0; i < MAX_SLOTS; i++)
	{
		DbSlot	   *slot = &shared->slots[i];

		if (slot->in_use && slot->dboid == dboid)
			return slot;
		if (!slot->in_use && free_slot == nullptr)
			free_slot = slot;
	}
	if (free_slot != nullptr)
	{
		memset(free_slot, 0, sizeof(DbSlot));
		free_slot->in_use = true;
		free_slot->dboid = dboid;
		free_slot->state = rs::WorkerState::Stopped;
		strlcpy(free_slot->dbname, dbname ? dbname : "", NAMEDATALEN);
		strlcpy(free_slot->liveness_source, "none", sizeof(free_slot->liveness_source));
		free_slot->liveness_healthy = true;
	}
	return free_slot;
}

/* The slot of the current database; the name is only needed to claim one. */
DbSlot *
my_slot()
{
	if (my_worker_slot != nullptr)
		return my_worker_slot;
	return slot_for(MyDatabaseId, nullptr);
}

/* Clears the worker's fields when the worker process exits, however it exits. */
void
worker_exit_callback(int code, Datum arg)
{
	rs::stats_worker_detach();
}

}							/* namespace */

namespace rs
{

const char *
stage_name(Stage stage)
{
	return stage_names[stage];
}

const char *
counter_name(Counter counter)
{
	return counter_names[counter];
}

void
stats_request_shmem()
{
	RequestAddinShmemSpace(MAXALIGN(sizeof(SharedState)));
}

/* Creates or attaches to the shared state; called from shmem_startup_hook. */
void
stats_init_shmem()
{
	bool		found;

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	shared = static_cast<SharedState *>(ShmemInitStruct("runtime_sweeper", sizeof(SharedState), &found));
	if (!found)
	{
		memset(shared, 0, sizeof(SharedState));
		SpinLockInit(&shared->mutex);
	}
	LWLockRelease(AddinShmemInitLock);
}

bool
stats_available()
{
	return shared != nullptr;
}

/* Whether a process with this pid exists (it may not be ours to signal). */
static bool
process_alive(pid_t pid)
{
	return pid != 0 && (kill(pid, 0) == 0 || errno == EPERM);
}

bool
stats_worker_attach(Oid dboid, const char *dbname, Latch *latch)
{
	if (!shared)
		return true;
	SpinLockAcquire(&shared->mutex);
	my_worker_slot = slot_for(dboid, dbname);
	if (my_worker_slot && my_worker_slot->worker_pid != 0 &&
		my_worker_slot->worker_pid != MyProcPid && process_alive(my_worker_slot->worker_pid))
	{
		SpinLockRelease(&shared->mutex);
		my_worker_slot = nullptr;
		return false;
	}
	if (my_worker_slot)
	{
		strlcpy(my_worker_slot->dbname, dbname, NAMEDATALEN);
		my_worker_slot->worker_pid = MyProcPid;
		my_worker_slot->worker_latch = latch;
		my_worker_slot->wake_requested = false;
		my_worker_slot->state = WorkerState::Starting;
		my_worker_slot->next_tick = 0;
	}
	SpinLockRelease(&shared->mutex);
	before_shmem_exit(worker_exit_callback, (Datum) 0);
	return true;
}

pid_t
stats_worker_pid(const char *dbname)
{
	pid_t		pid = 0;

	if (!shared)
		return 0;
	SpinLockAcquire(&shared->mutex);
	for (int i = 0; i < MAX_SLOTS; i++)
	{
		DbSlot	   *slot = &shared->slots[i];

		if (slot->in_use && slot->worker_pid != 0 && strcmp(slot->dbname, dbname) == 0)
			pid = slot->worker_pid;
	}
	SpinLockRelease(&shared->mutex);
	return process_alive(pid) ? pid : 0;
}

void
stats_worker_detach()
{
	if (!shared || !my_worker_slot)
		return;
	SpinLockAcquire(&shared->mutex);
	if (my_worker_slot->worker_pid == MyProcPid)
	{
		my_worker_slot->worker_pid = 0;
		my_worker_slot->worker_latch = nullptr;
		my_worker_slot->state = WorkerState::Stopped;
		my_worker_slot->next_tick = 0;
	}
	SpinLockRelease(&shared->mutex);
	my_worker_slot = nullptr;
}

void
stats_worker_state(WorkerState state)
{
	if (!shared || !my_worker_slot)
		return;
	SpinLockAcquire(&shared->mutex);
	my_worker_slot->state = state;
	SpinLockRelease(&shared->mutex);
}

void
stats_tick_started(TimestampTz start)
{
	if (!shared || !my_worker_slot)
		return;
	SpinLockAcquire(&shared->mutex);
	my_worker_slot->state = WorkerState::Sweeping;
	my_worker_slot->last_tick_start = start;
	SpinLockRelease(&shared->mutex);
}

void
stats_tick_finished(TimestampTz start, TimestampTz end, TimestampTz next)
{
	if (!shared || !my_worker_slot)
		return;
	SpinLockAcquire(&shared->mutex);
	my_worker_slot->ticks++;
	my_worker_slot->last_tick_us = end - start;
	my_worker_slot->next_tick = next;
	my_worker_slot->state = WorkerState::Idle;
	SpinLockRelease(&shared->mutex);
}

void
stats_next_tick(TimestampTz next)
{
	if (!shared || !my_worker_slot)
		return;
	SpinLockAcquire(&shared->mutex);
	my_worker_slot->next_tick = next;
	SpinLockRelease(&shared->mutex);
}

void
stats_stage_done(Stage stage, const Tally &tally, int64 duration_us)
{
	if (!shared)
		return;
	SpinLockAcquire(&shared->mutex);
	DbSlot	   *slot = my_slot();

	if (slot)
	{
		for (int i = 0; i < COUNTER_COUNT; i++)
			slot->counters[i] += tally.counters[i];
		/* gc_held_back is a gauge: how many runtimes the last GC run kept */
		if (stage == STAGE_RUNTIME_GC)
			slot->counters[C_GC_HELD_BACK] = tally.counters[C_GC_HELD_BACK];
		slot->stages[stage].runs++;
		slot->stages[stage].affected += tally.affected;
		slot->stages[stage].last_duration_us = duration_us;
	}
	SpinLockRelease(&shared->mutex);
}

void
stats_count(const Tally &tally)
{
	if (!shared)
		return;
	SpinLockAcquire(&shared->mutex);
	DbSlot	   *slot = my_slot();

	if (slot)
		for (int i = 0; i < COUNTER_COUNT; i++)
			slot->counters[i] += tally.counters[i];
	SpinLockRelease(&shared->mutex);
}

/*
 * Bytes of text that fit an ERROR_TEXT buffer (with its terminator), cut
 * on a character boundary: an error text may be any length and any
 * multibyte text, and the views must return valid text.
 */
static int
clip_len(const char *text)
{
	return pg_mbcliplen(text, static_cast<int>(strnlen(text, 1024 * 1024)), ERROR_TEXT - 1);
}

void
stats_stage_failed(Stage stage, const char *message)
{
	if (!shared)
		return;

	TimestampTz now = GetCurrentTimestamp();
	const char *text = message ? message : "";
	int			len = clip_len(text);

	SpinLockAcquire(&shared->mutex);
	DbSlot	   *slot = my_slot();

	if (slot)
	{
		slot->stages[stage].runs++;
		slot->stages[stage].errors++;
		slot->stages[stage].last_error_at = now;
		memcpy(slot->stages[stage].last_error, text, len);
		slot->stages[stage].last_error[len] = '\0';
	}
	SpinLockRelease(&shared->mutex);
}

void
stats_liveness(const char *source, bool healthy, const char *last_error)
{
	if (!shared)
		return;

	int			len = last_error ? clip_len(last_error) : 0;

	SpinLockAcquire(&shared->mutex);
	DbSlot	   *slot = my_slot();

	if (slot)
	{
		strlcpy(slot->liveness_source, source, sizeof(slot->liveness_source));
		slot->liveness_healthy = healthy;
		if (last_error)
		{
			memcpy(slot->liveness_error, last_error, len);
			slot->liveness_error[len] = '\0';
		}
	}
	SpinLockRelease(&shared->mutex);
}

bool
stats_wake_worker(Oid dboid)
{
	Latch	   *latch = nullptr;

	if (!shared)
		return false;
	SpinLockAcquire(&shared->mutex);
	for (int i = 0; i < MAX_SLOTS; i++)
	{
		DbSlot	   *slot = &shared->slots[i];

		if (slot->in_use && slot->dboid == dboid && slot->worker_pid != 0)
		{
			latch = slot->worker_latch;
			slot->wake_requested = true;
		}
	}
	SpinLockRelease(&shared->mutex);
	if (latch == nullptr)
		return false;
	SetLatch(latch);
	return true;
}

bool
stats_take_wake_request()
{
	bool		requested;

	if (!shared || !my_worker_slot)
		return true;
	SpinLockAcquire(&shared->mutex);
	requested = my_worker_slot->wake_requested;
	my_worker_slot->wake_requested = false;
	SpinLockRelease(&shared->mutex);
	return requested;
}

}							/* namespace rs */

/*
 * SQL-callable functions behind the views.  They copy the slots under the
 * spinlock and build tuples afterwards; no C++ object is alive while they
 * call into PostgreSQL, so they need no exception boundary.
 */
extern "C"
{

PG_FUNCTION_INFO_V1(runtime_sweeper_status);
PG_FUNCTION_INFO_V1(runtime_sweeper_stage_status);

/* Copies the slots in use; returns how many. */
static int
copy_slots(DbSlot *copy)
{
	int			n = 0;

	if (!shared)
		return 0;
	SpinLockAcquire(&shared->mutex);
	for (int i = 0; i < MAX_SLOTS; i++)
		if (shared->slots[i].in_use)
			copy[n++] = shared->slots[i];
	SpinLockRelease(&shared->mutex);
	return n;
}

/*
 * The database name a view shows for a slot.  A slot first claimed by a SQL
 * API call (not by a worker) has no stored name: look it up by OID here,
 * outside the spinlock ("" if the database is gone).
 */
static Datum
slot_dbname(const DbSlot *s)
{
	const char *name = s->dbname;

	if (name[0] == '\0' && OidIsValid(s->dboid))
	{
		name = get_database_name(s->dboid);
		if (name == nullptr)
			name = "";
	}
	return CStringGetTextDatum(name);
}

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

/*
 * runtime_sweeper._metrics(): the counters and gauges of every database in
 * the Prometheus text format, for runtime_sweeper.metrics().
 */
extern "C"
{

PG_FUNCTION_INFO_V1(runtime_sweeper_metrics);

/* A label value with Prometheus escaping (backslash, quote, newline). */
static void
append_label(StringInfo out, const char *value)
{
	for (const char *p = value; *p; p++)
	{
		if (*p == '\\' || *p == '"')
			appendStringInfoChar(out, '\\');
		if (*p == '\n')
			appendStringInfoString(out, "\\n");
		else
			appendStringInfoChar(out, *p);
	}
}

/* The # HELP and # TYPE lines of one metric family. */
static void
append_family(StringInfo out, const char *name, const char *type, const char *help)
{
	appendStringInfo(out, "# HELP runtime_sweeper_%s %s\n# TYPE runtime_sweeper_%s %s\n",
					 name, help, name, type);
}

/* One sample: name{database="...",<label>="<value>"} number. */
static void
append_sample(StringInfo out, const char *name, const char *dbname,
			  const char *label, const char *label_value, double value)
{
	appendStringInfo(out, "runtime_sweeper_%s{database=\"", name);
	append_label(out, dbname);
	appendStringInfoChar(out, '"');
	if (label)
	{
		appendStringInfo(out, ",%s=\"", label);
		append_label(out, label_value);
		appendStringInfoChar(out, '"');
	}
	appendStringInfo(out, "} %.17g\n", value);
}

Datum
runtime_sweeper_metrics(PG_FUNCTION_ARGS)
{
	DbSlot	   *slots = static_cast<DbSlot *>(palloc(sizeof(DbSlot) * MAX_SLOTS));
	int			n = copy_slots(slots);
	char	  **names = static_cast<char **>(palloc(sizeof(char *) * (n + 1)));
	StringInfoData out;
	static const struct
	{
		rs::Counter counter;
		const char *reason;
	}			failed_by_reason[] = {
		{rs::C_TASKS_FAILED_RUNTIME_OFFLINE, "runtime_offline"},
		{rs::C_TASKS_FAILED_TIMEOUT, "timeout"},
		{rs::C_TASKS_FAILED_QUEUED_EXPIRED, "queued_expired"},
	};

	initStringInfo(&out);
	for (int i = 0; i < n; i++)
		names[i] = TextDatumGetCString(slot_dbname(&slots[i]));

	append_family(&out, "up", "gauge", "1 when a sweeper worker runs for the database.");
	for (int i = 0; i < n; i++)
		append_sample(&out, "up", names[i], nullptr, nullptr, slots[i].worker_pid != 0 ? 1 : 0);

	/*
	 * A listed database whose worker never attached (a misspelt name, a role
	 * that cannot connect) has no slot: report it down rather than not at
	 * all, or "up == 0" alerts could never fire for it.
	 */
	{
		char		listed[rs::MAX_DATABASES][NAMEDATALEN];
		char		message[256];
		int			n_listed = rs::parse_database_list(rs::setting_database(), listed,
													   message, sizeof(message));

		for (int l = 0; l < n_listed; l++)
		{
			bool		has_slot = false;

			for (int i = 0; i < n; i++)
				has_slot |= strcmp(names[i], listed[l]) == 0;
			if (!has_slot)
				append_sample(&out, "up", listed[l], nullptr, nullptr, 0);
		}
	}

	append_family(&out, "ticks_total", "counter", "Ticks the worker has run.");
	for (int i = 0; i < n; i++)
		append_sample(&out, "ticks_total", names[i], nullptr, nullptr, slots[i].ticks);

	append_family(&out, "last_tick_timestamp_seconds", "gauge", "Start of the last tick (Unix time).");
	for (int i = 0; i < n; i++)
		if (slots[i].last_tick_start != 0)
			append_sample(&out, "last_tick_timestamp_seconds", names[i], nullptr, nullptr,
						  timestamptz_to_time_t(slots[i].last_tick_start));

	append_family(&out, "last_tick_duration_seconds", "gauge", "Duration of the last tick.");
	for (int i = 0; i < n; i++)
		append_sample(&out, "last_tick_duration_seconds", names[i], nullptr, nullptr,
					  slots[i].last_tick_us / 1e6);

	append_family(&out, "stage_runs_total", "counter", "Runs of each stage (one per batch).");
	for (int i = 0; i < n; i++)
		for (int st = 0; st < rs::STAGE_COUNT; st++)
			append_sample(&out, "stage_runs_total", names[i], "stage", stage_names[st],
						  slots[i].stages[st].runs);

	append_family(&out, "stage_errors_total", "counter", "Runs of each stage that failed and were rolled back.");
	for (int i = 0; i < n; i++)
		for (int st = 0; st < rs::STAGE_COUNT; st++)
			append_sample(&out, "stage_errors_total", names[i], "stage", stage_names[st],
						  slots[i].stages[st].errors);

	append_family(&out, "stage_affected_total", "counter", "Rows each stage changed.");
	for (int i = 0; i < n; i++)
		for (int st = 0; st < rs::STAGE_COUNT; st++)
			append_sample(&out, "stage_affected_total", names[i], "stage", stage_names[st],
						  slots[i].stages[st].affected);

	append_family(&out, "stage_last_duration_seconds", "gauge", "Duration of each stage's last run.");
	for (int i = 0; i < n; i++)
		for (int st = 0; st < rs::STAGE_COUNT; st++)
			append_sample(&out, "stage_last_duration_seconds", names[i], "stage", stage_names[st],
						  slots[i].stages[st].last_duration_us / 1e6);

	append_family(&out, "tasks_failed_total", "counter", "Tasks the sweeper failed, by reason.");
	for (int i = 0; i < n; i++)
		for (const auto &f : failed_by_reason)
			append_sample(&out, "tasks_failed_total", names[i], "reason", f.reason,
						  slots[i].counters[f.counter]);

	for (int c = 0; c < rs::COUNTER_COUNT; c++)
	{
		char		family[NAMEDATALEN];
		bool		gauge = c == rs::C_GC_HELD_BACK;

		if (c == rs::C_TASKS_FAILED_RUNTIME_OFFLINE || c == rs::C_TASKS_FAILED_TIMEOUT ||
			c == rs::C_TASKS_FAILED_QUEUED_EXPIRED)
			continue;
		snprintf(family, sizeof(family), gauge ? "%s" : "%s_total", counter_names[c]);
		append_family(&out, family, gauge ? "gauge" : "counter",
					  gauge ? "Runtimes the last GC run kept only for their task history."
					  : "See the status view's column of the same name.");
		for (int i = 0; i < n; i++)
			append_sample(&out, family, names[i], nullptr, nullptr, slots[i].counters[c]);
	}

	append_family(&out, "liveness_healthy", "gauge", "1 when the liveness source answered last time.");
	for (int i = 0; i < n; i++)
		append_sample(&out, "liveness_healthy", names[i], "source", slots[i].liveness_source,
					  slots[i].liveness_healthy ? 1 : 0);

	PG_RETURN_TEXT_P(cstring_to_text_with_len(out.data, out.len));
}

}							/* extern "C" */
