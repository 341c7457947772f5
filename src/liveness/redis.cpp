/*
 * redis.cpp
 *	  liveness = redis: a runtime is alive when the key
 *	  <redis_key_prefix><runtime uuid, lower case> exists.
 *
 * hiredis is used in non-blocking mode and every wait goes through
 * WaitLatchOrSocket with a deadline of redis_timeout, so a Redis that is
 * down, frozen or slow costs at most one timeout per phase (connect, then
 * the pipelined commands) and the process still answers SIGTERM, a cancel
 * and its latch (SIGHUP, wake()) at once: interrupts are checked on every
 * wake-up, and a latch set during the wait is set again afterwards so that
 * the worker's loop sees it.
 *
 * One connection is kept per process across ticks.  It is dropped (redisFree)
 * after any error, and when the URL changes; the next check connects again.
 * No PostgreSQL call that may raise is made while a half-done exchange would
 * be left behind: a raised error (cancel) drops the connection before it
 * travels on.
 *
 * Messages name the target as host:port (or the socket path) and never
 * carry the password.  The same file installs a log hook that masks the
 * password of any redis:// URL a server log line would print (for example
 * "parameter ... changed to ..." after a reload).
 */
#include "liveness/liveness.hpp"

#include <chrono>
#include <cstring>

#include <poll.h>
#include <sys/socket.h>

#include <hiredis/hiredis.h>

extern "C"
{
#include "storage/latch.h"
#include "tcop/tcopprot.h"
#include "utils/elog.h"
#include "utils/wait_event.h"
}

namespace rs
{

namespace
{

using Clock = std::chrono::steady_clock;

/* Keys per MGET or DEL command; more candidates pipeline more commands. */
constexpr size_t KEYS_PER_COMMAND = 1000;

/* The connection kept across ticks, and the URL it was made for. */
struct RedisHolder
{
	redisContext *ctx = nullptr;
	std::string url;
	std::string target;			/* host:port or socket path, for messages */
	bool		last_check_ok = false;	/* the last check answered */
	bool		forget_failure_logged = false;	/* DEL failure logged this outage */
};

RedisHolder holder;

/* Closes the kept connection (after an error, or for a new URL). */
void
drop_connection()
{
	if (holder.ctx != nullptr)
		redisFree(holder.ctx);
	holder.ctx = nullptr;
	holder.url.clear();
}

/*
 * One exchange with Redis: a deadline, and whether the process latch was
 * set while we waited (it is set again at the end, for the worker's loop).
 */
class Exchange
{
public:
	explicit Exchange(int timeout_ms)
		: timeout_ms_(timeout_ms),
		  deadline_(Clock::now() + std::chrono::milliseconds(timeout_ms))
	{
	}

	/* Gives the process latch back if a wait consumed it. */
	~Exchange()
	{
		if (latch_was_set_)
			SetLatch(MyLatch);
	}

	/* A fresh deadline for the next phase. */
	void		restart() { deadline_ = Clock::now() + std::chrono::milliseconds(timeout_ms_); }

	int			timeout_ms() const { return timeout_ms_; }

