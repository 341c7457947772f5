/*
 * worker.cpp
 *	  The background worker: signals, the latch loop, standby and
 *	  missing-schema waiting, and one transaction per stage.
 *
 * Every stage of a tick runs in a transaction of its own, so a stage that
 * fails (a trigger that raises, a lock timeout, a dropped table) is rolled
 * back alone, counted, logged once per distinct error, and the later stages
 * and later ticks still run.  A stage that fills its batch goes on with the
 * next batch in a new transaction, up to runtime_sweeper.drain_budget per
 * tick.  The worker exits only on SIGTERM or postmaster death.
 */
#include "event_log.hpp"
#include "schedule.hpp"
#include "stages/stages.hpp"

#include <cstring>
#include <functional>

extern "C"
{
#include "access/xlog.h"
#include "commands/extension.h"
#include "mb/pg_wchar.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/proc.h"
#include "tcop/tcopprot.h"
#include "utils/guc.h"
#include "utils/timeout.h"

PGDLLEXPORT void runtime_sweeper_worker_main(Datum main_arg);
}

namespace
{

constexpr int ERROR_TEXT = 512;

/* The last error logged per stage: the same error is logged once, not per tick. */
char		last_logged_error[rs::STAGE_COUNT][ERROR_TEXT];

/*
 * The last error logged by each side task of a tick (trimming the event
 * log, scheduling): logged once per distinct error, like a stage's.
 */
enum SideTask
{
	SIDE_TRIM = 0,
	SIDE_SCHEDULE,
	SIDE_COUNT
};
char		last_side_error[SIDE_COUNT][ERROR_TEXT];

/* Why the worker last waited instead of sweeping (log once per reason). */
char		last_wait_reason[ERROR_TEXT];

/* The database this worker serves (from the launcher, in bgw_extra). */
char		worker_dbname[NAMEDATALEN];

/*
 * Applies the sweep's lock and statement timeouts to the current transaction.
 * lock_timeout works from the GUC alone (lock waits arm it), but only the
 * client protocol loop arms statement_timeout, never SPI in a background
 * worker: the timer is armed here, for the whole transaction, and disarmed
 * by stop_statement_timer().
 */
void
apply_timeouts(const rs::Settings &settings)
{
	char		value[32];

	snprintf(value, sizeof(value), "%d", settings.lock_timeout_ms);
	set_config_option("lock_timeout", value, PGC_SUSET, PGC_S_SESSION,
					  GUC_ACTION_LOCAL, true, 0, false);
	snprintf(value, sizeof(value), "%d", settings.statement_timeout_ms);
	set_config_option("statement_timeout", value, PGC_SUSET, PGC_S_SESSION,
					  GUC_ACTION_LOCAL, true, 0, false);
	if (settings.statement_timeout_ms > 0)
		enable_timeout_after(STATEMENT_TIMEOUT, settings.statement_timeout_ms);
}

/*
 * Disarms the statement timer of apply_timeouts.  A timer that fired after
 * the transaction's last interrupt check must not cancel whatever the
 * worker does next: its pending cancel is dropped with it.
 */
void
stop_statement_timer()
{
	bool		fired = get_timeout_indicator(STATEMENT_TIMEOUT, false);

	disable_timeout(STATEMENT_TIMEOUT, false);
	if (fired)
		QueryCancelPending = false;
}

/*
 * Runs body in a transaction of its own, with an SPI connection and the
 * sweep's timeouts.  Returns false with the error message when anything in
 * it raised; the transaction is then rolled back.  The PG_TRY here catches
 * every error of the transaction; body's C++ objects live only inside
 * cpp_entry, which has unwound them before an error reaches this frame.
 */
bool
in_transaction(const rs::Settings &settings, const char *activity,
			   const std::function<void()> &body, char *error)
{
	MemoryContext worker_context = CurrentMemoryContext;
	volatile bool ok = false;

	error[0] = '\0';
	PG_TRY();
	{
		SetCurrentStatementStartTimestamp();
		StartTransactionCommand();
		PushActiveSnapshot(GetTransactionSnapshot());
		pgstat_report_activity(STATE_RUNNING, activity);
		apply_timeouts(settings);
		rs::cpp_entry([&]() {
			rs::SpiConnection spi;

			body();
		});
		PopActiveSnapshot();
		CommitTransactionCommand();
		stop_statement_timer();
		ok = true;
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		stop_statement_timer();
		MemoryContextSwitchTo(worker_context);
		edata = CopyErrorData();
		FlushErrorState();
		{
			/* cut on a character boundary: the text goes to the log and the views */
			const char *message = edata->message ? edata->message : "unknown error";
			int			len = pg_mbcliplen(message, static_cast<int>(strnlen(message, 1024 * 1024)),
										   ERROR_TEXT - 1);

			memcpy(error, message, len);
			error[len] = '\0';
		}
		FreeErrorData(edata);
		AbortCurrentTransaction();
	}
	PG_END_TRY();
	MemoryContextSwitchTo(worker_context);
	pgstat_report_activity(STATE_IDLE, nullptr);
	return ok;
}

/* Publishes a stage's outcome and logs errors once per distinct message. */
void
report_stage(rs::Stage stage, bool ok, const rs::Tally &tally, const char *error, int64 duration_us)
{
	char	   *last = last_logged_error[stage];

	if (ok)
	{
		rs::stats_stage_done(stage, tally, duration_us);
		if (tally.affected > 0)
			ereport(LOG,
					(errmsg("runtime_sweeper: %s: %llu affected", rs::stage_name(stage),
							static_cast<unsigned long long>(tally.affected))));
		if (last[0] != '\0')
		{
			ereport(LOG, (errmsg("runtime_sweeper: stage %s succeeds again", rs::stage_name(stage))));
			last[0] = '\0';
		}
		return;
	}

	rs::stats_stage_failed(stage, error);
	if (strcmp(last, error) != 0)
	{
		ereport(WARNING,
				(errmsg("runtime_sweeper: stage %s failed: %s", rs::stage_name(stage), error),
				 errdetail("The stage was rolled back; the other stages ran. "
						   "The same error is not logged again until it changes.")));
		strlcpy(last, error, ERROR_TEXT);
	}
}

/*
 * Logs a failed side task of the tick once per distinct error, and its
 * recovery: without it a trim that keeps failing (a missing DELETE
 * privilege) would let the event log grow in silence.
 */
void
report_side_task(SideTask task, const char *what, bool ok, const char *error)
{
	char	   *last = last_side_error[task];

	if (ok)
	{
		if (last[0] != '\0')
		{
			ereport(LOG, (errmsg("runtime_sweeper: %s succeeds again", what)));
			last[0] = '\0';
		}
		return;
	}
	if (strcmp(last, error) != 0)
	{
		ereport(WARNING,
				(errmsg("runtime_sweeper: %s failed: %s", what, error),
				 errdetail("The same error is not logged again until it changes.")));
		strlcpy(last, error, ERROR_TEXT);
	}
}

/* The batch size that, when filled, means more rows are waiting. */
int
batch_limit(rs::Stage stage, const rs::Settings &s)
{
	switch (stage)
	{
		case rs::STAGE_OFFLINE_TASKS:
		case rs::STAGE_STALE_TASKS:
			return s.task_batch_size;
		case rs::STAGE_QUEUED_EXPIRY:
			return s.queued_batch_size;
		case rs::STAGE_RUNTIME_GC:
			return s.gc_batch_size;
		default:
			return 0;
	}
}

/*
 * Whether the extension and the application tables exist.  On false,
 * reason says what is missing.
 */
bool
sweepable(const rs::Settings &settings, char *reason)
{
	bool		ready = false;
	char		error[ERROR_TEXT];

	reason[0] = '\0';
	if (!in_transaction(settings, "runtime_sweeper: checking schema", [&]() {
		if (!OidIsValid(rs::pg_call([]() { return get_extension_oid("runtime_sweeper", true); })))
		{
			strlcpy(reason, "extension \"runtime_sweeper\" is not installed", ERROR_TEXT);
			return;
		}

		std::string missing;

		if (rs::app_schema_ready(settings, &missing))
			ready = true;
		else
			snprintf(reason, ERROR_TEXT, "table %s does not exist", missing.c_str());
	}, error))
		strlcpy(reason, error, ERROR_TEXT);
	return ready;
}

/* Logs the index advice once per worker start and schema. */
void
log_index_advice(const rs::Settings &settings)
{
	static std::string advised_schema;
	char		error[ERROR_TEXT];

	if (advised_schema == settings.app_schema)
		return;
	advised_schema = settings.app_schema;
	in_transaction(settings, "runtime_sweeper: index advice", [&]() {
		rs::Args	args;
		uint64		n = rs::execute("SELECT ddl FROM runtime_sweeper.missing_indexes()", args, true);

		for (uint64 r = 0; r < n; r++)
		{
			std::string ddl = rs::row::text(r, 1);

			rs::pg_guard([&]() {
				ereport(LOG,
						(errmsg("runtime_sweeper: an index would make the sweep cheaper: %s", ddl.c_str()),
						 errhint("See runtime_sweeper.missing_indexes(); every stage stays correct without it.")));
			});
		}
	}, error);
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
					worker_dbname, reason),
			 errhint("The worker starts by itself once this changes.")));
}

