/*
 * schedule.cpp
 *	  The tick schedule: one tick per interval, measured from the start of
 *	  the previous tick so that a slow tick does not stretch the period.
 */
#include "schedule.hpp"

namespace rs
{

TimestampTz
next_tick_time(const Settings &settings, TimestampTz last_tick_start)
{
	return last_tick_start + static_cast<int64>(settings.interval_ms) * 1000;
}

long
next_tick_delay_ms(const Settings &settings, TimestampTz last_tick_start, TimestampTz now)
{
	TimestampTz due = next_tick_time(settings, last_tick_start);

	if (last_tick_start == 0 || due <= now)
		return 0;
	return static_cast<long>((due - now + 999) / 1000);
}

}							/* namespace rs */
