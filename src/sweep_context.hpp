/*
 * sweep_context.hpp
 *	  What a stage needs to run: the settings snapshot, the counters it
 *	  fills, where its events go, and who called it.
 */
#pragma once

#include "events.hpp"
#include "schema_shape.hpp"
#include "settings.hpp"
#include "spi.hpp"
#include "stats.hpp"

#include <string>
#include <vector>

namespace rs
{

struct SweepContext
{
	explicit SweepContext(const Settings &s) : settings(s), events(settings, tally) {}
	SweepContext(const SweepContext &) = delete;
	SweepContext &operator=(const SweepContext &) = delete;

	Settings	settings;
	Tally		tally;
	EventSink	events;

	/*
	 * The worker's tick (as opposed to an explicit SQL call).  Only a tick
	 * obeys the outage and mass-offline guards: an operator's call acts as
	 * asked.
	 */
	bool		worker_tick = false;

	/* False while the outage guard holds runtimes online. */
	bool		offline_allowed = true;

	/*
	 * The SQL text for this context: @S@ becomes the quoted app_schema, and
	 * the shape-dependent fragments are filled in (see sweep_context.cpp).
	 */
	std::string sql(const char *text);

	/* The application schema's shape, read once per context. */
	const SchemaShape &shape();

	/* Seconds of one time setting as microseconds. */
	static int64 us(int seconds) { return static_cast<int64>(seconds) * USECS_PER_SEC; }

private:
	bool		shape_known_ = false;
	SchemaShape shape_;
};

/* A runtime a stage changed, as the SQL API returns it. */
struct RuntimeRow
{
	Uuid		runtime_id;
	Uuid		workspace_id;
};

/* A task a stage failed, with the retry created for it (if any). */
struct FailedTaskRow
{
	Uuid		task_id;
	bool		has_retry;
	Uuid		retry_id;
};

/* What preview() reports for one row. */
struct PreviewRow
{
	Stage		stage;
	Uuid		id;
	std::string detail;
};

}							/* namespace rs */
