/*
 * worker.cpp
 *	  The background worker: signals, the latch loop, standby and
 *	  missing-schema waiting, and one transaction per stage.
 *
 * Every stage of a tick runs in a transaction of its own, so a stage that
 * fails (a trigger that raises, a lock timeout, a dropped table) is rolled
 * back alone, counted, logged once per distinct error, and the later stages
 * and later ticks still run.  The worker exits only on SIGTERM or postmaster
 * death.
 */
#include "schedule.hpp"
#include "stages/stages.hpp"

#include <cstring>

extern "C"
{
#include "access/xlog.h"
#include "commands/extension.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/proc.h"
#include "tcop/tcopprot.h"
#include "utils/guc.h"
#include "utils/ps_status.h"

PGDLLEXPORT void runtime_sweeper_worker_main(Datum main_arg);
}

namespace
{

constexpr int ERROR_TEXT = 512;

/* What one stage transaction produced, copied out before its memory goes. */
struct StageOutcome
{
	bool		ok;
	rs::Tally	tally;
	char		error[ERROR_TEXT];
};

/* The last error logged per stage: the same error is logged once, not per tick. */
char		last_logged_error[rs::STAGE_COUNT][ERROR_TEXT];

/* Why the worker last waited instead of sweeping (log once per reason). */
char		last_wait_reason[ERROR_TEXT];

/* Applies the sweep's lock and statement timeouts to the current transaction. */
void
apply_timeouts(const rs::Settings *settings)
{
	char		value[32];

	snprintf(value, sizeof(value), "%d", settings->lock_timeout_ms);
	set_config_option("lock_timeout", value, PGC_SUSET, PGC_S_SESSION,
					  GUC_ACTION_LOCAL, true, 0, false);
	snprintf(value, sizeof(value), "%d", settings->statement_timeout_ms);
	set_config_option("statement_timeout", value, PGC_SUSET, PGC_S_SESSION,
					  GUC_ACTION_LOCAL, true, 0, false);
}

/*
 * Runs one stage in its own transaction.  The PG_TRY here catches every
 * error of the transaction; the stage's C++ objects live only inside
 * cpp_entry, which has unwound them before any error reaches this frame.
 */
void
stage_transaction(rs::Stage stage, const rs::Settings *settings, bool offline_allowed,
				  StageOutcome *out)
{
	MemoryContext worker_context = CurrentMemoryContext;
	char		activity[64];

	snprintf(activity, sizeof(activity), "runtime_sweeper: %s", rs::stage_name(stage));
	out->ok = false;
	out->error[0] = '\0';

	PG_TRY();
	{
		SetCurrentStatementStartTimestamp();
		StartTransactionCommand();
		PushActiveSnapshot(GetTransactionSnapshot());
		pgstat_report_activity(STATE_RUNNING, activity);
		apply_timeouts(settings);
		rs::cpp_entry([&]() {
			rs::SweepContext ctx(*settings);

			ctx.worker_tick = true;
			ctx.offline_allowed = offline_allowed;
			{
				rs::SpiConnection spi;

				rs::run_stage(stage, ctx);
			}
			out->tally = ctx.tally;
		});
		PopActiveSnapshot();
		CommitTransactionCommand();
		out->ok = true;
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(worker_context);
		edata = CopyErrorData();
		FlushErrorState();
		strlcpy(out->error, edata->message ? edata->message : "unknown error", ERROR_TEXT);
		FreeErrorData(edata);
		AbortCurrentTransaction();
	}
	PG_END_TRY();
	MemoryContextSwitchTo(worker_context);
	pgstat_report_activity(STATE_IDLE, nullptr);
}

/* Publishes a stage's outcome and logs errors once per distinct message. */
void
report_stage(rs::Stage stage, const StageOutcome *out, int64 duration_us)
{
	char	   *last = last_logged_error[stage];

	if (out->ok)
	{
		rs::stats_stage_done(stage, out->tally, duration_us);
		if (out->tally.affected > 0)
			ereport(LOG,
					(errmsg("runtime_sweeper: %s: %llu affected", rs::stage_name(stage),
							static_cast<unsigned long long>(out->tally.affected))));
		if (last[0] != '\0')
		{
			ereport(LOG, (errmsg("runtime_sweeper: stage %s succeeds again", rs::stage_name(stage))));
			last[0] = '\0';
		}
		return;
	}

	rs::stats_stage_failed(stage, out->error);
	if (strcmp(last, out->error) != 0)
	{
		ereport(WARNING,
				(errmsg("runtime_sweeper: stage %s failed: %s", rs::stage_name(stage), out->error),
				 errdetail("The stage was rolled back; the other stages ran. "
						   "The same error is not logged again until it changes.")));
		strlcpy(last, out->error, ERROR_TEXT);
	}
}

/*
 * Whether the extension and the application tables exist.  On false, reason
 * says what is missing.
 */
bool
sweepable(const rs::Settings *settings, char *reason)
{
	MemoryContext worker_context = CurrentMemoryContext;
	volatile bool ready = false;

	reason[0] = '\0';
	PG_TRY();
	{
		StartTransactionCommand();
		PushActiveSnapshot(GetTransactionSnapshot());
		if (!OidIsValid(get_extension_oid("runtime_sweeper", true)))
			strlcpy(reason, "extension \"runtime_sweeper\" is not installed", ERROR_TEXT);
		else
			rs::cpp_entry([&]() {
				std::string missing;

				if (rs::app_schema_ready(*settings, &missing))
					ready = true;
				else
					snprintf(reason, ERROR_TEXT, "table %s does not exist", missing.c_str());
			});
		PopActiveSnapshot();
		CommitTransactionCommand();
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(worker_context);
		edata = CopyErrorData();
		FlushErrorState();
		strlcpy(reason, edata->message ? edata->message : "unknown error", ERROR_TEXT);
		FreeErrorData(edata);
		AbortCurrentTransaction();
		ready = false;
	}
	PG_END_TRY();
	MemoryContextSwitchTo(worker_context);
	return ready;
}

/* Logs why the worker waits, once per reason. */
void
note_waiting(const char *reason)
{
	if (strcmp(last_wait_reason, reason) == 0)
		return;
	strlcpy(last_wait_reason, reason, ERROR_TEXT);
	ereport(LOG,
			(errmsg("runtime_sweeper: not sweeping database \"%s\": %s",
					rs::setting_database(), reason),
			 errhint("The worker starts by itself once this changes.")));
}

/* Logs that sweeping (re)starts, once after each wait. */
void
note_sweeping()
{
	if (last_wait_reason[0] == '\0')
		return;
	last_wait_reason[0] = '\0';
	ereport(LOG, (errmsg("runtime_sweeper: sweeping database \"%s\"", rs::setting_database())));
}

/*
 * The outage guard: after the worker starts (cluster start, crash restart),
 * after promotion, and after a gap between ticks longer than the stale
 * threshold, heartbeats get one full threshold to arrive before any runtime
 * is marked offline.
 */
struct OutageGuard
{
	TimestampTz hold_until = 0;
	TimestampTz last_tick_end = 0;

