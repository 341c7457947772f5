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

/*
 * The source this process is in an outage of ("" when none): the outage is
 * logged when it starts and when it ends, not on every tick.  A change of
 * source ends it.
 */
std::string outage_source;

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

/*
 * Asks the configured source about the candidates.  A source that cannot
 * answer costs a fallback to the database window (every candidate flips),
 * a counter, the health in the status view, and one WARNING per outage.
 */
std::vector<Uuid>
filter_alive(SweepContext &ctx, const std::vector<Uuid> &candidates)
{
	LivenessSource &source = liveness_source(ctx.settings);

	if (!outage_source.empty() && outage_source != source.name())
		outage_source.clear();

	if (ctx.settings.liveness == LivenessKind::None)
	{
		stats_liveness(source.name(), true, "");
		return candidates;
	}
	if (candidates.empty())
	{
		/* Nothing to ask: the health stays what the last check found. */
		stats_liveness(source.name(), outage_source.empty(), nullptr);
		return candidates;
	}

	ctx.tally.add(C_LIVENESS_CHECKS);
	LivenessAnswer answer = source.check(ctx, candidates);

	if (!answer.answered)
	{
		ctx.tally.add(C_LIVENESS_FALLBACKS);
		stats_liveness(source.name(), false, answer.error.c_str());
		if (outage_source.empty())
		{
			outage_source = source.name();
			pg_guard([&]() {
				ereport(WARNING,
						(errmsg("runtime_sweeper: liveness source \"%s\" unavailable, using the database window alone",
								source.name()),
						 errdetail("%s", answer.error.c_str()),
						 errhint("This is logged once per outage; runtime_sweeper.status shows the last error.")));
			});
		}
		return candidates;
	}

	if (!outage_source.empty())
	{
		outage_source.clear();
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
