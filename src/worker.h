/*
 * worker.h
 *		The per-database background worker: its control (worker.c) and its
 *		process (worker_main.c).
 */
#ifndef PERSONALISATION_WORKER_H
#define PERSONALISATION_WORKER_H

#include "util.h"

extern bool WorkerEnabled;
extern int	WorkerNaptimeMs;

extern void WorkerInit(void);
extern void WakeWorkerAtCommit(void);
extern bool WorkerRunsHere(void);
extern void StopDatabaseWorker(Oid database_id);
extern Oid	ExtensionOwner(void);
extern bool WakeOrStartWorker(Oid owner);
extern void LogStartFailureOnce(Oid database_id, const char *detail, const char *hint);
struct BackgroundWorker;
/* worker.c's slots, for the worker process (worker_main.c) */
extern bool ClaimSlot(Oid database_id);
extern bool StopRequested(Oid database_id, bool free_slot);
extern void ReleaseSlot(int code, Datum arg);
extern void RecordRun(int actions, const char *error);

/* worker_main.c: the entry point the postmaster starts a worker at */
extern PGDLLEXPORT void PersonalisationWorkerMain(Datum main_arg);

extern void DescribeWorker(struct BackgroundWorker *worker, const char *function, const char *type,
						   Oid database_id, Oid owner);

#endif							/* PERSONALISATION_WORKER_H */
