/*
 * uplift_report.c
 *		uplift_report_html(): the analyst reports as one self-contained
 *		HTML page an analyst can open or mail, with inline SVG and no
 *		external assets: what the shop can claim (uplift_summary), each
 *		experiment's uplift with its 95% interval on a log scale, the funnel
 *		of every arm (exposed, converted) and the recovery per step of each
 *		abandoned-cart journey.  The page is well-formed XML as well as
 *		HTML, so a test can parse it.
 */
#include "util.h"

#include <math.h>

#include "catalog/pg_type.h"
#include "lib/stringinfo.h"
#include "utils/builtins.h"

PG_FUNCTION_INFO_V1(uplift_report_html);

/* The page's drawing sizes, in SVG user units (pixels). */
#define CHART_WIDTH 720
#define LABEL_WIDTH 260
#define ROW_HEIGHT 30
#define PLOT_WIDTH (CHART_WIDTH - LABEL_WIDTH - 20)
/* Beside a chart, right of its plot: the numbers each row draws. */
#define VALUE_WIDTH 180
/* A funnel bar at its widest; its counts are written right of it. */
#define BAR_WIDTH (PLOT_WIDTH - VALUE_WIDTH)

/* The uplift axis: a log scale between these ratios. */
#define AXIS_MIN 0.25
#define AXIS_MAX 8.0

/* One row of uplift_arms. */
typedef struct ArmRow
{
	char	   *experiment;
	char	   *metric;
	char	   *unit;
	char	   *arm;
	bool		treated;
	bool		has_step;
	int32		step;
	int64		exposed;
	int64		converted;
	bool		has_uplift;
	bool		has_interval;
	double		uplift;
	double		low;
	double		high;
} ArmRow;

static SavedStatement ArmsStatement = {
	"SELECT a.experiment, a.metric, a.unit, a.arm, a.treated, a.step, a.exposed, a.converted,"
	"       a.uplift, a.uplift_low, a.uplift_high"
	"  FROM personalisation.uplift_arms a"
	" ORDER BY a.sort, a.experiment, a.metric, a.step NULLS FIRST, a.treated DESC, a.arm",
	0, {InvalidOid}
};

static SavedStatement ClaimsStatement = {
	"SELECT s.claim, s.significant FROM personalisation.uplift_summary() s",
	0, {InvalidOid}
};

/*
 * AppendEscaped appends text with the characters HTML and XML give a
 * meaning escaped.
 */
static void
AppendEscaped(StringInfo out, const char *text)
{
	for (const char *c = text; *c; c++)
	{
		switch (*c)
		{
			case '&':
				appendStringInfoString(out, "&amp;");
				break;
			case '<':
				appendStringInfoString(out, "&lt;");
				break;
			case '>':
				appendStringInfoString(out, "&gt;");
				break;
			case '"':
				appendStringInfoString(out, "&quot;");
				break;
			case '\'':
				appendStringInfoString(out, "&#39;");
				break;
			default:
				appendStringInfoChar(out, *c);
		}
	}
}

/*
 * ReadArms reads uplift_arms into an array, in the SPI connection's
 * memory, and returns how many rows it holds.
 */
static int
ReadArms(ArmRow **rows)
{
	uint64		count;

	ExecSaved(&ArmsStatement, NULL, NULL, true, 0);
	count = SPI_processed;
	*rows = palloc(sizeof(ArmRow) * Max(count, 1));
	for (uint64 i = 0; i < count; i++)
	{
		HeapTuple	tuple = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		ArmRow	   *row = &(*rows)[i];
		bool		isnull;
		bool		low_null;
		bool		high_null;
		Datum		value;

		row->experiment = SPI_getvalue(tuple, desc, 1);
		row->metric = SPI_getvalue(tuple, desc, 2);
		row->unit = SPI_getvalue(tuple, desc, 3);
		row->arm = SPI_getvalue(tuple, desc, 4);
		row->treated = DatumGetBool(SPI_getbinval(tuple, desc, 5, &isnull));
		value = SPI_getbinval(tuple, desc, 6, &isnull);
		row->has_step = !isnull;
		row->step = isnull ? 0 : DatumGetInt32(value);
		row->exposed = DatumGetInt64(SPI_getbinval(tuple, desc, 7, &isnull));
		row->converted = DatumGetInt64(SPI_getbinval(tuple, desc, 8, &isnull));
		value = SPI_getbinval(tuple, desc, 9, &isnull);
		row->has_uplift = !isnull;
		row->uplift = isnull ? 0 : DatumGetFloat8(value);
		value = SPI_getbinval(tuple, desc, 10, &low_null);
		row->low = low_null ? 0 : DatumGetFloat8(value);
		value = SPI_getbinval(tuple, desc, 11, &high_null);
		row->high = high_null ? 0 : DatumGetFloat8(value);
		row->has_interval = !low_null && !high_null;
	}
	return (int) count;
}

