/*
 * settings.hpp
 *	  The runtime_sweeper.* settings and the snapshot of them a tick uses.
 */
#pragma once

#include "pg_bridge.hpp"

#include <string>

namespace rs
{

enum class LivenessKind
{
	None = 0,
	Relation = 1,
	Redis = 2
};

/*
 * The values one tick (or one SQL API call) works with.  Taken once at the
 * start so that a reload in the middle of a tick cannot mix old and new.
 * Times are in seconds unless the name says otherwise.
 */
struct Settings
{
	bool		enabled;
	int			interval_ms;
	int			stale_threshold;
	int			dispatch_timeout;
	int			running_timeout;
	int			queued_ttl;
	int			queued_batch_size;
	int			offline_ttl;
	int			gc_interval;
	int			reconnect_grace;
	int			task_batch_size;
	int			gc_batch_size;
	int			drain_budget_ms;
	int			lock_timeout_ms;
	int			statement_timeout_ms;
	bool		quiet_agent_reconcile;
	bool		issue_events;
	bool		gc_keep_history;
	bool		event_log;
	int			event_log_retention;
	int			event_log_max_rows;
	bool		outage_guard;
	double		mass_offline_guard;
	int			mass_offline_min;
	std::string app_schema;
	std::string notify_channel;
	std::string analytics_channel;
	LivenessKind liveness;
	std::string liveness_relation;
	std::string redis_url;
	std::string redis_key_prefix;
	int			redis_timeout_ms;

	/* The values the current session (or worker) sees now. */
	static Settings current();
};

/* Most databases one cluster sweeps (one worker each). */
constexpr int MAX_DATABASES = 16;

/* Values read by the postmaster-level code (not per tick). */
const char *setting_database();

/*
 * Splits a runtime_sweeper.database value into names (case kept, quotes
 * removed, duplicates dropped).  Returns the count, or -1 with a message.
 * Allocates in the current memory context; may not ereport.
 */
int			parse_database_list(const char *value, char names[][NAMEDATALEN],
								char *message, size_t message_size);

/* Whether dbname is in the current runtime_sweeper.database list. */
bool		database_listed(const char *dbname);
const char *setting_role();

/* Defines every runtime_sweeper.* GUC; called from _PG_init. */
void		define_settings();

/* Parses a redis URL; returns false with a message on nonsense. */
struct RedisTarget
{
	bool		unix_socket = false;
	std::string host = "127.0.0.1";
	int			port = 6379;
	std::string path;
	std::string password;
	int			db = 0;
};
bool		parse_redis_url(const char *url, RedisTarget *target, std::string *error);

}							/* namespace rs */
