/* tencentcloud.iotexplorer.core: the module's entry point, the functions it registers, its clocks and the
 * Lua side of signal handling.
 * The return convention and the division into files are described in lcore.h. */
#define _POSIX_C_SOURCE 200809L
#include "lcore.h"
#include "multi.h"
#include "signals.h"

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <time.h>

/* ---- signals ---- */

int watch_begin(lua_State *L, watch *w, int interruptible) {
    w->held = w->watching = 0;
    if (signals_trapped()) {
        if (signals_caught) {
            push_interrupted(L, 0);
            return 2;
        }
        w->watching = 1;
    } else if (interruptible && signals_hold() == 0) {
        w->held = w->watching = 1;
    }
    return 0;
}

void watch_end(watch *w) {
    if (!w->held) return;
    w->held = 0;
    int sig = signals_release();
    if (sig && !signals_trapped()) raise(sig);         /* the host's own handler, as if we had not been here */
}

const volatile sig_atomic_t *watch_flag(const watch *w) { return w->watching ? &signals_caught : NULL; }

int watch_signal(void) { return signals_caught; }

void push_interrupted(lua_State *L, int sent) {
    int sig = signals_caught;
    lua_pushnil(L);
    lua_createtable(L, 0, 4);
    lua_pushliteral(L, "ClientError.Interrupted");
    lua_setfield(L, -2, "code");
    lua_pushfstring(L, "interrupted by signal %d (%s)", sig, sig == SIGINT ? "SIGINT" : sig == SIGTERM ? "SIGTERM" : "?");
    lua_setfield(L, -2, "message");
    lua_pushinteger(L, sig);
    lua_setfield(L, -2, "signal");
    lua_pushboolean(L, sent);
    lua_setfield(L, -2, "sent");
}

/* core.trap_signals(on) -> true | nil, err. On: SIGINT and SIGTERM stay caught for the whole process, and
 * every blocking operation returns nil, { code = "ClientError.Interrupted", signal } once one arrived. */
static int core_trap_signals(lua_State *L) {
    luaL_checktype(L, 1, LUA_TBOOLEAN);
    if (signals_trap(lua_toboolean(L, 1)))
        return fail_local(L, "ClientError.SessionError", "sigaction failed: cannot catch SIGINT and SIGTERM");
    lua_pushboolean(L, 1);
    return 1;
}

/* core.interrupted() -> the number of the signal that arrived while trapped (2, 15), or nil. */
static int core_interrupted(lua_State *L) {
    int sig = signals_caught;
    if (sig) lua_pushinteger(L, sig);
    else lua_pushnil(L);
    return 1;
}

/* ---- clocks ---- */

static int core_now(lua_State *L) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    lua_pushnumber(L, (lua_Number)ts.tv_sec + (lua_Number)ts.tv_nsec / 1e9);
    return 1;
}

static void nap(double seconds) {
    struct timespec ts = { (time_t)seconds, (long)((seconds - floor(seconds)) * 1e9) };
    while (nanosleep(&ts, &ts) == -1 && errno == EINTR) {}
}

/* Sleeps until the monotonic time `until`, or at most 100 ms: steps towards one absolute deadline, so the
 * wake-ups of many steps add no drift to the whole. Returns at once when the signal interrupts it. */
static void nap_until(const struct timespec *until) {
    struct timespec step;
    clock_gettime(CLOCK_MONOTONIC, &step);
    step.tv_nsec += 100000000L;
    if (step.tv_nsec >= 1000000000L) {
        step.tv_sec++;
        step.tv_nsec -= 1000000000L;
    }
    if (step.tv_sec > until->tv_sec || (step.tv_sec == until->tv_sec && step.tv_nsec > until->tv_nsec)) step = *until;
    clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &step, NULL);   /* EINTR: a signal, checked by the caller */
}

static int reached(const struct timespec *until) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return now.tv_sec > until->tv_sec || (now.tv_sec == until->tv_sec && now.tv_nsec >= until->tv_nsec);
}

/* core.sleep(seconds[, interruptible]) -> true | nil, err (interrupted). Watching for signals, it sleeps in
 * steps of at most 100 ms, so a signal ends it within one step. */
