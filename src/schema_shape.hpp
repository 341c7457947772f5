/*
 * schema_shape.hpp
 *	  Which version of the application schema the sweeper is looking at.
 *
 * Later versions of the application make runtime_id nullable and add
 * agent_task_queue.prepare_lease_expires_at.  The stages use these when they
 * exist; the shape is read from the catalog (syscache, so cheap) once per
 * stage run, never per row.
 */
#pragma once

#include "pg_bridge.hpp"

#include <string>

namespace rs
{

struct SchemaShape
{
	bool		task_runtime_nullable = false;	/* agent_task_queue.runtime_id */
	bool		agent_runtime_nullable = false; /* agent.runtime_id */
	bool		has_prepare_lease = false;	/* agent_task_queue.prepare_lease_expires_at */
};

/* Reads the shape of the tables in schema (all false when they are missing). */
SchemaShape detect_schema_shape(const std::string &schema);

}							/* namespace rs */
