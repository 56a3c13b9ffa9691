/*
 * purchases.h
 *		Orders and refunds as tracked events (purchases.c).
 */
#ifndef PERSONALISATION_PURCHASES_H
#define PERSONALISATION_PURCHASES_H

#include "util.h"

extern void PurchasesInit(void);

#endif							/* PERSONALISATION_PURCHASES_H */
