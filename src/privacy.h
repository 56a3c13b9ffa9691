/*
 * privacy.h
 *		Retention and erasure (privacy.c).
 */
#ifndef PERSONALISATION_PRIVACY_H
#define PERSONALISATION_PRIVACY_H

#include "util.h"

extern int64 ExpireSessions(TimestampTz cutoff, int64 *forgotten);

#endif							/* PERSONALISATION_PRIVACY_H */
