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

/*
 * The settings this process last asked its source with.  When they change
 * (a reload, a SET), the next tick asks the source at once, candidates or
 * not, so that a bad relation name, URL or password shows in the status view
 * and the log right away instead of at the next stale runtime.
 */
std::string asked_with;

/* What identifies the source's configuration. */
std::string
source_config(const Settings &s)
{
	return std::to_string(static_cast<int>(s.liveness)) + '\n' + s.liveness_relation + '\n' +
		s.app_schema + '\n' + s.redis_url + '\n' + s.redis_key_prefix;
}

/*
 * Publishes a check's outcome: health and last error in the status view, a
 * WARNING when an outage starts and a LOG line when it ends.  Returns
 * whether the source answered.
 */
bool
note_answer(LivenessSource &source, const LivenessAnswer &answer)
{
	if (!answer.answered)
	{
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
		return false;
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
	return true;
}

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
	asked_with = source_config(ctx.settings);

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

	if (!note_answer(source, answer))
	{
		ctx.tally.add(C_LIVENESS_FALLBACKS);
		return candidates;
	}

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

/*
 * A tick without candidates: if the source's settings changed since this
 * process last asked it, ask it about no runtime at all (connect, AUTH,
 * plan and run the relation query), to report a broken configuration now.
 * Counts no check and no fallback.
 */
void
probe_liveness(SweepContext &ctx)
{
	std::string config = source_config(ctx.settings);

	if (config == asked_with)
		return;
	asked_with = config;

	LivenessSource &source = liveness_source(ctx.settings);

	if (!outage_source.empty() && outage_source != source.name())
		outage_source.clear();
	if (ctx.settings.liveness == LivenessKind::None)
	{
		stats_liveness(source.name(), true, "");
		return;
	}
	note_answer(source, source.check(ctx, std::vector<Uuid>()));
}

}							/* namespace rs */
