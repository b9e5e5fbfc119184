/* The multi handle: up to `concurrency` transfers in flight at once, each signed and built exactly as a
 * single call (call.c's call_build, one header list) and answered exactly as one (call_result).
 *
 *   local m = core.new_multi(session, { concurrency = 8 })   -- the session's target, CA, proxy, limits
 *   m:add(id, req)                                           -- req as core.call's; true | nil, err (refused:
 *                                                            -- nothing was sent)
 *   local ids, results, errs = m:wait(seconds)              -- finished transfers: ids[k], then results[k]
 *                                                            -- or errs[k], as core.call returns them
 *   m:abandon(id)                                            -- stops one transfer: may it have been sent?
 *   m:close()                                                -- idempotent; also __gc
 *
 * Requests are signed with the session's signer and target, so the multi keeps the session alive; a closed
 * session refuses new requests, and what is already in flight finishes. Its easy handles live as long as it does, so connections are reused from one batch to the next; the
 * connection cache and the per-host limit are both `concurrency`. wait() blocks in one curl_multi_poll until
 * a transfer finishes or the timeout passes: no busy loop. No Lua runs while libcurl does: its callbacks are
 * http.c's plain C, and Lua values are made only after libcurl has returned. A request that asks for a fresh
 * connection (writes) gets one, so libcurl never resends it on a reused connection found dead. */
#define _POSIX_C_SOURCE 200809L
#include "multi.h"
#include "lcore.h"

#include <curl/curl.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum slot_state { SLOT_FREE, SLOT_RUNNING, SLOT_DONE };

typedef struct slot {
    http_session *http;
    lua_Integer id;
    enum slot_state state;
    int curl_code;                     /* the transfer's result, once SLOT_DONE */
    int interrupted;                   /* ended by SIGINT/SIGTERM (an interruptible session's) */
} slot;

typedef struct multi {
    CURLM *curlm;                      /* NULL once closed */
    session *session;                  /* the session signing the requests, held by session_ref */
    int session_ref;                   /* in the registry; LUA_NOREF once closed */
    int size;                          /* slots with an easy handle */
    slot slots[MULTI_MAX_CONCURRENCY];
} multi;

static multi *check_multi(lua_State *L) { return luaL_checkudata(L, 1, MULTI_MT); }

/* Frees everything; what is in flight is dropped (libcurl closes its connection). Safe to repeat. */
static void multi_release(lua_State *L, multi *m) {
    for (int i = 0; i < m->size; i++) {
        slot *sl = &m->slots[i];
        if (sl->state != SLOT_FREE) {
            http_result r;
            if (sl->state == SLOT_RUNNING) curl_multi_remove_handle(m->curlm, http_easy(sl->http));
            http_end(sl->http, CURLE_ABORTED_BY_CALLBACK, &r);
            sl->state = SLOT_FREE;
        }
    }
    if (m->curlm) curl_multi_cleanup(m->curlm);   /* closes the cached connections */
    m->curlm = NULL;
    for (int i = 0; i < m->size; i++) {
        http_session_free(m->slots[i].http);
        m->slots[i].http = NULL;
    }
    m->size = 0;
    luaL_unref(L, LUA_REGISTRYINDEX, m->session_ref);
    m->session_ref = LUA_NOREF;
    m->session = NULL;
}

static int multi_close(lua_State *L) {
    multi_release(L, check_multi(L));
    return 0;
}

static int multi_tostring(lua_State *L) {
    multi *m = check_multi(L);
    int busy = 0;
    for (int i = 0; i < m->size; i++) busy += m->slots[i].state != SLOT_FREE;
    if (m->curlm) lua_pushfstring(L, "tencentcloud.iotexplorer.core.multi (open, %d of %d in flight)", busy, m->size);
    else lua_pushliteral(L, "tencentcloud.iotexplorer.core.multi (closed)");
    return 1;
}

