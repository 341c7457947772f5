/*
 * settings.cpp
 *	  Every runtime_sweeper.* GUC, its check hook, and the per-tick snapshot.
 *
 * Time settings are integers with units, so operators write '150s', '2h' or
 * '7d'.  Check hooks reject nonsense with a message that names the setting;
 * ranges do the rest.
 */
#include "settings.hpp"

#include <cstdlib>
#include <cstring>

extern "C"
{
#include "catalog/pg_class_d.h"
#include "catalog/pg_type_d.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/varlena.h"
}

namespace
{

char	   *guc_database = nullptr;
char	   *guc_role = nullptr;
bool		guc_enabled = true;
int			guc_interval_ms = 30000;
int			guc_stale_threshold = 150;
int			guc_dispatch_timeout = 300;
int			guc_running_timeout = 9000;
int			guc_queued_ttl = 7200;
int			guc_queued_batch_size = 500;
int			guc_offline_ttl = 7 * 24 * 3600;
int			guc_gc_interval = 300;
int			guc_reconnect_grace = 0;
int			guc_task_batch_size = 10000;
int			guc_gc_batch_size = 100;
int			guc_drain_budget_ms = 10000;
int			guc_lock_timeout_ms = 1000;
int			guc_statement_timeout_ms = 30000;
bool		guc_quiet_agent_reconcile = false;
bool		guc_issue_events = false;
bool		guc_gc_keep_history = false;
bool		guc_event_log = false;
int			guc_event_log_retention = 7 * 24 * 3600;
int			guc_event_log_max_rows = 1000000;
bool		guc_outage_guard = true;
double		guc_mass_offline_guard = 0.0;
int			guc_mass_offline_min = 10;
char	   *guc_app_schema = nullptr;
char	   *guc_notify_channel = nullptr;
char	   *guc_analytics_channel = nullptr;
int			guc_liveness = 0;
char	   *guc_liveness_relation = nullptr;
char	   *guc_redis_url = nullptr;
char	   *guc_redis_key_prefix = nullptr;
int			guc_redis_timeout_ms = 250;

const struct config_enum_entry liveness_options[] = {
	{"none", static_cast<int>(rs::LivenessKind::None), false},
	{"relation", static_cast<int>(rs::LivenessKind::Relation), false},
	{"redis", static_cast<int>(rs::LivenessKind::Redis), false},
	{nullptr, 0, false}
};

}							/* namespace */

