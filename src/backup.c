/*
 * backup.c
 *		What lets pg_restore put the extension's rows back over a fresh
 *		CREATE EXTENSION (sql/install/backup.sql lists what pg_dump carries):
 *
 *		- replace_installed_row, a BEFORE INSERT trigger on the tables whose
 *		  rows the install script writes (the shipped journeys and steps, the
 *		  pseudonym key, the complementarity state): a row arriving with the
 *		  key of an installed row takes its place, so a restore meets no
 *		  primary key conflict;
 *		- shipped_row_edited: a shipped journey or step the shop changes
 *		  becomes the shop's own (shipped = false), which pg_dump carries;
 *		- remember_removed_row and apply_removed_row: a journey or step the
 *		  shop deletes leaves its key in removed_shipped_rows, which pg_dump
 *		  carries, and restoring that key deletes the shipped row the target's
 *		  CREATE EXTENSION wrote.
 *
 *		Changes made by the extension's own scripts (an upgrade retiring or
 *		changing a shipped row) leave the rows shipped and remember nothing.
 */
#include "util.h"

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "commands/extension.h"
#include "commands/trigger.h"
#include "lib/stringinfo.h"
#include "nodes/bitmapset.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/relcache.h"

PG_FUNCTION_INFO_V1(replace_installed_row);
PG_FUNCTION_INFO_V1(shipped_row_edited);
PG_FUNCTION_INFO_V1(remember_removed_row);
PG_FUNCTION_INFO_V1(apply_removed_row);

/*
 * How a remembered key is removed, per table: only a row still as shipped
 * goes, and a journey takes its shipped steps with it (the foreign key
 * would refuse otherwise; a journey the shop deleted had no steps left).
 */
typedef struct RemovalRule
{
	const char *relation;
	const char *sql;			/* $1: the key, as text[] in column order */
} RemovalRule;

static const RemovalRule RemovalRules[] = {
	{"journeys",
		"WITH steps AS (DELETE FROM personalisation.journey_steps s"
		"                WHERE s.journey OPERATOR(pg_catalog.=) $1[1] AND s.shipped)"
		" DELETE FROM personalisation.journeys j"
	" WHERE j.journey OPERATOR(pg_catalog.=) $1[1] AND j.shipped"},
	{"journey_steps",
		"DELETE FROM personalisation.journey_steps s"
		" WHERE s.journey OPERATOR(pg_catalog.=) $1[1]"
	"   AND s.step OPERATOR(pg_catalog.=) ($1[2])::pg_catalog.int4 AND s.shipped"},
};

/* Set while apply_removed_row deletes: what it deletes is not remembered again. */
static bool ApplyingRemoval = false;

static const char *ForgetRemovedSql =
"DELETE FROM personalisation.removed_shipped_rows"
" WHERE relation OPERATOR(pg_catalog.=) $1 AND key OPERATOR(pg_catalog.=) $2";

static const char *RememberRemovedSql =
"INSERT INTO personalisation.removed_shipped_rows (relation, key) VALUES ($1, $2)"
" ON CONFLICT DO NOTHING";

/*
 * TriggerDataFor returns the trigger data of a call, refusing a call that
 * is not the trigger event `expected` describes (checked by `fired`).
 */
static TriggerData *
TriggerDataFor(FunctionCallInfo fcinfo, const char *name, bool (*fired) (TriggerEvent),
			   const char *expected)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;

	if (!CALLED_AS_TRIGGER(fcinfo) || !fired(trigdata->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("%s must be called as a trigger", name),
				 errdetail("It runs as a %s trigger.", expected)));
	return trigdata;
}

static bool
BeforeInsertRow(TriggerEvent event)
{
	return TRIGGER_FIRED_BEFORE(event) && TRIGGER_FIRED_BY_INSERT(event) &&
		TRIGGER_FIRED_FOR_ROW(event);
}

static bool
BeforeUpdateRow(TriggerEvent event)
{
	return TRIGGER_FIRED_BEFORE(event) && TRIGGER_FIRED_BY_UPDATE(event) &&
		TRIGGER_FIRED_FOR_ROW(event);
}

static bool
AfterDeleteRow(TriggerEvent event)
{
	return TRIGGER_FIRED_AFTER(event) && TRIGGER_FIRED_BY_DELETE(event) &&
		TRIGGER_FIRED_FOR_ROW(event);
}

