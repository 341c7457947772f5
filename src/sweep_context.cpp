/*
 * sweep_context.cpp
 *	  Turning a stage's SQL template into the text for this schema.
 *
 * Templates may contain:
 *	 @S@				the quoted application schema
 *	 @LEASE_CLEAR@		", prepare_lease_expires_at = NULL" when the column
 *						exists: every terminal write clears the lease
 *	 @LEASE_GUARD@		excludes dispatched tasks whose lease is still in the
 *						future (task alias t)
 *	 @HISTORY_GUARD@	with gc_keep_history on a NOT NULL runtime_id: keeps
 *						runtimes that still have any task (runtime alias r)
 */
#include "sweep_context.hpp"

namespace rs
{

namespace
{

/* Replaces every occurrence of what in text by with. */
void
replace_all(std::string &text, const char *what, const std::string &with)
{
	size_t		len = strlen(what);
	size_t		pos = 0;

	while ((pos = text.find(what, pos)) != std::string::npos)
	{
		text.replace(pos, len, with);
		pos += with.size();
	}
}

}							/* namespace */

const SchemaShape &
SweepContext::shape()
{
	if (!shape_known_)
	{
		shape_ = detect_schema_shape(settings.app_schema);
		shape_known_ = true;
	}
	return shape_;
}

std::string
SweepContext::sql(const char *text)
{
	const SchemaShape &s = shape();
	std::string out = with_schema(text, settings.app_schema);

	replace_all(out, "@LEASE_CLEAR@",
				s.has_prepare_lease ? ", prepare_lease_expires_at = NULL" : "");
	replace_all(out, "@LEASE_GUARD@",
				s.has_prepare_lease
				? " AND (t.prepare_lease_expires_at IS NULL OR t.prepare_lease_expires_at <= pg_catalog.now())"
				: "");
	replace_all(out, "@HISTORY_GUARD@",
				settings.gc_keep_history && !s.task_runtime_nullable
				? " AND NOT EXISTS (SELECT 1 FROM " + with_schema("@S@", settings.app_schema) +
				".agent_task_queue h WHERE h.runtime_id = r.id)"
				: "");
	return out;
}

}							/* namespace rs */
