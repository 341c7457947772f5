// rsbench: measurement drivers for the runtime_sweeper benchmarks.
//
//   rsbench idle --dsn D --ticks N
//       Wakes the worker N times, one tick at a time, and prints for each
//       tick its duration as the worker measured it (status.last_tick_duration)
//       and each stage's stage_status.last_duration, in ms.  A tick asked for
//       by wake() runs every stage, as sweep() does: this is the full tick,
//       not what the worker does on its own when nothing is due.
//   rsbench scheduled --dsn D --ticks N [--timeout S]
//       Lets the worker tick on its own schedule (never wakes it) and prints,
//       for each of N consecutive ticks, status.last_tick_duration and how
//       many stage runs (other than GC) and GC runs the tick added, with
//       GC's stage_status.last_duration.  The first tick it sees is skipped:
//       it may still be one that the reload of new settings or a wake()
//       asked for.  This is the worker's real tick: the look-ahead statement,
//       plus the stages it found due, plus GC when gc_interval has passed.
//       Sleeps until status.next_tick, then polls every twentieth of the last
//       tick's duration (0.5 to 20 ms), so the probe costs a few statements
//       per tick and never competes with a long tick for the CPU.
//   rsbench time-sql --dsn D --sql Q [--calls N] [--warmup W]
//       Runs Q W + N times and prints the client-side time of the last N, in
//       ms (for sweep(): the full tick through the SQL API).
//   rsbench wait --dsn D --sql Q [--wake] [--timeout S] [--poll-ms MS]
//       Optionally wakes the worker, then polls the boolean query Q until it
//       is true; prints elapsed_ms (from just before the wake).  Exit 1 on
//       timeout.
//   rsbench heartbeat --dsn D --schema S --seconds T [--period-ms P]
//       Heartbeats every online runtime of schema S every P ms (the
//       original's batched TouchAgentRuntimesLastSeenBatch) for T seconds.
//   rsbench detect --dsn D --schema S --threshold SECS --spread SECS
//                  --channel C [--heartbeat-ms P] [--lead SECS]
//       Every online runtime of S heartbeats (every P ms, batched) until its
//       own death time, drawn uniformly in [lead, lead + spread] seconds from
//       the start; then it falls silent.  A LISTEN on the analytics channel C
//       receives the worker's runtime_offline records (runtime_id,
//       last_seen_at); the detection latency of a runtime is the receive time
//       minus (last_seen_at + threshold), the moment it became stale.  Prints
//       one line per runtime and a summary with p50/p99/max, in ms.
//   rsbench wake-loop --dsn D --ticks N [--timeout S]
//       Calls wake() back to back until the worker has run N more ticks;
//       prints the tick rate.
// Every loop is bounded by a timeout.
#include "pq.hpp"

#include <algorithm>
#include <cmath>
#include <map>
#include <random>
#include <sys/select.h>
#include <thread>

