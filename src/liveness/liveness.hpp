/*
 * liveness.hpp
 *	  Sources that can tell a stale-looking runtime is in fact alive: none,
 *	  a relation (table, view, foreign table) or Redis.  A source answers for
 *	  a whole batch or says it cannot; it never blocks past its timeout.
 */
#pragma once

#include "sweep_context.hpp"

#include <string>
#include <vector>

namespace rs
{

/* The answer of a source for one batch of candidates. */
struct LivenessAnswer
{
	bool		answered = false;	/* false: fall back to the database window */
	std::vector<bool> alive;	/* per candidate, when answered */
	std::string error;			/* why it could not answer */
};

class LivenessSource
{
public:
	virtual ~LivenessSource() = default;
	virtual const char *name() const = 0;
	/* Which of the candidates are alive. */
	virtual LivenessAnswer check(SweepContext &ctx, const std::vector<Uuid> &ids) = 0;
	/* Drops the records of runtimes just marked offline. */
	virtual void forget(SweepContext &ctx, const std::vector<Uuid> &ids) {}
};

/* The source the settings ask for (kept across ticks: connections are reused). */
LivenessSource &liveness_source(const Settings &settings);

/* Concrete sources. */
LivenessSource &relation_liveness();
LivenessSource &redis_liveness();

/*
 * Installs the log hook that masks the password of any redis:// URL a log
 * line or client message would show; called from _PG_init.
 */
void		install_redis_log_redaction();

/*
 * Filters candidates through the configured source, with counting, health
 * reporting and once-per-outage logging.  Returns the runtimes to flip.
 */
std::vector<Uuid> filter_alive(SweepContext &ctx, const std::vector<Uuid> &candidates);

/*
 * Called when a tick has no candidates: asks the source about nothing when
 * its settings changed since the last check, so that a bad configuration is
 * reported (status view, one log line) right after a reload or SET.
 */
void		probe_liveness(SweepContext &ctx);

}							/* namespace rs */
