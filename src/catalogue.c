/*
 * catalogue.c
 *		The catalogue as tracking, affinity and ranking read it, cached per
 *		backend:
 *		- the category tree: for every category, the affinity keys of its
 *		  path to the root (the category, its parent, its grandparent, ...).
 *		  Every tracked event and every ranked candidate needs a path, so
 *		  the tree is read once and kept;
 *		- product facts: the category, brand, stock and popularity of the
 *		  products tracked or ranked lately, which every tracked product
 *		  event and every ranked candidate needs.
 *
 *		Statement-level triggers on personalisation.categories, products
 *		and product_popularity (catalogue_changed) invalidate the table's
 *		relcache entry at commit (and in the changing backend at once, and
 *		again if it rolls back); every backend's relcache callback then marks
 *		its copy stale, and the next lookup reads again.  Like PostgreSQL's
 *		own catalog caches, the copies hold the latest committed rows, not
 *		those of the caller's snapshot.
 */
#include "catalogue.h"

#include "direct.h"

#include "access/xact.h"
#include "catalog/namespace.h"
#include "commands/trigger.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"

/* Settings of this part (defined by CatalogueInit) */
int			ProductCacheSize = 65536;

PG_FUNCTION_INFO_V1(catalogue_changed);

/* One category: its key, its parent's key and, once asked for, its path. */
typedef struct CategoryNode
{
	uint64		key;			/* hash key: the category's affinity key */
	uint64		parent;			/* the parent's key, 0 for a root */
	char	   *category_id;	/* the category's id, for explanations */
	int			depth;			/* entries of path in use, 0 until computed */
	uint64		path[MAX_CATEGORY_DEPTH];
} CategoryNode;

static MemoryContext CategoryContext = NULL;
static HTAB *CategoryTree = NULL;
static Oid	CategoriesRelid = InvalidOid;

/* The tree is current while no invalidation arrived since it was read. */
static uint64 CategoryInvalidations = 0;
static uint64 CategoryTreeReadAt = 0;

/* One product's facts, keyed by its affinity key and checked against its id. */
typedef struct ProductEntry
{
	uint64		key;			/* hash key: the product's affinity key */
	char	   *product_id;
	ProductFacts facts;			/* texts allocated in ProductContext */
} ProductEntry;

static MemoryContext ProductContext = NULL;
static HTAB *ProductCache = NULL;
static Oid	ProductsRelid = InvalidOid;
static Oid	PopularityRelid = InvalidOid;

/* The product cache is current while no invalidation arrived since it was started. */
static uint64 ProductInvalidations = 0;
static uint64 ProductCacheStartedAt = 0;

static SavedStatement ReadCategoriesStatement = {
	"SELECT category_id, parent_id FROM personalisation.categories",
	0, {InvalidOid}
};

/*
 * ForgetCatalogue is the relcache callback: an invalidation of the
 * categories, products or product_popularity table (or of every relation)
 * makes the cached tree or product facts stale.  It only counts, since a
 * callback may run in the middle of a lookup.
 */
static void
ForgetCatalogue(Datum arg, Oid relid)
{
	if (relid == InvalidOid || relid == CategoriesRelid)
		CategoryInvalidations++;
	if (relid == InvalidOid || relid == ProductsRelid || relid == PopularityRelid)
		ProductInvalidations++;
}

/*
 * CreateKeyedTable creates a hash table in context whose entries, of
 * entrysize bytes, start with their uint64 key.
 */
