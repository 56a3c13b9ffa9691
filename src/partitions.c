/*
 * partitions.c
 *		The event log's day partitions: creating the partition an event needs
 *		on first use, and maintain_partitions(), which creates partitions
 *		ahead of time and drops the ones past personalisation.event_retention.
 *
 *		Partitions are named events_pYYYYMMDD and cover one UTC day each,
 *		with the indexes event_partition_indexes lists as their own (events
 *		has no partitioned index), and are never members of the extension:
 *		pg_dump dumps them with their rows, and pg_restore recreates them as
 *		partitions of the events table CREATE EXTENSION made.  A
 *		backend remembers the run of consecutive days it has seen covered, and
 *		forgets it whenever the events table's relcache entry is invalidated
 *		(a partition created or dropped, the extension dropped).
 */
#include "partitions.h"

#include "locks.h"
#include "privacy.h"

#include "access/htup_details.h"
#include "catalog/dependency.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_extension.h"
#include "catalog/pg_type.h"
#include "commands/extension.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"

/* Settings of this part (defined by PartitionsInit) */
int			PartitionPremakeDays = 7;

PG_FUNCTION_INFO_V1(maintain_partitions);

/*
 * The days partitions can be made for: from day 0 (2000-01-01), the origin
 * of the day numbers, to the end of the last year named with four digits.
 */
#define FIRST_PARTITION_DAY 0
#define LAST_PARTITION_YEAR 9999

static bool CoveredDaysValid = false;
static Oid	CoveredEventsRelid = InvalidOid;
static int64 CoveredFirstDay = 0;
static int64 CoveredLastDay = -1;

static SavedStatement PartitionDaysStatement = {
	"SELECT pg_catalog.substr(c.relname, 9)::date - date '2000-01-01'"
	"  FROM pg_catalog.pg_inherits i JOIN pg_catalog.pg_class c ON c.oid = i.inhrelid"
	" WHERE i.inhparent = pg_catalog.to_regclass('personalisation.events')"
	"   AND c.relname ~ '^events_p[0-9]{8}$' ORDER BY 1",
	0, {InvalidOid}
};

static SavedStatement PartitionIndexesStatement = {
	"SELECT name, definition FROM personalisation.event_partition_indexes ORDER BY name",
	0, {InvalidOid}
};

static SavedStatement ExpireEventKeysStatement = {
	"DELETE FROM personalisation.event_keys WHERE occurred_at < $1",
	1, {TIMESTAMPTZOID}
};

/*
 * DayOf returns the number of the UTC day holding ts, counted from
 * 2000-01-01 (day 0), rounding toward minus infinity.
 */
static int64
DayOf(TimestampTz ts)
{
	int64		day = ts / USECS_PER_DAY;

	if (ts < 0 && ts % USECS_PER_DAY != 0)
		day--;
	return day;
}

/*
 * FormatDay writes day number `day` as YYYYMMDD (sep = false) or
 * YYYY-MM-DD (sep = true).
 */
static void
FormatDay(StringInfo buf, int64 day, bool sep)
{
	int			year,
				month,
				mday;

	j2date((int) (day + POSTGRES_EPOCH_JDATE), &year, &month, &mday);
	appendStringInfo(buf, sep ? "%04d-%02d-%02d" : "%04d%02d%02d", year, month, mday);
}

/* The event partitions opened lately: day number and OID. */
#define KNOWN_PARTITIONS 4

typedef struct KnownPartition
{
	int64		day;
	Oid			relid;			/* InvalidOid: slot free */
} KnownPartition;

static KnownPartition KnownPartitions[KNOWN_PARTITIONS];
static int	NextKnownPartition = 0;

/*
 * ForgetCoveredDays is the relcache callback that drops the backend's
 * memory of which days have partitions and of their OIDs.
 */
static void
ForgetCoveredDays(Datum arg, Oid relid)
{
	if (relid == InvalidOid || relid == CoveredEventsRelid)
		CoveredDaysValid = false;
	for (int i = 0; i < KNOWN_PARTITIONS; i++)
		if (relid == InvalidOid || KnownPartitions[i].relid == relid)
			KnownPartitions[i].relid = InvalidOid;
}

