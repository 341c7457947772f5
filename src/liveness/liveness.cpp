/*
 * liveness.cpp
 *	  Choosing the liveness source, and the fallback that keeps a broken
 *	  source from ever stalling the sweep.
 */
#include "liveness/liveness.hpp"

namespace rs
{

namespace
{

/* liveness = none: the database window alone decides. */
class NoLiveness : public LivenessSource
{
public:
	const char *name() const override { return "none"; }
	LivenessAnswer check(SweepContext &, const std::vector<Uuid> &ids) override
	{
		LivenessAnswer a;

		a.answered = true;
		a.alive.assign(ids.size(), false);
		return a;
	}
};

/* Whether this process is inside an outage of its source (log once per outage). */
bool		in_outage = false;

}							/* namespace */

LivenessSource &
liveness_source(const Settings &settings)
{
	static NoLiveness none;

	switch (settings.liveness)
	{
		case LivenessKind::Relation:
			return relation_liveness();
		case LivenessKind::Redis:
			return redis_liveness();
		case LivenessKind::None:
			break;
	}
	return none;
}

std::vector<Uuid>
filter_alive(SweepContext &ctx, const std::vector<Uuid> &candidates)
{
	LivenessSource &source = liveness_source(ctx.settings);

	if (candidates.empty() || ctx.settings.liveness == LivenessKind::None)
	{
		stats_liveness(source.name(), true, nullptr);
		return candidates;
	}

	ctx.tally.add(C_LIVENESS_CHECKS);
	LivenessAnswer answer = source.check(ctx, candidates);

	if (!answer.answered)
	{
		ctx.tally.add(C_LIVENESS_FALLBACKS);
		stats_liveness(source.name(), false, answer.error.c_str());
		if (!in_outage)
		{
			in_outage = true;
			pg_guard([&]() {
				ereport(WARNING,
						(errmsg("runtime_sweeper: liveness source \"%s\" unavailable, using the database window alone",
								source.name()),
						 errdetail("%s", answer.error.c_str())));
			});
		}
		return candidates;
	}

	if (in_outage)
	{
		in_outage = false;
		pg_guard([&]() {
			ereport(LOG, (errmsg("runtime_sweeper: liveness source \"%s\" is answering again",
								 source.name())));
		});
	}
	stats_liveness(source.name(), true, "");

	std::vector<Uuid> dead;

	for (size_t i = 0; i < candidates.size(); i++)
	{
		if (answer.alive[i])
			ctx.tally.add(C_LIVENESS_KEPT_ALIVE);
		else
			dead.push_back(candidates[i]);
	}
	return dead;
}

}							/* namespace rs */
