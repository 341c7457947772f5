/*
 * schema_shape.cpp
 *	  Catalog look-ups behind SchemaShape.
 */
#include "schema_shape.hpp"

extern "C"
{
#include "access/htup_details.h"
#include "catalog/pg_attribute.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"
}

namespace rs
{

namespace
{

/* The table's oid in the schema, or InvalidOid. */
Oid
table_oid(Oid nsp, const char *table)
{
	return OidIsValid(nsp) ? get_relname_relid(table, nsp) : InvalidOid;
}

/* Whether the column exists; *nullable tells whether it may be NULL. */
bool
column_info(Oid relid, const char *column, bool *nullable)
{
	HeapTuple	tuple;
	bool		found = false;

	*nullable = false;
	if (!OidIsValid(relid))
		return false;
	tuple = SearchSysCacheAttName(relid, column);
	if (HeapTupleIsValid(tuple))
	{
		Form_pg_attribute att = (Form_pg_attribute) GETSTRUCT(tuple);

		found = true;
		*nullable = !att->attnotnull;
		ReleaseSysCache(tuple);
	}
	return found;
}

}							/* namespace */

SchemaShape
detect_schema_shape(const std::string &schema)
{
	SchemaShape shape;

	pg_guard([&]() {
		Oid			nsp = get_namespace_oid(schema.c_str(), true);
		Oid			tasks = table_oid(nsp, "agent_task_queue");
		Oid			agents = table_oid(nsp, "agent");
		bool		nullable;

		if (column_info(tasks, "runtime_id", &nullable))
			shape.task_runtime_nullable = nullable;
		if (column_info(agents, "runtime_id", &nullable))
			shape.agent_runtime_nullable = nullable;
		shape.has_prepare_lease = column_info(tasks, "prepare_lease_expires_at", &nullable);
	});
	return shape;
}

}							/* namespace rs */