	/*
	 * Waits until fd is readable (or writable), the deadline passes, or an
	 * interrupt is pending (which raises: die() exits, a cancel errors).
	 * Returns false on timeout.
	 */
	bool		wait(int fd, bool for_write)
	{
		for (;;)
		{
			auto		left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline_ - Clock::now()).count();
			int			rc = 0;
			int			events = WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH |
				(for_write ? WL_SOCKET_WRITEABLE : WL_SOCKET_READABLE);

			if (left <= 0)
				return false;
			pg_guard([&]() {
				rc = WaitLatchOrSocket(MyLatch, events, fd, static_cast<long>(left),
									   PG_WAIT_EXTENSION);
				if (rc & WL_LATCH_SET)
				{
					ResetLatch(MyLatch);
					latch_was_set_ = true;
				}
				CHECK_FOR_INTERRUPTS();
			});
			if (rc & (WL_SOCKET_READABLE | WL_SOCKET_WRITEABLE))
				return true;
		}
	}

private:
	int			timeout_ms_;
	Clock::time_point deadline_;
	bool		latch_was_set_ = false;
};

/* The target as messages show it: never the password. */
std::string
describe_target(const RedisTarget &t)
{
	if (t.unix_socket)
		return "unix:" + t.path;

	std::string out = t.host + ":" + std::to_string(t.port);

	if (t.db != 0)
		out += "/" + std::to_string(t.db);
	return out;
}

/* The error of the kept connection, prefixed with what was being done. */
std::string
context_error(const char *doing)
{
	std::string msg = "Redis " + holder.target + ": " + doing + ": ";

	if (holder.ctx != nullptr && holder.ctx->errstr[0] != '\0')
		msg += holder.ctx->errstr;
	else
		msg += "unknown error";
	return msg;
}

/* The message of a wait that passed the deadline. */
std::string
timeout_error(const char *doing, const Exchange &ex)
{
	return "Redis " + holder.target + ": " + doing + ": no answer within " +
		std::to_string(ex.timeout_ms()) + " ms (runtime_sweeper.redis_timeout)";
}

/* Writes the whole output buffer of the connection. */
bool
flush(Exchange &ex, std::string *error)
{
	int			done = 0;

	for (;;)
	{
		if (redisBufferWrite(holder.ctx, &done) != REDIS_OK)
		{
			*error = context_error("sending");
			return false;
		}
		if (done)
			return true;
		if (!ex.wait(holder.ctx->fd, true))
		{
			*error = timeout_error("sending", ex);
			return false;
		}
	}
}

/* Reads the next reply of the connection (the caller frees it). */
redisReply *
next_reply(Exchange &ex, const char *doing, std::string *error)
{
	for (;;)
	{
		void	   *reply = nullptr;

		if (redisGetReplyFromReader(holder.ctx, &reply) != REDIS_OK)
		{
			*error = context_error(doing);
			return nullptr;
		}
		if (reply != nullptr)
			return static_cast<redisReply *>(reply);
		if (!ex.wait(holder.ctx->fd, false))
		{
			*error = timeout_error(doing, ex);
			return nullptr;
		}
		if (redisBufferRead(holder.ctx) != REDIS_OK)
		{
			*error = context_error(doing);
			return nullptr;
		}
	}
}

/* Appends one command; its arguments are copied by hiredis. */
bool
append(const std::vector<std::string> &argv, std::string *error)
{
	std::vector<const char *> args;
	std::vector<size_t> lens;

	args.reserve(argv.size());
	lens.reserve(argv.size());
	for (const std::string &a : argv)
	{
		args.push_back(a.data());
		lens.push_back(a.size());
	}
	if (redisAppendCommandArgv(holder.ctx, static_cast<int>(args.size()), args.data(),
							   lens.data()) != REDIS_OK)
	{
		*error = context_error("preparing a command");
		return false;
	}
	return true;
}

/* Runs one command and expects a status reply (AUTH, SELECT). */
bool
simple_command(Exchange &ex, const std::vector<std::string> &argv, const char *doing,
			   std::string *error)
{
	if (!append(argv, error) || !flush(ex, error))
		return false;

	redisReply *reply = next_reply(ex, doing, error);

	if (reply == nullptr)
		return false;

	bool		ok = reply->type != REDIS_REPLY_ERROR;

	if (!ok)
		*error = "Redis " + holder.target + ": " + doing + " failed: " +
			std::string(reply->str ? reply->str : "error");
	freeReplyObject(reply);
	return ok;
}

/*
 * Whether the kept (idle) connection was closed by the server since the last
 * check (a Redis restart, its idle timeout): an idle connection has nothing
 * to read, so anything readable means end of file or an error.  Checked
 * without waiting, so that a closed connection costs a reconnect instead of
 * a fallback.
 */
bool
peer_went_away(int fd)
{
	struct pollfd pfd;

	pfd.fd = fd;
	pfd.events = POLLIN;
	pfd.revents = 0;
	return poll(&pfd, 1, 0) != 0;
}

/*
 * The kept connection, (re)established for the URL when needed: TCP or unix
 * connect, AUTH when a password is given, SELECT when the db is not 0; all
 * within one redis_timeout.
 */
bool
ensure_connection(const Settings &settings, Exchange &ex, std::string *error)
{
	if (holder.ctx != nullptr && holder.url == settings.redis_url && holder.ctx->err == 0 &&
		!peer_went_away(holder.ctx->fd))
		return true;
	drop_connection();

	RedisTarget target;
	std::string parse_error;

	if (!parse_redis_url(settings.redis_url.c_str(), &target, &parse_error))
	{
		holder.target = "(invalid URL)";
		*error = "invalid runtime_sweeper.redis_url: " + parse_error;
		return false;
	}
	holder.target = describe_target(target);

	if (target.unix_socket)
		holder.ctx = redisConnectUnixNonBlock(target.path.c_str());
	else
		holder.ctx = redisConnectNonBlock(target.host.c_str(), target.port);
	if (holder.ctx == nullptr)
	{
		*error = "Redis " + holder.target + ": connecting: out of memory";
		return false;
	}
	if (holder.ctx->err)
	{
		*error = context_error("connecting");
		drop_connection();
		return false;
	}

	/* The connect is in progress: wait until it is writable, then ask how it went. */
	if (!ex.wait(holder.ctx->fd, true))
	{
		*error = timeout_error("connecting", ex);
		drop_connection();
		return false;
	}

	int			so_error = 0;
	socklen_t	len = sizeof(so_error);

	if (getsockopt(holder.ctx->fd, SOL_SOCKET, SO_ERROR, &so_error, &len) != 0)
		so_error = errno;
	if (so_error != 0)
	{
		*error = "Redis " + holder.target + ": connecting: " + strerror(so_error);
		drop_connection();
		return false;
	}

	if (!target.password.empty() &&
		!simple_command(ex, {"AUTH", target.password}, "AUTH", error))
	{
		drop_connection();
		return false;
	}
	if (target.db != 0 &&
		!simple_command(ex, {"SELECT", std::to_string(target.db)}, "SELECT", error))
	{
		drop_connection();
		return false;
	}
	holder.url = settings.redis_url;
	return true;
}

/*
 * Masks the password in a message, should a server's error text ever echo
 * it: the status view and the log must never show it.
 */
void
scrub_password(const Settings &settings, std::string *message)
{
	RedisTarget target;
	std::string ignored;
	size_t		pos = 0;

	if (message->empty() || !parse_redis_url(settings.redis_url.c_str(), &target, &ignored) ||
		target.password.empty())
		return;
	while ((pos = message->find(target.password, pos)) != std::string::npos)
	{
		message->replace(pos, target.password.size(), "********");
		pos += 8;
	}
}

/* The heartbeat keys of the runtimes. */
std::vector<std::string>
keys_of(const Settings &settings, const std::vector<Uuid> &ids)
{
	std::vector<std::string> keys;

	keys.reserve(ids.size());
	for (const Uuid &id : ids)
		keys.push_back(settings.redis_key_prefix + uuid_text(id));
	return keys;
}

/*
 * Sends cmd key... for all keys, KEYS_PER_COMMAND keys per command, all
 * commands pipelined; then calls on_reply(first key index, reply) for each
 * reply in order.  on_reply returns false (with a message) to stop.
 */
template <typename OnReply>
bool
pipelined(Exchange &ex, const char *cmd, const std::vector<std::string> &keys,
		  OnReply &&on_reply, std::string *error)
{
	size_t		commands = 0;

	for (size_t start = 0; start < keys.size(); start += KEYS_PER_COMMAND)
	{
		size_t		end = std::min(keys.size(), start + KEYS_PER_COMMAND);
		std::vector<std::string> argv;

		argv.reserve(end - start + 1);
		argv.emplace_back(cmd);
		argv.insert(argv.end(), keys.begin() + start, keys.begin() + end);
		if (!append(argv, error))
			return false;
		commands++;
	}
	if (!flush(ex, error))
		return false;
	for (size_t i = 0; i < commands; i++)
	{
		redisReply *reply = next_reply(ex, cmd, error);

		if (reply == nullptr)
			return false;

		bool		ok;

		if (reply->type == REDIS_REPLY_ERROR)
		{
			*error = "Redis " + holder.target + ": " + cmd + " failed: " +
				std::string(reply->str ? reply->str : "error");
			ok = false;
		}
		else
			ok = on_reply(i * KEYS_PER_COMMAND, reply, error);
		freeReplyObject(reply);
		if (!ok)
			return false;
	}
	return true;
}

class RedisLiveness : public LivenessSource
{
public:
	const char *name() const override { return "redis"; }

