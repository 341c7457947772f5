/*
 * stale_runtimes.cpp
 *	  Stage 1: online runtimes whose heartbeat is older than the threshold
 *	  go offline, unless the liveness source vouches for them or a heartbeat
 *	  lands before the write.  Their in-flight tasks are failed right after,
 *	  and each affected workspace hears daemon:register last.
 */
#include "stages/stages.hpp"

#include "stages/predicates.hpp"

#include "failed_tasks.hpp"
#include "liveness/liveness.hpp"

#include <cmath>
#include <unordered_map>
#include <unordered_set>

namespace rs
{

namespace
{

/* Oldest first, so that a bounded tick handles the longest-silent first. */
const char *const candidates_sql =
	"SELECT r.id FROM @S@.agent_runtime r"
	" WHERE " STALE_RUNTIME_PREDICATE("$1")
	" ORDER BY r.last_seen_at, r.id LIMIT $2";

/*
 * The write re-checks status and age under a row lock: a heartbeat that
 * committed since the candidates were read fails the re-check, one still in
 * progress holds the lock and is skipped.
 */
const char *const flip_sql =
	"WITH c AS ("
	"  SELECT r.id FROM @S@.agent_runtime r"
	"  WHERE r.id = ANY ($1) AND " STALE_RUNTIME_PREDICATE("$2")
	"  FOR UPDATE SKIP LOCKED)"
	" UPDATE @S@.agent_runtime r SET status = 'offline', updated_at = pg_catalog.now()"
	" FROM c WHERE r.id = c.id"
	" RETURNING r.id, r.workspace_id, r.owner_id, r.daemon_id, r.provider, r.last_seen_at";

const char *const online_count_sql =
	"SELECT pg_catalog.count(*) FROM @S@.agent_runtime r WHERE r.status = 'online'";

/* Most candidates read in one tick; the rest wait for the next. */
constexpr int MAX_CANDIDATES = 100000;

/*
 * The mass-offline guard: a tick may flip at most this share of the online
 * runtimes (when there are at least mass_offline_min of them).
 */
bool
mass_offline_blocked(SweepContext &ctx, size_t flipping)
{
	if (!ctx.worker_tick || ctx.settings.mass_offline_guard <= 0.0 || flipping == 0)
		return false;

	Args		args;

	execute(ctx.sql(online_count_sql), args, true);

	int64		online = row::int64_value(0, 1);

	if (online < ctx.settings.mass_offline_min)
		return false;
	if (static_cast<double>(flipping) <= std::floor(ctx.settings.mass_offline_guard * online))
		return false;

	ctx.tally.add(C_MASS_OFFLINE_BLOCKED);
	pg_guard([&]() {
		ereport(WARNING,
				(errmsg("runtime_sweeper: not marking %zu of %lld online runtimes offline at once",
						flipping, static_cast<long long>(online)),
				 errdetail("runtime_sweeper.mass_offline_guard allows at most %.0f%% per tick.",
						   ctx.settings.mass_offline_guard * 100.0),
				 errhint("If the daemons really died, raise or disable the guard, or call runtime_sweeper.mark_stale_runtimes_offline().")));
	});
	return true;
}

}							/* namespace */

std::vector<RuntimeRow>
stage_stale_runtimes(SweepContext &ctx, int64 stale_after_us)
{
	std::vector<RuntimeRow> flipped;
	std::vector<Uuid> candidates;

	{
		Args		args;
		uint64		n;

		args.interval_us(stale_after_us).int4(MAX_CANDIDATES);
		n = execute(ctx.sql(candidates_sql), args, true);
		for (uint64 r = 0; r < n; r++)
			candidates.push_back(row::uuid(r, 1));
	}
	if (candidates.empty())
	{
		/* Report a liveness source broken by a settings change right away. */
		probe_liveness(ctx);
		return flipped;
	}

	if (!ctx.offline_allowed)
	{
		ctx.tally.add(C_OUTAGE_DEFERRED, candidates.size());
		return flipped;
	}

	std::vector<Uuid> to_flip = filter_alive(ctx, candidates);

	if (to_flip.empty() || mass_offline_blocked(ctx, to_flip.size()))
		return flipped;

	std::vector<std::string> analytics;

	{
		Args		args;
		uint64		n;

		args.uuid_array(to_flip).interval_us(stale_after_us);
		n = execute(ctx.sql(flip_sql), args);
		for (uint64 r = 0; r < n; r++)
		{
			RuntimeRow	rt{row::uuid(r, 1), row::uuid(r, 2)};

			flipped.push_back(rt);
			analytics.push_back(JsonObject()
								.str("event", "runtime_offline")
								.str("runtime_id", uuid_text(rt.runtime_id))
								.str("workspace_id", uuid_text(rt.workspace_id))
								.str("owner_id", row::is_null(r, 3) ? "" : uuid_text(row::uuid(r, 3)))
								.str("daemon_id", row::text(r, 4))
								.str("provider", row::text(r, 5))
								.str("last_seen_at", row::text(r, 6))
								.finish());
		}
	}
	/* Held by a client (a heartbeat in flight) or refreshed before the write. */
	ctx.tally.add(C_ROWS_SKIPPED, to_flip.size() - flipped.size());
	if (flipped.empty())
		return flipped;

	/* RETURNING has no order: keep the candidates' (longest silent first). */
	{
		std::unordered_map<std::string, size_t> position;
		std::vector<RuntimeRow> ordered;
		std::vector<std::string> ordered_analytics;

		for (size_t i = 0; i < flipped.size(); i++)
			position.emplace(uuid_text(flipped[i].runtime_id), i);
		for (const Uuid &id : to_flip)
		{
			auto		it = position.find(uuid_text(id));

			if (it == position.end())
				continue;
			ordered.push_back(flipped[it->second]);
			ordered_analytics.push_back(std::move(analytics[it->second]));
		}
		flipped = std::move(ordered);
		analytics = std::move(ordered_analytics);
	}

	ctx.tally.add(C_RUNTIMES_OFFLINE, flipped.size());

	std::vector<Uuid> flipped_ids;

	for (const RuntimeRow &rt : flipped)
		flipped_ids.push_back(rt.runtime_id);
	liveness_source(ctx.settings).forget(ctx, flipped_ids);
	for (const std::string &record : analytics)
		ctx.events.analytics(record);

	/* In-flight tasks of offline runtimes fail now (within the grace, if any). */
	stage_offline_tasks(ctx, SweepContext::us(ctx.settings.reconnect_grace),
						ctx.settings.task_batch_size);

	std::unordered_set<std::string> seen;

	for (const RuntimeRow &rt : flipped)
	{
		std::string ws = uuid_text(rt.workspace_id);

		if (seen.insert(ws).second)
			ctx.events.emit("daemon:register", ws, "{\"action\":\"stale_sweep\"}");
	}
	return flipped;
}

}							/* namespace rs */
