/*
 * refunds.c
 *		track_refund: marks a recorded order refunded, exactly once, takes it
 *		out of every count derived from orders, and ends the post-purchase
 *		runs it leaves without a standing order, in the caller's transaction.
 */
#include "util.h"

#include "complement.h"
#include "journey.h"

#include "catalog/pg_type.h"
#include "utils/builtins.h"

PG_FUNCTION_INFO_V1(track_refund);

static SavedStatement LockOrderStatement = {
	.sql = "SELECT occurred_at, refunded_at IS NOT NULL, profile_id FROM personalisation.orders"
	" WHERE order_id = $1 FOR UPDATE",
	.nargs = 1,
	.argtypes = {TEXTOID},
};

static SavedStatement MarkRefundedStatement = {
	.sql = "UPDATE personalisation.orders SET refunded_at = $2 WHERE order_id = $1",
	.nargs = 2,
	.argtypes = {TEXTOID, TIMESTAMPTZOID},
};

/*
 * track_refund records that an order was refunded or cancelled at
 * occurred_at.  The order then counts nowhere, and the buyer's
 * post-purchase runs left without a standing order end (JourneyRefund).
 * Refunding an order again changes nothing, whatever the time given;
 * concurrent refunds of one order queue on its row, so exactly one of them
 * takes it out.
 */
Datum
track_refund(PG_FUNCTION_ARGS)
{
	text	   *order_id = RequireIdentifier(fcinfo, 0, "order_id");
	TimestampTz occurred_at = RequireEventTime(fcinfo, 1);
	Datum		values[2] = {PointerGetDatum(order_id), TimestampTzGetDatum(occurred_at)};
	TimestampTz ordered_at;
	int64		profile_id;
	bool		isnull;

	RequireWritableServer(fcinfo);
	SPI_connect();
	ExecSaved(&LockOrderStatement, values, NULL, false, 1);
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_FOREIGN_KEY_VIOLATION),
				 errmsg("order \"%s\" is not recorded", text_to_cstring(order_id)),
				 errhint("Refund only orders recorded with track_purchase.")));

	ordered_at = DatumGetTimestampTz(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc,
												   1, &isnull));
	profile_id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3, &isnull));
	if (!DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull)))
	{
		if (occurred_at < ordered_at)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("refund of order \"%s\" at %s precedes the order",
							text_to_cstring(order_id), timestamptz_to_str(occurred_at)),
					 errdetail("The order was placed at %s.", timestamptz_to_str(ordered_at)),
					 errhint("Pass the time of the refund, which follows the order.")));

		UncountOrder(order_id, ordered_at);
		ExecSaved(&MarkRefundedStatement, values, NULL, false, 0);
		JourneyRefund(profile_id, occurred_at);
	}
	SPI_finish();

	PG_RETURN_VOID();
}
