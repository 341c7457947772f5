/*
 * relation.cpp
 *	  liveness = relation: a table, view or foreign table whose runtime_id
 *	  column (uuid or text) lists the runtimes that are alive.
 *
 * The query runs in a subtransaction with statement_timeout set to
 * redis_timeout, so a missing relation, a revoked privilege or a foreign
 * server that is down or hanging costs one rolled-back subtransaction and a
 * fallback, never the stage.
 */
#include "liveness/liveness.hpp"

extern "C"
{
#include "nodes/pg_list.h"
#include "utils/guc.h"
#include "utils/regproc.h"
#include "utils/varlena.h"
}

namespace rs
{

namespace
{

/* The relation name, each part quoted: "schema"."view". */
std::string
quoted_relation(const std::string &name)
{
	std::string out;

	pg_guard([&]() {
		List	   *parts = stringToQualifiedNameList(name.c_str());
		ListCell   *lc;

		foreach(lc, parts)
		{
			if (!out.empty())
				out.push_back('.');
			out += quote_identifier(strVal(lfirst(lc)));
		}
	});
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

		std::string sql;
		std::string timeout = std::to_string(ctx.settings.redis_timeout_ms);
		std::vector<bool> alive(ids.size(), false);

		answer.answered = try_in_subtransaction([&]() {
			sql = "SELECT c.ord FROM pg_catalog.unnest($1::uuid[]) WITH ORDINALITY AS c(id, ord)"
				" WHERE EXISTS (SELECT 1 FROM " + quoted_relation(ctx.settings.liveness_relation) +
				" l WHERE pg_catalog.lower(l.runtime_id::text) = c.id::text)";
			int			nest_level = pg_call([&]() {
				int			level = NewGUCNestLevel();

				set_config_option("statement_timeout", timeout.c_str(), PGC_USERSET,
								  PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
				return level;
			});

			Args		args;
			uint64		n;

			args.uuid_array(ids);
			n = execute(sql, args, true);
			for (uint64 r = 0; r < n; r++)
			{
				int64		ord = row::int64_value(r, 1);

				if (ord >= 1 && ord <= static_cast<int64>(ids.size()))
					alive[ord - 1] = true;
			}
			/* Give the enclosing transaction its own timeout back. */
			pg_guard([&]() { AtEOXact_GUC(true, nest_level); });
		}, &answer.error);

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
