/*
 * jobs.c
 *		The extension's periodic jobs, listed once for both of their runners.
 *		schedule_jobs() registers them with pg_cron, which is a soft
 *		dependency detected at run time; jobs are named personalisation:<job>
 *		so that operators can find them in cron.job.  Where pg_cron has no
 *		personalisation:* job for this database, the background worker runs
 *		the same commands on the same schedules (worker.c), and jobs() shows
 *		who runs what.  When the extension is dropped, its pg_cron jobs in
 *		this database go with it.
 */
#include "jobs.h"

#include "worker.h"

#include "catalog/pg_type.h"
#include "commands/dbcommands.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "utils/builtins.h"

PG_FUNCTION_INFO_V1(schedule_jobs);

/*
 * One periodic job: its cron name, schedule (GMT, minute granularity; the
 * worker reads the minute field, which is "*", "*\/N" or "N", the other four
 * being "*") and command.  continuous marks the job the worker does all the
 * time anyway, between its scheduled runs.
 */
typedef struct PeriodicJob
{
	const char *name;
	const char *schedule;
	const char *command;
	bool		continuous;
} PeriodicJob;

static const PeriodicJob PeriodicJobs[] = {
	{"personalisation:maintain-partitions", "17 * * * *",
	"SELECT personalisation.maintain_partitions()", false},
	{"personalisation:maintain-complementarity", "*/5 * * * *",
	"SELECT personalisation.maintain_complementarity()", false},
	{"personalisation:refresh-popularity", "*/10 * * * *",
	"SELECT personalisation.refresh_popularity()", false},
	{"personalisation:expire-session-affinity", "41 * * * *",
	"SELECT personalisation.expire_session_affinity()", false},
	{"personalisation:run-due", "* * * * *",
	"SELECT personalisation.run_due()", true},
};

static SavedStatement PgCronInstalledStatement = {
	"SELECT 1 FROM pg_catalog.pg_extension WHERE extname = 'pg_cron'",
	0, {InvalidOid}
};

static SavedStatement ScheduleStatement = {
	"SELECT cron.schedule($1, $2, $3)",
	3, {TEXTOID, TEXTOID, TEXTOID}
};

static SavedStatement CronJobsHereStatement = {
	"SELECT 1 FROM cron.job"
	" WHERE jobname OPERATOR(pg_catalog.~~) 'personalisation:%'"
	"   AND database OPERATOR(pg_catalog.=) pg_catalog.current_database()::pg_catalog.text",
	0, {InvalidOid}
};

static SavedStatement UnscheduleHereStatement = {
	"SELECT cron.unschedule(jobid) FROM cron.job"
	" WHERE jobname OPERATOR(pg_catalog.~~) 'personalisation:%'"
	"   AND database OPERATOR(pg_catalog.=) pg_catalog.current_database()::pg_catalog.text",
	0, {InvalidOid}
};

PG_FUNCTION_INFO_V1(jobs);

/*
 * PgCronInstalled reports whether pg_cron is installed in this database.
 * The caller is connected to SPI.
 */
static bool
PgCronInstalled(void)
{
	ExecSaved(&PgCronInstalledStatement, NULL, NULL, true, 1);
	return SPI_processed > 0;
}

/*
 * PgCronRunsJobs reports whether pg_cron, installed in this database, has
 * any personalisation:* job for it: then pg_cron runs the periodic jobs and
 * the worker leaves them alone.  The caller is connected to SPI.
 */
bool
PgCronRunsJobs(void)
{
	if (!PgCronInstalled())
		return false;
	ExecSaved(&CronJobsHereStatement, NULL, NULL, true, 1);
	return SPI_processed > 0;
}

/*
 * MinuteMatches reports whether a job's schedule fires at minute (0-59) of
 * the hour.
 */
static bool
MinuteMatches(const PeriodicJob *job, int minute)
{
	const char *field = job->schedule;
	int			value;

	if (strncmp(field, "* ", 2) == 0)
		return true;
	if (sscanf(field, "*/%d ", &value) == 1)
		return minute % value == 0;
	if (sscanf(field, "%d ", &value) == 1)
		return minute == value;
	elog(ERROR, "unsupported schedule \"%s\" of job %s", job->schedule, job->name);
	return false;				/* keep the compiler quiet */
}

/*
 * PeriodicJobDue reports whether job i has a scheduled minute in (since,
 * until].  A span of an hour or more holds every minute of the hour.
 */