	/* One MGET per KEYS_PER_COMMAND candidates, pipelined; a key that exists is alive. */
	LivenessAnswer check(SweepContext &ctx, const std::vector<Uuid> &ids) override
	{
		LivenessAnswer answer;
		std::vector<std::string> keys = keys_of(ctx.settings, ids);
		std::vector<bool> alive(ids.size(), false);
		Exchange	ex(ctx.settings.redis_timeout_ms);

		holder.last_check_ok = false;
		try
		{
			bool		ok = ensure_connection(ctx.settings, ex, &answer.error);

			if (ok)
			{
				ex.restart();
				ok = pipelined(ex, "MGET", keys,
							   [&](size_t first, redisReply *reply, std::string *error) {
								   size_t		expect = std::min(KEYS_PER_COMMAND, keys.size() - first);

								   if (reply->type != REDIS_REPLY_ARRAY || reply->elements != expect)
								   {
									   *error = "Redis " + holder.target +
										   ": MGET: unexpected reply";
									   return false;
								   }
								   for (size_t k = 0; k < expect; k++)
									   alive[first + k] = reply->element[k]->type != REDIS_REPLY_NIL;
								   return true;
							   }, &answer.error);
			}
			if (!ok)
			{
				drop_connection();
				scrub_password(ctx.settings, &answer.error);
				return answer;
			}
		}
		catch (...)
		{
			/* A cancel while waiting: the exchange is half done. */
			drop_connection();
			throw;
		}
		holder.last_check_ok = true;
		answer.answered = true;
		answer.alive = std::move(alive);
		return answer;
	}