	void		hold(const rs::Settings &s, TimestampTz now)
	{
		hold_until = now + static_cast<int64>(s.stale_threshold) * USECS_PER_SEC;
	}

	bool		allows_offline(const rs::Settings &s, TimestampTz now)
	{
		if (last_tick_end != 0 &&
			now - last_tick_end > static_cast<int64>(s.stale_threshold) * USECS_PER_SEC)
			hold(s, now);
		return !s.outage_guard || now >= hold_until;
	}
};

/* One tick: every stage in order, each in its own transaction. */
void
tick(const rs::Settings &settings, OutageGuard &guard, TimestampTz start)
{
	bool		offline_allowed = guard.allows_offline(settings, start);

	rs::stats_tick_started(start);
	for (int i = 0; i < rs::STAGE_COUNT; i++)
	{
		rs::Stage	stage = static_cast<rs::Stage>(i);
		StageOutcome out;
		TimestampTz stage_start = GetCurrentTimestamp();

		CHECK_FOR_INTERRUPTS();
		stage_transaction(stage, &settings, offline_allowed, &out);
		report_stage(stage, &out, GetCurrentTimestamp() - stage_start);
	}
	guard.last_tick_end = GetCurrentTimestamp();
}

/* The latch loop; returns only by process exit. */
void
worker_loop()
{
	OutageGuard guard;
	TimestampTz last_tick_start = 0;
	bool		was_in_recovery = false;
	bool		first = true;

	for (;;)
	{
		rs::Settings settings = rs::Settings::current();
		TimestampTz now = GetCurrentTimestamp();
		long		delay_ms = rs::next_tick_delay_ms(settings, last_tick_start, now);

		if (first)
		{
			guard.hold(settings, now);
			first = false;
			delay_ms = 0;
		}
		if (delay_ms > 0)
		{
			int			rc;

			rs::stats_next_tick(now + static_cast<int64>(delay_ms) * 1000);
			rc = WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						   delay_ms, PG_WAIT_EXTENSION);
			ResetLatch(MyLatch);
			CHECK_FOR_INTERRUPTS();
			if (ConfigReloadPending)
			{
				ConfigReloadPending = false;
				rs::pg_guard([]() { ProcessConfigFile(PGC_SIGHUP); });
			}
			/* A wake() or a reload ticks now; a plain timeout re-checks the schedule. */
			if (!(rc & WL_LATCH_SET))
				continue;
			settings = rs::Settings::current();
			now = GetCurrentTimestamp();
		}

		last_tick_start = now;

		if (RecoveryInProgress())
		{
			was_in_recovery = true;
			rs::stats_worker_state(rs::WorkerState::Standby);
			note_waiting("the server is a standby");
			continue;
		}
		if (was_in_recovery)
		{
			was_in_recovery = false;
			guard.hold(settings, now);
		}
		if (!settings.enabled)
		{
			rs::stats_worker_state(rs::WorkerState::Paused);
			note_waiting("runtime_sweeper.enabled is off");
			continue;
		}

		char		reason[ERROR_TEXT];

		if (!sweepable(&settings, reason))
		{
			rs::stats_worker_state(rs::WorkerState::WaitingForSchema);
			note_waiting(reason);
			continue;
		}
		note_sweeping();
		tick(settings, guard, now);
		rs::stats_tick_finished(now, GetCurrentTimestamp(), rs::next_tick_time(settings, now));
	}
}

}							/* namespace */

/*
 * Entry point of the worker process.  SIGTERM uses PostgreSQL's die(), so a
 * running statement is cancelled and the process exits at the next
 * interrupt check; SIGHUP sets ConfigReloadPending for the loop.
 */
void
runtime_sweeper_worker_main(Datum main_arg)
{
	const char *role = rs::setting_role();

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();

	BackgroundWorkerInitializeConnection(rs::setting_database(),
										 (role && role[0]) ? role : nullptr, 0);

	/* Objects planted in other schemas must never resolve in a sweep. */
	SetConfigOption("search_path", "pg_catalog, pg_temp", PGC_SUSET, PGC_S_OVERRIDE);
	SetConfigOption("application_name", "runtime_sweeper", PGC_USERSET, PGC_S_SESSION);
	pgstat_report_appname("runtime_sweeper");

	rs::stats_worker_attach(MyDatabaseId, rs::setting_database(), MyLatch);
	ereport(LOG, (errmsg("runtime_sweeper: worker started for database \"%s\"", rs::setting_database())));

	rs::cpp_entry([]() { worker_loop(); });
	proc_exit(0);
}