int core_new_multi(lua_State *L) {
    session *s = check_session(L);
    if (session_unusable(L, s)) return 2;
    if (!s->target.host.s) luaL_error(L, "this session has no host: give new_session a host to call the API");
    int64_t concurrency = 8;
    if (!lua_isnoneornil(L, 2)) {
        static const char *const fields[] = { "concurrency", NULL };
        luaL_checktype(L, 2, LUA_TTABLE);
        arg_known(L, 2, "multi option", fields);
        arg_integer(L, 2, "concurrency", 1, MULTI_MAX_CONCURRENCY, &concurrency);
    }

    /* The metatable goes on before any foreign object exists, so every path below is collected. */
    multi *m = lua_newuserdata(L, sizeof *m);
    memset(m, 0, sizeof *m);
    m->session_ref = LUA_NOREF;
    luaL_getmetatable(L, MULTI_MT);
    lua_setmetatable(L, -2);
    lua_pushvalue(L, 1);
    m->session_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    m->session = s;
    char message[HTTP_MESSAGE_SIZE] = "out of memory creating a multi handle";
    int ok = (m->curlm = curl_multi_init()) != NULL
          && curl_multi_setopt(m->curlm, CURLMOPT_MAX_HOST_CONNECTIONS, (long)concurrency) == CURLM_OK
          && curl_multi_setopt(m->curlm, CURLMOPT_MAXCONNECTS, (long)concurrency) == CURLM_OK;
    for (int i = 0; ok && i < concurrency; i++) {
        m->slots[i].http = http_session_clone(s->http, message, sizeof message);
        ok = m->slots[i].http != NULL;
        if (ok) m->size = i + 1;
    }
    if (!ok) {
        multi_release(L, m);
        return fail_local(L, "ClientError.SessionError", message);
    }
    return 1;
}

static slot *find_slot(multi *m, lua_Integer id) {
    for (int i = 0; i < m->size; i++)
        if (m->slots[i].state != SLOT_FREE && m->slots[i].id == id) return &m->slots[i];
    return NULL;
}

/* m:add(id, req) -> true | nil, err. The request is read, signed and built now, as core.call builds it;
 * nothing of req is needed afterwards. */
static int multi_add(lua_State *L) {
    multi *m = check_multi(L);
    lua_Integer id = luaL_checkinteger(L, 2);
    luaL_checktype(L, 3, LUA_TTABLE);
    if (!m->curlm) return fail_local(L, "ClientError.SessionClosed", "the multi handle is closed");
    if (session_unusable(L, m->session)) return 2;
    if (find_slot(m, id)) return luaL_error(L, "bad argument #1 to 'add' (transfer %d is already in flight)", (int)id);
    slot *sl = NULL;
    for (int i = 0; i < m->size && !sl; i++)
        if (m->slots[i].state == SLOT_FREE) sl = &m->slots[i];
    if (!sl) return fail_local(L, "ClientError.SessionBusy", "every transfer of the multi handle is in flight");

    const char *lines[CALL_MAX_HEADERS];
    http_request req;
    if (call_build(L, m->session, 3, lines, &req)) return 2;
    req.copy_body = 1;                 /* the body is a Lua string on this call's stack */
    http_result r;
    http_status begun = http_begin(sl->http, &req, &r);
    call_trim_body(m->session);
    if (begun != HTTP_OK) return transport_failure(L, &r);
    CURLMcode mc = curl_multi_add_handle(m->curlm, http_easy(sl->http));
    if (mc != CURLM_OK) {
        http_end(sl->http, CURLE_FAILED_INIT, &r);
        return fail_local(L, "ClientError.NetworkError", curl_multi_strerror(mc));
    }
    sl->id = id;
    sl->state = SLOT_RUNNING;
    lua_pushboolean(L, 1);
    return 1;
}

/* Moves every transfer libcurl reports done from running to done. */
static void collect(multi *m) {
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(m->curlm, &left))) {
        if (msg->msg != CURLMSG_DONE) continue;
        CURL *easy = msg->easy_handle;
        int code = (int)msg->data.result;          /* msg dies with the removal below */
        for (int i = 0; i < m->size; i++) {
            slot *sl = &m->slots[i];
            if (sl->state == SLOT_RUNNING && http_easy(sl->http) == easy) {
                curl_multi_remove_handle(m->curlm, easy);
                sl->curl_code = code;
                sl->state = SLOT_DONE;
                break;
            }
        }
    }
}

static int any_done(const multi *m) {
    for (int i = 0; i < m->size; i++)
        if (m->slots[i].state == SLOT_DONE) return 1;
    return 0;
}

/* Every running transfer ends now with curl_code: libcurl's multi handle itself failed (out of memory, say),
 * or a signal arrived. */
static void end_running(multi *m, int curl_code, int interrupted) {
    for (int i = 0; i < m->size; i++) {
        slot *sl = &m->slots[i];
        if (sl->state == SLOT_RUNNING) {
            curl_multi_remove_handle(m->curlm, http_easy(sl->http));
            sl->curl_code = curl_code;
            sl->interrupted = interrupted;
            sl->state = SLOT_DONE;
        }
    }
}

/* Whether any of a transfer's request may have left: what http_end reports, or past the pre-transfer point
 * for one stopped before it finished. */
static int may_have_sent(slot *sl, const http_result *r) {
    curl_off_t pretransfer = 0;
    curl_easy_getinfo(http_easy(sl->http), CURLINFO_PRETRANSFER_TIME_T, &pretransfer);
    return r->sent || pretransfer > 0;
}

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

