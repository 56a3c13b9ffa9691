/*
 * rank.h
 *		Ranking of products for a visitor (rank.c).
 */
#ifndef PERSONALISATION_RANK_H
#define PERSONALISATION_RANK_H

#include "util.h"

extern void RankInit(void);

#endif							/* PERSONALISATION_RANK_H */