	/*
	 * DEL the keys of runtimes just marked offline.  Best effort: skipped
	 * while Redis is failing (the check already fell back this tick), and a
	 * failure is logged once until a DEL succeeds again.
	 */
	void		forget(SweepContext &ctx, const std::vector<Uuid> &ids) override
	{
		if (ids.empty() || !holder.last_check_ok || holder.ctx == nullptr)
			return;

		std::vector<std::string> keys = keys_of(ctx.settings, ids);
		Exchange	ex(ctx.settings.redis_timeout_ms);
		std::string error;
		bool		ok;

		try
		{
			ok = pipelined(ex, "DEL", keys,
						   [](size_t, redisReply *, std::string *) { return true; }, &error);
		}
		catch (...)
		{
			drop_connection();
			throw;
		}
		if (ok)
		{
			holder.forget_failure_logged = false;
			return;
		}
		drop_connection();
		holder.last_check_ok = false;
		if (holder.forget_failure_logged)
			return;
		scrub_password(ctx.settings, &error);
		holder.forget_failure_logged = true;
		pg_guard([&]() {
			ereport(WARNING,
					(errmsg("runtime_sweeper: could not delete the Redis heartbeat keys of %zu runtimes marked offline",
							ids.size()),
					 errdetail("%s", error.c_str()),
					 errhint("The runtimes are offline in the database; their keys expire on their own. "
							 "This is not logged again until a delete succeeds.")));
		});
	}
};

/* A password inside text: [begin, end). */
struct Secret
{
	const char *begin;
	const char *end;
};

/*
 * Finds the passwords of the redis:// (and rediss://) URLs in text, at most
 * max of them.  A URL ends at white space or a quote; its userinfo ends at
 * the last '@' before that, and the password is what follows the first ':'
 * of the userinfo (all of it when there is no ':').
 */
int
find_redis_secrets(const char *text, Secret *secrets, int max)
{
	int			n = 0;
	const char *p = text;

	if (text == nullptr)
		return 0;
	while (n < max && (p = strstr(p, "redis")) != nullptr)
	{
		const char *auth;

		if (strncmp(p, "redis://", 8) == 0)
			auth = p + 8;
		else if (strncmp(p, "rediss://", 9) == 0)
			auth = p + 9;
		else
		{
			p += 5;
			continue;
		}

		const char *end = auth;
		const char *at = nullptr;

		while (*end != '\0' && *end != ' ' && *end != '\t' && *end != '\n' &&
			   *end != '"' && *end != '\'')
		{
			if (*end == '@')
				at = end;
			end++;
		}
		if (at != nullptr)
		{
			const char *colon = static_cast<const char *>(memchr(auth, ':', at - auth));
			const char *secret = colon ? colon + 1 : auth;

			if (secret < at)
				secrets[n++] = Secret{secret, at};
		}
		p = end;
	}
	return n;
}

/*
 * A copy of text (in ErrorContext) with every Redis password masked, or NULL
 * when there is none.  Never raises: without memory the passwords are
 * overwritten in place.
 */
char *
mask_redis_passwords(char *text)
{
	static const char mask[] = "********";
	constexpr int MAX_SECRETS = 16;
	Secret		secrets[MAX_SECRETS];
	int			n = find_redis_secrets(text, secrets, MAX_SECRETS);
	size_t		len;
	char	   *out;
	char	   *o;
	const char *p;

	if (n == 0)
		return nullptr;
	len = strlen(text) + n * (sizeof(mask) - 1) + 1;
	out = static_cast<char *>(MemoryContextAllocExtended(ErrorContext, len, MCXT_ALLOC_NO_OOM));
	if (out == nullptr)
	{
		for (int i = 0; i < n; i++)
			memset(const_cast<char *>(secrets[i].begin), '*', secrets[i].end - secrets[i].begin);
		return nullptr;
	}
	o = out;
	p = text;
	for (int i = 0; i < n; i++)
	{
		memcpy(o, p, secrets[i].begin - p);
		o += secrets[i].begin - p;
		memcpy(o, mask, sizeof(mask) - 1);
		o += sizeof(mask) - 1;
		p = secrets[i].end;
	}
	strcpy(o, p);
	return out;
}

emit_log_hook_type prev_emit_log_hook = nullptr;

/* Masks Redis passwords in a message about to be logged or sent. */
void
redact_redis_passwords(ErrorData *edata)
{
	char	   *masked;
	Secret		probe[1];

	if ((masked = mask_redis_passwords(edata->message)) != nullptr)
		edata->message = masked;
	if ((masked = mask_redis_passwords(edata->detail)) != nullptr)
		edata->detail = masked;
	if ((masked = mask_redis_passwords(edata->detail_log)) != nullptr)
		edata->detail_log = masked;
	if ((masked = mask_redis_passwords(edata->context)) != nullptr)
		edata->context = masked;
	if ((masked = mask_redis_passwords(edata->internalquery)) != nullptr)
		edata->internalquery = masked;
	/* The statement itself cannot be rewritten: keep it out of the log. */
	if (find_redis_secrets(debug_query_string, probe, 1) > 0)
		edata->hide_stmt = true;
	if (prev_emit_log_hook)
		prev_emit_log_hook(edata);
}

}							/* namespace */

LivenessSource &
redis_liveness()
{
	static RedisLiveness source;

	return source;
}

void
install_redis_log_redaction()
{
	prev_emit_log_hook = emit_log_hook;
	emit_log_hook = redact_redis_passwords;
}

}							/* namespace rs */
