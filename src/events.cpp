/*
 * events.cpp
 *	  JSON payloads and their delivery with NOTIFY (and the event log).
 *
 * NOTIFY is transactional: the events of a stage go out when its transaction
 * commits and vanish with it on abort, so a listener never hears of a change
 * that did not happen.
 */
#include "events.hpp"

#include "event_log.hpp"
#include "spi.hpp"

#include <cstdio>

namespace rs
{

void
json_quote(std::string &out, const std::string &value)
{
	out.push_back('"');
	for (unsigned char c : value)
	{
		switch (c)
		{
			case '"':
				out += "\\\"";
				break;
			case '\\':
				out += "\\\\";
				break;
			case '\n':
				out += "\\n";
				break;
			case '\r':
				out += "\\r";
				break;
			case '\t':
				out += "\\t";
				break;
			default:
				if (c < 0x20)
				{
					char		buf[8];

					snprintf(buf, sizeof(buf), "\\u%04x", c);
					out += buf;
				}
				else
					out.push_back(static_cast<char>(c));
		}
	}
	out.push_back('"');
}

void
JsonObject::key(const char *k)
{
	if (body_.size() > 1)
		body_.push_back(',');
	json_quote(body_, k);
	body_.push_back(':');
}

JsonObject &
JsonObject::str(const char *k, const std::string &value)
{
	key(k);
	json_quote(body_, value);
	return *this;
}

JsonObject &
JsonObject::str_or_null(const char *k, bool present, const std::string &value)
{
	return present ? str(k, value) : null(k);
}

JsonObject &
JsonObject::raw(const char *k, const std::string &json)
{
	key(k);
	body_ += json.empty() ? "null" : json;
	return *this;
}

JsonObject &
JsonObject::boolean(const char *k, bool value)
{
	key(k);
	body_ += value ? "true" : "false";
	return *this;
}

JsonObject &
JsonObject::number(const char *k, int64 value)
{
	key(k);
	body_ += std::to_string(value);
	return *this;
}

JsonObject &
JsonObject::null(const char *k)
{
	key(k);
	body_ += "null";
	return *this;
}

/* The envelope every event shares; id is the event log's id, or 0 for none. */
static std::string
envelope(int64 id, const char *type, const std::string &workspace_id, const std::string &payload)
{
	JsonObject	o;

	if (id > 0)
		o.number("id", id);
	o.str("type", type)
		.str("workspace_id", workspace_id)
		.str("actor_type", "system")
		.str("actor_id", "")
		.raw("payload", payload);
	return o.finish();
}

/* Room left for the event log's id in front of the envelope. */
static constexpr size_t ID_ROOM = 32;

void
EventSink::emit(const char *type, const std::string &workspace_id,
				const std::string &payload, const std::string &fallback_payload)
{
	std::string body = payload;

	if (envelope(0, type, workspace_id, body).size() + ID_ROOM >= NOTIFY_PAYLOAD_LIMIT)
	{
		body = fallback_payload.empty() ? std::string("{\"truncated\":true}") : fallback_payload;
		if (envelope(0, type, workspace_id, body).size() + ID_ROOM >= NOTIFY_PAYLOAD_LIMIT)
			body = "{\"truncated\":true}";
		tally_.add(C_EVENTS_TRUNCATED);
	}

	int64		id = 0;

	if (settings_.event_log)
		id = event_log_append(settings_.notify_channel, envelope(0, type, workspace_id, body));
	deliver(settings_.notify_channel, envelope(id, type, workspace_id, body));
	tally_.add(C_EVENTS_SENT);
}

void
EventSink::analytics(const std::string &record)
{
	tally_.add(C_ANALYTICS_RECORDS);
	if (settings_.analytics_channel.empty())
		return;
	if (record.size() >= NOTIFY_PAYLOAD_LIMIT)
		return;
	deliver(settings_.analytics_channel, record);
}

void
EventSink::deliver(const std::string &channel, const std::string &message)
{
	pg_guard([&]() { Async_Notify(channel.c_str(), message.c_str()); });
}

}							/* namespace rs */