/* Logs that sweeping (re)starts, once after each wait. */
void
note_sweeping()
{
	if (last_wait_reason[0] == '\0')
		return;
	last_wait_reason[0] = '\0';
	ereport(LOG, (errmsg("runtime_sweeper: sweeping database \"%s\"", worker_dbname)));
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
	bool		announced = false;	/* the current hold has been logged */

	void		hold(const rs::Settings &s, TimestampTz now)
	{
		hold_until = now + static_cast<int64>(s.stale_threshold) * USECS_PER_SEC;
		announced = false;
	}

	/*
	 * Whether this tick may mark runtimes offline; starts a new hold after a
	 * gap.  The gap is counted from the later of the last tick's end and the
	 * end of the last hold (the tick that releases a hold is not a gap), and
	 * must exceed the threshold by more than the worker's own wake-up
	 * latency: an idle worker sleeps exactly one threshold when interval >=
	 * stale_threshold, and must not hold again just because it woke a
	 * millisecond late.
	 */
	bool		allows_offline(const rs::Settings &s, TimestampTz now)
	{
		int64		threshold = static_cast<int64>(s.stale_threshold) * USECS_PER_SEC;
		int64		slack = Min(static_cast<int64>(USECS_PER_SEC), threshold / 10);

		if (last_tick_end != 0 && now - Max(last_tick_end, hold_until) > threshold + slack)
			hold(s, now);
		return !s.outage_guard || now >= hold_until;
	}
};

