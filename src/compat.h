/*
 * compat.h
 *		PG_VERSION_NUM shims: the one place that knows which PostgreSQL
 *		major versions the extension builds against.
 */
#ifndef PERSONALISATION_COMPAT_H
#define PERSONALISATION_COMPAT_H

#if PG_VERSION_NUM < 150000
#error "personalisation requires PostgreSQL 15 or later"
#endif

#endif							/* PERSONALISATION_COMPAT_H */
