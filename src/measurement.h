/*
 * measurement.h
 *		Exposure and attribution for the uplift reports (measurement.c).
 */
#ifndef PERSONALISATION_MEASUREMENT_H
#define PERSONALISATION_MEASUREMENT_H

#include "util.h"

extern void MeasurementInit(void);

#endif							/* PERSONALISATION_MEASUREMENT_H */