/*
 * When garbage collection last ran.  Old offline runtimes that agents still
 * reference stay candidates for ever; looking at them every tick would cost
 * more than the other stages together, so GC runs in the first tick after
 * gc_interval has passed (and in every tick wake() or a reload asks for).
 */
struct GcCadence
{
	TimestampTz last_run = 0;

	bool		due(const rs::Settings &s, TimestampTz now) const
	{
		return last_run == 0 || now - last_run >= rs::SweepContext::us(s.gc_interval);
	}
};

GcCadence	gc;

/* The event log is trimmed at most this often (and on every requested tick). */
constexpr int64 TRIM_EVERY_US = 60 * USECS_PER_SEC;
TimestampTz last_trim = 0;

/*
 * One tick: the stages that have work (every stage when requested by
 * wake(), a reload or the worker's start; GC on its own cadence), in order,
 * each in its own transaction, batch after batch while a stage fills its
 * batch and the drain budget lasts.  Returns when the next tick is due
 * (0 when unknown: the interval decides).
 */
TimestampTz
tick(const rs::Settings &settings, OutageGuard &guard, TimestampTz start, bool requested)
{
	bool		offline_allowed = guard.allows_offline(settings, start);
	TimestampTz budget_end = start + static_cast<int64>(settings.drain_budget_ms) * 1000;
	char		error[ERROR_TEXT];
	char		activity[64];
	bool		deferred = false;
	bool		unfinished = false;	/* the budget ended a stage's full batch */
	rs::Outlook outlook;
	bool		looked;

	rs::stats_tick_started(start);

	/*
	 * One statement says which stages have work; the others are skipped (a
	 * tick asked for by wake() or a reload runs every stage).  Should it
	 * fail, every stage runs and reports the cause itself.
	 */
	looked = in_transaction(settings, "runtime_sweeper: looking ahead", [&]() {
		rs::SweepContext ctx(settings);

		outlook = rs::look_ahead(ctx);
	}, error);
	report_side_task(SIDE_SCHEDULE, "looking ahead", looked, error);
	outlook.due[rs::STAGE_RUNTIME_GC] = requested || gc.due(settings, start);

	for (int i = 0; i < rs::STAGE_COUNT; i++)
	{
		rs::Stage	stage = static_cast<rs::Stage>(i);
		int			limit = batch_limit(stage, settings);

		if (looked && !requested && !outlook.due[stage])
			continue;
		if (stage == rs::STAGE_RUNTIME_GC)
			gc.last_run = start;

		snprintf(activity, sizeof(activity), "runtime_sweeper: %s", rs::stage_name(stage));
		for (;;)
		{
			rs::Tally	tally;
			TimestampTz stage_start = GetCurrentTimestamp();
			bool		ok;

			CHECK_FOR_INTERRUPTS();
			ok = in_transaction(settings, activity, [&]() {
				rs::SweepContext ctx(settings);

				ctx.worker_tick = true;
				ctx.offline_allowed = offline_allowed;
				rs::run_stage(stage, ctx);
				tally = ctx.tally;
			}, error);
			report_stage(stage, ok, tally, error, GetCurrentTimestamp() - stage_start);
			if (tally.counters[rs::C_OUTAGE_DEFERRED] > 0)
				deferred = true;
			if (!ok || limit == 0 || tally.affected < static_cast<uint64>(limit))
				break;
			if (GetCurrentTimestamp() >= budget_end)
			{
				unfinished = true;
				break;
			}
		}
	}
	guard.last_tick_end = GetCurrentTimestamp();
	if (!offline_allowed && !guard.announced)
	{
		guard.announced = true;
		ereport(LOG,
				(errmsg("runtime_sweeper: outage guard: no runtime is marked offline before %s",
						timestamptz_to_str(guard.hold_until)),
				 errdetail("After a start, a promotion or a pause longer than the stale threshold, heartbeats get one full threshold to arrive.")));
	}

	if (requested || start - last_trim >= TRIM_EVERY_US)
	{
		bool		trimmed = in_transaction(settings, "runtime_sweeper: trimming the event log", [&]() {
			rs::SweepContext ctx(settings);

			rs::event_log_trim(ctx);
		}, error);

		report_side_task(SIDE_TRIM, "trimming the event log", trimmed, error);
		last_trim = start;
	}

	/* GC waits for a tick; it never makes the worker wake up by itself. */
	TimestampTz deadline = looked ? outlook.next_deadline : 0;
	/* Runtimes the guard held are due the moment it lets go. */
	if (deferred && (deadline == 0 || guard.hold_until < deadline))
		deadline = guard.hold_until;

	/*
	 * Rows already due are not in the schedule's statement (it looks for the
	 * next row to become due): a backlog the budget cut short goes on in the
	 * next tick at once, not one interval later.
	 */
	if (unfinished)
		deadline = GetCurrentTimestamp();
	return deadline;
}

