/*
 * launcher.cpp
 *	  The launcher: one worker per database of runtime_sweeper.database.
 *
 * A static background worker with no database connection.  It starts a
 * dynamic worker for each listed database that has none, and starts one
 * again when it dies, with a growing back-off for a worker that keeps dying
 * (a database that does not exist, a role that cannot log in) so a bad
 * setting costs one log line per back-off, not a crash loop.  Workers notice
 * on reload that their database left the list and stop by themselves, and
 * refuse to run twice for one database, so a restarted launcher can never
 * start duplicates.
 *
 * Plain C style on purpose: nothing here owns C++ objects, so PostgreSQL's
 * errors may unwind it freely.
 */
#include "settings.hpp"
#include "stats.hpp"

#include <cstring>

extern "C"
{
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/proc.h"
#include "storage/procsignal.h"
#include "tcop/tcopprot.h"
#include "utils/memutils.h"

PGDLLEXPORT void runtime_sweeper_launcher_main(Datum main_arg);
}

namespace
{

/* First back-off after a worker died young, and the longest one. */
constexpr int64 BACKOFF_MIN_US = 5 * USECS_PER_SEC;
constexpr int64 BACKOFF_MAX_US = 300 * USECS_PER_SEC;

/* A worker that lived shorter than this counts as dying young. */
constexpr int64 YOUNG_US = 30 * USECS_PER_SEC;

/* How often to check on a worker that an earlier launcher started. */
constexpr long INHERITED_POLL_MS = 1000;

/* What the launcher remembers about one listed database. */
struct Managed
{
	char		dbname[NAMEDATALEN];
	BackgroundWorkerHandle *handle;
	TimestampTz started_at;
	TimestampTz retry_at;
	int64		backoff_us;
};

Managed		managed[rs::MAX_DATABASES];
int			managed_count = 0;

/* Registers a dynamic worker for one database; false when none could start. */
bool
start_worker(Managed *m)
{
	BackgroundWorker worker;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_ConsistentState;
	worker.bgw_restart_time = BGW_NEVER_RESTART;
	strlcpy(worker.bgw_library_name, "runtime_sweeper", BGW_MAXLEN);
	strlcpy(worker.bgw_function_name, "runtime_sweeper_worker_main", BGW_MAXLEN);
	snprintf(worker.bgw_name, BGW_MAXLEN, "runtime_sweeper worker for %s", m->dbname);
	strlcpy(worker.bgw_type, "runtime_sweeper", BGW_MAXLEN);
	strlcpy(worker.bgw_extra, m->dbname, BGW_EXTRALEN);
	worker.bgw_notify_pid = MyProcPid;

	MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);
	bool		ok = RegisterDynamicBackgroundWorker(&worker, &m->handle);

	MemoryContextSwitchTo(old);
	if (!ok)
	{
		m->handle = nullptr;
		ereport(WARNING,
				(errmsg("runtime_sweeper: could not start a worker for database \"%s\"", m->dbname),
				 errhint("Raise max_worker_processes.")));
		return false;
	}
	m->started_at = GetCurrentTimestamp();
	return true;
}

/* Whether the worker we started for m is still alive (or still starting). */
bool
worker_running(Managed *m)
{
	pid_t		pid;

	if (m->handle == nullptr)
		return false;
	switch (GetBackgroundWorkerPid(m->handle, &pid))
	{
		case BGWH_STARTED:
		case BGWH_NOT_YET_STARTED:
			return true;
		case BGWH_STOPPED:
		case BGWH_POSTMASTER_DIED:
			break;
	}
	pfree(m->handle);
	m->handle = nullptr;
	return false;
}

/* Re-reads the list; keeps what it knew about databases still listed. */
void
refresh_list()
{
	char		names[rs::MAX_DATABASES][NAMEDATALEN];
	char		message[256];
	int			n = rs::parse_database_list(rs::setting_database(), names, message, sizeof(message));
	Managed		next[rs::MAX_DATABASES];
	int			next_count = 0;

	for (int i = 0; i < Max(n, 0); i++)
	{
		Managed    *m = &next[next_count++];

		memset(m, 0, sizeof(*m));
		strlcpy(m->dbname, names[i], NAMEDATALEN);
		m->backoff_us = BACKOFF_MIN_US;
		for (int j = 0; j < managed_count; j++)
			if (strcmp(managed[j].dbname, names[i]) == 0)
				*m = managed[j];
	}
	/* Workers of databases that left the list stop themselves on reload. */
	for (int j = 0; j < managed_count; j++)
	{
		bool		kept = false;

		for (int i = 0; i < next_count; i++)
			kept |= strcmp(managed[j].dbname, next[i].dbname) == 0;
		if (!kept && managed[j].handle != nullptr)
			pfree(managed[j].handle);
	}
	memcpy(managed, next, sizeof(Managed) * next_count);
	managed_count = next_count;
}

/*
 * Starts what is missing; returns the milliseconds until the next back-off
 * expires (or -1 when nothing waits).
 */
long
reconcile_workers()
{
	TimestampTz now = GetCurrentTimestamp();
	long		wait_ms = -1;

	for (int i = 0; i < managed_count; i++)
	{
		Managed    *m = &managed[i];

		if (worker_running(m))
			continue;
		/*
		 * A worker started by an earlier launcher may still serve it.  Its
		 * exit notifies that launcher, not us: look again every second.
		 */
		if (rs::stats_worker_pid(m->dbname) != 0)
		{
			wait_ms = wait_ms < 0 ? INHERITED_POLL_MS : Min(wait_ms, INHERITED_POLL_MS);
			continue;
		}
		if (m->started_at != 0 && m->retry_at == 0)
		{
			/* It just died: schedule the restart, longer if it died young. */
			bool		young = now - m->started_at < YOUNG_US;

			m->retry_at = now + (young ? m->backoff_us : BACKOFF_MIN_US);
			if (young)
			{
				ereport(LOG,
						(errmsg("runtime_sweeper: worker for database \"%s\" stopped; restarting in %lld s",
								m->dbname, static_cast<long long>(m->backoff_us / USECS_PER_SEC))));
				m->backoff_us = Min(m->backoff_us * 2, BACKOFF_MAX_US);
			}
			else
				m->backoff_us = BACKOFF_MIN_US;
		}
		if (m->retry_at > now)
		{
			long		ms = static_cast<long>((m->retry_at - now) / 1000) + 1;

			wait_ms = wait_ms < 0 ? ms : Min(wait_ms, ms);
			continue;
		}
		m->retry_at = 0;
		if (!start_worker(m))
			wait_ms = wait_ms < 0 ? 5000 : Min(wait_ms, 5000L);
	}
	return wait_ms;
}

}							/* namespace */

/* Entry point of the launcher process. */
void
runtime_sweeper_launcher_main(Datum main_arg)
{
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	/*
	 * The postmaster tells us with SIGUSR1 (bgw_notify_pid) that a worker we
	 * started has stopped.  A worker without a database connection ignores
	 * SIGUSR1 unless it asks: this handler sets our latch.
	 */
	pqsignal(SIGUSR1, procsignal_sigusr1_handler);
	BackgroundWorkerUnblockSignals();

	ereport(LOG, (errmsg("runtime_sweeper: launcher started for \"%s\"", rs::setting_database())));
	refresh_list();
	for (;;)
	{
		long		wait_ms = reconcile_workers();
		int			events = WL_LATCH_SET | WL_EXIT_ON_PM_DEATH;

		if (wait_ms >= 0)
			events |= WL_TIMEOUT;
		(void) WaitLatch(MyLatch, events, wait_ms, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
			refresh_list();
		}
	}
}
