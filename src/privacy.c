/*
 * privacy.c
 *		Everything the extension holds about a person, found from the
 *		catalog: forget_customer() erases it, export_customer() returns it,
 *		ExpireSessions() (run by maintain_partitions) forgets the sessions
 *		idle past personalisation.event_retention and the anonymous profiles
 *		they leave unreachable, and pseudonym() computes the keyed hashes
 *		that the analysts' views show instead of identifiers.
 *
 *		A table of the extension holds data about a person when it has a
 *		column naming one of the person's keys: profile_id or any
 *		*_profile_id (bigint), or, in a table without such a column,
 *		session_id, order_id, customer_id, email or event_id (text).  Tables
 *		that later capabilities add are covered by this rule without being
 *		listed anywhere; catalogue tables and anonymous aggregates (product
 *		pair counts) carry none of these columns and are left alone, except
 *		that erased orders leave the pair counts as refunded ones do.
 */
#include "privacy.h"

#include "complement.h"
#include "identity.h"
#include "locks.h"

#include "catalog/pg_type.h"
#include "common/hmac.h"
#include "common/sha2.h"
#include "lib/stringinfo.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"

PG_FUNCTION_INFO_V1(forget_customer);
PG_FUNCTION_INFO_V1(export_customer);
PG_FUNCTION_INFO_V1(pseudonym);

/* Most sessions one maintenance run expires; the next run goes on. */
#define MAX_EXPIRED_SESSIONS 50000

/*
 * An erasure repeats its pass over the tables until a pass finds nothing
 * more: a run_due that held one of the person's journey runs while the
 * first pass went by commits its messages before the second pass.
 */
#define MAX_ERASE_PASSES 10

/* Bytes of the HMAC-SHA256 a pseudonym shows (as hex). */
#define PSEUDONYM_BYTES 16

/* Shortest pseudonym key accepted, in bytes. */
#define MIN_PSEUDONYM_KEY_BYTES 16

/*
 * The keys by which rows refer to a person, in the order of the erasure and
 * export statements' parameters $1 to $6.  Each is an array.
 */
typedef enum PersonKey
{
	KEY_PROFILE,				/* int8[]: profile_id and *_profile_id */
	KEY_SESSION,				/* text[]: session_id */
	KEY_ORDER,					/* text[]: order_id */
	KEY_CUSTOMER,				/* text[]: customer_id */
	KEY_EMAIL,					/* text[]: email */
	KEY_EVENT,					/* text[]: event_id */
	NUM_PERSON_KEYS
} PersonKey;

static const char *const KeyColumns[NUM_PERSON_KEYS] = {
	"profile_id", "session_id", "order_id", "customer_id", "email", "event_id"
};

static const Oid KeyTypes[NUM_PERSON_KEYS] = {
	INT8ARRAYOID, TEXTARRAYOID, TEXTARRAYOID, TEXTARRAYOID, TEXTARRAYOID, TEXTARRAYOID
};

/* A person's keys: the values each column of KeyColumns may hold. */
typedef struct Person
{
	Datum		keys[NUM_PERSON_KEYS];
} Person;

/* A table that holds data about people, and how its rows name a person. */
typedef struct PersonTable
{
	char	   *name;			/* relname */
	char	   *qualified;		/* personalisation."relname" */
	char	   *predicate;		/* over $1 .. $6 (see PersonKey) */
	bool		has_profile;	/* rows name a person by profile id */
	char	  **key_columns;	/* its key columns */
	int			nkey_columns;
} PersonTable;

/*
 * The extension's tables (partitioned parents, not their partitions) with
 * the key columns each has, those referenced by others' foreign keys after
 * the tables referencing them, so that deleting in this order never trips a
 * foreign key.
 */