extern "C"
{

/* An identifier setting (schema, channel): present and short enough. */
static bool
check_identifier(char **newval, const char *what, bool allow_empty)
{
	size_t		len = *newval ? strlen(*newval) : 0;

	if (len == 0 && !allow_empty)
	{
		GUC_check_errmsg("%s must not be empty", what);
		return false;
	}
	if (len >= NAMEDATALEN)
	{
		GUC_check_errmsg("%s \"%s\" is too long", what, *newval);
		GUC_check_errdetail("An identifier may have at most %d bytes.", NAMEDATALEN - 1);
		return false;
	}
	return true;
}

/* runtime_sweeper.app_schema: the schema of the application's tables. */
static bool
check_app_schema(char **newval, void **extra, GucSource source)
{
	return check_identifier(newval, "runtime_sweeper.app_schema", false);
}

/* runtime_sweeper.notify_channel: where events go. */
static bool
check_notify_channel(char **newval, void **extra, GucSource source)
{
	return check_identifier(newval, "runtime_sweeper.notify_channel", false);
}

/* runtime_sweeper.analytics_channel: empty means no analytics records. */
static bool
check_analytics_channel(char **newval, void **extra, GucSource source)
{
	return check_identifier(newval, "runtime_sweeper.analytics_channel", true);
}

/*
 * runtime_sweeper.database: a comma-separated list of database names (quote
 * a name with commas or upper case in double quotes), at least one.
 */
static bool
check_database(char **newval, void **extra, GucSource source)
{
	char		names[rs::MAX_DATABASES][NAMEDATALEN];
	char		message[256];
	int			n = rs::parse_database_list(*newval, names, message, sizeof(message));

	if (n < 0)
	{
		GUC_check_errmsg("invalid runtime_sweeper.database: %s", message);
		return false;
	}
	if (n == 0)
	{
		GUC_check_errmsg("runtime_sweeper.database must name at least one database");
		return false;
	}
	return true;
}

/* runtime_sweeper.role: empty means the bootstrap superuser. */
static bool
check_role(char **newval, void **extra, GucSource source)
{
	return check_identifier(newval, "runtime_sweeper.role", true);
}

/*
 * runtime_sweeper.liveness_relation: relation or schema.relation (an
 * unqualified name is looked up in app_schema).  The syntax is always
 * checked.  A SET in a session also checks that the relation exists and has
 * a runtime_id column of type uuid or text; ALTER DATABASE/ROLE SET only
 * notes a problem; postgresql.conf reloads (no catalog access) are accepted
 * and the worker reports a bad relation through the status view and one log
 * line.
 */
static bool
check_liveness_relation(char **newval, void **extra, GucSource source)
{
	char		buf[2 * NAMEDATALEN + 8];
	char		problem[3 * NAMEDATALEN + 128];
	List	   *parts = NIL;
	const char *schema;
	const char *relname;
	Oid			nsp;
	Oid			relid;

	if (*newval == nullptr || **newval == '\0')
		return true;
	if (strlen(*newval) >= 2 * NAMEDATALEN)
	{
		GUC_check_errmsg("runtime_sweeper.liveness_relation is too long");
		return false;
	}
	strlcpy(buf, *newval, sizeof(buf));
	if (!SplitIdentifierString(buf, '.', &parts) ||
		list_length(parts) < 1 || list_length(parts) > 2)
	{
		list_free(parts);
		GUC_check_errmsg("runtime_sweeper.liveness_relation \"%s\" is not a relation name", *newval);
		GUC_check_errhint("Write relation or schema.relation; double-quote names with upper case or special characters.");
		return false;
	}
	if (!IsTransactionState() || (source != PGC_S_SESSION && source != PGC_S_TEST))
	{
		list_free(parts);
		return true;
	}

	schema = list_length(parts) == 2 ? static_cast<const char *>(linitial(parts))
		: (guc_app_schema ? guc_app_schema : "public");
	relname = static_cast<const char *>(llast(parts));
	problem[0] = '\0';
	nsp = get_namespace_oid(schema, true);
	relid = OidIsValid(nsp) ? get_relname_relid(relname, nsp) : InvalidOid;
	if (!OidIsValid(relid))
		snprintf(problem, sizeof(problem), "relation \"%s.%s\" does not exist", schema, relname);
	else
	{
		char		relkind = get_rel_relkind(relid);
		AttrNumber	attnum = get_attnum(relid, "runtime_id");
		Oid			atttype = attnum != InvalidAttrNumber ? get_atttype(relid, attnum) : InvalidOid;

		if (relkind != RELKIND_RELATION && relkind != RELKIND_VIEW &&
			relkind != RELKIND_MATVIEW && relkind != RELKIND_FOREIGN_TABLE &&
			relkind != RELKIND_PARTITIONED_TABLE)
			snprintf(problem, sizeof(problem), "\"%s.%s\" is not a table, view or foreign table",
					 schema, relname);
		else if (attnum == InvalidAttrNumber)
			snprintf(problem, sizeof(problem), "relation \"%s.%s\" has no column \"runtime_id\"",
					 schema, relname);
		else if (atttype != UUIDOID && atttype != TEXTOID && atttype != VARCHAROID)
			snprintf(problem, sizeof(problem),
					 "column \"runtime_id\" of relation \"%s.%s\" must be of type uuid or text",
					 schema, relname);
	}
	list_free(parts);
	if (problem[0] == '\0')
		return true;
	if (source == PGC_S_TEST)
	{
		/* ALTER DATABASE/ROLE SET: the relation may be created later. */
		ereport(NOTICE,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("runtime_sweeper.liveness_relation: %s", problem)));
		return true;
	}
	GUC_check_errcode(ERRCODE_UNDEFINED_OBJECT);
	GUC_check_errmsg("invalid runtime_sweeper.liveness_relation: %s", problem);
	GUC_check_errhint("Name a table, view or foreign table with a runtime_id column (uuid or text) "
					  "listing the live runtimes; an unqualified name is looked up in runtime_sweeper.app_schema.");
	return false;
}

