/*
 * redis.cpp
 *	  liveness = redis: placeholder until the hiredis source lands.
 */
#include "liveness/liveness.hpp"

namespace rs
{

namespace
{

class RedisLiveness : public LivenessSource
{
public:
	const char *name() const override { return "redis"; }
	LivenessAnswer check(SweepContext &, const std::vector<Uuid> &) override
	{
		LivenessAnswer a;

		a.error = "the redis liveness source is not available in this build";
		return a;
	}
};

}							/* namespace */

LivenessSource &
redis_liveness()
{
	static RedisLiveness source;

	return source;
}

}							/* namespace rs */