static SavedStatement PersonTablesStatement = {
	"WITH RECURSIVE members AS ("
	"    SELECT c.oid, c.relname FROM pg_catalog.pg_depend d"
	"      JOIN pg_catalog.pg_class c ON c.oid = d.objid"
	"     WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass"
	"       AND d.refclassid = 'pg_catalog.pg_extension'::pg_catalog.regclass"
	"       AND d.refobjid = (SELECT e.oid FROM pg_catalog.pg_extension e WHERE e.extname = 'personalisation')"
	"       AND d.deptype = 'e' AND c.relkind IN ('r', 'p') AND NOT c.relispartition"
	"), key_columns AS ("
	"    SELECT m.oid, a.attname::text AS column_name FROM members m"
	"      JOIN pg_catalog.pg_attribute a ON a.attrelid = m.oid AND a.attnum > 0 AND NOT a.attisdropped"
	"     WHERE (a.atttypid = 'pg_catalog.int8'::pg_catalog.regtype"
	"            AND (a.attname = 'profile_id' OR a.attname LIKE '%\\_profile\\_id'))"
	"        OR (a.atttypid = 'pg_catalog.text'::pg_catalog.regtype"
	"            AND a.attname IN ('session_id', 'order_id', 'customer_id', 'email', 'event_id'))"
	"), depth AS ("
	"    SELECT m.oid, 0 AS depth FROM members m"
	"    UNION ALL"
	"    SELECT con.confrelid, d.depth + 1 FROM depth d"
	"      JOIN pg_catalog.pg_constraint con ON con.conrelid = d.oid AND con.contype = 'f'"
	"       AND con.confrelid <> con.conrelid"
	"     WHERE d.depth < 32 AND con.confrelid IN (SELECT oid FROM members)"
	")"
	" SELECT m.relname::text, pg_catalog.array_agg(k.column_name ORDER BY k.column_name)"
	"   FROM members m JOIN key_columns k ON k.oid = m.oid"
	"  GROUP BY m.oid, m.relname"
	"  ORDER BY (SELECT pg_catalog.max(d.depth) FROM depth d WHERE d.oid = m.oid), m.relname",
	0, {InvalidOid}
};

/*
 * $1 customer_id: as int8[], the customer's profile and the anonymous
 * profiles merged into it, in order; NULL for a customer never identified.
 */
static SavedStatement CustomerProfilesStatement = {
	"SELECT pg_catalog.array_agg(profile_id ORDER BY profile_id) FROM ("
	"  SELECT p.profile_id FROM personalisation.profiles p WHERE p.customer_id = $1"
	"  UNION ALL"
	"  SELECT m.from_profile_id FROM personalisation.profiles p"
	"    JOIN personalisation.merges m ON m.profile_id = p.profile_id"
	"   WHERE p.customer_id = $1 AND m.unmerged_at IS NULL) person",
	1, {TEXTOID}
};

/* $1 profiles: their sessions (the session directory says which are theirs now), in order. */
static SavedStatement ProfileSessionsStatement = {
	"SELECT coalesce(pg_catalog.array_agg(s.session_id ORDER BY s.session_id COLLATE \"C\"), '{}')"
	"  FROM personalisation.sessions s WHERE s.profile_id = ANY ($1)",
	1, {INT8ARRAYOID}
};

/* $1 profiles: the customer ids and email addresses they carry. */
static SavedStatement ProfileIdentitiesStatement = {
	"SELECT coalesce(pg_catalog.array_agg(DISTINCT p.customer_id)"
	"                           FILTER (WHERE p.customer_id IS NOT NULL), '{}'),"
	"       coalesce(pg_catalog.array_agg(DISTINCT p.email) FILTER (WHERE p.email IS NOT NULL), '{}')"
	"  FROM personalisation.profiles p WHERE p.profile_id = ANY ($1)",
	1, {INT8ARRAYOID}
};

/* $1 names, $2 counts: the erasure's report. */
static SavedStatement ErasureReportStatement = {
	"SELECT coalesce(pg_catalog.jsonb_object_agg(n, c), '{}')"
	"  FROM ROWS FROM (pg_catalog.unnest($1), pg_catalog.unnest($2)) AS t(n, c)",
	2, {TEXTARRAYOID, INT8ARRAYOID}
};

