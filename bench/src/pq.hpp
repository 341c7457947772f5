// pq.hpp: a minimal libpq wrapper shared by the benchmark programs.
//
// One Conn per connection, autocommit, one statement per round trip, text
// parameters and results.  Like the original's driver (pgx with its default
// statement cache), each distinct statement is prepared on first use (one
// extra round trip, not counted as a statement) and executed as a prepared
// statement afterwards.  Every exec() is timed; a failed statement throws
// PqError.
#pragma once

#include <libpq-fe.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace pq
{

using Clock = std::chrono::steady_clock;
using Param = std::optional<std::string>;

// Microseconds of the monotonic clock (for durations).
inline double
now_us()
{
	return std::chrono::duration<double, std::micro>(Clock::now().time_since_epoch()).count();
}

// Seconds since the Unix epoch of the wall clock (comparable with the
// server's clock on the same machine).
inline double
wall_s()
{
	return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

struct PqError : std::runtime_error
{
	std::string sqlstate;
	PqError(const std::string &m, const std::string &state) : std::runtime_error(m), sqlstate(state) {}
};

// One statement's result: rows of text (NULL kept apart), columns by name.
class Result
{
  public:
	explicit Result(PGresult *r) : res_(r) {}
	Result(const Result &) = delete;
	Result &operator=(const Result &) = delete;
	Result(Result &&o) noexcept : res_(o.res_) { o.res_ = nullptr; }
	~Result() { if (res_) PQclear(res_); }

	int rows() const { return res_ ? PQntuples(res_) : 0; }
	int col(const char *name) const
	{
		int c = PQfnumber(res_, name);
		if (c < 0)
			throw std::runtime_error(std::string("no column ") + name);
		return c;
	}
	bool null(int r, int c) const { return PQgetisnull(res_, r, c); }
	bool null(int r, const char *name) const { return null(r, col(name)); }
	std::string get(int r, int c) const { return PQgetvalue(res_, r, c); }
	std::string get(int r, const char *name) const { return get(r, col(name)); }
	Param opt(int r, const char *name) const
	{
		int c = col(name);
		if (null(r, c))
			return std::nullopt;
		return get(r, c);
	}
	long long affected() const { const char *s = PQcmdTuples(res_); return s && *s ? atoll(s) : 0; }

  private:
	PGresult   *res_;
};

class Conn
{
  public:
	explicit Conn(const std::string &dsn)
	{
		conn_ = PQconnectdb(dsn.c_str());
		if (PQstatus(conn_) != CONNECTION_OK)
		{
			std::string m = PQerrorMessage(conn_);
			PQfinish(conn_);
			conn_ = nullptr;
			throw std::runtime_error("connection failed: " + m);
		}
	}
	Conn(const Conn &) = delete;
	Conn &operator=(const Conn &) = delete;
	~Conn() { if (conn_) PQfinish(conn_); }

	PGconn	   *raw() { return conn_; }

	// Runs one statement; adds its duration to the round-trip tally.
	Result		exec(const std::string &sql, const std::vector<Param> &params = {})
	{
		std::vector<const char *> values;

		for (const Param &p : params)
			values.push_back(p ? p->c_str() : nullptr);
		double		t0 = now_us();
		std::string name = prepared(sql, static_cast<int>(values.size()));
		PGresult   *r = PQexecPrepared(conn_, name.c_str(), static_cast<int>(values.size()),
									   values.empty() ? nullptr : values.data(), nullptr, nullptr, 0);

		last_us = now_us() - t0;
		total_us += last_us;
		statements++;
		check(r);
		return Result(r);
	}
	// Statement count and time spent in statements since the last reset.
	long		statements = 0;
	long		errors = 0;
	double		total_us = 0;
	double		last_us = 0;
	void		reset_tally() { statements = 0; errors = 0; total_us = 0; }

  private:
	PGconn	   *conn_ = nullptr;
	std::map<std::string, std::string> prepared_;

	// Throws PqError (and frees r) unless r is a success.
	void		check(PGresult *r)
	{
		ExecStatusType st = PQresultStatus(r);

		if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)
			return;

		std::string m = PQresultErrorMessage(r);
		const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
		std::string s = state ? state : "";

		PQclear(r);
		errors++;
		throw PqError(m, s);
	}

	// The name of the prepared statement for sql, preparing it on first use.
	std::string prepared(const std::string &sql, int nparams)
	{
		auto		it = prepared_.find(sql);

		if (it != prepared_.end())
			return it->second;

		std::string name = "s" + std::to_string(prepared_.size());
		PGresult   *r = PQprepare(conn_, name.c_str(), sql.c_str(), nparams, nullptr);

		check(r);
		PQclear(r);
		prepared_[sql] = name;
		return name;
	}
};

// A JSON string literal (RFC 8259 escaping).
inline std::string
json_str(const std::string &s)
{
	std::string o = "\"";
	for (unsigned char ch : s)
	{
		switch (ch)
		{
			case '"': o += "\\\""; break;
			case '\\': o += "\\\\"; break;
			case '\n': o += "\\n"; break;
			case '\r': o += "\\r"; break;
			case '\t': o += "\\t"; break;
			default:
				if (ch < 0x20)
				{
					char buf[8];
					snprintf(buf, sizeof(buf), "\\u%04x", ch);
					o += buf;
				}
				else
					o += static_cast<char>(ch);
		}
	}
	return o + "\"";
}

// Value of "--name value" in argv, or def.
inline std::string
arg(int argc, char **argv, const char *name, const std::string &def)
{
	for (int i = 1; i + 1 < argc; i++)
		if (strcmp(argv[i], name) == 0)
			return argv[i + 1];
	return def;
}

// Whether the flag "--name" is in argv.
inline bool
flag(int argc, char **argv, const char *name)
{
	for (int i = 1; i < argc; i++)
		if (strcmp(argv[i], name) == 0)
			return true;
	return false;
}

}							// namespace pq
