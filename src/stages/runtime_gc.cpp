/*
 * runtime_gc.cpp
 *	  Stage 4: offline runtimes silent longer than the TTL are deleted when
 *	  no agent references them and no task still needs them.
 *
 * The original deleted with `id NOT IN (SELECT runtime_id FROM agent)`, which
 * one NULL runtime_id turns into "delete nothing", and its cascade silently
 * destroyed queued work.  Here the agent check is NOT EXISTS, a runtime with
 * a non-terminal task is kept, and candidates are locked first and then
 * re-checked with a fresh snapshot: a task inserted for the runtime
 * meanwhile either still holds its key-share lock (the runtime is skipped)
 * or has committed (the re-check sees it); once locked, no new task can
 * reference the runtime until the delete commits.
 *
 * With gc_keep_history, the task history survives: a nullable runtime_id is
 * detached before the delete, a NOT NULL one keeps the runtime (counted in
 * gc_held_back).
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

/*
 * $1 TTL, $2 a limit: the candidates there are (locked by us or held by a
 * client), for the rows_skipped count.
 */
const char *const skipped_sql =
	"SELECT pg_catalog.count(*) FROM (SELECT 1 FROM @S@.agent_runtime r WHERE " GC_PREDICATE("$1")
	" LIMIT $2) s";

/* $1 TTL, $2 the locked candidates: those still eligible now. */
const char *const recheck_sql =
	"SELECT r.id FROM @S@.agent_runtime r WHERE r.id = ANY ($2) AND " GC_PREDICATE("$1");

/* $1 runtimes about to be deleted: keep their terminal tasks. */
const char *const detach_sql =
	"UPDATE @S@.agent_task_queue SET runtime_id = NULL WHERE runtime_id = ANY ($1)";

/* $1 runtimes to delete (locked and re-checked). */
const char *const delete_sql =
	"WITH d AS (DELETE FROM @S@.agent_runtime r WHERE r.id = ANY ($1)"
	"           RETURNING r.id, r.workspace_id, r.last_seen_at)"
	" SELECT d.id, d.workspace_id FROM d ORDER BY d.last_seen_at, d.id";

/* $1 TTL: runtimes that only their task history keeps (gc_keep_history). */
const char *const held_back_sql =
	"SELECT pg_catalog.count(*) FROM @S@.agent_runtime r WHERE " GC_BASE_PREDICATE("$1")
	" AND EXISTS (SELECT 1 FROM @S@.agent_task_queue h WHERE h.runtime_id = r.id)";

/* Runs a query whose first column is a uuid and collects it. */
std::vector<Uuid>
collect_ids(SweepContext &ctx, const char *sql, Args &args)
{
	std::vector<Uuid> ids;
	uint64		n = execute(ctx.sql(sql), args);

	for (uint64 r = 0; r < n; r++)
		ids.push_back(row::uuid(r, 1));
	return ids;
}

}							/* namespace */

std::vector<RuntimeRow>
stage_runtime_gc(SweepContext &ctx, int64 ttl_us, int max_runtimes)
{
	std::vector<RuntimeRow> deleted;
	bool		detach = ctx.settings.gc_keep_history && ctx.shape().task_runtime_nullable;

	if (ctx.settings.gc_keep_history && !detach)
	{
		Args		args;

		args.interval_us(ttl_us);
		/* Not read-only: within sweep() it must see the earlier stages' writes. */
		execute(ctx.sql(held_back_sql), args);
		ctx.tally.add(C_GC_HELD_BACK, static_cast<uint64>(row::int64_value(0, 1)));
	}

	std::vector<Uuid> locked;

	{
		Args		args;

		args.interval_us(ttl_us).int4(max_runtimes);
		locked = collect_ids(ctx, lock_sql, args);
	}
	if (locked.size() < static_cast<size_t>(max_runtimes))
	{
		/* SKIP LOCKED ran out of free candidates: the others are held. */
		Args		args;
		uint64		there;

		args.interval_us(ttl_us).int4(max_runtimes);
		/* Not read-only: the same snapshot as the locking query (see count_skipped). */
		execute(ctx.sql(skipped_sql), args);
		there = static_cast<uint64>(row::int64_value(0, 1));
		if (there > locked.size())
			ctx.tally.add(C_ROWS_SKIPPED, there - locked.size());
	}
	if (locked.empty())
		return deleted;

	std::vector<Uuid> doomed;

	{
		Args		args;

		args.interval_us(ttl_us).uuid_array(locked);
		doomed = collect_ids(ctx, recheck_sql, args);
	}
	if (doomed.empty())
		return deleted;

	if (detach)
	{
		Args		args;

		args.uuid_array(doomed);
		execute(ctx.sql(detach_sql), args);
	}

	{
		Args		args;
		uint64		n;

		args.uuid_array(doomed);
		n = execute(ctx.sql(delete_sql), args);
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