/* $1 cutoff, $2 limit: sessions idle since before the cutoff go; returns their ids and profiles. */
static SavedStatement ExpireSessionsStatement = {
	"WITH expired AS ("
	"    DELETE FROM personalisation.sessions s"
	"     WHERE s.session_id IN (SELECT i.session_id FROM personalisation.sessions i"
	"                             WHERE i.last_seen_at < $1 LIMIT $2 FOR UPDATE SKIP LOCKED)"
	"       AND s.last_seen_at < $1"
	"    RETURNING s.session_id, s.profile_id)"
	" SELECT pg_catalog.count(*),"
	"        coalesce(pg_catalog.array_agg(session_id), '{}'),"
	"        coalesce(pg_catalog.array_agg(DISTINCT profile_id), '{}')"
	"   FROM expired",
	2, {TIMESTAMPTZOID, INT8OID}
};

/*
 * $1 profiles that lost sessions: the anonymous ones left with none, which
 * nothing can reach any more (a merged profile still in effect is kept for
 * unmerge), locked against a concurrent change.
 */
static SavedStatement UnreachableProfilesStatement = {
	"SELECT coalesce(pg_catalog.array_agg(profile_id ORDER BY profile_id), '{}') FROM ("
	"  SELECT p.profile_id FROM personalisation.profiles p"
	"   WHERE p.profile_id = ANY ($1) AND p.customer_id IS NULL"
	"     AND NOT EXISTS (SELECT FROM personalisation.sessions s WHERE s.profile_id = p.profile_id)"
	"     AND NOT EXISTS (SELECT FROM personalisation.merges m"
	"                      WHERE m.from_profile_id = p.profile_id AND m.unmerged_at IS NULL)"
	"     FOR UPDATE OF p) unreachable",
	1, {INT8ARRAYOID}
};

/*
 * $1 order ids: those still counted (not refunded), in order, locked: the
 * erasure takes them out of the derived counts before deleting them.
 */
static SavedStatement StandingOrdersStatement = {
	"SELECT o.order_id, o.occurred_at FROM personalisation.orders o"
	" WHERE o.order_id = ANY ($1) AND o.refunded_at IS NULL"
	" ORDER BY o.order_id COLLATE \"C\" FOR UPDATE",
	1, {TEXTARRAYOID}
};

/*
 * IsProfileColumn reports whether a key column names a person by profile
 * id: profile_id itself, or a column such as from_profile_id.
 */
static bool
IsProfileColumn(const char *column)
{
	size_t		len = strlen(column);

	return strcmp(column, "profile_id") == 0 ||
		(len > strlen("_profile_id") && strcmp(column + len - strlen("_profile_id"), "_profile_id") == 0);
}

/*
 * KeyOf returns which person key a (non-profile) key column holds.
 */
static PersonKey
KeyOf(const char *column)
{
	for (int key = KEY_SESSION; key < NUM_PERSON_KEYS; key++)
		if (strcmp(column, KeyColumns[key]) == 0)
			return (PersonKey) key;
	elog(ERROR, "column \"%s\" is not a person key", column);
}

/*
 * TablePredicate builds the condition that picks a person's rows of a
 * table: by profile id when the table has a profile column (its session,
 * order and other columns may then name another person's, as a shared
 * device's session does), by its other key columns otherwise.
 */
static void
TablePredicate(PersonTable *table)
{
	StringInfoData predicate;
	int			terms = 0;

	table->has_profile = false;
	for (int i = 0; i < table->nkey_columns; i++)
		if (IsProfileColumn(table->key_columns[i]))
			table->has_profile = true;

	initStringInfo(&predicate);
	appendStringInfoChar(&predicate, '(');
	for (int i = 0; i < table->nkey_columns; i++)
	{
		const char *column = table->key_columns[i];
		bool		profile = IsProfileColumn(column);

		if (profile != table->has_profile)
			continue;
		appendStringInfo(&predicate, "%st.%s = ANY ($%d)", terms++ > 0 ? " OR " : "",
						 quote_identifier(column), (profile ? KEY_PROFILE : KeyOf(column)) + 1);
	}
	appendStringInfoChar(&predicate, ')');
	table->predicate = predicate.data;
}

