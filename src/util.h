/*
 * util.h
 *		What every part uses: the bounds on a shop's input, the saved-statement
 *		cache, the argument checks of SQL-callable functions, advisory locks,
 *		text helpers and the one relcache callback (util.c).
 */
#ifndef PERSONALISATION_UTIL_H
#define PERSONALISATION_UTIL_H

#include "postgres.h"

#include "executor/spi.h"
#include "fmgr.h"
#include "utils/guc.h"
#include "utils/inval.h"
#include "utils/jsonb.h"
#include "utils/timestamp.h"

#include "compat.h"

/* Settings read by more than one part (defined by UtilInit) */
extern int	EventRetentionMinutes;
extern int	MaxClockSkewSeconds;

/* Longest identifier (session, product, order, event id) accepted, in bytes. */
#define MAX_IDENTIFIER_BYTES 256

/*
 * Bounds on the numbers a shop passes (docs/reference.md, "Input checks"),
 * which no real shop reaches and which keep every total, report and
 * message payload a number of a few dozen digits: a quantity of an order
 * line or cart line is 1 to MAX_QUANTITY; a price (catalogue, order line,
 * journey step amounts) is 0 or more, below 10^MAX_PRICE_DIGITS, with at
 * most MAX_PRICE_SCALE decimal places; a supply, a replenishment period
 * and every journey interval is at most MAX_SUPPLY_DAYS days.  The schema's
 * CHECK constraints (sql/install/schema.sql, sql/install/journeys.sql) say the same.
 */
#define MAX_QUANTITY 1000000
#define MAX_PRICE_DIGITS 12
#define MAX_PRICE_SCALE 4
#define MAX_SUPPLY_DAYS 3650

/* Most parameters any saved statement takes. */
#define SAVED_STATEMENT_MAX_ARGS 10

/*
 * A statement prepared once per backend on first use and kept across
 * transactions; the plan cache revalidates it when the tables change.
 * cursor_options (CURSOR_OPT_*) shape its plan: CURSOR_OPT_FAST_PLAN for a
 * statement read through OpenSavedCursor and stopped early,
 * CURSOR_OPT_GENERIC_PLAN for a hot statement whose best plan does not
 * depend on its arguments, so that it is never planned again per call.
 */
typedef struct SavedStatement
{
	const char *sql;
	int			nargs;
	Oid			argtypes[SAVED_STATEMENT_MAX_ARGS];
	SPIPlanPtr	plan;
	int			cursor_options;
} SavedStatement;

extern int	ExecSaved(SavedStatement *statement, Datum *values, const char *nulls,
					  bool read_only, long count);
extern Portal OpenSavedCursor(SavedStatement *statement, Datum *values, const char *nulls);
extern int	ExecPinned(const char *sql, int nargs, Oid *argtypes, Datum *values, const char *nulls,
					   bool read_only, long count);
extern Portal OpenPinnedCursor(const char *sql, int nargs, Oid *argtypes, Datum *values, bool read_only);
extern int	PinSearchPath(void);
extern void UnpinSearchPath(int level);
extern bool TextEqual(text *left, text *right);
extern char *ClipForMessage(const char *value);
extern int	TextCompare(text *left, text *right);
extern void CheckIdentifierText(text *value, const char *argname);
extern text *RequireIdentifier(FunctionCallInfo fcinfo, int argno, const char *argname);
extern text *OptionalIdentifier(FunctionCallInfo fcinfo, int argno, const char *argname);
extern TimestampTz RequireEventTime(FunctionCallInfo fcinfo, int argno);
extern TimestampTz RequireInstant(FunctionCallInfo fcinfo, int argno, const char *argname);
extern int32 RequirePositiveQuantity(FunctionCallInfo fcinfo, int argno);
extern Jsonb *JsonArgument(FunctionCallInfo fcinfo, int argno, const char *argname, const char *hint);
extern TimestampTz EventRetentionCutoff(TimestampTz now);

extern int32 HashText(text *value);
extern void RequireWritableServer(FunctionCallInfo fcinfo);
extern Datum IntervalFromUsecs(int64 usecs);
extern Oid	ExtensionSchemaRelid(const char *name);
extern void RegisterRelcacheListener(RelcacheCallbackFunction listener);
extern void UtilInit(void);

#endif							/* PERSONALISATION_UTIL_H */
