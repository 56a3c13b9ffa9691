/*
 * measurement.c
 *		The statistics of the analyst reports: for an arm of an experiment
 *		against its control, the uplift (ratio of conversion rates) with its
 *		95% interval, a p-value, and the smallest uplift the sample could
 *		detect; the sentence uplift_summary() states a result in; and the
 *		attribution windows of the ranking and post-purchase reports.  Every
 *		function here reads no table: the report views call them per row.
 *
 *		Method (docs/measurement.md):
 *		  uplift    = (x1 / n1) / (x0 / n0), treatment 1, control 0
 *		  interval  = uplift * exp(+-1.959964 * se), the Katz log interval,
 *		              se = sqrt(1/x1 - 1/n1 + 1/x0 - 1/n0)
 *		  p-value   = two-sided two-proportion z-test with the pooled rate
 *		  detectable uplift = 1 + (1.959964 + 0.841621) *
 *		              sqrt(p0 (1 - p0) (1/n1 + 1/n0)) / p0
 *		              (95% confidence, 80% power, at the control rate p0)
 */
#include "measurement.h"

#include <math.h>

#include "access/htup_details.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "utils/builtins.h"

/* Settings of this part (defined by MeasurementInit) */
int			RankingAttributionWindowMinutes = 24 * 60;
int			RepeatOrderWindowMinutes = 30 * 24 * 60;

PG_FUNCTION_INFO_V1(uplift_test);
PG_FUNCTION_INFO_V1(uplift_claim);
PG_FUNCTION_INFO_V1(ranking_attribution_window);
PG_FUNCTION_INFO_V1(repeat_order_window);

/* The standard normal quantiles of a two-sided 95% test and of 80% power. */
#define Z_CONFIDENCE 1.959964
#define Z_POWER 0.841621

/* The result columns of uplift_test, in order. */
enum
{
	UPLIFT,
	UPLIFT_LOW,
	UPLIFT_HIGH,
	P_VALUE,
	MIN_DETECTABLE_UPLIFT,
	SAMPLE_HINT,
	UPLIFT_TEST_COLUMNS
};

/*
 * RequireCount reads a unit count argument, refusing a negative one; NULL
 * (an arm without a row) reads as 0.
 */
static int64
RequireCount(FunctionCallInfo fcinfo, int argno, const char *argname)
{
	int64		count;

	if (PG_ARGISNULL(argno))
		return 0;
	count = PG_GETARG_INT64(argno);
	if (count < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must not be negative", argname),
				 errdetail("The value given is " INT64_FORMAT ".", count),
				 errhint("Pass a count of units, 0 or more.")));
	return count;
}

/*
 * RequireConverted checks that an arm's converted units are at most its
 * exposed units.
 */
static void
RequireConverted(int64 converted, int64 exposed, const char *argname)
{
	if (converted > exposed)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s exceeds the units exposed", argname),
				 errdetail("The arm converted " INT64_FORMAT " of " INT64_FORMAT " units.",
						   converted, exposed),
				 errhint("Pass converted units counted among the exposed ones.")));
}

/*
 * uplift_test(exposed, converted, control_exposed, control_converted)
 * compares an arm's conversion rate with its control's: the uplift (their
 * ratio) with its 95% Katz log interval, the two-sided p-value of the
 * two-proportion z-test, the smallest uplift this sample would detect
 * with 80% power, and, while the result is not significant, a hint saying
 * why.  A column that the counts do not define is NULL: the uplift without
 * a converted control unit, the interval without a converted unit in
 * either arm, the p-value when every unit or none converted.
 */