namespace
{

const char *const stages[] = {"stale_runtimes", "offline_tasks", "stale_tasks", "queued_expiry", "runtime_gc"};

double
percentile(std::vector<double> v, double p)
{
	if (v.empty())
		return NAN;
	std::sort(v.begin(), v.end());
	// nearest-rank
	size_t		k = static_cast<size_t>(std::ceil(p / 100.0 * v.size()));
	return v[std::min(v.size() - 1, k == 0 ? 0 : k - 1)];
}

void
sleep_ms(double ms)
{
	if (ms > 0)
		std::this_thread::sleep_for(std::chrono::microseconds(static_cast<long>(ms * 1000)));
}

int
cmd_idle(int argc, char **argv)
{
	pq::Conn	db(pq::arg(argc, argv, "--dsn", ""));
	int			n = atoi(pq::arg(argc, argv, "--ticks", "7").c_str());
	double		timeout = atof(pq::arg(argc, argv, "--timeout", "300").c_str());

	for (int i = 0; i < n; i++)
	{
		std::string t0 = db.exec("SELECT clock_timestamp()").get(0, 0);
		double		start = pq::now_us();

		if (db.exec("SELECT runtime_sweeper.wake()").get(0, 0) != "t")
			throw std::runtime_error("wake() found no worker");
		for (;;)
		{
			auto		r = db.exec("SELECT last_tick_start > $1::timestamptz AND state <> 'sweeping'"
									" FROM runtime_sweeper.status WHERE database = current_database()", {t0});

			if (r.rows() == 1 && r.get(0, 0) == "t")
				break;
			if ((pq::now_us() - start) / 1e6 > timeout)
				throw std::runtime_error("no tick after wake()");
			/* A twentieth of the time waited so far (1 to 20 ms): a long tick is not disturbed. */
			sleep_ms(std::min(std::max(1.0, (pq::now_us() - start) / 1000 / 20), 20.0));
		}

		auto		tick = db.exec("SELECT extract(epoch FROM last_tick_duration) * 1000"
								   " FROM runtime_sweeper.status WHERE database = current_database()");
		auto		st = db.exec("SELECT stage, extract(epoch FROM last_duration) * 1000 AS ms"
								 " FROM runtime_sweeper.stage_status WHERE database = current_database()");
		std::map<std::string, std::string> ms;

		for (int r = 0; r < st.rows(); r++)
			ms[st.get(r, 0)] = st.get(r, 1);
		printf("tick_ms=%s", tick.get(0, 0).c_str());
		for (const char *s : stages)
			printf(" %s=%s", s, ms.count(s) ? ms[s].c_str() : "NaN");
		printf("\n");
		fflush(stdout);
	}
	return 0;
}

int
cmd_scheduled(int argc, char **argv)
{
	pq::Conn	db(pq::arg(argc, argv, "--dsn", ""));
	int			n = atoi(pq::arg(argc, argv, "--ticks", "20").c_str());
	double		timeout = atof(pq::arg(argc, argv, "--timeout", "300").c_str());
	const char *probe =
		"SELECT s.ticks, extract(epoch FROM s.last_tick_duration) * 1000,"
		" coalesce(extract(epoch FROM s.next_tick - clock_timestamp()) * 1000, 0),"
		" (SELECT coalesce(sum(g.runs), 0) FROM runtime_sweeper.stage_status g"
		"   WHERE g.database = s.database AND g.stage <> 'runtime_gc'),"
		" (SELECT coalesce(sum(g.runs), 0) FROM runtime_sweeper.stage_status g"
		"   WHERE g.database = s.database AND g.stage = 'runtime_gc'),"
		" (SELECT extract(epoch FROM g.last_duration) * 1000 FROM runtime_sweeper.stage_status g"
		"   WHERE g.database = s.database AND g.stage = 'runtime_gc')"
		" FROM runtime_sweeper.status s WHERE s.database = current_database() AND s.pid IS NOT NULL";
	double		start = pq::now_us();
	long		prev_ticks = -1;
	long		prev_other = 0;
	long		prev_gc = 0;
	int			samples = 0;
	int			missed = 0;
	long		polls = 0;
	bool		warm = false;

	while (samples < n)
	{
		auto		r = db.exec(probe);

		polls++;
		if (r.rows() != 1)
			throw std::runtime_error("no worker for this database");

		long		ticks = atol(r.get(0, 0).c_str());
		long		other = atol(r.get(0, 3).c_str());
		long		gc_runs = atol(r.get(0, 4).c_str());

		if (prev_ticks >= 0 && ticks > prev_ticks && !warm)
			warm = true;		/* the first tick seen may be one a reload or wake() asked for */
		else if (prev_ticks >= 0 && ticks == prev_ticks + 1)
		{
			printf("tick=%ld ms=%s other_stage_runs=%ld gc_runs=%ld gc_ms=%s\n", ticks,
				   r.get(0, 1).c_str(), other - prev_other, gc_runs - prev_gc,
				   r.null(0, 5) ? "NaN" : r.get(0, 5).c_str());
			fflush(stdout);
			samples++;
		}
		else if (prev_ticks >= 0 && ticks > prev_ticks + 1)
			missed++;			/* two ticks between probes: no clean sample */
		prev_ticks = ticks;
		prev_other = other;
		prev_gc = gc_runs;
		if ((pq::now_us() - start) / 1e6 > timeout)
		{
			printf("summary samples=%d missed=%d polls=%ld timeout=1\n", samples, missed, polls);
			return 1;
		}
		/*
		 * Sleep until the next tick is due; then poll until it is done, at a
		 * twentieth of the last tick's duration (0.5 to 20 ms), so that the
		 * probe never competes with a long tick for the CPU.
		 */
		double		until_ms = atof(r.get(0, 2).c_str());
		double		last_ms = atof(r.get(0, 1).c_str());

		if (until_ms > 0.5)
			sleep_ms(std::min(until_ms, 1000.0));
		else
			sleep_ms(std::min(std::max(0.5, last_ms / 20), 20.0));
	}
	printf("summary samples=%d missed=%d polls=%ld\n", samples, missed, polls);
	return 0;
}

int
cmd_time_sql(int argc, char **argv)
{
	pq::Conn	db(pq::arg(argc, argv, "--dsn", ""));
	std::string sql = pq::arg(argc, argv, "--sql", "SELECT 1");
	int			n = atoi(pq::arg(argc, argv, "--calls", "5").c_str());
	int			warmup = atoi(pq::arg(argc, argv, "--warmup", "1").c_str());

	for (int i = 0; i < warmup + n; i++)
	{
		db.exec(sql);
		if (i >= warmup)
			printf("call=%d ms=%.3f\n", i - warmup + 1, db.last_us / 1000);
		fflush(stdout);
	}
	return 0;
}

int
cmd_wait(int argc, char **argv)
{
	pq::Conn	db(pq::arg(argc, argv, "--dsn", ""));
	std::string sql = pq::arg(argc, argv, "--sql", "SELECT true");
	double		timeout = atof(pq::arg(argc, argv, "--timeout", "300").c_str());
	double		poll_ms = atof(pq::arg(argc, argv, "--poll-ms", "5").c_str());
	double		start = pq::now_us();

	if (pq::flag(argc, argv, "--wake"))
		db.exec("SELECT runtime_sweeper.wake()");
	for (;;)
	{
		auto		r = db.exec(sql);

		if (r.rows() >= 1 && r.get(0, 0) == "t")
			break;
		if ((pq::now_us() - start) / 1e6 > timeout)
		{
			printf("elapsed_ms=NaN timeout=1\n");
			return 1;
		}
		sleep_ms(poll_ms);
	}
	printf("elapsed_ms=%.3f\n", (pq::now_us() - start) / 1000);
	return 0;
}

int
cmd_heartbeat(int argc, char **argv)
{
	pq::Conn	db(pq::arg(argc, argv, "--dsn", ""));
	std::string schema = pq::arg(argc, argv, "--schema", "public");
	double		seconds = atof(pq::arg(argc, argv, "--seconds", "10").c_str());
	double		period = atof(pq::arg(argc, argv, "--period-ms", "1000").c_str());
	double		start = pq::now_us();
	long		beats = 0;

	db.exec("SELECT set_config('search_path', $1, false)", {schema});

	std::string ids = "{";
	auto		r = db.exec("SELECT id FROM agent_runtime WHERE status = 'online'");
	for (int i = 0; i < r.rows(); i++)
		ids += (i ? "," : "") + r.get(i, 0);
	ids += "}";
	while ((pq::now_us() - start) / 1e6 < seconds)
	{
		double		t = pq::now_us();

		db.exec("UPDATE agent_runtime SET last_seen_at = now()"
				" WHERE id = ANY($1::uuid[]) AND status = 'online'", {ids});
		beats++;
		sleep_ms(std::min(period - (pq::now_us() - t) / 1000,
						  seconds * 1000 - (pq::now_us() - start) / 1000));
	}
	printf("heartbeats=%ld runtimes=%d\n", beats, r.rows());
	return 0;
}

int
cmd_detect(int argc, char **argv)
{
	std::string dsn = pq::arg(argc, argv, "--dsn", "");
	std::string schema = pq::arg(argc, argv, "--schema", "public");
	std::string channel = pq::arg(argc, argv, "--channel", "bench_analytics");
	double		threshold = atof(pq::arg(argc, argv, "--threshold", "5").c_str());
	double		spread = atof(pq::arg(argc, argv, "--spread", "60").c_str());
	double		lead = atof(pq::arg(argc, argv, "--lead", "1").c_str());
	double		hb_ms = atof(pq::arg(argc, argv, "--heartbeat-ms", "200").c_str());
	double		grace = atof(pq::arg(argc, argv, "--grace", "15").c_str());
	pq::Conn	db(dsn);
	pq::Conn	listener(dsn);

	db.exec("SELECT set_config('search_path', $1, false)", {schema});
	listener.exec("LISTEN \"" + channel + "\"");

	auto		r = db.exec("SELECT id FROM agent_runtime WHERE status = 'online' ORDER BY id");
	std::vector<std::string> ids;
	std::vector<double> death;	// seconds after start
	std::mt19937_64 rng(20240601);
	std::uniform_real_distribution<double> u(lead, lead + spread);

	for (int i = 0; i < r.rows(); i++)
	{
		ids.push_back(r.get(i, 0));
		death.push_back(u(rng));
	}

	std::map<std::string, double> received;	// runtime -> wall clock seconds
	std::map<std::string, std::string> last_seen;	// runtime -> text
	double		start = pq::now_us();
	double		end_by = lead + spread + threshold + grace;
	double		next_beat = 0;
	long		beats = 0;

	// One batched heartbeat of the runtimes still alive.
	auto		beat = [&](double elapsed) {
		std::string alive = "{";
		bool		any = false;

		for (size_t i = 0; i < ids.size(); i++)
			if (death[i] > elapsed)
			{
				alive += (any ? "," : "") + ids[i];
				any = true;
			}
		alive += "}";
		if (any)
		{
			db.exec("UPDATE agent_runtime SET last_seen_at = now()"
					" WHERE id = ANY($1::uuid[]) AND status = 'online'", {alive});
			beats++;
		}
	};

	beat(0);
	while (received.size() < ids.size())
	{
		double		elapsed = (pq::now_us() - start) / 1e6;

		if (elapsed > end_by)
			break;
		if (elapsed * 1000 >= next_beat)
		{
			beat(elapsed);
			next_beat += hb_ms;
		}

		// Wait for a notification until the next heartbeat is due.
		PGconn	   *c = listener.raw();
		int			sock = PQsocket(c);
		fd_set		fds;
		double		wait_ms = std::max(0.0, next_beat - (pq::now_us() - start) / 1000);
		struct timeval tv;

		tv.tv_sec = static_cast<long>(wait_ms / 1000);
		tv.tv_usec = static_cast<long>(fmod(wait_ms, 1000) * 1000);
		FD_ZERO(&fds);
		FD_SET(sock, &fds);
		if (select(sock + 1, &fds, nullptr, nullptr, &tv) < 0)
			continue;
		PQconsumeInput(c);

		PGnotify   *n;

		while ((n = PQnotifies(c)) != nullptr)
		{
			double		now = pq::wall_s();
			std::string payload = n->extra;

			PQfreemem(n);
			// {"event":"runtime_offline","runtime_id":"...",...,"last_seen_at":"..."}
			auto		field = [&](const std::string &key) {
				std::string needle = "\"" + key + "\":\"";
				size_t		p = payload.find(needle);

				if (p == std::string::npos)
					return std::string();
				p += needle.size();
				return payload.substr(p, payload.find('"', p) - p);
			};
			std::string id = field("runtime_id");

			if (!id.empty() && !received.count(id))
			{
				received[id] = now;
				last_seen[id] = field("last_seen_at");
			}
		}
	}

	// The server parses its own timestamps.
	std::vector<double> lat;
	std::string texts = "{";
	std::vector<std::string> order;

	for (auto &kv : last_seen)
	{
		texts += (order.empty() ? "\"" : ",\"") + kv.second + "\"";
		order.push_back(kv.first);
	}
	texts += "}";

	auto		epochs = db.exec("SELECT extract(epoch FROM x::timestamptz) FROM unnest($1::text[]) WITH ORDINALITY u(x, i) ORDER BY i", {texts});

	for (size_t i = 0; i < order.size(); i++)
	{
		double		stale_at = atof(epochs.get(static_cast<int>(i), 0).c_str()) + threshold;
		double		ms = (received[order[i]] - stale_at) * 1000;

		lat.push_back(ms);
		printf("runtime=%s last_seen_epoch=%s latency_ms=%.3f\n", order[i].c_str(),
			   epochs.get(static_cast<int>(i), 0).c_str(), ms);
	}
	printf("summary runtimes=%zu detected=%zu heartbeats=%ld p50_ms=%.3f p99_ms=%.3f max_ms=%.3f min_ms=%.3f\n",
		   ids.size(), lat.size(), beats, percentile(lat, 50), percentile(lat, 99),
		   lat.empty() ? NAN : *std::max_element(lat.begin(), lat.end()),
		   lat.empty() ? NAN : *std::min_element(lat.begin(), lat.end()));
	return lat.size() == ids.size() ? 0 : 1;
}

int
cmd_wake_loop(int argc, char **argv)
{
	pq::Conn	db(pq::arg(argc, argv, "--dsn", ""));
	long		target = atol(pq::arg(argc, argv, "--ticks", "1000").c_str());
	double		timeout = atof(pq::arg(argc, argv, "--timeout", "600").c_str());
	const char *ticks_sql = "SELECT ticks FROM runtime_sweeper.status WHERE database = current_database()";
	long		first = atol(db.exec(ticks_sql).get(0, 0).c_str());
	long		now = first;
	double		start = pq::now_us();
	long		wakes = 0;

	while (now - first < target)
	{
		if ((pq::now_us() - start) / 1e6 > timeout)
		{
			printf("ticks=%ld timeout=1\n", now - first);
			return 1;
		}
		db.exec("SELECT runtime_sweeper.wake()");
		wakes++;
		if (wakes % 64 == 0 || target - (now - first) < 64)
			now = atol(db.exec(ticks_sql).get(0, 0).c_str());
	}

	double		secs = (pq::now_us() - start) / 1e6;
	printf("ticks=%ld seconds=%.3f ticks_per_s=%.1f wakes=%ld\n", now - first, secs, (now - first) / secs, wakes);
	return 0;
}

}							// namespace

int
main(int argc, char **argv)
{
	if (argc < 2)
	{
		fprintf(stderr, "usage: rsbench idle|scheduled|time-sql|wait|heartbeat|detect|wake-loop [options]\n");
		return 2;
	}
	try
	{
		std::string cmd = argv[1];

		if (cmd == "idle")
			return cmd_idle(argc, argv);
		if (cmd == "scheduled")
			return cmd_scheduled(argc, argv);
		if (cmd == "time-sql")
			return cmd_time_sql(argc, argv);
		if (cmd == "wait")
			return cmd_wait(argc, argv);
		if (cmd == "heartbeat")
			return cmd_heartbeat(argc, argv);
		if (cmd == "detect")
			return cmd_detect(argc, argv);
		if (cmd == "wake-loop")
			return cmd_wake_loop(argc, argv);
		fprintf(stderr, "rsbench: unknown command %s\n", cmd.c_str());
		return 2;
	}
	catch (const std::exception &e)
	{
		fprintf(stderr, "rsbench: %s\n", e.what());
		return 1;
	}
}