/*
 * Waits until due, or until wake() or a reload; handles reloads.  Returns
 * whether a wake() or a reload ended the wait (such a tick runs every stage).  The latch
 * is also set for reasons of no concern here (the SIGALRM of a timer that
 * PostgreSQL leaves armed after statement_timeout, a cache catch-up signal),
 * so a latch alone is no reason to tick: it only ends the wait when
 * any_wake is set (a worker that is waiting, not sweeping, re-checks why on
 * every wake-up, which costs little and notices a new schema at once).
 */
bool
wait_until(TimestampTz due, bool any_wake)
{
	bool		requested = false;

	rs::stats_next_tick(due);
	for (;;)
	{
		long		delay_ms = rs::delay_until_ms(due, GetCurrentTimestamp());

		if (delay_ms <= 0)
			break;
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 delay_ms, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending || rs::stats_take_wake_request())
		{
			requested = true;
			break;
		}
		if (any_wake)
			break;
	}
	CHECK_FOR_INTERRUPTS();
	if (ConfigReloadPending)
	{
		ConfigReloadPending = false;
		rs::pg_guard([]() { ProcessConfigFile(PGC_SIGHUP); });
	}
	return requested;
}

/*
 * The latch loop; returns when the database leaves runtime_sweeper.database
 * (otherwise the process ends by SIGTERM or postmaster death).  A wake() or a reload
 * sets the latch and ticks at once; otherwise the schedule says when.
 */
