/*
 * event_log.hpp
 *	  The durable event log: runtime_sweeper.event_log, written in the same
 *	  transaction as the NOTIFY, so a listener that was away can catch up
 *	  with events_since() without gaps or duplicates.
 */
#pragma once

#include "sweep_context.hpp"

#include <string>

namespace rs
{

/*
 * Appends one event and returns its id.  Writers take a transaction-level
 * advisory lock first, so ids become visible in commit order: a listener
 * that saw id N never later finds a smaller id committed after it.
 */
int64		event_log_append(const std::string &channel, const std::string &event);

/* Deletes events past the retention age or row cap, one bounded batch. */
uint64		event_log_trim(SweepContext &ctx);

}							/* namespace rs */
