/*
 * lifecycle.h
 *		DROP DATABASE and DROP EXTENSION (lifecycle.c).
 */
#ifndef PERSONALISATION_LIFECYCLE_H
#define PERSONALISATION_LIFECYCLE_H

#include "util.h"

extern void LifecycleInit(void);

#endif							/* PERSONALISATION_LIFECYCLE_H */