/*
 * PersonTables returns the extension's tables that hold data about people,
 * in deletion order, and sets *count.
 */
static PersonTable *
PersonTables(int *count)
{
	PersonTable *tables;
	bool		isnull;

	ExecSaved(&PersonTablesStatement, NULL, NULL, true, 0);
	*count = (int) SPI_processed;
	tables = palloc0(sizeof(PersonTable) * Max(*count, 1));
	for (int i = 0; i < *count; i++)
	{
		HeapTuple	row = SPI_tuptable->vals[i];
		Datum	   *columns;
		int			ncolumns;

		tables[i].name = SPI_getvalue(row, SPI_tuptable->tupdesc, 1);
		tables[i].qualified = quote_qualified_identifier("personalisation", tables[i].name);
		deconstruct_array(DatumGetArrayTypeP(SPI_getbinval(row, SPI_tuptable->tupdesc, 2, &isnull)),
						  TEXTOID, -1, false, TYPALIGN_INT, &columns, NULL, &ncolumns);
		tables[i].nkey_columns = ncolumns;
		tables[i].key_columns = palloc(sizeof(char *) * ncolumns);
		for (int c = 0; c < ncolumns; c++)
			tables[i].key_columns[c] = TextDatumGetCString(columns[c]);
		TablePredicate(&tables[i]);
	}
	return tables;
}

/*
 * ExecPersonStatement runs a statement over $1 .. $6, the person's keys.
 */
static void
ExecPersonStatement(const char *sql, Person *person, bool read_only)
{
	ExecPinned(sql, NUM_PERSON_KEYS, (Oid *) KeyTypes, person->keys, NULL, read_only, 0);
}

/*
 * FirstColumn returns column col of the last statement's first row, a
 * by-reference value (an array or a document), copied out of SPI's memory.
 */
static Datum
FirstColumn(int col)
{
	bool		isnull;

	return SPI_datumTransfer(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, col, &isnull),
							 false, -1);
}

/*
 * KeysFromTables returns, as text[], every value of the key column that the
 * person's rows (by profile id) of any table hold: the order ids or event
 * ids the person's orders, events and consent changes carry.
 */
static Datum
KeysFromTables(PersonTable *tables, int count, PersonKey key, Person *person)
{
	StringInfoData sql;
	int			sources = 0;

	initStringInfo(&sql);
	appendStringInfoString(&sql, "SELECT coalesce(pg_catalog.array_agg(DISTINCT k), '{}') FROM (");
	for (int i = 0; i < count; i++)
	{
		if (!tables[i].has_profile)
			continue;
		for (int c = 0; c < tables[i].nkey_columns; c++)
			if (strcmp(tables[i].key_columns[c], KeyColumns[key]) == 0)
				appendStringInfo(&sql, "%sSELECT t.%s AS k FROM %s t WHERE %s",
								 sources++ > 0 ? " UNION ALL " : "", quote_identifier(KeyColumns[key]),
								 tables[i].qualified, tables[i].predicate);
	}
	if (sources == 0)
		return PointerGetDatum(construct_empty_array(TEXTOID));
	appendStringInfo(&sql, ") keys WHERE k IS NOT NULL");
	ExecPersonStatement(sql.data, person, true);
	return FirstColumn(1);
}

/*
 * CollectPerson fills person with every key of the given profiles (int8[]):
 * their sessions, customer ids and email addresses, and the order and event
 * ids their rows carry.  extra_sessions (text[], or 0) are sessions already
 * removed from the directory whose traces must go too.
 */
