/*
 * metrics.cpp
 *	  runtime_sweeper._metrics(): every database's counters and gauges in
 *	  the Prometheus text format (metrics() in SQL adds the due rows).
 */
#include "settings.hpp"
#include "stats_slots.hpp"

extern "C"
{
#include "lib/stringinfo.h"
#include "utils/builtins.h"
}

using namespace rs;

extern "C"
{

PG_FUNCTION_INFO_V1(runtime_sweeper_metrics);

/* A label value with Prometheus escaping (backslash, quote, newline). */
static void
append_label(StringInfo out, const char *value)
{
	for (const char *p = value; *p; p++)
	{
		if (*p == '\\' || *p == '"')
			appendStringInfoChar(out, '\\');
		if (*p == '\n')
			appendStringInfoString(out, "\\n");
		else
			appendStringInfoChar(out, *p);
	}
}

/* The # HELP and # TYPE lines of one metric family. */
static void
append_family(StringInfo out, const char *name, const char *type, const char *help)
{
	appendStringInfo(out, "# HELP runtime_sweeper_%s %s\n# TYPE runtime_sweeper_%s %s\n",
					 name, help, name, type);
}

/* One sample: name{database="...",<label>="<value>"} number. */
static void
append_sample(StringInfo out, const char *name, const char *dbname,
			  const char *label, const char *label_value, double value)
{
	appendStringInfo(out, "runtime_sweeper_%s{database=\"", name);
	append_label(out, dbname);
	appendStringInfoChar(out, '"');
	if (label)
	{
		appendStringInfo(out, ",%s=\"", label);
		append_label(out, label_value);
		appendStringInfoChar(out, '"');
	}
	appendStringInfo(out, "} %.17g\n", value);
}

Datum
runtime_sweeper_metrics(PG_FUNCTION_ARGS)
{
	DbSlot	   *slots = static_cast<DbSlot *>(palloc(sizeof(DbSlot) * MAX_SLOTS));
	int			n = copy_slots(slots);
	char	  **names = static_cast<char **>(palloc(sizeof(char *) * (n + 1)));
	StringInfoData out;
	static const struct
	{
		rs::Counter counter;
		const char *reason;
	}			failed_by_reason[] = {
		{rs::C_TASKS_FAILED_RUNTIME_OFFLINE, "runtime_offline"},
		{rs::C_TASKS_FAILED_TIMEOUT, "timeout"},
		{rs::C_TASKS_FAILED_QUEUED_EXPIRED, "queued_expired"},
	};

	initStringInfo(&out);
	for (int i = 0; i < n; i++)
		names[i] = TextDatumGetCString(slot_dbname(&slots[i]));

	append_family(&out, "up", "gauge", "1 when a sweeper worker runs for the database.");
	for (int i = 0; i < n; i++)
		append_sample(&out, "up", names[i], nullptr, nullptr, slots[i].worker_pid != 0 ? 1 : 0);

	/*
	 * A listed database whose worker never attached (a misspelt name, a role
	 * that cannot connect) has no slot: report it down rather than not at
	 * all, or "up == 0" alerts could never fire for it.
	 */
	{
		char		listed[rs::MAX_DATABASES][NAMEDATALEN];
		char		message[256];
		int			n_listed = rs::parse_database_list(rs::setting_database(), listed,
													   message, sizeof(message));

		for (int l = 0; l < n_listed; l++)
		{
			bool		has_slot = false;

			for (int i = 0; i < n; i++)
				has_slot |= strcmp(names[i], listed[l]) == 0;
			if (!has_slot)
				append_sample(&out, "up", listed[l], nullptr, nullptr, 0);
		}
	}

	append_family(&out, "ticks_total", "counter", "Ticks the worker has run.");
	for (int i = 0; i < n; i++)
		append_sample(&out, "ticks_total", names[i], nullptr, nullptr, slots[i].ticks);

	append_family(&out, "last_tick_timestamp_seconds", "gauge", "Start of the last tick (Unix time).");
	for (int i = 0; i < n; i++)
		if (slots[i].last_tick_start != 0)
			append_sample(&out, "last_tick_timestamp_seconds", names[i], nullptr, nullptr,
						  timestamptz_to_time_t(slots[i].last_tick_start));

	append_family(&out, "last_tick_duration_seconds", "gauge", "Duration of the last tick.");
	for (int i = 0; i < n; i++)
		append_sample(&out, "last_tick_duration_seconds", names[i], nullptr, nullptr,
					  slots[i].last_tick_us / 1e6);

	append_family(&out, "stage_runs_total", "counter", "Runs of each stage (one per batch).");
	for (int i = 0; i < n; i++)
		for (int st = 0; st < rs::STAGE_COUNT; st++)
			append_sample(&out, "stage_runs_total", names[i], "stage", stage_names[st],
						  slots[i].stages[st].runs);

	append_family(&out, "stage_errors_total", "counter", "Runs of each stage that failed and were rolled back.");
	for (int i = 0; i < n; i++)
		for (int st = 0; st < rs::STAGE_COUNT; st++)
			append_sample(&out, "stage_errors_total", names[i], "stage", stage_names[st],
						  slots[i].stages[st].errors);

	append_family(&out, "stage_affected_total", "counter", "Rows each stage changed.");
	for (int i = 0; i < n; i++)
		for (int st = 0; st < rs::STAGE_COUNT; st++)
			append_sample(&out, "stage_affected_total", names[i], "stage", stage_names[st],
						  slots[i].stages[st].affected);

	append_family(&out, "stage_last_duration_seconds", "gauge", "Duration of each stage's last run.");
	for (int i = 0; i < n; i++)
		for (int st = 0; st < rs::STAGE_COUNT; st++)
			append_sample(&out, "stage_last_duration_seconds", names[i], "stage", stage_names[st],
						  slots[i].stages[st].last_duration_us / 1e6);

	append_family(&out, "tasks_failed_total", "counter", "Tasks the sweeper failed, by reason.");
	for (int i = 0; i < n; i++)
		for (const auto &f : failed_by_reason)
			append_sample(&out, "tasks_failed_total", names[i], "reason", f.reason,
						  slots[i].counters[f.counter]);

	for (int c = 0; c < rs::COUNTER_COUNT; c++)
	{
		char		family[NAMEDATALEN];
		bool		gauge = c == rs::C_GC_HELD_BACK;

		if (c == rs::C_TASKS_FAILED_RUNTIME_OFFLINE || c == rs::C_TASKS_FAILED_TIMEOUT ||
			c == rs::C_TASKS_FAILED_QUEUED_EXPIRED)
			continue;
		snprintf(family, sizeof(family), gauge ? "%s" : "%s_total", counter_names[c]);
		append_family(&out, family, gauge ? "gauge" : "counter",
					  gauge ? "Runtimes the last GC run kept only for their task history."
					  : "See the status view's column of the same name.");
		for (int i = 0; i < n; i++)
			append_sample(&out, family, names[i], nullptr, nullptr, slots[i].counters[c]);
	}

	append_family(&out, "liveness_healthy", "gauge", "1 when the liveness source answered last time.");
	for (int i = 0; i < n; i++)
		append_sample(&out, "liveness_healthy", names[i], "source", slots[i].liveness_source,
					  slots[i].liveness_healthy ? 1 : 0);

	PG_RETURN_TEXT_P(cstring_to_text_with_len(out.data, out.len));
}

}							/* extern "C" */