Datum
uplift_test(PG_FUNCTION_ARGS)
{
	int64		n1 = RequireCount(fcinfo, 0, "exposed");
	int64		x1 = RequireCount(fcinfo, 1, "converted");
	int64		n0 = RequireCount(fcinfo, 2, "control_exposed");
	int64		x0 = RequireCount(fcinfo, 3, "control_converted");
	Datum		values[UPLIFT_TEST_COLUMNS];
	bool		nulls[UPLIFT_TEST_COLUMNS];
	TupleDesc	tupdesc;
	const char *hint = NULL;

	RequireConverted(x1, n1, "converted");
	RequireConverted(x0, n0, "control_converted");
	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "uplift_test must return a record");
	memset(values, 0, sizeof(values));
	memset(nulls, true, sizeof(nulls));

	if (n1 == 0 || n0 == 0)
		hint = "No units are exposed in one of the arms yet.";
	else
	{
		double		p1 = (double) x1 / n1;
		double		p0 = (double) x0 / n0;
		double		pooled = (double) (x1 + x0) / (n1 + n0);
		double		inverse_n = 1.0 / n1 + 1.0 / n0;
		bool		significant = false;

		if (x0 > 0)
		{
			values[UPLIFT] = Float8GetDatum(p1 / p0);
			nulls[UPLIFT] = false;
		}
		if (x0 > 0 && x1 > 0)
		{
			double		se = sqrt(1.0 / x1 - 1.0 / n1 + 1.0 / x0 - 1.0 / n0);
			double		low = p1 / p0 * exp(-Z_CONFIDENCE * se);
			double		high = p1 / p0 * exp(Z_CONFIDENCE * se);

			values[UPLIFT_LOW] = Float8GetDatum(low);
			values[UPLIFT_HIGH] = Float8GetDatum(high);
			nulls[UPLIFT_LOW] = nulls[UPLIFT_HIGH] = false;
			significant = low > 1.0 || high < 1.0;
		}
		if (pooled > 0.0 && pooled < 1.0)
		{
			double		z = (p1 - p0) / sqrt(pooled * (1.0 - pooled) * inverse_n);

			values[P_VALUE] = Float8GetDatum(erfc(fabs(z) / M_SQRT2));
			nulls[P_VALUE] = false;
		}
		if (p0 > 0.0 && p0 < 1.0)
		{
			values[MIN_DETECTABLE_UPLIFT] =
				Float8GetDatum(1.0 + (Z_CONFIDENCE + Z_POWER) * sqrt(p0 * (1.0 - p0) * inverse_n) / p0);
			nulls[MIN_DETECTABLE_UPLIFT] = false;
		}
		if (x0 == 0 || x1 == 0)
			hint = "An arm has no converted unit yet: there is no interval until both have some.";
		else if (!significant && !nulls[MIN_DETECTABLE_UPLIFT])
			hint = psprintf("Not significant: at this sample only an uplift above %.2fx would be "
							"detected with 80%% power; both arms need more units to detect a smaller one.",
							DatumGetFloat8(values[MIN_DETECTABLE_UPLIFT]));
		else if (!significant)
			hint = "Not significant: every control unit converted.";
	}
	if (hint != NULL)
	{
		values[SAMPLE_HINT] = CStringGetTextDatum(hint);
		nulls[SAMPLE_HINT] = false;
	}
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(tupdesc), values, nulls)));
}

/*
 * AppendGrouped appends a count with a comma between each group of three
 * digits, as a shop's report would print it.
 */
static void
AppendGrouped(StringInfo out, int64 value)
{
	char		digits[32];
	int			length = snprintf(digits, sizeof(digits), INT64_FORMAT, value);
	int			start = digits[0] == '-' ? 1 : 0;

	for (int i = 0; i < length; i++)
	{
		if (i > start && (length - i) % 3 == 0)
			appendStringInfoChar(out, ',');
		appendStringInfoChar(out, digits[i]);
	}
}

/*
 * uplift_claim(experiment, metric, units, unit_name, uplift, uplift_low,
 * uplift_high, p_value) says in one line what a shop can claim from an
 * experiment, for example "ranking: 1.42x conversion (95% 1.18-1.71),
 * 30,214 visitors, significant".  A result whose interval holds 1 is "not
 * significant"; one without an uplift says there is none to claim yet.
 * The unit name is a plural; one unit drops its final s ("1 customer").
 */