/*
 * LoadPartitionDays fills days[] (sorted, at most max entries) with the day
 * numbers of the existing partitions and returns how many there are.
 */
static int
LoadPartitionDays(int64 **days)
{
	bool		isnull;

	ExecSaved(&PartitionDaysStatement, NULL, NULL, true, 0);
	*days = palloc(sizeof(int64) * Max(SPI_processed, 1));
	for (uint64 i = 0; i < SPI_processed; i++)
		(*days)[i] = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[i],
												 SPI_tuptable->tupdesc, 1, &isnull));
	return (int) SPI_processed;
}

/*
 * RememberCoveredRun caches the run of consecutive partition days that
 * contains `day`.
 */
static void
RememberCoveredRun(int64 day)
{
	int64	   *days;
	int			count = LoadPartitionDays(&days);
	int			at = -1;

	for (int i = 0; i < count; i++)
		if (days[i] == day)
			at = i;
	if (at < 0)
		return;

	CoveredFirstDay = CoveredLastDay = day;
	for (int i = at - 1; i >= 0 && days[i] == CoveredFirstDay - 1; i--)
		CoveredFirstDay = days[i];
	for (int i = at + 1; i < count && days[i] == CoveredLastDay + 1; i++)
		CoveredLastDay = days[i];
	CoveredEventsRelid = get_relname_relid("events", get_namespace_oid("personalisation", false));
	CoveredDaysValid = true;
}

/*
 * EnsurePartitionIndexes creates on the partition for `day` each index of
 * event_partition_indexes it lacks, named events_pYYYYMMDD_<name>.  A
 * database still at 0.1.0 has no such table: there events has partitioned
 * indexes, which every new partition gets by itself.  The caller holds the
 * partition lock.
 */
static void
EnsurePartitionIndexes(int64 day)
{
	Oid			namespace = get_namespace_oid("personalisation", false);
	int			count;
	char	  **names;
	char	  **definitions;

	if (!OidIsValid(get_relname_relid("event_partition_indexes", namespace)))
		return;
	ExecSaved(&PartitionIndexesStatement, NULL, NULL, true, 0);
	count = (int) SPI_processed;
	names = palloc(sizeof(char *) * Max(count, 1));
	definitions = palloc(sizeof(char *) * Max(count, 1));
	for (int i = 0; i < count; i++)
	{
		names[i] = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1);
		definitions[i] = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2);
	}

	for (int i = 0; i < count; i++)
	{
		StringInfoData index;
		StringInfoData sql;

		initStringInfo(&index);
		appendStringInfoString(&index, "events_p");
		FormatDay(&index, day, false);
		appendStringInfo(&index, "_%s", names[i]);
		if (OidIsValid(get_relname_relid(index.data, namespace)))
			continue;

		initStringInfo(&sql);
		appendStringInfo(&sql, "CREATE INDEX %s ON personalisation.events_p", index.data);
		FormatDay(&sql, day, false);
		appendStringInfo(&sql, " %s", definitions[i]);
		(void) ExecPinned(sql.data, 0, NULL, NULL, NULL, false, 0);
	}
}

/*
 * CreateDayPartition creates the partition for `day` unless it exists, with
 * its indexes, and returns whether it created one.  A partition created by
 * an extension script (CREATE EXTENSION or ALTER EXTENSION ... UPDATE) is
 * released from that extension at once, so that pg_dump dumps it like the
 * others.  The caller holds the partition lock.
 */