/*
 * AxisX places an uplift on the log-scaled axis of the interval chart.
 */
static double
AxisX(double uplift)
{
	double		clamped = Min(Max(uplift, AXIS_MIN), AXIS_MAX);

	return LABEL_WIDTH + PLOT_WIDTH * log(clamped / AXIS_MIN) / log(AXIS_MAX / AXIS_MIN);
}

/*
 * AppendClaims appends the list of claims, significant ones marked.
 */
static void
AppendClaims(StringInfo out)
{
	ExecSaved(&ClaimsStatement, NULL, NULL, true, 0);
	appendStringInfoString(out, "<h2>What the shop can claim</h2>\n<ul class=\"claims\">\n");
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		bool		isnull;
		bool		significant = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc,
															 2, &isnull));

		appendStringInfo(out, "<li class=\"%s\">", !isnull && significant ? "significant" : "open");
		AppendEscaped(out, SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1));
		appendStringInfoString(out, "</li>\n");
	}
	appendStringInfoString(out, "</ul>\n");
}

/*
 * AppendIntervals appends the chart of every experiment's uplift: a dot
 * at the estimate, a bar over its 95% interval, a line at 1 (no effect),
 * and right of the plot the estimate and interval in numbers (an interval
 * beyond the axis is drawn to its end, with an arrow).
 */
static void
AppendIntervals(StringInfo out, ArmRow *rows, int count)
{
	int			drawn = 0;
	int			height;

	for (int i = 0; i < count; i++)
		drawn += rows[i].treated && !rows[i].has_step;
	height = ROW_HEIGHT * (drawn + 1) + 10;

	appendStringInfo(out, "<h2>Uplift against control, with its 95%% interval</h2>\n"
					 "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
					 "role=\"img\" aria-label=\"uplift intervals\">\n",
					 CHART_WIDTH + VALUE_WIDTH, height);
	appendStringInfo(out, "<line x1=\"%.1f\" y1=\"0\" x2=\"%.1f\" y2=\"%d\" class=\"one\"/>\n",
					 AxisX(1.0), AxisX(1.0), height - ROW_HEIGHT);
	for (double tick = AXIS_MIN; tick <= AXIS_MAX; tick *= 2)
		appendStringInfo(out, "<text x=\"%.1f\" y=\"%d\" class=\"tick\" text-anchor=\"middle\">%gx</text>\n",
						 AxisX(tick), height - 10, tick);
	drawn = 0;
	for (int i = 0; i < count; i++)
	{
		ArmRow	   *row = &rows[i];
		int			y = ROW_HEIGHT * drawn + ROW_HEIGHT / 2;

		if (!row->treated || row->has_step)
			continue;
		appendStringInfo(out, "<text x=\"0\" y=\"%d\" class=\"label\">", y + 5);
		AppendEscaped(out, row->experiment);
		appendStringInfoString(out, ": ");
		AppendEscaped(out, row->metric);
		appendStringInfoString(out, "</text>\n");
		if (row->has_interval)
		{
			appendStringInfo(out, "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" class=\"interval\"/>\n",
							 AxisX(row->low), y, AxisX(row->high), y);
			if (row->low < AXIS_MIN)
				appendStringInfo(out, "<path d=\"M %.1f %d l 8 -6 v 12 z\" class=\"estimate\"/>\n",
								 AxisX(AXIS_MIN) - 8, y);
			if (row->high > AXIS_MAX)
				appendStringInfo(out, "<path d=\"M %.1f %d l -8 -6 v 12 z\" class=\"estimate\"/>\n",
								 AxisX(AXIS_MAX) + 8, y);
		}
		if (row->has_uplift)
		{
			appendStringInfo(out, "<circle cx=\"%.1f\" cy=\"%d\" r=\"5\" class=\"estimate\">"
							 "<title>%.2fx</title></circle>\n", AxisX(row->uplift), y, row->uplift);
			appendStringInfo(out, "<text x=\"%d\" y=\"%d\" class=\"value\">%.2fx", CHART_WIDTH, y + 5,
							 row->uplift);
			if (row->has_interval)
				appendStringInfo(out, " (95%% %.2f-%.2f)", row->low, row->high);
			appendStringInfoString(out, "</text>\n");
		}
		else
			appendStringInfo(out, "<text x=\"%d\" y=\"%d\" class=\"none\">no uplift yet</text>\n",
							 LABEL_WIDTH, y + 5);
		drawn++;
	}
	appendStringInfoString(out, "</svg>\n");
}

/*
 * AppendBars appends one chart of horizontal bars for the rows first to
 * last - 1 of one experiment: its arms as a whole (steps false), or its
 * step rows (steps true).  Each bar is the row's exposed units, the
 * largest drawn full width, with its converted share drawn over it; the
 * counts are written right of the widest bar.
 */
