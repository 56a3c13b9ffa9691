/*
 * jobs.c
 *		schedule_jobs(): registers the extension's periodic jobs with pg_cron,
 *		which is a soft dependency detected at run time.  Jobs are named
 *		personalisation:<job> so that operators can find them in cron.job.
 */
#include "personalisation.h"

#include "catalog/pg_type.h"
#include "commands/dbcommands.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "utils/builtins.h"

PG_FUNCTION_INFO_V1(schedule_jobs);

/* One periodic job: its cron name, schedule (GMT, minute granularity) and command. */
typedef struct PeriodicJob
{
	const char *name;
	const char *schedule;
	const char *command;
} PeriodicJob;

static const PeriodicJob PeriodicJobs[] = {
	{"personalisation:maintain-partitions", "17 * * * *",
	"SELECT personalisation.maintain_partitions()"},
	{"personalisation:maintain-complementarity", "*/5 * * * *",
	"SELECT personalisation.maintain_complementarity()"},
	{"personalisation:refresh-popularity", "*/10 * * * *",
	"SELECT personalisation.refresh_popularity()"},
	{"personalisation:expire-session-affinity", "41 * * * *",
	"SELECT personalisation.expire_session_affinity()"},
	{"personalisation:run-due", "* * * * *",
	"SELECT personalisation.run_due()"},
};

static SavedStatement PgCronInstalledStatement = {
	"SELECT 1 FROM pg_catalog.pg_extension WHERE extname = 'pg_cron'",
	0, {InvalidOid}
};

static SavedStatement ScheduleStatement = {
	"SELECT cron.schedule($1, $2, $3)",
	3, {TEXTOID, TEXTOID, TEXTOID}
};

/*
 * RequirePgCron refuses to go on when pg_cron is not installed in this
 * database, and says exactly what to run where pg_cron does live.
 */
static void
RequirePgCron(void)
{
	StringInfoData commands;

	ExecSaved(&PgCronInstalledStatement, NULL, NULL, true, 1);
	if (SPI_processed > 0)
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
