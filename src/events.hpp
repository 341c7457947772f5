/*
 * events.hpp
 *	  Event payloads (a small JSON writer) and their delivery: NOTIFY in the
 *	  transaction that made the change, and optionally the durable event log.
 */
#pragma once

#include "settings.hpp"
#include "stats.hpp"

#include <string>

namespace rs
{

/* Builds one compact JSON object, key by key; values are escaped here. */
class JsonObject
{
public:
	JsonObject &str(const char *key, const std::string &value);
	/* A string, or JSON null when absent. */
	JsonObject &str_or_null(const char *key, bool present, const std::string &value);
	/* Already-serialised JSON (a jsonb column's text, a nested object). */
	JsonObject &raw(const char *key, const std::string &json);
	JsonObject &boolean(const char *key, bool value);
	JsonObject &number(const char *key, int64 value);
	JsonObject &null(const char *key);
	std::string finish() const { return body_ + "}"; }

private:
	void		key(const char *k);

	std::string body_ = "{";
};

/* Appends value to out as a JSON string literal. */
void		json_quote(std::string &out, const std::string &value);

/* Largest payload NOTIFY accepts (async.c: BLCKSZ - NAMEDATALEN - 128). */
constexpr size_t NOTIFY_PAYLOAD_LIMIT = BLCKSZ - NAMEDATALEN - 128;

/*
 * Sends the events of one stage run.  Needs an SPI connection when the event
 * log is on.
 */
class EventSink
{
public:
	EventSink(const Settings &settings, Tally &tally) : settings_(settings), tally_(tally) {}

	/*
	 * Sends {"type","workspace_id","actor_type","actor_id","payload"}.  When
	 * the envelope would exceed the NOTIFY limit, fallback_payload (when
	 * given) replaces the payload, else {"truncated":true}.
	 */
	void		emit(const char *type, const std::string &workspace_id,
					 const std::string &payload, const std::string &fallback_payload = "");

	/* An analytics record, sent only when analytics_channel is set. */
	void		analytics(const std::string &record);

private:
	void		deliver(const std::string &channel, const std::string &message);

	const Settings &settings_;
	Tally	   &tally_;
};

}							/* namespace rs */