static void
CollectPerson(Datum profile_ids, Datum extra_sessions, PersonTable *tables, int count, Person *person)
{
	Datum		values[1] = {profile_ids};

	person->keys[KEY_PROFILE] = profile_ids;
	if (extra_sessions != (Datum) 0)
		person->keys[KEY_SESSION] = extra_sessions;
	else
	{
		ExecSaved(&ProfileSessionsStatement, values, NULL, true, 1);
		person->keys[KEY_SESSION] = FirstColumn(1);
	}
	ExecSaved(&ProfileIdentitiesStatement, values, NULL, true, 1);
	person->keys[KEY_CUSTOMER] = FirstColumn(1);
	person->keys[KEY_EMAIL] = FirstColumn(2);
	/* the unions below read $1 only, but every parameter needs a value */
	person->keys[KEY_ORDER] = person->keys[KEY_EVENT] = PointerGetDatum(construct_empty_array(TEXTOID));
	person->keys[KEY_ORDER] = KeysFromTables(tables, count, KEY_ORDER, person);
	person->keys[KEY_EVENT] = KeysFromTables(tables, count, KEY_EVENT, person);
}

/*
 * UncountOrders takes the person's standing orders out of every count
 * derived from orders, as a refund does: the product pair counts are
 * anonymous and stay, but they must stay equal to what the remaining order
 * history gives, or the window's expiry could never take these orders out.
 */
static void
UncountOrders(Person *person)
{
	Datum		values[1] = {person->keys[KEY_ORDER]};
	SPITupleTable *orders;
	uint64		count;
	bool		isnull;

	ExecSaved(&StandingOrdersStatement, values, NULL, false, 0);
	orders = SPI_tuptable;
	count = SPI_processed;
	for (uint64 i = 0; i < count; i++)
		UncountOrder(DatumGetTextPP(SPI_getbinval(orders->vals[i], orders->tupdesc, 1, &isnull)),
					 DatumGetTimestampTz(SPI_getbinval(orders->vals[i], orders->tupdesc, 2, &isnull)));
}

/*
 * ErasePerson deletes every row about the person from every table that
 * holds data about people, in passes until one finds nothing more, and
 * returns the rows deleted per table as jsonb.  The person's orders leave
 * the derived counts first.
 */
static Datum
ErasePerson(PersonTable *tables, int count, Person *person)
{
	int64	   *deleted = palloc0(sizeof(int64) * Max(count, 1));
	Datum	   *names = palloc(sizeof(Datum) * Max(count, 1));
	Datum	   *counts = palloc(sizeof(Datum) * Max(count, 1));
	Datum		report[2];

	UncountOrders(person);
	for (int pass = 0; pass < MAX_ERASE_PASSES; pass++)
	{
		int64		found = 0;

		for (int i = 0; i < count; i++)
		{
			ExecPersonStatement(psprintf("DELETE FROM %s t WHERE %s", tables[i].qualified,
										 tables[i].predicate), person, false);
			deleted[i] += (int64) SPI_processed;
			found += (int64) SPI_processed;
		}
		if (found == 0)
			break;
	}

	for (int i = 0; i < count; i++)
	{
		names[i] = CStringGetTextDatum(tables[i].name);
		counts[i] = Int64GetDatum(deleted[i]);
	}
	report[0] = PointerGetDatum(construct_array(names, count, TEXTOID, -1, false, TYPALIGN_INT));
	report[1] = PointerGetDatum(construct_array(counts, count, INT8OID, 8, true, TYPALIGN_DOUBLE));
	ExecSaved(&ErasureReportStatement, report, NULL, true, 1);
	return FirstColumn(1);
}

/*
 * ArrayDatumLength returns the number of elements of a one-dimensional
 * array datum.
 */
static int
ArrayDatumLength(Datum array)
{
	ArrayType  *a = DatumGetArrayTypeP(array);

	return ArrayGetNItems(ARR_NDIM(a), ARR_DIMS(a));
}

/*
 * CustomerProfiles returns (int8[]) the customer's profile followed by the
 * anonymous profiles merged into it, refusing a customer never identified.
 */