static HTAB *
CreateKeyedTable(const char *name, Size entrysize, MemoryContext context)
{
	HASHCTL		ctl;

	ctl.keysize = sizeof(uint64);
	ctl.entrysize = entrysize;
	ctl.hcxt = context;
	return hash_create(name, 1024, &ctl, HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
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
	SPITupleTable *rows;
	uint64		count;

	context = AllocSetContextCreate(CurrentMemoryContext, "personalisation category tree",
									ALLOCSET_DEFAULT_SIZES);
	tree = CreateKeyedTable("personalisation category tree", sizeof(CategoryNode), context);

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
		node->category_id = MemoryContextStrdup(context, TextDatumGetCString(id));
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
 * CategoryName returns a copy of the id of the category with this key, or
 * NULL when the catalogue does not hold it, so that an explanation can say
 * from which category on a path an affinity came.  Needs an SPI connection,
 * and may replace SPI_tuptable.
 */
char *
CategoryName(uint64 category_key)
{
	CategoryNode *node;

	if (CategoryTree == NULL || CategoryTreeReadAt != CategoryInvalidations)
		ReadCategoryTree();
	node = hash_search(CategoryTree, &category_key, HASH_FIND, NULL);
	return node == NULL ? NULL : pstrdup(node->category_id);
}

/*
 * StartProductCache replaces the product cache with an empty one, current
 * as of now.
 */
static void
StartProductCache(void)
{
	Oid			namespace = get_namespace_oid("personalisation", false);

	if (ProductContext != NULL)
		MemoryContextDelete(ProductContext);
	ProductContext = AllocSetContextCreate(CacheMemoryContext, "personalisation product facts",
										   ALLOCSET_DEFAULT_SIZES);
	ProductCache = CreateKeyedTable("personalisation product facts", sizeof(ProductEntry),
									ProductContext);
	ProductsRelid = get_relname_relid("products", namespace);
	PopularityRelid = get_relname_relid("product_popularity", namespace);
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
 * CopyFacts copies facts into to, its texts into context.
 */
static void
CopyFacts(const ProductFacts *from, ProductFacts *to, MemoryContext context)
{
	*to = *from;
	to->category_id = CopyText(from->category_id, context);
	to->brand = CopyText(from->brand, context);
}

/*
 * ReadProductRows reads a product's facts from the products and
 * product_popularity tables as snapshot sees them; returns false when the
 * catalogue has no such product.
 */
static bool
ReadProductRows(text *product_id, Snapshot snapshot, ProductFacts *facts)
{
	Datum		key = PointerGetDatum(product_id);
	RegProcedure eqproc = F_TEXTEQ;
	DirectTable table;
	bool		found;
	bool		isnull;
	Datum		value;

	memset(facts, 0, sizeof(ProductFacts));
	OpenDirectTable(&table, DIRECT_PRODUCTS, false);
	found = FetchByPrimaryKey(&table, snapshot, 1, &key, &eqproc);
	if (found)
	{
		value = DirectRowValue(&table, "category_id", &isnull);
		facts->category_id = isnull ? NULL : DatumGetTextPCopy(value);
		value = DirectRowValue(&table, "brand", &isnull);
		facts->brand = isnull ? NULL : DatumGetTextPCopy(value);
		value = DirectRowValue(&table, "in_stock", &isnull);
		facts->in_stock = !isnull && DatumGetBool(value);
	}
	CloseDirectTable(&table);

	if (found)
	{
		OpenDirectTable(&table, DIRECT_PRODUCT_POPULARITY, false);
		if (FetchByPrimaryKey(&table, snapshot, 1, &key, &eqproc))
		{
			value = DirectRowValue(&table, "score", &isnull);
			facts->has_popularity = !isnull;
			facts->popularity = isnull ? 0.0 : DatumGetFloat8(value);
		}
		CloseDirectTable(&table);
	}
	return found;
}

/*
 * LookupProduct fills in the product's facts (texts copied into the
 * caller's memory context), from the cache or else the catalogue, and
 * returns false when the catalogue has no such product.  Changes to the
 * catalogue committed by others are seen from the next call on.  A backend
 * keeps the facts of at most personalisation.product_cache_size products
 * and starts afresh past that.
 */
bool
LookupProduct(text *product_id, ProductFacts *facts)
{
	uint64		key = AffinityTextKey(AFFINITY_PRODUCT, product_id);
	int			len = VARSIZE_ANY_EXHDR(product_id);
	ProductEntry *entry;
	Snapshot	snapshot;
	bool		cacheable;
	bool		found;

	/*
	 * What is kept must be the latest committed rows.  In parallel mode (a
	 * query with a Gather) no new snapshot may be taken: the statement's is
	 * read, and not kept.
	 */
	cacheable = ProductCacheSize > 0 && !IsInParallelMode();
	if (cacheable)
	{
		AcceptInvalidationMessages();
		if (ProductCache == NULL || ProductCacheStartedAt != ProductInvalidations ||
			hash_get_num_entries(ProductCache) >= ProductCacheSize)
			StartProductCache();

		entry = hash_search(ProductCache, &key, HASH_FIND, NULL);
		if (entry != NULL && strlen(entry->product_id) == len &&
			memcmp(entry->product_id, VARDATA_ANY(product_id), len) == 0)
		{
			CopyFacts(&entry->facts, facts, CurrentMemoryContext);
			return true;
		}
	}

	snapshot = RegisterSnapshot(cacheable ? GetLatestSnapshot() : GetActiveSnapshot());
	found = ReadProductRows(product_id, snapshot, facts);
	UnregisterSnapshot(snapshot);

	/* keep what was read unless the catalogue changed while reading it */
	if (found && cacheable && ProductCacheStartedAt == ProductInvalidations)
	{
		entry = hash_search(ProductCache, &key, HASH_ENTER, NULL);
		entry->product_id = MemoryContextStrdup(ProductContext, text_to_cstring(product_id));
		CopyFacts(facts, &entry->facts, ProductContext);
	}
	return found;
}

/*
 * catalogue_changed is the statement-level trigger on the categories,
 * products and product_popularity tables: it has every backend's cached
 * copy read again once the change commits (and this backend's at its next
 * command).
 */
Datum
catalogue_changed(PG_FUNCTION_ARGS)
{
	TriggerData *trigger = (TriggerData *) fcinfo->context;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("catalogue_changed must be called as a trigger"),
				 errhint("It is attached to the catalogue tables by the extension.")));

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
	DefineCustomIntVariable("personalisation.product_cache_size",
							"Most products whose category, brand, stock and popularity a backend keeps in memory.",
							"Tracking and ranking read a product from the catalogue once, then from this cache until the catalogue changes; past this many products the cache starts afresh. 0 turns it off.",
							&ProductCacheSize,
							65536, 0, 16 * 1024 * 1024,
							PGC_SUSET, 0,
							NULL, NULL, NULL);

	RegisterRelcacheListener(ForgetCatalogue);
}