static int core_sleep(lua_State *L) {
    lua_Number seconds = luaL_checknumber(L, 1);
    int interruptible = lua_toboolean(L, 2);
    if (seconds > 86400) seconds = 86400;
    watch w;
    if (watch_begin(L, &w, interruptible)) return 2;
    const volatile sig_atomic_t *stop = watch_flag(&w);
    if (!stop) {
        if (seconds > 0) nap(seconds);
    } else {
        struct timespec until;
        clock_gettime(CLOCK_MONOTONIC, &until);
        if (seconds > 0) {
            until.tv_sec += (time_t)seconds;
            until.tv_nsec += (long)((seconds - floor(seconds)) * 1e9);
            if (until.tv_nsec >= 1000000000L) {
                until.tv_sec++;
                until.tv_nsec -= 1000000000L;
            }
        }
        while (!*stop && !reached(&until)) nap_until(&until);
    }
    int results;
    if (stop && *stop) {
        push_interrupted(L, 0);
        results = 2;
    } else {
        lua_pushboolean(L, 1);
        results = 1;
    }
    watch_end(&w);
    return results;
}

/* ---- module ---- */

static int signer_gc(lua_State *L) {
    signer_box *box = luaL_checkudata(L, 1, SIGNER_MT);
    tc3_signer_free(box->signer);
    box->signer = NULL;
    return 0;
}

/* The one exported symbol: everything else stays hidden (-fvisibility=hidden) so nothing clashes. */
__attribute__((visibility("default"))) int luaopen_tencentcloud_iotexplorer_core(lua_State *L);

int luaopen_tencentcloud_iotexplorer_core(lua_State *L) {
    static const luaL_Reg session_methods[] = {
        { "close", session_close }, { "__gc", session_close }, { "__close", session_close },
        { "__tostring", session_tostring }, { NULL, NULL },
    };
    static const luaL_Reg functions[] = {
        { "sign", core_sign }, { "new_session", core_new_session },
        { "call", core_call }, { "download", core_download }, { "http_get", core_http_get },
        { "new_multi", core_new_multi },
        { "signer", core_signer }, { "decode_response", core_decode_response },
        /* the fuzzers' name for it, from when it was a test hook */
        { "_decode_response", core_decode_response },
        { NULL, NULL },
    };
    if (tc3_global_init() || http_global_init()) return luaL_error(L, "OpenSSL or libcurl failed to initialise");

    if (luaL_newmetatable(L, SESSION_MT)) {
        luaL_setfuncs(L, session_methods, 0);
        lua_pushvalue(L, -1);
        lua_setfield(L, -2, "__index");
        lua_pushliteral(L, "locked");
        lua_setfield(L, -2, "__metatable");
    }
    lua_pop(L, 1);
    if (luaL_newmetatable(L, SIGNER_MT)) {
        lua_pushcfunction(L, signer_gc);
        lua_setfield(L, -2, "__gc");
    }
    lua_pop(L, 1);

    lua_createtable(L, 0, 8);
    signer_box *box = lua_newuserdata(L, sizeof *box);
    box->signer = NULL;
    luaL_getmetatable(L, SIGNER_MT);
    lua_setmetatable(L, -2);
    if (!(box->signer = tc3_signer_new())) return luaL_error(L, "could not create the TC3 signer (OpenSSL)");

    lua_getglobal(L, "require");
    lua_pushliteral(L, "cjson.safe");
    lua_call(L, 1, 1);
    lua_getfield(L, -1, "new");
    lua_call(L, 0, 1);                 /* a private instance: other code's cjson settings do not reach us */
    lua_remove(L, -2);
    lua_getfield(L, -1, "decode_max_depth");
    lua_pushinteger(L, 64);
    lua_call(L, 1, 0);
    lua_getfield(L, -1, "decode_invalid_numbers");
    lua_pushboolean(L, 0);             /* nan, inf and 0x10 in a response are not JSON: ParseJsonError */
    lua_call(L, 1, 0);

    multi_open(L);
    luaL_setfuncs(L, functions, 2);
    lua_pushcfunction(L, core_now);
    lua_setfield(L, -2, "now");
    lua_pushcfunction(L, core_sleep);
    lua_setfield(L, -2, "sleep");
    lua_pushcfunction(L, core_trap_signals);
    lua_setfield(L, -2, "trap_signals");
    lua_pushcfunction(L, core_interrupted);
    lua_setfield(L, -2, "interrupted");
    lua_pushliteral(L, CORE_VERSION);
    lua_setfield(L, -2, "_VERSION");
    jsonenc_open(L);                   /* the array marker, for json_encode and call */
    jsonenc_push_encoder(L);
    lua_setfield(L, -2, "json_encode");
    lua_pushcfunction(L, jsonenc_lua_array);
    lua_setfield(L, -2, "array");
    jsonenc_push_array_mt(L);
    lua_setfield(L, -2, "array_mt");
    jsonenc_push_empty_array(L);
    lua_setfield(L, -2, "empty_array");
    return 1;
}
