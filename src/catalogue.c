/*
 * catalogue.c
 *		The catalogue as tracking, affinity and ranking read it, cached per
 *		backend:
 *		- the category tree: for every category, the affinity keys of its
 *		  path to the root (the category, its parent, its grandparent, ...).
 *		  Every tracked event and every ranked candidate needs a path, so
 *		  the tree is read once and kept;
 *		- product facets: the category and brand of the products tracked
 *		  lately, which every tracked product event needs.
 *
 *		Statement-level triggers on personalisation.categories and
 *		personalisation.products (catalogue_changed) invalidate the table's
 *		relcache entry at commit (and in the changing backend at once, and
 *		again if it rolls back); every backend's relcache callback then marks
 *		its copy stale, and the next lookup reads again.
 */
#include "affinity.h"

#include "catalog/namespace.h"
#include "commands/trigger.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"

PG_FUNCTION_INFO_V1(catalogue_changed);

/* Products whose facets a backend keeps; past this the cache starts afresh. */
#define PRODUCT_CACHE_ENTRIES 65536

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

/* One product's facets, keyed by its affinity key and checked against its id. */
typedef struct ProductEntry
{
	uint64		key;			/* hash key: the product's affinity key */
	char	   *product_id;
	text	   *category_id;	/* NULL when the product has none */
	text	   *brand;			/* NULL when the product has none */
} ProductEntry;

static MemoryContext ProductContext = NULL;
static HTAB *ProductCache = NULL;
static Oid	ProductsRelid = InvalidOid;

/* The product cache is current while no invalidation arrived since it was started. */
static uint64 ProductInvalidations = 0;
static uint64 ProductCacheStartedAt = 0;

static SavedStatement ReadCategoriesStatement = {
	"SELECT category_id, parent_id FROM personalisation.categories",
	0, {InvalidOid}
};

/*
 * ForgetCatalogue is the relcache callback: an invalidation of the
 * categories or products table (or of every relation) makes the cached
 * tree or product facets stale.  It only counts, since a callback may run
 * in the middle of a lookup.
 */
static void
ForgetCatalogue(Datum arg, Oid relid)
{
	if (relid == InvalidOid || relid == CategoriesRelid)
		CategoryInvalidations++;
	if (relid == InvalidOid || relid == ProductsRelid)
		ProductInvalidations++;
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
 * StartProductCache replaces the product cache with an empty one, current
 * as of now.
 */
static void
StartProductCache(void)
{
	HASHCTL		ctl;

	if (ProductContext != NULL)
		MemoryContextDelete(ProductContext);
	ProductContext = AllocSetContextCreate(CacheMemoryContext, "personalisation product facets",
										   ALLOCSET_DEFAULT_SIZES);
	ctl.keysize = sizeof(uint64);
	ctl.entrysize = sizeof(ProductEntry);
	ctl.hcxt = ProductContext;
	ProductCache = hash_create("personalisation product facets", 1024, &ctl,
							   HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	ProductsRelid = get_relname_relid("products", get_namespace_oid("personalisation", false));
	ProductCacheStartedAt = ProductInvalidations;
}

/*
 * CopyText returns a copy of value (NULL for NULL) in context.
 */
static text *
CopyText(text *value, MemoryContext context)
{
	text	   *copy;

	if (value == NULL)
		return NULL;
	copy = MemoryContextAlloc(context, VARSIZE_ANY(value));
	memcpy(copy, value, VARSIZE_ANY(value));
	return copy;
}

/*
 * ReadProductRow reads a product's category and brand from the catalogue
 * table, as of now; returns false when the catalogue has no such product.
 */
static bool
ReadProductRow(text *product_id, text **category_id, text **brand)
{
	Datum		key = PointerGetDatum(product_id);
	RegProcedure eqproc = F_TEXTEQ;
	DirectTable products;
	Snapshot	snapshot = DirectSnapshot();
	bool		found;

	OpenDirectTable(&products, DIRECT_PRODUCTS, false);
	found = FetchByPrimaryKey(&products, snapshot, 1, &key, &eqproc);
	if (found)
	{
		bool		isnull;
		Datum		value;

		value = DirectRowValue(&products, "category_id", &isnull);
		*category_id = isnull ? NULL : DatumGetTextPCopy(value);
		value = DirectRowValue(&products, "brand", &isnull);
		*brand = isnull ? NULL : DatumGetTextPCopy(value);
	}
	CloseDirectTable(&products);
	UnregisterSnapshot(snapshot);
	return found;
}

/*
 * ProductFacets sets *category_id and *brand (either may be NULL) to copies
 * of the product's category and brand, from the cache or else the
 * catalogue, and returns false when the catalogue has no such product.
 * Changes to the catalogue committed by others are seen from the next
 * call on, as a new statement would see them.
 */
bool
ProductFacets(text *product_id, text **category_id, text **brand)
{
	uint64		key = AffinityTextKey(AFFINITY_PRODUCT, product_id);
	int			len = VARSIZE_ANY_EXHDR(product_id);
	ProductEntry *entry;

	AcceptInvalidationMessages();
	if (ProductCache == NULL || ProductCacheStartedAt != ProductInvalidations ||
		hash_get_num_entries(ProductCache) >= PRODUCT_CACHE_ENTRIES)
		StartProductCache();

	entry = hash_search(ProductCache, &key, HASH_FIND, NULL);
	if (entry != NULL && strlen(entry->product_id) == len &&
		memcmp(entry->product_id, VARDATA_ANY(product_id), len) == 0)
	{
		*category_id = CopyText(entry->category_id, CurrentMemoryContext);
		*brand = CopyText(entry->brand, CurrentMemoryContext);
		return true;
	}

	if (!ReadProductRow(product_id, category_id, brand))
		return false;

	/* keep what was read unless the catalogue changed while reading it */
	if (ProductCacheStartedAt == ProductInvalidations)
	{
		entry = hash_search(ProductCache, &key, HASH_ENTER, NULL);
		entry->product_id = MemoryContextStrdup(ProductContext, text_to_cstring(product_id));
		entry->category_id = CopyText(*category_id, ProductContext);
		entry->brand = CopyText(*brand, ProductContext);
	}
	return true;
}

/*
 * catalogue_changed is the statement-level trigger on the categories and
 * products tables: it has every backend's cached copy re-read once the
 * change commits (and this backend's at its next command).
 */
Datum
catalogue_changed(PG_FUNCTION_ARGS)
{
	TriggerData *trigger = (TriggerData *) fcinfo->context;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("catalogue_changed must be called as a trigger"),
				 errhint("It is attached to personalisation.categories and personalisation.products by the extension.")));

	CacheInvalidateRelcache(trigger->tg_relation);
	return PointerGetDatum(NULL);
}

/*
 * CatalogueInit registers the relcache callback that keeps the cached
 * catalogue honest.
 */
void
CatalogueInit(void)
{
	CacheRegisterRelcacheCallback(ForgetCatalogue, (Datum) 0);
}
