/* SIGINT and SIGTERM while the core blocks: a handler that notes the signal, so that libcurl's progress
 * callback and the core's sleeps can end early. Plain C, no Lua.
 *
 * Active process-wide while at least one holder needs it (a blocking operation of an interruptible session,
 * or the trap), reference-counted under a mutex, so threads may begin and end operations freely. While not
 * active it passes each signal on to the disposition it replaced (signals.c says why it stays installed).
 * A signal whose disposition is SIG_IGN stays ignored. */
#ifndef TCIOT_SIGNALS_H
#define TCIOT_SIGNALS_H

#include <signal.h>

/* The signal number that arrived while installed, 0 when none; cleared when the last holder leaves. */
extern volatile sig_atomic_t signals_caught;

int signals_hold(void);                /* 0, or -1 when sigaction failed (then nothing is held) */
/* Lets go of one hold. The last one returns the signal that arrived (to re-raise: it reaches the host's
 * handler), or 0. */
int signals_release(void);
int signals_trapped(void);             /* 1 while signals_trap(1) is in force */
/* trap on: hold for the whole process, and signals are reported, never re-raised. trap off: let go. */
int signals_trap(int on);

#endif