static bool
CreateDayPartition(int64 day)
{
	StringInfoData name;
	StringInfoData sql;
	int			rc;

	initStringInfo(&name);
	appendStringInfoString(&name, "events_p");
	FormatDay(&name, day, false);

	if (OidIsValid(get_relname_relid(name.data, get_namespace_oid("personalisation", false))))
		return false;

	initStringInfo(&sql);
	appendStringInfo(&sql, "CREATE TABLE personalisation.%s PARTITION OF personalisation.events"
					 " FOR VALUES FROM ('", name.data);
	FormatDay(&sql, day, true);
	appendStringInfoString(&sql, " 00:00:00+00') TO ('");
	FormatDay(&sql, day + 1, true);
	appendStringInfoString(&sql, " 00:00:00+00')");

	rc = ExecPinned(sql.data, 0, NULL, NULL, NULL, false, 0);
	if (rc != SPI_OK_UTILITY)
		elog(ERROR, "could not create event partition %s: %s", name.data,
			 SPI_result_code_string(rc));
	if (creating_extension)
		deleteDependencyRecordsForClass(RelationRelationId,
										get_relname_relid(name.data, get_namespace_oid("personalisation", false)),
										ExtensionRelationId, DEPENDENCY_EXTENSION);
	EnsurePartitionIndexes(day);
	return true;
}

/*
 * LockPartitions serialises creating and dropping partitions for the rest
 * of the transaction.  Once it holds the lock it reads the catalog changes
 * committed meanwhile, as taking a table lock does: the transaction it
 * waited for may have created the very partition this one is about to.
 */
static void
LockPartitions(void)
{
	LockAdvisoryKey(PARTITION_LOCK_KEY, 0, ExclusiveLock);
	AcceptInvalidationMessages();
}

/*
 * EventPartitionName returns the schema-qualified name of the partition for
 * day number `day`, allocated in context.
 */
char *
EventPartitionName(int64 day, MemoryContext context)
{
	StringInfoData name;
	MemoryContext old = MemoryContextSwitchTo(context);

	initStringInfo(&name);
	appendStringInfoString(&name, "personalisation.events_p");
	FormatDay(&name, day, false);
	MemoryContextSwitchTo(old);
	return name.data;
}

/*
 * EventPartitionRelid returns the OID of the event partition of day number
 * `day` (which EnsureEventPartition has made sure exists), for the raw-access
 * layer to append to; the last few are remembered.
 */
Oid
EventPartitionRelid(int64 day)
{
	KnownPartition *slot;
	const char *qualified;

	for (int i = 0; i < KNOWN_PARTITIONS; i++)
		if (OidIsValid(KnownPartitions[i].relid) && KnownPartitions[i].day == day)
			return KnownPartitions[i].relid;

	qualified = EventPartitionName(day, CurrentMemoryContext);
	slot = &KnownPartitions[NextKnownPartition];
	NextKnownPartition = (NextKnownPartition + 1) % KNOWN_PARTITIONS;
	slot->day = day;
	slot->relid = ExtensionSchemaRelid(strchr(qualified, '.') + 1);
	if (!OidIsValid(slot->relid))
		elog(ERROR, "event partition %s is missing", qualified);
	return slot->relid;
}

/*
 * EnsureEventPartition makes sure the day partition for occurred_at exists,
 * creating it when an event is the first of its day (a backfill, or a
 * maintenance job that has not run), and returns the day's number.  The
 * common case costs two comparisons.
 */
int64
EnsureEventPartition(TimestampTz occurred_at)
{
	int64		day = DayOf(occurred_at);

	if (CoveredDaysValid && day >= CoveredFirstDay && day <= CoveredLastDay)
		return day;

	RememberCoveredRun(day);
	if (CoveredDaysValid && day >= CoveredFirstDay && day <= CoveredLastDay)
		return day;

	LockPartitions();
	CreateDayPartition(day);
	CommandCounterIncrement();
	RememberCoveredRun(day);
	return day;
}

/*
 * PartitionsInit registers the callback that keeps the covered-days cache
 * honest.
 */
void
PartitionsInit(void)
{
	DefineCustomIntVariable("personalisation.partition_premake",
							"How many days of future event partitions maintain_partitions() creates ahead.",
							NULL,
							&PartitionPremakeDays,
							7, 1, 366,
							PGC_SUSET, 0,
							NULL, NULL, NULL);

	RegisterRelcacheListener(ForgetCoveredDays);
}

