/*
 * launcher.h
 *		The launcher that starts the workers at start-up and promotion (launcher.c).
 */
#ifndef PERSONALISATION_LAUNCHER_H
#define PERSONALISATION_LAUNCHER_H

#include "util.h"

extern void LauncherInit(void);

#endif							/* PERSONALISATION_LAUNCHER_H */