/*
 * PrimaryKeyColumns returns the attribute numbers of rel's primary key
 * columns, as a set offset by FirstLowInvalidHeapAttributeNumber.
 */
static Bitmapset *
PrimaryKeyColumns(Relation rel)
{
	Bitmapset  *key = RelationGetIndexAttrBitmap(rel, INDEX_ATTR_BITMAP_PRIMARY_KEY);

	if (bms_is_empty(key))
		elog(ERROR, "table %s has no primary key", RelationGetRelationName(rel));
	return key;
}

static bool
IsKeyColumn(Bitmapset *key, AttrNumber attnum)
{
	return bms_is_member(attnum - FirstLowInvalidHeapAttributeNumber, key);
}

/*
 * KeyText returns the primary key of tuple as a text[] of its columns'
 * output, in column order: how removed_shipped_rows names a row.
 */
static Datum
KeyText(Relation rel, HeapTuple tuple)
{
	TupleDesc	desc = RelationGetDescr(rel);
	Bitmapset  *key = PrimaryKeyColumns(rel);
	Datum	   *texts = palloc(sizeof(Datum) * desc->natts);
	int			count = 0;

	for (int i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute attr = TupleDescAttr(desc, i);
		Oid			output;
		bool		varlena;
		bool		isnull;
		Datum		value;

		if (attr->attisdropped || !IsKeyColumn(key, attr->attnum))
			continue;
		value = heap_getattr(tuple, attr->attnum, desc, &isnull);
		getTypeOutputInfo(attr->atttypid, &output, &varlena);
		texts[count++] = CStringGetTextDatum(OidOutputFunctionCall(output, value));
	}
	return PointerGetDatum(construct_array(texts, count, TEXTOID, -1, false, TYPALIGN_INT));
}

/*
 * replace_installed_row is the BEFORE INSERT trigger of the tables the
 * install script writes rows into.  When a row with the new row's primary
 * key exists (and, in a table with a shipped column, is still as shipped),
 * it is updated to the new row's values and the insert is skipped: a
 * restore's COPY puts the dumped row in place of the one CREATE EXTENSION
 * wrote.  Inserting a journey or step again also forgets its removal.
 */
Datum
replace_installed_row(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = TriggerDataFor(fcinfo, "replace_installed_row", BeforeInsertRow,
										   "BEFORE INSERT ... FOR EACH ROW");
	Relation	rel = trigdata->tg_relation;
	TupleDesc	desc = RelationGetDescr(rel);
	HeapTuple	tuple = trigdata->tg_trigtuple;
	Bitmapset  *key = PrimaryKeyColumns(rel);
	bool		has_shipped = get_attnum(RelationGetRelid(rel), "shipped") != InvalidAttrNumber;
	StringInfoData sql;
	const char *separator = "";
	Oid			argtypes[2] = {rel->rd_rel->reltype, TEXTARRAYOID};
	Datum		values[2];
	bool		replaced;

	initStringInfo(&sql);
	appendStringInfo(&sql, "UPDATE %s AS t SET ",
					 quote_qualified_identifier(get_namespace_name(RelationGetNamespace(rel)),
												RelationGetRelationName(rel)));
	for (int i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute attr = TupleDescAttr(desc, i);
		const char *column = quote_identifier(NameStr(attr->attname));

		if (attr->attisdropped || attr->attgenerated || IsKeyColumn(key, attr->attnum))
			continue;
		appendStringInfo(&sql, "%s%s = ($1).%s", separator, column, column);
		separator = ", ";
	}
	separator = " WHERE ";
	for (int i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute attr = TupleDescAttr(desc, i);
		const char *column = quote_identifier(NameStr(attr->attname));

		if (attr->attisdropped || !IsKeyColumn(key, attr->attnum))
			continue;
		appendStringInfo(&sql, "%st.%s OPERATOR(pg_catalog.=) ($1).%s", separator, column, column);
		separator = " AND ";
	}
	if (has_shipped)
		appendStringInfoString(&sql, " AND t.shipped");

	values[0] = heap_copy_tuple_as_datum(tuple, desc);
	SPI_connect();
	if (SPI_execute_with_args(sql.data, 1, argtypes, values, NULL, false, 0) != SPI_OK_UPDATE)
		elog(ERROR, "could not run \"%s\"", sql.data);
	replaced = SPI_processed > 0;
	if (has_shipped)
	{
		values[0] = CStringGetTextDatum(RelationGetRelationName(rel));
		values[1] = KeyText(rel, tuple);
		argtypes[0] = TEXTOID;
		if (SPI_execute_with_args(ForgetRemovedSql, 2, argtypes, values, NULL, false, 0) != SPI_OK_DELETE)
			elog(ERROR, "could not run \"%s\"", ForgetRemovedSql);
	}
	SPI_finish();
	return PointerGetDatum(replaced ? NULL : tuple);
}

