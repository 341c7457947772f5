/*
 * runtime_gc.cpp
 *	  Stage 4: offline runtimes silent longer than the TTL are deleted when
 *	  no agent references them and no task still needs them.
 *
 * The original deleted with `id NOT IN (SELECT runtime_id FROM agent)`, which
 * one NULL runtime_id turns into "delete nothing", and its cascade silently
 * destroyed queued work.  Here the agent check is NOT EXISTS, a runtime with
 * a non-terminal task is kept, and the delete locks its candidates first and
 * re-checks them with a fresh snapshot: a task inserted for the runtime
 * meanwhile either holds its key-share lock (the runtime is skipped) or has
 * committed (the re-check sees it).
 */
#include "stages/stages.hpp"

#include "stages/predicates.hpp"

#include <unordered_set>

namespace rs
{

namespace
{

/* $1 TTL, $2 batch size. */
const char *const lock_sql =
	"SELECT r.id FROM @S@.agent_runtime r WHERE " GC_PREDICATE("$1")
	" ORDER BY r.last_seen_at, r.id LIMIT $2 FOR UPDATE SKIP LOCKED";

/* $1 TTL, $2 the locked candidates. */
const char *const delete_sql =
	"DELETE FROM @S@.agent_runtime r WHERE r.id = ANY ($2) AND " GC_PREDICATE("$1")
	" RETURNING r.id, r.workspace_id";

}							/* namespace */

std::vector<RuntimeRow>
stage_runtime_gc(SweepContext &ctx, int64 ttl_us, int max_runtimes)
{
	std::vector<RuntimeRow> deleted;
	std::vector<Uuid> locked;
	const std::string &schema = ctx.settings.app_schema;

	{
		Args		args;
		uint64		n;

		args.interval_us(ttl_us).int4(max_runtimes);
		n = execute(with_schema(lock_sql, schema), args);
		for (uint64 r = 0; r < n; r++)
			locked.push_back(row::uuid(r, 1));
	}
	if (locked.empty())
		return deleted;

	{
		Args		args;
		uint64		n;

		args.interval_us(ttl_us).uuid_array(locked);
		n = execute(with_schema(delete_sql, schema), args);
		for (uint64 r = 0; r < n; r++)
			deleted.push_back(RuntimeRow{row::uuid(r, 1), row::uuid(r, 2)});
	}
	ctx.tally.add(C_RUNTIMES_COLLECTED, deleted.size());

	std::unordered_set<std::string> seen;

	for (const RuntimeRow &rt : deleted)
	{
		std::string ws = uuid_text(rt.workspace_id);

		if (seen.insert(ws).second)
			ctx.events.emit("daemon:register", ws, "{\"action\":\"runtime_gc\"}");
	}
	return deleted;
}

}							/* namespace rs */
