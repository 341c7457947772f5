/*
 * stats.cpp
 *	  Shared-memory slots (one per database): the worker's state and
 *	  schedule, and the counters every stage adds to.  The views and
 *	  metrics() read them (status_views.cpp, metrics.cpp).
 *
 * A spinlock guards the whole array: every critical section copies a few
 * hundred bytes at most, and the worker touches it a handful of times per
 * tick, so finer locking would buy nothing.
 */
#include "stats.hpp"
#include "stats_slots.hpp"

#include <cerrno>
#include <csignal>
#include <cstring>

extern "C"
{
#include "commands/dbcommands.h"
#include "mb/pg_wchar.h"
#include "storage/ipc.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#include "storage/spin.h"
}

namespace
{

using rs::DbSlot;
using rs::MAX_SLOTS;

struct SharedState
{
	slock_t		mutex;
	DbSlot		slots[MAX_SLOTS];
};

SharedState *shared = nullptr;
DbSlot	   *my_worker_slot = nullptr;

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

const char *const stage_names[STAGE_COUNT] = {
	"stale_runtimes", "offline_tasks", "stale_tasks", "queued_expiry", "runtime_gc"
};

const char *const counter_names[COUNTER_COUNT] = {
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
state_name(WorkerState state)
{
	switch (state)
	{
		case WorkerState::Starting:
			return "starting";
		case WorkerState::Idle:
			return "idle";
		case WorkerState::Sweeping:
			return "sweeping";
		case WorkerState::Paused:
			return "paused";
		case WorkerState::WaitingForSchema:
			return "waiting for schema";
		case WorkerState::Standby:
			return "standby";
		case WorkerState::Stopped:
			return "stopped";
	}
	return "unknown";
}


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

/* A consistent copy of the slots, taken under the spinlock. */
int
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

/* A slot's database name; looking it up by OID may not hold the spinlock. */
Datum
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

}							/* namespace rs */

