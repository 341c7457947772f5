/*
 * module.cpp
 *	  _PG_init: settings, shared memory, worker registration.  Nothing else.
 */
#include "liveness/liveness.hpp"
#include "settings.hpp"
#include "stats.hpp"

extern "C"
{
#include "postmaster/bgworker.h"
#include "storage/ipc.h"

PG_MODULE_MAGIC;

PGDLLEXPORT void _PG_init(void);
}

namespace
{

shmem_request_hook_type prev_shmem_request_hook = nullptr;
shmem_startup_hook_type prev_shmem_startup_hook = nullptr;

}							/* namespace */

extern "C"
{

/* Reserves the shared state (PostgreSQL 15 asks in this hook). */
static void
runtime_sweeper_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	rs::stats_request_shmem();
}

/* Creates or attaches to the shared state in every process. */
static void
runtime_sweeper_shmem_startup(void)
{
	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();
	rs::stats_init_shmem();
}

/*
 * Loaded by shared_preload_libraries: settings, shared memory and the
 * worker.  Loaded on first use otherwise: settings only, and the SQL API
 * works without a worker (CREATE EXTENSION says so).
 */
void
_PG_init(void)
{
	BackgroundWorker worker;

	rs::cpp_entry([]() { rs::define_settings(); });
	/* The Redis password must never reach the log (e.g. "parameter changed to"). */
	rs::install_redis_log_redaction();

	if (!process_shared_preload_libraries_in_progress)
		return;

	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = runtime_sweeper_shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = runtime_sweeper_shmem_startup;

	/*
	 * The launcher starts one worker per listed database.  Started on a hot
	 * standby too, so that its workers sweep as soon as it is promoted.
	 */
	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS;
	worker.bgw_start_time = BgWorkerStart_ConsistentState;
	worker.bgw_restart_time = 5;
	strlcpy(worker.bgw_library_name, "runtime_sweeper", BGW_MAXLEN);
	strlcpy(worker.bgw_function_name, "runtime_sweeper_launcher_main", BGW_MAXLEN);
	strlcpy(worker.bgw_name, "runtime_sweeper launcher", BGW_MAXLEN);
	strlcpy(worker.bgw_type, "runtime_sweeper launcher", BGW_MAXLEN);
	RegisterBackgroundWorker(&worker);
}

}							/* extern "C" */