static Datum
CustomerProfiles(text *customer_id)
{
	Datum		values[1] = {PointerGetDatum(customer_id)};
	bool		isnull;

	ExecSaved(&CustomerProfilesStatement, values, NULL, false, 1);
	(void) SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	if (isnull)
		ereport(ERROR,
				(errcode(ERRCODE_NO_DATA_FOUND),
				 errmsg("customer \"%s\" is not known", text_to_cstring(customer_id)),
				 errdetail("No profile carries this customer id: it was never identified, or it was forgotten already."),
				 errhint("Pass the customer id the shop gave identify().")));
	return FirstColumn(1);
}

/*
 * forget_customer erases, in the caller's transaction, every row about the
 * customer: the customer's profile and the anonymous profiles merged into
 * it, and every row of every table that names them (sessions, events and
 * their idempotency keys, cart, orders and their lines, consent history,
 * merge ledger, journey runs and steps, coupons, messages delivered or
 * not, and whatever later capabilities keep per profile).  Anonymous
 * aggregates such as product pair counts stay.  It returns the rows
 * deleted per table.  The customer's logins, merges and sessions' events
 * wait until it commits; an event arriving afterwards on one of the
 * forgotten sessions starts a new anonymous profile.
 */
Datum
forget_customer(PG_FUNCTION_ARGS)
{
	text	   *customer_id = RequireIdentifier(fcinfo, 0, "customer_id");
	PersonTable *tables;
	int			count;
	Datum		profile_ids;
	Datum	   *sessions;
	int			nsessions;
	Person		person;
	Datum		report;

	RequireWritableServer(fcinfo);
	SPI_connect();
	LockCustomer(customer_id);
	profile_ids = CustomerProfiles(customer_id);
	{
		Datum	   *ids;
		int			nids;

		deconstruct_array(DatumGetArrayTypeP(profile_ids), INT8OID, 8, true, TYPALIGN_DOUBLE,
						  &ids, NULL, &nids);
		for (int i = 0; i < nids; i++)
			LockProfile(DatumGetInt64(ids[i]));
	}

	tables = PersonTables(&count);
	CollectPerson(profile_ids, (Datum) 0, tables, count, &person);
	deconstruct_array(DatumGetArrayTypeP(person.keys[KEY_SESSION]), TEXTOID, -1, false, TYPALIGN_INT,
					  &sessions, NULL, &nsessions);
	LockSessions(sessions, nsessions);
	/* events recorded while we waited for the sessions carry keys too */
	CollectPerson(profile_ids, (Datum) 0, tables, count, &person);

	report = ErasePerson(tables, count, &person);
	SPI_finish();

	PG_RETURN_DATUM(report);
}

/*
 * export_customer returns, as one jsonb document, every row the extension
 * holds about the customer (the same rows forget_customer would erase),
 * grouped by table: {"customer_id", "profile_ids", "exported_at",
 * "tables": {table: [row, ...]}}, with every table that can hold data
 * about a person present (an empty array when it holds none).
 */
Datum
export_customer(PG_FUNCTION_ARGS)
{
	text	   *customer_id = RequireIdentifier(fcinfo, 0, "customer_id");
	PersonTable *tables;
	int			count;
	Person		person;
	StringInfoData sql;
	Datum		document;

	SPI_connect();
	tables = PersonTables(&count);
	CollectPerson(CustomerProfiles(customer_id), (Datum) 0, tables, count, &person);

	initStringInfo(&sql);
	appendStringInfo(&sql,
					 "SELECT pg_catalog.jsonb_build_object('customer_id', %s, 'profile_ids', $1,"
					 " 'exported_at', pg_catalog.now(), 'tables', pg_catalog.jsonb_object_agg(n, r)) FROM (",
					 quote_literal_cstr(text_to_cstring(customer_id)));
	for (int i = 0; i < count; i++)
		appendStringInfo(&sql,
						 "%sSELECT %s AS n, (SELECT coalesce(pg_catalog.jsonb_agg(pg_catalog.to_jsonb(t)), '[]')"
						 " FROM %s t WHERE %s) AS r",
						 i > 0 ? " UNION ALL " : "", quote_literal_cstr(tables[i].name),
						 tables[i].qualified, tables[i].predicate);
	appendStringInfoString(&sql, ") tables");
	ExecPersonStatement(sql.data, &person, true);
	document = FirstColumn(1);
	SPI_finish();

	PG_RETURN_DATUM(document);
}

