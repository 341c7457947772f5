/*
 * schedule.hpp
 *	  When the worker's next tick is due.  The only place that decides how
 *	  long the worker sleeps.
 *
 * The worker sleeps until the earliest moment a row can become due (a
 * runtime crossing the stale threshold, a task crossing a timeout or the
 * TTL, an offline runtime reaching GC age), and never longer than
 * runtime_sweeper.interval.  Rows already past due when a tick ended were
 * left on purpose (kept alive by the liveness source, locked by a client,
 * held by a guard): they wait for the interval, so they can never make the
 * worker spin.
 */
#pragma once

#include "sweep_context.hpp"

namespace rs
{

/*
 * The earliest future moment any row becomes due (0 when nothing will).
 * Runs one statement; needs SPI.
 */
TimestampTz next_row_deadline(SweepContext &ctx);

/* When the next tick starts, from the last tick's start and the row deadline. */
TimestampTz next_tick_time(const Settings &settings, TimestampTz last_tick_start, TimestampTz row_deadline);

/* Milliseconds to sleep until due (0: tick now). */
long		delay_until_ms(TimestampTz due, TimestampTz now);

}							/* namespace rs */