/* m:wait(seconds) -> ids, results, errs | nothing: the transfers finished by now, waiting up to `seconds`
 * for the first one when none has. Socket events that finish nothing are handled here, without returning
 * to Lua; nothing at all comes back when the time passed with no transfer finished. With an interruptible
 * session, SIGINT or SIGTERM ends every running transfer with ClientError.Interrupted. */
static int multi_wait(lua_State *L) {
    multi *m = check_multi(L);
    lua_Number seconds = luaL_optnumber(L, 2, 0);
    double until = now_ms() + (seconds > 0 ? (seconds >= 86400 ? 86400000.0 : seconds * 1000.0) : 0);
    watch w = { 0, 0 };
    if (m->curlm) {
        int interrupted = 0;
        if (watch_begin(L, &w, m->session->interruptible)) {
            lua_pop(L, 2);             /* a trapped signal arrived already: what is running ends with it */
            interrupted = 1;
        }
        const volatile sig_atomic_t *stop = watch_flag(&w);
        int running;
        CURLMcode mc = interrupted ? CURLM_OK : curl_multi_perform(m->curlm, &running);
        if (mc == CURLM_OK) collect(m);
        while (mc == CURLM_OK && !interrupted && !any_done(m)) {
            double left = until - now_ms();
            if (left <= 0) break;
            if (stop && left > 100) left = 100;          /* look at the signal flag at least every 100 ms */
            mc = curl_multi_poll(m->curlm, NULL, 0, (int)ceil(left), NULL);
            if (mc == CURLM_OK) mc = curl_multi_perform(m->curlm, &running);
            if (mc == CURLM_OK) collect(m);
            interrupted = stop && *stop;
        }
        if (interrupted) end_running(m, CURLE_ABORTED_BY_CALLBACK, 1);
        else if (mc != CURLM_OK) end_running(m, CURLE_OUT_OF_MEMORY, 0);
    }
    if (!any_done(m)) {
        watch_end(&w);
        return 0;
    }
    lua_newtable(L);
    lua_newtable(L);
    lua_newtable(L);
    int ids = lua_gettop(L) - 2, n = 0;
    for (int i = 0; i < m->size; i++) {
        slot *sl = &m->slots[i];
        if (sl->state != SLOT_DONE) continue;
        http_result r;
        http_status hs = http_end(sl->http, sl->curl_code, &r);
        n++;
        /* The slot is freed only once its answer is a Lua value: if making it raises, the next wait has it. */
        int top = lua_gettop(L), results = 2;
        if (sl->interrupted) push_interrupted(L, may_have_sent(sl, &r));
        else results = call_result(L, hs, &r);   /* its answer on top, maybe with working values below */
        lua_rawseti(L, results == 1 ? ids + 1 : ids + 2, n);
        lua_settop(L, top);
        lua_pushinteger(L, sl->id);
        lua_rawseti(L, ids, n);
        sl->state = SLOT_FREE;
        sl->interrupted = 0;
    }
    watch_end(&w);                     /* may hand the signal on to the host's own handler */
    return 3;
}

/* m:abandon(id) -> sent | nil: stops transfer id and forgets it, never to be resent. sent: whether any of
 * its request may have left this machine (nil: no such transfer). */
static int multi_abandon(lua_State *L) {
    multi *m = check_multi(L);
    lua_Integer id = luaL_checkinteger(L, 2);
    slot *sl = find_slot(m, id);
    if (!sl) return 0;
    if (sl->state == SLOT_RUNNING) curl_multi_remove_handle(m->curlm, http_easy(sl->http));
    http_result r;
    http_end(sl->http, sl->state == SLOT_DONE ? sl->curl_code : CURLE_ABORTED_BY_CALLBACK, &r);
    sl->state = SLOT_FREE;
    sl->interrupted = 0;
    lua_pushboolean(L, may_have_sent(sl, &r));
    return 1;
}

void multi_open(lua_State *L) {
    static const luaL_Reg methods[] = {
        { "add", multi_add }, { "wait", multi_wait }, { "abandon", multi_abandon }, { "close", multi_close },
        { "__gc", multi_close }, { "__close", multi_close }, { "__tostring", multi_tostring }, { NULL, NULL },
    };
    if (luaL_newmetatable(L, MULTI_MT)) {
        lua_pushvalue(L, -3);
        lua_pushvalue(L, -3);
        luaL_setfuncs(L, methods, 2);  /* add and wait sign and decode with the module's signer box and JSON */
        lua_pushvalue(L, -1);
        lua_setfield(L, -2, "__index");
        lua_pushliteral(L, "locked");
        lua_setfield(L, -2, "__metatable");
    }
    lua_pop(L, 1);
}