/*
 * ExpireSessions forgets, for maintain_partitions, up to
 * MAX_EXPIRED_SESSIONS sessions last seen before cutoff, and erases the
 * anonymous profiles they leave without any session: nothing can reach such
 * a profile again (no session leads to it, no login can claim it), so what
 * it holds has no purpose left.  Customers' profiles stay: a login reaches
 * them.  Runs inside the caller's SPI connection; returns the sessions
 * expired and sets *forgotten to the profiles erased.
 */
int64
ExpireSessions(TimestampTz cutoff, int64 *forgotten)
{
	Datum		values[2] = {TimestampTzGetDatum(cutoff), Int64GetDatum(MAX_EXPIRED_SESSIONS)};
	int64		expired;
	Datum		sessions;
	Datum		profiles;
	bool		isnull;

	ExecSaved(&ExpireSessionsStatement, values, NULL, false, 1);
	expired = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	sessions = FirstColumn(2);
	profiles = FirstColumn(3);
	*forgotten = 0;
	if (expired == 0)
		return 0;

	values[0] = profiles;
	ExecSaved(&UnreachableProfilesStatement, values, NULL, false, 1);
	profiles = FirstColumn(1);
	*forgotten = ArrayDatumLength(profiles);
	if (*forgotten > 0)
	{
		PersonTable *tables;
		int			count;
		Person		person;

		tables = PersonTables(&count);
		CollectPerson(profiles, sessions, tables, count, &person);
		ErasePerson(tables, count, &person);
	}
	return expired;
}

/*
 * pseudonym returns a keyed hash of value: the first 16 bytes of
 * HMAC-SHA256(key, value), in hex.  The analysts' views show it in place of
 * customer, session and order ids, with the installation's secret key from
 * personalisation.pseudonym_key: stable, so rows of one person can be
 * linked, and impossible to reverse or to confirm a guess against without
 * the key, which analysts cannot read.
 */
Datum
pseudonym(PG_FUNCTION_ARGS)
{
	bytea	   *key = PG_GETARG_BYTEA_PP(0);
	text	   *value = PG_GETARG_TEXT_PP(1);
	uint8		digest[PG_SHA256_DIGEST_LENGTH];
	char		hex[PSEUDONYM_BYTES * 2 + 1];
	pg_hmac_ctx *hmac;

	if (VARSIZE_ANY_EXHDR(key) < MIN_PSEUDONYM_KEY_BYTES)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("pseudonym key is too short"),
				 errdetail("The key is %d bytes long.", (int) VARSIZE_ANY_EXHDR(key)),
				 errhint("Pass a random key of at least %d bytes, such as personalisation.pseudonym_key.key.",
						 MIN_PSEUDONYM_KEY_BYTES)));

	hmac = pg_hmac_create(PG_SHA256);
	if (hmac == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("out of memory")));
	if (pg_hmac_init(hmac, (uint8 *) VARDATA_ANY(key), VARSIZE_ANY_EXHDR(key)) < 0 ||
		pg_hmac_update(hmac, (uint8 *) VARDATA_ANY(value), VARSIZE_ANY_EXHDR(value)) < 0 ||
		pg_hmac_final(hmac, digest, sizeof(digest)) < 0)
		elog(ERROR, "could not compute a pseudonym: %s", pg_hmac_error(hmac));
	pg_hmac_free(hmac);

	hex_encode((const char *) digest, PSEUDONYM_BYTES, hex);
	hex[PSEUDONYM_BYTES * 2] = '\0';
	PG_RETURN_TEXT_P(cstring_to_text(hex));
}
