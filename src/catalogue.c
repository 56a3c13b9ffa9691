/*
 * catalogue.c
 *		The category tree as affinity and ranking read it: a per-backend
 *		cache giving, for every category, the affinity keys of its path to
 *		the root (the category, its parent, its grandparent, ...).  Every
 *		tracked event and every ranked candidate needs a path, so the tree is
 *		read once and kept.
 *
 *		A statement-level trigger on personalisation.categories
 *		(category_tree_changed) invalidates the table's relcache entry at
 *		commit; every backend's relcache callback then marks its copy stale,
 *		and the next lookup reads the tree again.
 */
#include "affinity.h"

#include "catalog/namespace.h"
#include "commands/trigger.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"

PG_FUNCTION_INFO_V1(category_tree_changed);

/* One category: its key, its parent's key and, once asked for, its path. */
typedef struct CategoryNode
{
	uint64		key;			/* hash key: the category's affinity key */
	uint64		parent;			/* the parent's key, 0 for a root */
	int			depth;			/* entries of path in use, 0 until computed */
	uint64		path[MAX_CATEGORY_DEPTH];
} CategoryNode;

static MemoryContext CategoryContext = NULL;
static HTAB *CategoryTree = NULL;
static Oid	CategoriesRelid = InvalidOid;

/* The tree is current while no invalidation arrived since it was read. */
static uint64 CategoryInvalidations = 0;
static uint64 CategoryTreeReadAt = 0;

static SavedStatement ReadCategoriesStatement = {
	"SELECT category_id, parent_id FROM personalisation.categories",
	0, {InvalidOid}
};

/*
 * ForgetCategoryTree is the relcache callback: an invalidation of the
 * categories table (or of every relation) makes the cached tree stale.  It
 * only counts, since a callback may run in the middle of a lookup.
 */
static void
ForgetCategoryTree(Datum arg, Oid relid)
{
	if (relid == InvalidOid || relid == CategoriesRelid)
		CategoryInvalidations++;
}

/*
 * ReadCategoryTree reads every category and its parent into a new hash
 * table, replacing the old one only once the read has succeeded.  Needs an
 * SPI connection.
 */
static void
ReadCategoryTree(void)
{
	uint64		invalidations = CategoryInvalidations;
	MemoryContext context;
	HTAB	   *tree;
	HASHCTL		ctl;
	SPITupleTable *rows;
	uint64		count;

	context = AllocSetContextCreate(CurrentMemoryContext, "personalisation category tree",
									ALLOCSET_DEFAULT_SIZES);
	ctl.keysize = sizeof(uint64);
	ctl.entrysize = sizeof(CategoryNode);
	ctl.hcxt = context;
	tree = hash_create("personalisation category tree", 1024, &ctl,
					   HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);

	CategoriesRelid = get_relname_relid("categories", get_namespace_oid("personalisation", false));
	ExecSaved(&ReadCategoriesStatement, NULL, NULL, true, 0);
	rows = SPI_tuptable;
	count = SPI_processed;
	for (uint64 i = 0; i < count; i++)
	{
		bool		isnull;
		Datum		id = SPI_getbinval(rows->vals[i], rows->tupdesc, 1, &isnull);
		Datum		parent = SPI_getbinval(rows->vals[i], rows->tupdesc, 2, &isnull);
		uint64		key = AffinityTextKey(AFFINITY_CATEGORY, DatumGetTextPP(id));
		CategoryNode *node = hash_search(tree, &key, HASH_ENTER, NULL);

		node->parent = isnull ? 0 : AffinityTextKey(AFFINITY_CATEGORY, DatumGetTextPP(parent));
		node->depth = 0;
	}
	SPI_freetuptable(rows);

	MemoryContextSetParent(context, CacheMemoryContext);
	if (CategoryContext != NULL)
		MemoryContextDelete(CategoryContext);
	CategoryContext = context;
	CategoryTree = tree;
	CategoryTreeReadAt = invalidations;
}

/*
 * ComputePath fills in a category's path by following parents, stopping at
 * a root, at a parent missing from the catalogue, at MAX_CATEGORY_DEPTH, or
 * where the path would run into itself (a cycle in the shop's tree).
 */
static void
ComputePath(CategoryNode *node)
{
	uint64		key = node->key;
	int			depth = 0;

	while (key != 0 && depth < MAX_CATEGORY_DEPTH)
	{
		CategoryNode *step;
		bool		cycle = false;

		for (int i = 0; i < depth; i++)
			cycle |= node->path[i] == key;
		if (cycle)
			break;
		node->path[depth++] = key;
		step = hash_search(CategoryTree, &key, HASH_FIND, NULL);
		if (step == NULL)
			break;
		key = step->parent;
	}
	node->depth = depth;
}

/*
 * CategoryPath writes the keys of the category's path to the root into
 * path (at least MAX_CATEGORY_DEPTH long), the category itself first, and
 * returns its length: 0 for a category the catalogue does not hold.  The
 * path is copied out, so a later re-read of the tree cannot pull it from
 * under the caller.  Needs an SPI connection, and may replace SPI_tuptable.
 */
int
CategoryPath(uint64 category_key, uint64 *path)
{
	CategoryNode *node;

	if (CategoryTree == NULL || CategoryTreeReadAt != CategoryInvalidations)
		ReadCategoryTree();

	node = hash_search(CategoryTree, &category_key, HASH_FIND, NULL);
	if (node == NULL)
		return 0;
	if (node->depth == 0)
		ComputePath(node);
	memcpy(path, node->path, sizeof(uint64) * node->depth);
	return node->depth;
}

/*
 * category_tree_changed is the statement-level trigger on the categories
 * table: it has every backend's cached tree re-read once the change
 * commits (and this backend's at its next command).
 */
Datum
category_tree_changed(PG_FUNCTION_ARGS)
{
	TriggerData *trigger = (TriggerData *) fcinfo->context;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("category_tree_changed must be called as a trigger"),
				 errhint("It is attached to personalisation.categories by the extension.")));

	CacheInvalidateRelcache(trigger->tg_relation);
	return PointerGetDatum(NULL);
}

/*
 * CatalogueInit registers the relcache callback that keeps the cached tree
 * honest.
 */
void
CatalogueInit(void)
{
	CacheRegisterRelcacheCallback(ForgetCategoryTree, (Datum) 0);
}
