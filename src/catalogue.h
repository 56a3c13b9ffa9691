/*
 * catalogue.h
 *		The catalogue cache: category paths and product facts (catalogue.c).
 */
#ifndef PERSONALISATION_CATALOGUE_H
#define PERSONALISATION_CATALOGUE_H

#include "affinity.h"

extern int	CategoryPath(uint64 category_key, uint64 *path);
extern char *CategoryName(uint64 category_key);

/* What tracking and ranking need of a product. */
typedef struct ProductFacts
{
	text	   *category_id;	/* NULL when the product has none */
	text	   *brand;			/* NULL when the product has none */
	bool		in_stock;
	bool		has_popularity; /* in product_popularity */
	float8		popularity;		/* its score there (0 to 1) */
} ProductFacts;

extern bool LookupProduct(text *product_id, ProductFacts *facts);

extern void CatalogueInit(void);

#endif							/* PERSONALISATION_CATALOGUE_H */
