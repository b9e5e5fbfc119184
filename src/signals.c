/* See signals.h.
 *
 * Installing and restoring two handlers around every call cost six sigaction system calls, about 6 us a
 * call on a VM: more than signing it. So the handler, once installed, stays, and outside an operation it
 * hands each signal on to the disposition it replaced, as if it were not there; an operation then costs no
 * system call at all. When a handler passed on to replaces ours (the standalone interpreter's SIGINT
 * handler resets SIGINT to the default), the next operation installs ours again. A disposition the program
 * sets itself after that, between two operations, is respected: that signal then reaches the program's
 * handler during operations too (as with a session that is not interruptible). The handlers in place when
 * the library is unloaded go back. */
#define _XOPEN_SOURCE 700            /* SA_RESTART, SA_ONSTACK */
#include "signals.h"

#include <pthread.h>
#include <string.h>

volatile sig_atomic_t signals_caught = 0;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static int holders = 0;
static int trapped = 0;
static volatile sig_atomic_t active = 0;        /* holders > 0 or trapped: note signals, do not pass them on */
static const int watched[] = { SIGINT, SIGTERM };
#define WATCHED (int)(sizeof watched / sizeof watched[0])
static struct sigaction previous[WATCHED];      /* written only while our handler is not installed for it */
static volatile sig_atomic_t installed[WATCHED];

static int slot_of(int sig) {
    for (int i = 0; i < WATCHED; i++)
        if (watched[i] == sig) return i;
    return -1;
}

static void note(int sig, siginfo_t *info, void *context);

static int is_ours(const struct sigaction *sa) {
    return (sa->sa_flags & SA_SIGINFO) && sa->sa_sigaction == note;
}

/* Outside an operation: what the replaced disposition would have done. Async-signal-safe. */
static void pass_on(int i, int sig, siginfo_t *info, void *context) {
    const struct sigaction *p = &previous[i];
    if (p->sa_flags & SA_SIGINFO) {
        p->sa_sigaction(sig, info, context);
    } else if (p->sa_handler == SIG_DFL) {
        sigaction(sig, p, NULL);       /* the default action: delivered again once this handler returns */
        installed[i] = 0;
        raise(sig);
        return;
    } else if (p->sa_handler != SIG_IGN) {
        p->sa_handler(sig);
    }
    struct sigaction now;
    if (sigaction(sig, NULL, &now) == 0 && !is_ours(&now)) installed[i] = 0;   /* it replaced ours */
    if (p->sa_flags & SA_RESETHAND) {  /* a one-shot handler is gone after one signal, ours with it */
        struct sigaction dfl;
        memset(&dfl, 0, sizeof dfl);
        dfl.sa_handler = SIG_DFL;
        sigaction(sig, &dfl, NULL);
        installed[i] = 0;
    }
}

static void note(int sig, siginfo_t *info, void *context) {
    if (active) {
        signals_caught = sig;          /* async-signal-safe: one store */
        return;
    }
    int i = slot_of(sig);
    if (i >= 0) pass_on(i, sig, info, context);
}

/* Ours in place of whatever is there, where it is not installed yet, except where the signal is ignored
 * (nohup, a background job): it stays ignored. */
static int install(void) {
    for (int i = 0; i < WATCHED; i++) {
        if (installed[i]) continue;
        struct sigaction now;
        if (sigaction(watched[i], NULL, &now) != 0) return -1;
        if (is_ours(&now)) {
            installed[i] = 1;
            continue;
        }
        if (now.sa_handler == SIG_IGN && !(now.sa_flags & SA_SIGINFO)) continue;
        previous[i] = now;
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_sigaction = note;
        sa.sa_mask = now.sa_mask;
        /* The host's restart rule outside operations; poll and nanosleep end on a signal regardless. */
        sa.sa_flags = SA_SIGINFO | (now.sa_flags & (SA_RESTART | SA_ONSTACK));
        if (sigaction(watched[i], &sa, NULL) != 0) return -1;
        installed[i] = 1;
    }
    return 0;
}

__attribute__((destructor)) static void uninstall(void) {
    for (int i = 0; i < WATCHED; i++) {
        struct sigaction now;
        if (installed[i] && sigaction(watched[i], NULL, &now) == 0 && is_ours(&now))
            sigaction(watched[i], &previous[i], NULL);
        installed[i] = 0;
    }
}

static int hold_locked(void) {
    if (holders == 0) {
        signals_caught = 0;
        if (install()) return -1;
    }
    holders++;
    active = 1;
    return 0;
}

static int release_locked(void) {
    if (holders == 0 || --holders > 0) return 0;
    active = 0;
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