static void
AppendBars(StringInfo out, ArmRow *rows, int first, int last, bool steps)
{
	int			bars = 0;
	int64		widest = 1;
	int			y = 0;

	for (int i = first; i < last; i++)
		if (rows[i].has_step == steps)
		{
			bars++;
			widest = Max(widest, rows[i].exposed);
		}
	if (bars == 0)
		return;
	if (steps)
		appendStringInfoString(out, "<h4>Recovery per step (last touch)</h4>\n");
	appendStringInfo(out, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
					 "role=\"img\" aria-label=\"%s\">\n",
					 CHART_WIDTH, ROW_HEIGHT * bars, steps ? "recovery per step" : "funnel per arm");
	for (int i = first; i < last; i++)
	{
		ArmRow	   *row = &rows[i];
		double		rate = row->exposed > 0 ? (double) row->converted / row->exposed : 0.0;
		double		exposed_width = (double) BAR_WIDTH * row->exposed / widest;

		if (row->has_step != steps)
			continue;
		appendStringInfo(out, "<text x=\"0\" y=\"%d\" class=\"label\">", y + 19);
		if (steps)
			appendStringInfo(out, "step %d, ", row->step);
		AppendEscaped(out, row->arm);
		appendStringInfo(out, "</text>\n<rect x=\"%d\" y=\"%d\" width=\"%.1f\" height=\"20\" class=\"exposed\"/>\n",
						 LABEL_WIDTH, y + 5, exposed_width);
		appendStringInfo(out, "<rect x=\"%d\" y=\"%d\" width=\"%.1f\" height=\"20\" class=\"%s\"/>\n",
						 LABEL_WIDTH, y + 5, exposed_width * rate, row->treated ? "treated" : "control");
		appendStringInfo(out, "<text x=\"%d\" y=\"%d\" class=\"count\">" INT64_FORMAT " of " INT64_FORMAT
						 " (%.1f%%)</text>\n", LABEL_WIDTH + BAR_WIDTH + 10, y + 20, row->converted, row->exposed,
						 100.0 * rate);
		y += ROW_HEIGHT;
	}
	appendStringInfoString(out, "</svg>\n");
}

/*
 * uplift_report_html() returns the uplift report as one HTML page.
 */
Datum
uplift_report_html(PG_FUNCTION_ARGS)
{
	StringInfoData out;
	ArmRow	   *rows;
	int			count;

	initStringInfo(&out);
	SPI_connect();
	appendStringInfoString(&out,
						   "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\"/>\n"
						   "<title>Uplift report</title>\n<style>\n"
						   "body { font-family: sans-serif; margin: 2em; color: #222; }\n"
						   "li.significant { color: #05612b; } li.open { color: #7a5b00; }\n"
						   "svg { display: block; margin: 0.5em 0 1.5em; }\n"
						   ".label, .count, .tick, .none, .value { font-size: 13px; fill: #222; }\n"
						   ".exposed { fill: #dde3ea; } .treated { fill: #2f7ed8; } .control { fill: #8d99a6; }\n"
						   ".interval { stroke: #2f7ed8; stroke-width: 4; } .estimate { fill: #0b3d75; }\n"
						   ".one { stroke: #c0392b; stroke-dasharray: 4 3; }\n"
						   "</style>\n</head>\n<body>\n<h1>Uplift report</h1>\n");
	appendStringInfo(&out, "<p>Generated %s. Every experiment runs against a sticky holdout; "
					 "the interval is the 95%% Katz log interval of the ratio of conversion rates "
					 "(docs/measurement.md).</p>\n",
					 timestamptz_to_str(GetCurrentTransactionStartTimestamp()));
	AppendClaims(&out);
	count = ReadArms(&rows);
	AppendIntervals(&out, rows, count);

	appendStringInfoString(&out, "<h2>Funnel per arm</h2>\n");
	for (int first = 0, last; first < count; first = last)
	{
		for (last = first + 1; last < count; last++)
			if (strcmp(rows[last].experiment, rows[first].experiment) != 0 ||
				strcmp(rows[last].metric, rows[first].metric) != 0)
				break;
		appendStringInfoString(&out, "<h3>");
		AppendEscaped(&out, rows[first].experiment);
		appendStringInfoString(&out, ": ");
		AppendEscaped(&out, rows[first].metric);
		appendStringInfoString(&out, " (");
		AppendEscaped(&out, rows[first].unit);
		appendStringInfoString(&out, " exposed, and converted)</h3>\n");
		AppendBars(&out, rows, first, last, false);
		AppendBars(&out, rows, first, last, true);
	}
	appendStringInfoString(&out, "</body>\n</html>\n");
	SPI_finish();
	PG_RETURN_TEXT_P(cstring_to_text(out.data));
}