void
worker_loop()
{
	OutageGuard guard;
	TimestampTz last_tick_start = 0;
	TimestampTz row_deadline = 0;
	bool		was_in_recovery = false;
	bool		swept = false;	/* the last pass ran a tick */
	bool		requested = true;	/* the first tick runs every stage */

	guard.hold(rs::Settings::current(), GetCurrentTimestamp());
	for (;;)
	{
		rs::Settings settings = rs::Settings::current();
		TimestampTz now;

		if (last_tick_start != 0)
		{
			requested |= wait_until(rs::next_tick_time(settings, last_tick_start, row_deadline), !swept);
			settings = rs::Settings::current();
		}
		swept = false;
		if (!rs::database_listed(worker_dbname))
		{
			ereport(LOG,
					(errmsg("runtime_sweeper: database \"%s\" is no longer in runtime_sweeper.database; worker stops",
							worker_dbname)));
			return;
		}
		now = GetCurrentTimestamp();
		last_tick_start = now;
		row_deadline = 0;

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

		if (!sweepable(settings, reason))
		{
			rs::stats_worker_state(rs::WorkerState::WaitingForSchema);
			note_waiting(reason);
			continue;
		}
		note_sweeping();
		log_index_advice(settings);
		row_deadline = tick(settings, guard, now, requested);
		requested = false;
		swept = true;
		rs::stats_tick_finished(now, GetCurrentTimestamp(),
								rs::next_tick_time(settings, now, row_deadline));
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

	strlcpy(worker_dbname, MyBgworkerEntry->bgw_extra, NAMEDATALEN);
	BackgroundWorkerInitializeConnection(worker_dbname, (role && role[0]) ? role : nullptr, 0);

	/* Objects planted in other schemas must never resolve in a sweep. */
	SetConfigOption("search_path", "pg_catalog, pg_temp", PGC_SUSET, PGC_S_OVERRIDE);
	SetConfigOption("application_name", "runtime_sweeper", PGC_USERSET, PGC_S_SESSION);
	pgstat_report_appname("runtime_sweeper");

	if (!rs::stats_worker_attach(MyDatabaseId, worker_dbname, MyLatch))
	{
		ereport(LOG,
				(errmsg("runtime_sweeper: another worker already serves database \"%s\"", worker_dbname)));
		proc_exit(0);
	}
	ereport(LOG, (errmsg("runtime_sweeper: worker started for database \"%s\"", worker_dbname)));

	rs::cpp_entry([]() { worker_loop(); });
	proc_exit(0);
}
