/*
 * spi.hpp
 *	  Kept SPI plans and typed access to their results, all behind pg_guard.
 *
 * SQL texts name application tables as @S@.table; the schema is quoted with
 * quote_identifier before the text is prepared, and plans are cached per
 * final text, so a changed app_schema simply prepares new plans.
 */
#pragma once

#include "pg_bridge.hpp"

#include <string>
#include <vector>

namespace rs
{

using Uuid = pg_uuid_t;

/* Lower-case canonical text of a UUID. */
std::string uuid_text(const Uuid &u);

/* The SQL text with @S@ replaced by the quoted schema name. */
std::string with_schema(const char *sql, const std::string &schema);

/* Arguments of one plan execution. */
class Args
{
public:
	Args &uuid_array(const std::vector<Uuid> &ids);
	Args &interval_us(int64 microseconds);
	Args &int4(int value);
	Args &boolean(bool value);
	Args &text(const std::string &value);

	int			count() const { return static_cast<int>(types_.size()); }
	const Oid  *types() const { return types_.data(); }
	Datum	   *values() { return values_.data(); }
	const char *nulls() const { return nulls_.c_str(); }

private:
	void		push(Oid type, Datum value, bool isnull);

	std::vector<Oid> types_;
	std::vector<Datum> values_;
	std::string nulls_;
};

/* The kept plan for this text and these argument types. */
SPIPlanPtr	prepared(const std::string &sql, const Args &args);

/*
 * Executes a kept plan; the rows are left in SPI_tuptable until the next
 * execution.  Throws PgError when the statement fails.
 */
uint64		execute(const std::string &sql, Args &args, bool read_only = false);

/* Typed reads of the current SPI_tuptable. */
namespace row
{
bool		is_null(uint64 r, int col);
Uuid		uuid(uint64 r, int col);
bool		boolean(uint64 r, int col);
int64		int64_value(uint64 r, int col);
/* Text output of any column; "" for NULL. */
std::string text(uint64 r, int col);
}

}							/* namespace rs */