/* runtime_sweeper.redis_url: must parse; the message never shows the password. */
static bool
check_redis_url(char **newval, void **extra, GucSource source)
{
	bool		ok = false;
	bool		has_password = false;
	char		message[256];

	message[0] = '\0';
	try
	{
		rs::RedisTarget target;
		std::string error;

		ok = rs::parse_redis_url(*newval, &target, &error);
		if (!ok)
			strlcpy(message, error.c_str(), sizeof(message));
		has_password = ok && !target.password.empty();
	}
	catch (...)
	{
		strlcpy(message, "could not parse the URL", sizeof(message));
	}
	if (!ok)
	{
		GUC_check_errmsg("invalid runtime_sweeper.redis_url: %s", message);
		GUC_check_errhint("Use redis://[:password@]host[:port][/db] or unix:///path/to/socket.");
		return false;
	}
	/*
	 * ALTER DATABASE/ROLE SET and CREATE FUNCTION ... SET validate with
	 * PGC_S_TEST and store the value in catalogs every role can read.
	 */
	if (has_password && source == PGC_S_TEST)
	{
		GUC_check_errmsg("a runtime_sweeper.redis_url with a password cannot be stored per database, role or function");
		GUC_check_errdetail("pg_db_role_setting and pg_proc are readable by every role.");
		GUC_check_errhint("Set it in postgresql.conf or with ALTER SYSTEM.");
		return false;
	}
	return true;
}

/*
 * SHOW and current_setting() print runtime_sweeper.redis_url with its
 * password masked, so that no role (pg_read_all_settings members included)
 * can read the password through them.  The setting is also left out of
 * SHOW ALL and pg_settings (GUC_NO_SHOW_ALL), whose reset_val column would
 * print the postgresql.conf value unmasked.
 */
static const char *
show_redis_url(void)
{
	static char shown[1024];
	const char *url = guc_redis_url ? guc_redis_url : "";
	const char *auth;
	const char *at;
	const char *colon;
	const char *secret;

	if (strncmp(url, "redis://", 8) != 0 || (at = strrchr(url + 8, '@')) == nullptr)
		return url;
	auth = url + 8;
	colon = static_cast<const char *>(memchr(auth, ':', at - auth));
	secret = colon ? colon + 1 : auth;
	if (secret >= at)
		return url;
	snprintf(shown, sizeof(shown), "%.*s********%s", static_cast<int>(secret - url), url, at);
	return shown;
}

/* runtime_sweeper.redis_key_prefix: any text, but bounded. */
static bool
check_redis_key_prefix(char **newval, void **extra, GucSource source)
{
	if (*newval && strlen(*newval) > 200)
	{
		GUC_check_errmsg("runtime_sweeper.redis_key_prefix is too long (at most 200 bytes)");
		return false;
	}
	return true;
}

}							/* extern "C" */

