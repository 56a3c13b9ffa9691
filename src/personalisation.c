/*
 * personalisation.c
 *		Module entry point: _PG_init, which reads as the table of contents
 *		of the extension's parts, and the report of whether the library was
 *		preloaded.
 */
#include "util.h"

#include "catalogue.h"
#include "complement.h"
#include "direct.h"
#include "launcher.h"
#include "lifecycle.h"
#include "measurement.h"
#include "outbox.h"
#include "partitions.h"
#include "payload.h"
#include "purchases.h"
#include "rank.h"
#include "worker.h"

#include "miscadmin.h"

PG_MODULE_MAGIC;

static bool PersonalisationPreloaded = false;

void		_PG_init(void);

PG_FUNCTION_INFO_V1(preloaded);

/*
 * _PG_init has each part define its settings and hooks, then reserves the
 * personalisation prefix so that a misspelt setting is reported instead of
 * ignored.  It remembers whether it runs from shared_preload_libraries,
 * which the parts that need shared memory or a background worker require.
 */
void
_PG_init(void)
{
	PersonalisationPreloaded = process_shared_preload_libraries_in_progress;

	/* input checks and the event window */
	UtilInit();
	/* tracking: the catalogue cache, the raw-access layer, event partitions, orders */
	CatalogueInit();
	DirectInit();
	PartitionsInit();
	PurchasesInit();
	/* who a visitor is */
	IdentityInit();
	/* what they like, and the ranking built on it */
	AffinityInit();
	RankInit();
	/* what is bought together */
	ComplementInit();
	RecommendInit();
	/* journeys, their messages and the outbox */
	JourneyInit();
	JourneyStepsInit();
	PayloadInit();
	OutboxInit();
	/* proof of uplift */
	MeasurementInit();
	/* the background worker, its launcher, and DROP DATABASE / DROP EXTENSION */
	WorkerInit();
	LauncherInit();
	LifecycleInit();

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
