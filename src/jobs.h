/*
 * jobs.h
 *		The periodic jobs, run by pg_cron or by the worker (jobs.c).
 */
#ifndef PERSONALISATION_JOBS_H
#define PERSONALISATION_JOBS_H

#include "util.h"

extern bool PgCronRunsJobs(void);
extern List *WorkerJobsDue(TimestampTz since, TimestampTz until);
extern void UnscheduleJobs(void);

#endif							/* PERSONALISATION_JOBS_H */