namespace rs
{

/* Defines a superuser-settable time setting in seconds. */
static void
define_seconds(const char *name, const char *desc, int *var, int def, int min)
{
	DefineCustomIntVariable(name, desc, nullptr, var, def, min, INT_MAX,
							PGC_SUSET, GUC_UNIT_S, nullptr, nullptr, nullptr);
}

/* Registers every setting under the reserved runtime_sweeper. prefix. */
void
define_settings()
{
	/*
	 * PostgreSQL allows PGC_POSTMASTER variables only while preloading (else
	 * FATAL).  Loaded later there is no worker, so database and role are
	 * informational only.
	 */
	GucContext	worker_only = process_shared_preload_libraries_in_progress ? PGC_POSTMASTER : PGC_SIGHUP;

	DefineCustomStringVariable("runtime_sweeper.database",
							   "Databases to sweep, comma-separated: one worker each.",
							   nullptr, &guc_database, "postgres",
							   PGC_SIGHUP, 0, check_database, nullptr, nullptr);
	DefineCustomStringVariable("runtime_sweeper.role",
							   "Role the sweeper worker runs as (empty: the bootstrap superuser).",
							   nullptr, &guc_role, "",
							   worker_only, 0, check_role, nullptr, nullptr);
	DefineCustomBoolVariable("runtime_sweeper.enabled",
							 "Whether the worker sweeps (off pauses it).",
							 nullptr, &guc_enabled, true,
							 PGC_SUSET, 0, nullptr, nullptr, nullptr);
	DefineCustomIntVariable("runtime_sweeper.interval",
							"Longest time between two ticks of the worker.",
							nullptr, &guc_interval_ms, 30000, 100, INT_MAX,
							PGC_SUSET, GUC_UNIT_MS, nullptr, nullptr, nullptr);
	define_seconds("runtime_sweeper.stale_threshold",
				   "An online runtime silent for longer is marked offline.",
				   &guc_stale_threshold, 150, 1);
	define_seconds("runtime_sweeper.dispatch_timeout",
				   "A task dispatched for longer is failed with reason timeout.",
				   &guc_dispatch_timeout, 300, 1);
	define_seconds("runtime_sweeper.running_timeout",
				   "A task running for longer is failed with reason timeout.",
				   &guc_running_timeout, 9000, 1);
	define_seconds("runtime_sweeper.queued_ttl",
				   "A task queued for longer is failed with reason queued_expired.",
				   &guc_queued_ttl, 7200, 1);
	DefineCustomIntVariable("runtime_sweeper.queued_batch_size",
							"Most queued tasks expired in one transaction.",
							nullptr, &guc_queued_batch_size, 500, 1, 1000000,
							PGC_SUSET, 0, nullptr, nullptr, nullptr);
	define_seconds("runtime_sweeper.offline_ttl",
				   "An offline runtime silent for longer is deleted when nothing references it.",
				   &guc_offline_ttl, 7 * 24 * 3600, 1);
	DefineCustomIntVariable("runtime_sweeper.gc_interval",
							"How often the worker runs garbage collection (0: every tick).",
							nullptr, &guc_gc_interval, 300, 0, INT_MAX,
							PGC_SUSET, GUC_UNIT_S, nullptr, nullptr, nullptr);
	define_seconds("runtime_sweeper.reconnect_grace",
				   "In-flight tasks of an offline runtime are failed only after this much silence (0: at once).",
				   &guc_reconnect_grace, 0, 0);
	DefineCustomIntVariable("runtime_sweeper.task_batch_size",
							"Most tasks failed by the offline and stale-task stages in one transaction.",
							nullptr, &guc_task_batch_size, 10000, 1, 1000000,
							PGC_SUSET, 0, nullptr, nullptr, nullptr);
	DefineCustomIntVariable("runtime_sweeper.gc_batch_size",
							"Most runtimes deleted by garbage collection in one transaction.",
							nullptr, &guc_gc_batch_size, 100, 1, 100000,
							PGC_SUSET, 0, nullptr, nullptr, nullptr);
	DefineCustomIntVariable("runtime_sweeper.drain_budget",
							"Time one tick may spend draining full batches before yielding to the schedule.",
							nullptr, &guc_drain_budget_ms, 10000, 0, INT_MAX,
							PGC_SUSET, GUC_UNIT_MS, nullptr, nullptr, nullptr);
	DefineCustomIntVariable("runtime_sweeper.lock_timeout",
							"lock_timeout of the worker's sweep transactions.",
							nullptr, &guc_lock_timeout_ms, 1000, 1, INT_MAX,
							PGC_SUSET, GUC_UNIT_MS, nullptr, nullptr, nullptr);
	DefineCustomIntVariable("runtime_sweeper.statement_timeout",
							"statement_timeout of the worker's sweep transactions.",
							nullptr, &guc_statement_timeout_ms, 30000, 1, INT_MAX,
							PGC_SUSET, GUC_UNIT_MS, nullptr, nullptr, nullptr);
	DefineCustomBoolVariable("runtime_sweeper.quiet_agent_reconcile",
							 "Write and announce an agent's status only when it changes.",
							 nullptr, &guc_quiet_agent_reconcile, false,
							 PGC_SUSET, 0, nullptr, nullptr, nullptr);
	DefineCustomBoolVariable("runtime_sweeper.issue_events",
							 "Emit issue:updated when an issue is rolled back to todo.",
							 nullptr, &guc_issue_events, false,
							 PGC_SUSET, 0, nullptr, nullptr, nullptr);
	DefineCustomBoolVariable("runtime_sweeper.gc_keep_history",
							 "Garbage collection keeps the task history of deleted runtimes.",
							 nullptr, &guc_gc_keep_history, false,
							 PGC_SUSET, 0, nullptr, nullptr, nullptr);
	DefineCustomBoolVariable("runtime_sweeper.event_log",
							 "Also write every event to runtime_sweeper.event_log.",
							 nullptr, &guc_event_log, false,
							 PGC_SUSET, 0, nullptr, nullptr, nullptr);
	define_seconds("runtime_sweeper.event_log_retention",
				   "Events older than this are trimmed from runtime_sweeper.event_log.",
				   &guc_event_log_retention, 7 * 24 * 3600, 1);
	DefineCustomIntVariable("runtime_sweeper.event_log_max_rows",
							"Most events runtime_sweeper.event_log keeps (0: no cap).",
							nullptr, &guc_event_log_max_rows, 1000000, 0, INT_MAX,
							PGC_SUSET, 0, nullptr, nullptr, nullptr);
	DefineCustomBoolVariable("runtime_sweeper.outage_guard",
							 "After a start, a promotion or a long gap, wait one stale threshold before marking runtimes offline.",
							 nullptr, &guc_outage_guard, true,
							 PGC_SUSET, 0, nullptr, nullptr, nullptr);
	DefineCustomRealVariable("runtime_sweeper.mass_offline_guard",
							 "Largest share of online runtimes one tick may mark offline (0: no limit).",
							 nullptr, &guc_mass_offline_guard, 0.0, 0.0, 1.0,
							 PGC_SUSET, 0, nullptr, nullptr, nullptr);
	DefineCustomIntVariable("runtime_sweeper.mass_offline_min",
							"Online runtimes below which mass_offline_guard does not apply.",
							nullptr, &guc_mass_offline_min, 10, 0, INT_MAX,
							PGC_SUSET, 0, nullptr, nullptr, nullptr);
	DefineCustomStringVariable("runtime_sweeper.app_schema",
							   "Schema of the application's tables.",
							   nullptr, &guc_app_schema, "public",
							   PGC_SUSET, 0, check_app_schema, nullptr, nullptr);
	DefineCustomStringVariable("runtime_sweeper.notify_channel",
							   "NOTIFY channel of the sweeper's events.",
							   nullptr, &guc_notify_channel, "runtime_sweeper",
							   PGC_SUSET, 0, check_notify_channel, nullptr, nullptr);
	DefineCustomStringVariable("runtime_sweeper.analytics_channel",
							   "NOTIFY channel of analytics records (empty: none).",
							   nullptr, &guc_analytics_channel, "",
							   PGC_SUSET, 0, check_analytics_channel, nullptr, nullptr);
	DefineCustomEnumVariable("runtime_sweeper.liveness",
							 "Source asked whether a stale runtime is still alive: none, relation or redis.",
							 nullptr, &guc_liveness, 0, liveness_options,
							 PGC_SUSET, 0, nullptr, nullptr, nullptr);
	DefineCustomStringVariable("runtime_sweeper.liveness_relation",
							   "Table, view or foreign table listing live runtimes (column runtime_id).",
							   nullptr, &guc_liveness_relation, "",
							   PGC_SUSET, 0, check_liveness_relation, nullptr, nullptr);
	DefineCustomStringVariable("runtime_sweeper.redis_url",
							   "Redis holding heartbeat keys: redis://[:password@]host[:port][/db] or unix:///path.",
							   nullptr, &guc_redis_url, "redis://127.0.0.1:6379",
							   PGC_SUSET, GUC_SUPERUSER_ONLY | GUC_NO_SHOW_ALL, check_redis_url, nullptr, show_redis_url);
	DefineCustomStringVariable("runtime_sweeper.redis_key_prefix",
							   "Prefix of the Redis heartbeat keys.",
							   nullptr, &guc_redis_key_prefix, "mul:runtime:hb:",
							   PGC_SUSET, 0, check_redis_key_prefix, nullptr, nullptr);
	DefineCustomIntVariable("runtime_sweeper.redis_timeout",
							"Timeout of the Redis connect and of each command.",
							nullptr, &guc_redis_timeout_ms, 250, 1, 60000,
							PGC_SUSET, GUC_UNIT_MS, nullptr, nullptr, nullptr);

	MarkGUCPrefixReserved("runtime_sweeper");
}

int
parse_database_list(const char *value, char names[][NAMEDATALEN], char *message, size_t message_size)
{
	char	   *raw;
	List	   *list = NIL;
	ListCell   *lc;
	int			n = 0;

	if (value == nullptr)
		return 0;
	raw = pstrdup(value);
	if (!SplitGUCList(raw, ',', &list))
	{
		strlcpy(message, "the list of database names is malformed", message_size);
		return -1;
	}
	foreach(lc, list)
	{
		const char *name = static_cast<const char *>(lfirst(lc));

		if (strlen(name) == 0 || strlen(name) >= NAMEDATALEN)
		{
			snprintf(message, message_size, "\"%s\" is not a valid database name", name);
			return -1;
		}
		if (n >= MAX_DATABASES)
		{
			snprintf(message, message_size, "at most %d databases", MAX_DATABASES);
			return -1;
		}
		bool		duplicate = false;

		for (int i = 0; i < n; i++)
			duplicate |= strcmp(names[i], name) == 0;
		if (!duplicate)
			strlcpy(names[n++], name, NAMEDATALEN);
	}
	list_free(list);
	pfree(raw);
	return n;
}

bool
database_listed(const char *dbname)
{
	char		names[MAX_DATABASES][NAMEDATALEN];
	char		message[256];
	int			n = parse_database_list(guc_database, names, message, sizeof(message));

	for (int i = 0; i < n; i++)
		if (strcmp(names[i], dbname) == 0)
			return true;
	return false;
}

const char *
setting_database()
{
	return guc_database;
}

const char *
setting_role()
{
	return guc_role;
}

/* Copies the GUC values into a snapshot. */
Settings
Settings::current()
{
	Settings	s;

	s.enabled = guc_enabled;
	s.interval_ms = guc_interval_ms;
	s.stale_threshold = guc_stale_threshold;
	s.dispatch_timeout = guc_dispatch_timeout;
	s.running_timeout = guc_running_timeout;
	s.queued_ttl = guc_queued_ttl;
	s.queued_batch_size = guc_queued_batch_size;
	s.offline_ttl = guc_offline_ttl;
	s.gc_interval = guc_gc_interval;
	s.reconnect_grace = guc_reconnect_grace;
	s.task_batch_size = guc_task_batch_size;
	s.gc_batch_size = guc_gc_batch_size;
	s.drain_budget_ms = guc_drain_budget_ms;
	s.lock_timeout_ms = guc_lock_timeout_ms;
	s.statement_timeout_ms = guc_statement_timeout_ms;
	s.quiet_agent_reconcile = guc_quiet_agent_reconcile;
	s.issue_events = guc_issue_events;
	s.gc_keep_history = guc_gc_keep_history;
	s.event_log = guc_event_log;
	s.event_log_retention = guc_event_log_retention;
	s.event_log_max_rows = guc_event_log_max_rows;
	s.outage_guard = guc_outage_guard;
	s.mass_offline_guard = guc_mass_offline_guard;
	s.mass_offline_min = guc_mass_offline_min;
	s.app_schema = to_string(guc_app_schema);
	s.notify_channel = to_string(guc_notify_channel);
	s.analytics_channel = to_string(guc_analytics_channel);
	s.liveness = static_cast<LivenessKind>(guc_liveness);
	s.liveness_relation = to_string(guc_liveness_relation);
	s.redis_url = to_string(guc_redis_url);
	s.redis_key_prefix = to_string(guc_redis_key_prefix);
	s.redis_timeout_ms = guc_redis_timeout_ms;
	return s;
}

/*
 * redis://[:password@]host[:port][/db], redis://user:password@host (the user
 * is ignored, as Redis before 6 has none), or unix:///path/to/socket.
 */
bool
parse_redis_url(const char *url, RedisTarget *target, std::string *error)
{
	std::string u = to_string(url);

	if (u.rfind("unix://", 0) == 0)
	{
		target->unix_socket = true;
		target->path = u.substr(7);
		if (target->path.empty() || target->path[0] != '/')
		{
			*error = "a unix:// URL needs an absolute socket path";
			return false;
		}
		return true;
	}
	if (u.rfind("redis://", 0) != 0)
	{
		*error = "the URL must start with redis:// or unix://";
		return false;
	}
	std::string rest = u.substr(8);
	size_t		at = rest.rfind('@');

	if (at != std::string::npos)
	{
		std::string auth = rest.substr(0, at);
		size_t		colon = auth.find(':');

		target->password = colon == std::string::npos ? auth : auth.substr(colon + 1);
		rest = rest.substr(at + 1);
	}
	size_t		slash = rest.find('/');

	if (slash != std::string::npos)
	{
		std::string db = rest.substr(slash + 1);

		rest = rest.substr(0, slash);
		if (!db.empty())
		{
			char	   *end = nullptr;
			long		n = strtol(db.c_str(), &end, 10);

			if (*end != '\0' || n < 0 || n > 1000000)
			{
				*error = "the database number must be a non-negative integer";
				return false;
			}
			target->db = static_cast<int>(n);
		}
	}
	size_t		colon = rest.rfind(':');

	if (colon != std::string::npos)
	{
		std::string port = rest.substr(colon + 1);
		char	   *end = nullptr;
		long		n = strtol(port.c_str(), &end, 10);

		if (port.empty() || *end != '\0' || n < 1 || n > 65535)
		{
			*error = "the port must be a number from 1 to 65535";
			return false;
		}
		target->port = static_cast<int>(n);
		rest = rest.substr(0, colon);
	}
	if (rest.empty())
	{
		*error = "the URL has no host";
		return false;
	}
	target->host = rest;
	return true;
}

}							/* namespace rs */
