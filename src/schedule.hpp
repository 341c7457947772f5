/*
 * schedule.hpp
 *	  When the worker's next tick is due.  The only place that decides how
 *	  long the worker sleeps.
 *
 * The worker sleeps until the earliest moment a row can become due (a
 * runtime crossing the stale threshold, a task crossing a timeout or the
 * TTL), and never longer than runtime_sweeper.interval.  Garbage
 * collection has its own cadence (gc_interval): old offline runtimes that
 * agents still reference stay old, and re-examining them every tick would
 * cost more than all the other stages together.  Rows already past due when a tick ended were
 * left on purpose (kept alive by the liveness source, locked by a client,
 * held by a guard): they wait for the interval, so they can never make the
 * worker spin.
 */
#pragma once

#include "sweep_context.hpp"

namespace rs
{

/*
 * What the worker learns before a tick, in one statement: which stages have
 * a row due now (the others are skipped: an idle tick costs this statement
 * alone), and the earliest future moment a task or runtime row becomes due
 * (0 when none will).  Needs SPI.
 */
struct Outlook
{
	bool		due[STAGE_COUNT] = {};
	TimestampTz next_deadline = 0;
};

Outlook		look_ahead(SweepContext &ctx);

/* When the next tick starts, from the last tick's start and the row deadline. */
TimestampTz next_tick_time(const Settings &settings, TimestampTz last_tick_start, TimestampTz row_deadline);

/* Milliseconds to sleep until due (0: tick now). */
long		delay_until_ms(TimestampTz due, TimestampTz now);

}							/* namespace rs */
