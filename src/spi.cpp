/*
 * spi.cpp
 *	  Kept SPI plans and typed access to their results.
 */
#include "spi.hpp"

#include <cstring>
#include <unordered_map>

extern "C"
{
#include "catalog/pg_type_d.h"
#include "utils/array.h"
#include "utils/lsyscache.h"
}

namespace rs
{

namespace
{

/*
 * Plans live in CacheMemoryContext for the life of the backend; PostgreSQL's
 * plan cache revalidates them when the tables change underneath.
 */
std::unordered_map<std::string, SPIPlanPtr> &
plan_cache()
{
	static std::unordered_map<std::string, SPIPlanPtr> cache;

	return cache;
}

/* Reads a column's Datum; the caller checks for NULL first where it matters. */
Datum
column(uint64 r, int col, bool *isnull)
{
	return SPI_getbinval(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, col, isnull);
}

}							/* namespace */

std::string
uuid_text(const Uuid &u)
{
	static const char hex[] = "0123456789abcdef";
	std::string out;

	out.reserve(36);
	for (int i = 0; i < UUID_LEN; i++)
	{
		if (i == 4 || i == 6 || i == 8 || i == 10)
			out.push_back('-');
		out.push_back(hex[u.data[i] >> 4]);
		out.push_back(hex[u.data[i] & 0x0F]);
	}
	return out;
}

std::string
with_schema(const char *sql, const std::string &schema)
{
	std::string quoted = pg_call([&]() { return quote_identifier(schema.c_str()); });
	std::string out(sql);
	size_t		pos = 0;

	while ((pos = out.find("@S@", pos)) != std::string::npos)
	{
		out.replace(pos, 3, quoted);
		pos += quoted.size();
	}
	return out;
}

void
Args::push(Oid type, Datum value, bool isnull)
{
	types_.push_back(type);
	values_.push_back(value);
	nulls_.push_back(isnull ? 'n' : ' ');
}

/* A uuid[] built in the current (SPI) memory context. */
Args &
Args::uuid_array(const std::vector<Uuid> &ids)
{
	Datum		array = pg_call([&]() {
		Datum	   *elems = static_cast<Datum *>(palloc(sizeof(Datum) * (ids.size() + 1)));

		for (size_t i = 0; i < ids.size(); i++)
		{
			pg_uuid_t  *copy = static_cast<pg_uuid_t *>(palloc(sizeof(pg_uuid_t)));

			memcpy(copy, &ids[i], sizeof(pg_uuid_t));
			elems[i] = UUIDPGetDatum(copy);
		}
		return PointerGetDatum(construct_array(elems, static_cast<int>(ids.size()), UUIDOID,
											   UUID_LEN, false, TYPALIGN_CHAR));
	});

	push(UUIDARRAYOID, array, false);
	return *this;
}

Args &
Args::interval_us(int64 microseconds)
{
	Datum		value = pg_call([&]() {
		Interval   *iv = static_cast<Interval *>(palloc0(sizeof(Interval)));

		iv->time = microseconds;
		return IntervalPGetDatum(iv);
	});

	push(INTERVALOID, value, false);
	return *this;
}

Args &
Args::int4(int value)
{
	push(INT4OID, Int32GetDatum(value), false);
	return *this;
}

Args &
Args::boolean(bool value)
{
	push(BOOLOID, BoolGetDatum(value), false);
	return *this;
}

Args &
Args::text(const std::string &value)
{
	Datum		d = pg_call([&]() { return PointerGetDatum(cstring_to_text_with_len(value.data(), value.size())); });

	push(TEXTOID, d, false);
	return *this;
}

SPIPlanPtr
prepared(const std::string &sql, const Args &args)
{
	auto	   &cache = plan_cache();
	auto		it = cache.find(sql);

	if (it != cache.end())
		return it->second;

	SPIPlanPtr	plan = pg_call([&]() {
		SPIPlanPtr	p = SPI_prepare(sql.c_str(), args.count(), const_cast<Oid *>(args.types()));

		if (p == nullptr)
			elog(ERROR, "runtime_sweeper: SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
		SPI_keepplan(p);
		return p;
	});

	cache.emplace(sql, plan);
	return plan;
}

uint64
execute(const std::string &sql, Args &args, bool read_only)
{
	SPIPlanPtr	plan = prepared(sql, args);

	return pg_call([&]() {
		int			rc = SPI_execute_plan(plan, args.values(), args.nulls(), read_only, 0);

		if (rc < 0)
			elog(ERROR, "runtime_sweeper: SPI_execute_plan failed: %s", SPI_result_code_string(rc));
		return SPI_processed;
	});
}

namespace row
{

bool
is_null(uint64 r, int col)
{
	bool		isnull;

	column(r, col, &isnull);
	return isnull;
}

Uuid
uuid(uint64 r, int col)
{
	bool		isnull;
	Datum		d = column(r, col, &isnull);
	Uuid		u;

	if (isnull)
		memset(&u, 0, sizeof(u));
	else
		memcpy(&u, DatumGetUUIDP(d), sizeof(u));
	return u;
}

bool
boolean(uint64 r, int col)
{
	bool		isnull;
	Datum		d = column(r, col, &isnull);

	return !isnull && DatumGetBool(d);
}

int64
int64_value(uint64 r, int col)
{
	bool		isnull;
	Datum		d = column(r, col, &isnull);

	return isnull ? 0 : DatumGetInt64(d);
}

std::string
text(uint64 r, int col)
{
	std::string out;

	pg_guard([&]() {
		char	   *s = SPI_getvalue(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, col);

		if (s != nullptr)
		{
			out.assign(s);
			pfree(s);
		}
	});
	return out;
}

}							/* namespace row */

}							/* namespace rs */
