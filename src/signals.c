/* See signals.h. */
#define _POSIX_C_SOURCE 200809L
#include "signals.h"

#include <pthread.h>
#include <string.h>

volatile sig_atomic_t signals_caught = 0;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static int holders = 0;
static int trapped = 0;
static const int watched[] = { SIGINT, SIGTERM };
#define WATCHED (int)(sizeof watched / sizeof watched[0])
static struct sigaction previous[WATCHED];
static int installed[WATCHED];

/* Async-signal-safe: one store. */
static void note(int sig) { signals_caught = sig; }

static void restore(void) {
    for (int i = 0; i < WATCHED; i++) {
        if (installed[i]) sigaction(watched[i], &previous[i], NULL);
        installed[i] = 0;
    }
}

static int install(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = note;
    sigemptyset(&sa.sa_mask);
    for (int i = 0; i < WATCHED; i++) {
        struct sigaction old;
        if (sigaction(watched[i], NULL, &old) != 0) {
            restore();
            return -1;
        }
        if (old.sa_handler == SIG_IGN) continue;       /* nohup, or a background job: leave it ignored */
        if (sigaction(watched[i], &sa, &previous[i]) != 0) {
            restore();
            return -1;
        }
        installed[i] = 1;
    }
    return 0;
}

static int hold_locked(void) {
    if (holders == 0) {
        signals_caught = 0;
        if (install()) return -1;
    }
    holders++;
    return 0;
}

static int release_locked(void) {
    if (holders == 0 || --holders > 0) return 0;
    restore();
    int sig = signals_caught;
    signals_caught = 0;
    return sig;
}

int signals_hold(void) {
    pthread_mutex_lock(&lock);
    int rc = hold_locked();
    pthread_mutex_unlock(&lock);
    return rc;
}

int signals_release(void) {
    pthread_mutex_lock(&lock);
    int sig = release_locked();
    pthread_mutex_unlock(&lock);
    return sig;
}

int signals_trapped(void) {
    pthread_mutex_lock(&lock);
    int t = trapped;
    pthread_mutex_unlock(&lock);
    return t;
}

int signals_trap(int on) {
    int rc = 0;
    pthread_mutex_lock(&lock);
    if (on && !trapped) {
        rc = hold_locked();
        trapped = rc == 0;
    } else if (!on && trapped) {
        trapped = 0;
        release_locked();              /* a signal that arrived was reported, not to be raised again */
    }
    pthread_mutex_unlock(&lock);
    return rc;
}