Datum
uplift_claim(PG_FUNCTION_ARGS)
{
	StringInfoData out;
	const char *experiment = PG_ARGISNULL(0) ? "experiment" : text_to_cstring(PG_GETARG_TEXT_PP(0));
	const char *metric = PG_ARGISNULL(1) ? "conversion" : text_to_cstring(PG_GETARG_TEXT_PP(1));
	int64		units = PG_ARGISNULL(2) ? 0 : PG_GETARG_INT64(2);
	const char *unit_name = PG_ARGISNULL(3) ? "units" : text_to_cstring(PG_GETARG_TEXT_PP(3));

	initStringInfo(&out);
	appendStringInfo(&out, "%s: ", experiment);
	if (PG_ARGISNULL(4))
		appendStringInfo(&out, "no %s uplift to claim yet", metric);
	else
	{
		appendStringInfo(&out, "%.2fx %s", PG_GETARG_FLOAT8(4), metric);
		if (!PG_ARGISNULL(5) && !PG_ARGISNULL(6))
			appendStringInfo(&out, " (95%% %.2f-%.2f)", PG_GETARG_FLOAT8(5), PG_GETARG_FLOAT8(6));
	}
	appendStringInfoString(&out, ", ");
	AppendGrouped(&out, units);
	if (units == 1 && strlen(unit_name) > 1 && unit_name[strlen(unit_name) - 1] == 's')
		appendStringInfo(&out, " %.*s", (int) strlen(unit_name) - 1, unit_name);
	else
		appendStringInfo(&out, " %s", unit_name);
	if (!PG_ARGISNULL(4) && !PG_ARGISNULL(5) && !PG_ARGISNULL(6))
	{
		bool		significant = PG_GETARG_FLOAT8(5) > 1.0 || PG_GETARG_FLOAT8(6) < 1.0;

		appendStringInfoString(&out, significant ? ", significant" : ", not significant");
		if (!PG_ARGISNULL(7))
			appendStringInfo(&out, " (p = %.3g)", PG_GETARG_FLOAT8(7));
	}
	PG_RETURN_TEXT_P(cstring_to_text(out.data));
}

/*
 * ranking_attribution_window returns personalisation.ranking_attribution_window
 * as an interval: how long after its first ranking a session's order counts
 * as its conversion.
 */
Datum
ranking_attribution_window(PG_FUNCTION_ARGS)
{
	PG_RETURN_DATUM(IntervalFromUsecs((int64) RankingAttributionWindowMinutes * USECS_PER_MINUTE));
}

/*
 * repeat_order_window returns personalisation.repeat_order_window as an
 * interval: how long after the order that started a post-purchase run a
 * further order counts as a repeat order.
 */
Datum
repeat_order_window(PG_FUNCTION_ARGS)
{
	PG_RETURN_DATUM(IntervalFromUsecs((int64) RepeatOrderWindowMinutes * USECS_PER_MINUTE));
}

/*
 * MeasurementInit defines the settings of this part.
 */
void
MeasurementInit(void)
{
	DefineCustomIntVariable("personalisation.ranking_attribution_window",
							"How long after its first ranking an order placed in a session counts as the session's conversion.",
							"The ranking_holdout report reads it; changing it changes the report, not what was recorded.",
							&RankingAttributionWindowMinutes,
							24 * 60, 1, 365 * 24 * 60,
							PGC_SUSET, GUC_UNIT_MIN,
							NULL, NULL, NULL);

	DefineCustomIntVariable("personalisation.repeat_order_window",
							"How long after the order that started a post-purchase run a further order counts as a repeat order.",
							"The post_purchase_order_value report reads it.",
							&RepeatOrderWindowMinutes,
							30 * 24 * 60, 1, 365 * 24 * 60,
							PGC_SUSET, GUC_UNIT_MIN,
							NULL, NULL, NULL);
}