/*
 * maintain_partitions creates the partitions for today and the next
 * personalisation.partition_premake days (and, for a backfill, every day
 * from since's on, in this one call and lock), gives every partition the
 * indexes of event_partition_indexes it lacks, drops every partition that lies
 * wholly before now - personalisation.event_retention, expires the
 * idempotency keys of the same age, and the sessions last seen before then
 * with the anonymous profiles they leave unreachable (ExpireSessions).  It
 * returns what it did, and is safe to run concurrently and repeatedly.
 */
Datum
maintain_partitions(PG_FUNCTION_ARGS)
{
	TimestampTz now;
	TimestampTz cutoff;
	int64		today;
	int64		cutoff_day;
	int64		first_day;
	int64	   *days;
	int			count;
	int32		created = 0;
	int32		dropped = 0;
	int64		expired_keys;
	int64		expired_sessions;
	int64		forgotten_profiles;
	TupleDesc	tupdesc;
	Datum		values[5];
	bool		nulls[5] = {false, false, false, false, false};

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("now must not be null"),
				 errhint("Omit the argument to use now().")));
	now = PG_GETARG_TIMESTAMPTZ(0);
	if (TIMESTAMP_NOT_FINITE(now) || DayOf(now) < FIRST_PARTITION_DAY ||
		DayOf(now) + PartitionPremakeDays > date2j(LAST_PARTITION_YEAR, 12, 31) - POSTGRES_EPOCH_JDATE)
		ereport(ERROR,
				(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
				 errmsg("now %s is outside the days event partitions cover", timestamptz_to_str(now)),
				 errdetail("Event partitions cover the days from 2000-01-01 to %d-12-31, "
						   "personalisation.partition_premake days ahead included.", LAST_PARTITION_YEAR),
				 errhint("Omit the argument to use now().")));

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "maintain_partitions must return a composite type");

	cutoff = EventRetentionCutoff(now);
	today = DayOf(now);
	/* a partition [d, d+1) is wholly expired when d+1 <= cutoff's day start */
	cutoff_day = DayOf(cutoff);

	/* an install still on 0.1.0's definition (during its update) has no since */
	first_day = today;
	if (PG_NARGS() > 1 && !PG_ARGISNULL(1))
	{
		TimestampTz since = PG_GETARG_TIMESTAMPTZ(1);

		if (TIMESTAMP_NOT_FINITE(since) || since < cutoff || DayOf(since) < FIRST_PARTITION_DAY)
			ereport(ERROR,
					(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
					 errmsg("since %s is older than the event retention", timestamptz_to_str(since)),
					 errdetail("Events are kept from %s on, and partitions from 2000-01-01.",
							   timestamptz_to_str(cutoff)),
					 errhint("Raise personalisation.event_retention before backfilling older history.")));
		first_day = Min(DayOf(since), today);
	}

	SPI_connect();
	LockPartitions();

	for (int64 day = first_day; day <= today + PartitionPremakeDays; day++)
		if (CreateDayPartition(day))
			created++;

	count = LoadPartitionDays(&days);
	for (int i = 0; i < count && days[i] < cutoff_day; i++)
	{
		StringInfoData sql;

		initStringInfo(&sql);
		appendStringInfoString(&sql, "DROP TABLE personalisation.events_p");
		FormatDay(&sql, days[i], false);
		if (ExecPinned(sql.data, 0, NULL, NULL, NULL, false, 0) != SPI_OK_UTILITY)
			elog(ERROR, "could not run \"%s\"", sql.data);
		dropped++;
	}
	for (int i = dropped; i < count; i++)
		EnsurePartitionIndexes(days[i]);

	{
		Datum		key_values[1] = {TimestampTzGetDatum(cutoff)};

		ExecSaved(&ExpireEventKeysStatement, key_values, NULL, false, 0);
		expired_keys = (int64) SPI_processed;
	}
	expired_sessions = ExpireSessions(cutoff, &forgotten_profiles);
	SPI_finish();

	tupdesc = BlessTupleDesc(tupdesc);
	values[0] = Int32GetDatum(created);
	values[1] = Int32GetDatum(dropped);
	values[2] = Int64GetDatum(expired_keys);
	values[3] = Int64GetDatum(expired_sessions);
	values[4] = Int64GetDatum(forgotten_profiles);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}
