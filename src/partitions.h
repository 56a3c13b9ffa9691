/*
 * partitions.h
 *		Day partitions of the events table (partitions.c).
 */
#ifndef PERSONALISATION_PARTITIONS_H
#define PERSONALISATION_PARTITIONS_H

#include "util.h"

extern int64 EnsureEventPartition(TimestampTz occurred_at);
extern char *EventPartitionName(int64 day, MemoryContext context);
extern Oid	EventPartitionRelid(int64 day);
extern void PartitionsInit(void);

#endif							/* PERSONALISATION_PARTITIONS_H */