static bool
PeriodicJobDue(int i, TimestampTz since, TimestampTz until)
{
	/* the last minute boundary at or before until; minutes are whole in UTC */
	TimestampTz boundary = until - ((until % USECS_PER_MINUTE) + USECS_PER_MINUTE) % USECS_PER_MINUTE;

	for (int n = 0; n < 60 && boundary > since; n++, boundary -= USECS_PER_MINUTE)
	{
		int64		minute_of_hour = ((boundary / USECS_PER_MINUTE) % 60 + 60) % 60;

		if (MinuteMatches(&PeriodicJobs[i], (int) minute_of_hour))
			return true;
	}
	return false;
}

/*
 * WorkerJobsDue lists the commands of the scheduled (not continuous) jobs
 * due in (since, until], for the worker to run where pg_cron does not.
 */
List *
WorkerJobsDue(TimestampTz since, TimestampTz until)
{
	List	   *due = NIL;

	for (int i = 0; i < lengthof(PeriodicJobs); i++)
		if (!PeriodicJobs[i].continuous && PeriodicJobDue(i, since, until))
			due = lappend(due, (void *) PeriodicJobs[i].command);
	return due;
}

/*
 * UnscheduleJobs removes this database's personalisation:* jobs from
 * pg_cron, when it is installed here, as the extension is dropped: left
 * behind, they would fail every time they fire.
 */
void
UnscheduleJobs(void)
{
	SPI_connect();
	if (PgCronInstalled())
		ExecSaved(&UnscheduleHereStatement, NULL, NULL, false, 0);
	SPI_finish();
}

/*
 * RequirePgCron refuses to go on when pg_cron is not installed in this
 * database, and says exactly what to run where pg_cron does live.
 */
static void
RequirePgCron(void)
{
	StringInfoData commands;

	if (PgCronInstalled())
		return;

	initStringInfo(&commands);
	for (int i = 0; i < lengthof(PeriodicJobs); i++)
		appendStringInfo(&commands, "%sSELECT cron.schedule_in_database(%s, %s, %s, %s);",
						 i > 0 ? " " : "",
						 quote_literal_cstr(PeriodicJobs[i].name),
						 quote_literal_cstr(PeriodicJobs[i].schedule),
						 quote_literal_cstr(PeriodicJobs[i].command),
						 quote_literal_cstr(get_database_name(MyDatabaseId)));

	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("pg_cron is not installed in database \"%s\"",
					get_database_name(MyDatabaseId)),
			 errdetail("If pg_cron runs in another database, run this there: %s", commands.data),
			 errhint("Add pg_cron to shared_preload_libraries, set cron.database_name to this database, "
					 "restart, run CREATE EXTENSION pg_cron, then call schedule_jobs() again.")));
}

/*
 * schedule_jobs registers (or updates, by name) every periodic job with
 * pg_cron and returns them with their job ids.  Calling it again changes
 * nothing but a job whose schedule or command changed.
 */
Datum
schedule_jobs(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;

	InitMaterializedSRF(fcinfo, 0);

	SPI_connect();
	RequirePgCron();
	for (int i = 0; i < lengthof(PeriodicJobs); i++)
	{
		Datum		args[3] = {CStringGetTextDatum(PeriodicJobs[i].name),
			CStringGetTextDatum(PeriodicJobs[i].schedule),
		CStringGetTextDatum(PeriodicJobs[i].command)};
		Datum		values[4];
		bool		nulls[4] = {false, false, false, false};
		bool		isnull;

		ExecSaved(&ScheduleStatement, args, NULL, false, 1);
		values[0] = args[0];
		values[1] = args[1];
		values[2] = args[2];
		values[3] = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	SPI_finish();

	return (Datum) 0;
}

/*
 * jobs lists every periodic job with who runs it in this database (pg_cron,
 * the worker, or nobody) and whether it has a scheduled minute in (since,
 * until], so operators see what runs where and when.
 */
Datum
jobs(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	TimestampTz since = RequireInstant(fcinfo, 0, "since");
	TimestampTz until = RequireInstant(fcinfo, 1, "until");
	bool		by_cron;
	bool		by_worker = WorkerRunsHere();

	InitMaterializedSRF(fcinfo, 0);

	SPI_connect();
	by_cron = PgCronRunsJobs();
	SPI_finish();

	for (int i = 0; i < lengthof(PeriodicJobs); i++)
	{
		const PeriodicJob *job = &PeriodicJobs[i];
		Datum		values[5];
		bool		nulls[5] = {false, false, false, false, false};
		const char *runner;

		if (by_cron && job->continuous && by_worker)
			runner = "pg_cron and worker";
		else if (by_cron)
			runner = "pg_cron";
		else
			runner = by_worker ? "worker" : "nobody";

		values[0] = CStringGetTextDatum(job->name);
		values[1] = CStringGetTextDatum(job->schedule);
		values[2] = CStringGetTextDatum(job->command);
		values[3] = CStringGetTextDatum(runner);
		values[4] = BoolGetDatum(PeriodicJobDue(i, since, until));
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}