/*
 * shipped_row_edited is the BEFORE UPDATE trigger (WHEN OLD.shipped AND
 * NEW.shipped) of journeys and journey_steps: a change by anyone but the
 * extension's own scripts makes the row the shop's, so pg_dump carries it.
 */
Datum
shipped_row_edited(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = TriggerDataFor(fcinfo, "shipped_row_edited", BeforeUpdateRow,
										   "BEFORE UPDATE ... FOR EACH ROW");
	Relation	rel = trigdata->tg_relation;
	int			column = get_attnum(RelationGetRelid(rel), "shipped");
	Datum		value = BoolGetDatum(false);
	bool		isnull = false;

	if (column == InvalidAttrNumber)
		elog(ERROR, "table %s has no column shipped", RelationGetRelationName(rel));
	if (creating_extension)
		return PointerGetDatum(trigdata->tg_newtuple);
	return PointerGetDatum(heap_modify_tuple_by_cols(trigdata->tg_newtuple, RelationGetDescr(rel),
													 1, &column, &value, &isnull));
}

/*
 * remember_removed_row is the AFTER DELETE trigger of journeys and
 * journey_steps: the deleted row's key goes into removed_shipped_rows, so
 * that a restore deletes the shipped row of that key again.  Deletions by
 * the extension's own scripts, and those apply_removed_row makes, are not
 * remembered.
 */
Datum
remember_removed_row(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = TriggerDataFor(fcinfo, "remember_removed_row", AfterDeleteRow,
										   "AFTER DELETE ... FOR EACH ROW");
	Relation	rel = trigdata->tg_relation;
	Oid			argtypes[2] = {TEXTOID, TEXTARRAYOID};
	Datum		values[2];

	if (creating_extension || ApplyingRemoval)
		return PointerGetDatum(NULL);
	values[0] = CStringGetTextDatum(RelationGetRelationName(rel));
	values[1] = KeyText(rel, trigdata->tg_trigtuple);
	SPI_connect();
	if (SPI_execute_with_args(RememberRemovedSql, 2, argtypes, values, NULL, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "could not run \"%s\"", RememberRemovedSql);
	SPI_finish();
	return PointerGetDatum(NULL);
}

/*
 * apply_removed_row is the BEFORE INSERT trigger of removed_shipped_rows:
 * the row a remembered key names is deleted if it is still as shipped (as
 * a restore's CREATE EXTENSION wrote it), by its table's RemovalRule.
 */
Datum
apply_removed_row(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = TriggerDataFor(fcinfo, "apply_removed_row", BeforeInsertRow,
										   "BEFORE INSERT ... FOR EACH ROW");
	Relation	rel = trigdata->tg_relation;
	HeapTuple	tuple = trigdata->tg_trigtuple;
	bool		isnull;
	char	   *relation = TextDatumGetCString(heap_getattr(tuple, 1, RelationGetDescr(rel), &isnull));
	Datum		key = heap_getattr(tuple, 2, RelationGetDescr(rel), &isnull);
	Oid			argtypes[1] = {TEXTARRAYOID};
	const RemovalRule *rule = NULL;

	for (int i = 0; i < lengthof(RemovalRules); i++)
		if (strcmp(RemovalRules[i].relation, relation) == 0)
			rule = &RemovalRules[i];
	if (rule == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("removed_shipped_rows cannot name table \"%s\"", relation),
				 errdetail("Only journeys and journey_steps hold shipped rows.")));

	SPI_connect();
	ApplyingRemoval = true;
	PG_TRY();
	{
		if (SPI_execute_with_args(rule->sql, 1, argtypes, &key, NULL, false, 0) != SPI_OK_DELETE)
			elog(ERROR, "could not run \"%s\"", rule->sql);
	}
	PG_FINALLY();
	{
		ApplyingRemoval = false;
	}
	PG_END_TRY();
	SPI_finish();
	return PointerGetDatum(tuple);
}
