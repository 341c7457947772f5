/*
 * schedule.hpp
 *	  When the worker's next tick is due.  The only place that decides how
 *	  long the worker sleeps.
 */
#pragma once

#include "settings.hpp"

namespace rs
{

/* Milliseconds to sleep before the next tick, given when the last one started. */
long		next_tick_delay_ms(const Settings &settings, TimestampTz last_tick_start, TimestampTz now);

/* The moment the next tick is due, for the status view. */
TimestampTz next_tick_time(const Settings &settings, TimestampTz last_tick_start);

}							/* namespace rs */
