/*
 * relation.cpp
 *	  liveness = relation: a table, view or foreign table whose runtime_id
 *	  column (uuid or text) lists the runtimes that are alive.
 *
 * The query runs in a subtransaction under a timer of redis_timeout, so a
 * missing relation, a revoked privilege or a foreign server that is down or
 * slow costs one rolled-back subtransaction and a fallback, never the stage.
 * The timer is a timeout of its own (not statement_timeout, which SPI in a
 * background worker never arms, and which the caller of the SQL API may be
 * using for its own statement): when it fires it cancels the query the way
 * a statement timeout would.  A cancel that is not ours (pg_cancel_backend)
 * still cancels the caller.
 *
 * An unqualified name is looked up in runtime_sweeper.app_schema, as the
 * application's tables are, whatever the search_path of the caller.
 */
#include "liveness/liveness.hpp"

#include <csignal>
#include <optional>

extern "C"
{
#include "nodes/pg_list.h"
#include "storage/latch.h"
#include "utils/regproc.h"
#include "utils/timeout.h"
#include "utils/varlena.h"
}

namespace rs
{

namespace
{

/* Our timer, registered on first use in each process. */
TimeoutId	timer_id = MAX_TIMEOUTS;
volatile sig_atomic_t timer_fired = false;

/* The timer's handler: cancel the running query, as statement_timeout does. */
void
liveness_timer_handler(void)
{
	timer_fired = true;
	QueryCancelPending = true;
	InterruptPending = true;
	SetLatch(MyLatch);
}

/*
 * The relation name with each part quoted, qualified with app_schema when
 * the setting names no schema: "public"."alive_runtimes".  Raises on a name
 * that does not parse.
 */
std::string
quoted_relation(const std::string &name, const std::string &app_schema)
{
	std::string out;
	int			parts = 0;

	pg_guard([&]() {
		List	   *names = stringToQualifiedNameList(name.c_str());
		ListCell   *lc;

		parts = list_length(names);
		foreach(lc, names)
		{
			if (!out.empty())
				out.push_back('.');
			out += quote_identifier(strVal(lfirst(lc)));
		}
	});
	if (parts == 1)
		out = pg_call([&]() { return quote_identifier(app_schema.c_str()); }) +
			std::string(".") + out;
	else if (parts != 2)
		throw Failure("runtime_sweeper.liveness_relation must be relation or schema.relation");
	return out;
}

class RelationLiveness : public LivenessSource
{
public:
	const char *name() const override { return "relation"; }

	LivenessAnswer check(SweepContext &ctx, const std::vector<Uuid> &ids) override
	{
		LivenessAnswer answer;

		if (ctx.settings.liveness_relation.empty())
		{
			answer.error = "runtime_sweeper.liveness_relation is not set";
			return answer;
		}

		std::string relation;

		try
		{
			relation = quoted_relation(ctx.settings.liveness_relation, ctx.settings.app_schema);
		}
		catch (const std::exception &e)
		{
			answer.error = e.what();
			return answer;
		}

		std::string sql =
			"SELECT c.ord FROM pg_catalog.unnest($1::pg_catalog.uuid[]) WITH ORDINALITY AS c(id, ord)"
			" WHERE EXISTS (SELECT 1 FROM " + relation +
			" l WHERE pg_catalog.lower(l.runtime_id::pg_catalog.text) = c.id::pg_catalog.text)";
		std::vector<bool> alive(ids.size(), false);
		std::optional<PgError> foreign_cancel;
		int			timeout_ms = ctx.settings.redis_timeout_ms;

		pg_guard([&]() {
			if (timer_id == MAX_TIMEOUTS)
				timer_id = RegisterTimeout(USER_TIMEOUT, liveness_timer_handler);
			timer_fired = false;
			enable_timeout_after(timer_id, timeout_ms);
		});
		try
		{
			answer.answered = try_in_subtransaction([&]() {
				Args		args;
				uint64		n = 0;

				args.uuid_array(ids);
				try
				{
					n = execute(sql, args, true);
				}
				catch (const PgError &e)
				{
					/* A cancel that our timer did not cause belongs to the caller. */
					if (e.sqlerrcode() == ERRCODE_QUERY_CANCELED && !timer_fired)
						foreign_cancel.emplace(e);
					throw;
				}
				for (uint64 r = 0; r < n; r++)
				{
					int64		ord = row::int64_value(r, 1);

					if (ord >= 1 && ord <= static_cast<int64>(ids.size()))
						alive[ord - 1] = true;
				}
			}, &answer.error);
		}
		catch (...)
		{
			pg_guard([&]() { disable_timeout(timer_id, false); });
			throw;
		}
		pg_guard([&]() { disable_timeout(timer_id, false); });

		if (timer_fired)
		{
			/*
			 * Our own cancel: consumed by the failed query, or still pending
			 * when the query won the race; either way it is not the caller's.
			 */
			QueryCancelPending = false;
			if (!answer.answered)
				answer.error = "relation " + relation + ": no answer within " +
					std::to_string(timeout_ms) + " ms (runtime_sweeper.redis_timeout)";
		}
		if (foreign_cancel)
			throw PgError(*foreign_cancel);

		if (answer.answered)
			answer.alive = std::move(alive);
		return answer;
	}
};

}							/* namespace */

LivenessSource &
relation_liveness()
{
	static RelationLiveness source;

	return source;
}

}							/* namespace rs */
