/*
 * personalisation.c
 *		Module entry point: _PG_init, the GUCs every part shares, and the
 *		report of whether the library was preloaded.
 */
#include "personalisation.h"

#include "miscadmin.h"
#include "utils/guc.h"

PG_MODULE_MAGIC;

int			EventRetentionMinutes = 180 * 24 * 60;
int			PartitionPremakeDays = 7;
int			MaxClockSkewSeconds = 300;
int			MaxOrderLines = 500;
bool		PersonalisationPreloaded = false;

void		_PG_init(void);
static void DefineGucs(void);

PG_FUNCTION_INFO_V1(preloaded);

/*
 * _PG_init defines the GUCs.  It remembers whether it runs from
 * shared_preload_libraries, which the parts that need shared memory or a
 * background worker require.
 */
void
_PG_init(void)
{
	PersonalisationPreloaded = process_shared_preload_libraries_in_progress;
	DefineGucs();
	PartitionsInit();
	WorkerInit();
}

/*
 * DefineGucs registers every personalisation.* setting and reserves the
 * prefix so that a misspelt setting is reported instead of ignored.
 */
static void
DefineGucs(void)
{
	DefineCustomIntVariable("personalisation.event_retention",
							"How long events, sessions' idempotency keys and their partitions are kept.",
							"maintain_partitions() drops day partitions wholly older than this; "
							"events older than this are refused.",
							&EventRetentionMinutes,
							180 * 24 * 60, 24 * 60, INT_MAX,
							PGC_SUSET, GUC_UNIT_MIN,
							NULL, NULL, NULL);

	DefineCustomIntVariable("personalisation.partition_premake",
							"How many days of future event partitions maintain_partitions() creates ahead.",
							NULL,
							&PartitionPremakeDays,
							7, 1, 366,
							PGC_SUSET, 0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("personalisation.max_clock_skew",
							"How far in the future an event's occurred_at may lie.",
							"Events stamped later than now() plus this are refused as a clock error.",
							&MaxClockSkewSeconds,
							300, 0, 7 * 24 * 3600,
							PGC_SUSET, GUC_UNIT_S,
							NULL, NULL, NULL);

	DefineCustomIntVariable("personalisation.max_order_lines",
							"The most lines one purchase may carry.",
							NULL,
							&MaxOrderLines,
							500, 1, 100000,
							PGC_SUSET, 0,
							NULL, NULL, NULL);

	DefineCustomBoolVariable("personalisation.worker_enabled",
							 "Whether each database using the extension gets a background worker.",
							 "Turned off, running workers exit and none start; pg_cron's run_due job still does the work every minute.",
							 &WorkerEnabled,
							 true,
							 PGC_SIGHUP, 0,
							 NULL, NULL, NULL);

	DefineCustomIntVariable("personalisation.worker_naptime",
							"How long the background worker sleeps between runs when nothing wakes it.",
							NULL,
							&WorkerNaptimeMs,
							1000, 10, 60 * 1000,
							PGC_SIGHUP, GUC_UNIT_MS,
							NULL, NULL, NULL);

	MarkGUCPrefixReserved("personalisation");
}

/*
 * preloaded reports whether the library was loaded through
 * shared_preload_libraries, so that operators and the install script can
 * say what is missing.
 */
Datum
preloaded(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(PersonalisationPreloaded);
}
