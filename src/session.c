/* The session userdata: one libcurl handle and one signer, reused across calls; closing it frees both.
 * A session can be closed from a progress function during its own transfer: it is then only marked, and
 * released once libcurl has returned. */
#define _POSIX_C_SOURCE 200809L
#include "lcore.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_TIMEOUT 10.0
#define DEFAULT_CONNECT_TIMEOUT 5.0
#define DEFAULT_MAX_RESPONSE (10u * 1024u * 1024u)

session *check_session(lua_State *L) { return luaL_checkudata(L, 1, SESSION_MT); }

void session_release(session *s) {
    http_session_free(s->http);
    tc3_signer_free(s->signer);        /* wipes the cached signing keys */
    call_scratch_free(&s->scratch);
    s->http = NULL;
    s->signer = NULL;
}

/* During a transfer (from a progress function) only mark the session: the transfer stops at the next
 * callback and the session is released once libcurl has returned. */
int session_close(lua_State *L) {
    session *s = check_session(L);
    if (s->busy) s->close_pending = 1;
    else session_release(s);
    return 0;
}

int session_tostring(lua_State *L) {
    session *s = check_session(L);
    lua_pushfstring(L, "tencentcloud.iotexplorer.core.session (%s)", s->http ? "open" : "closed");
    return 1;
}

/* core.new_session(opts?) -> session | nil, err */
int core_new_session(lua_State *L) {
    if (lua_isnoneornil(L, 1)) {
        lua_settop(L, 0);
        lua_newtable(L);
    }
    luaL_checktype(L, 1, LUA_TTABLE);
    lstr ca_file, ca_path, proxy, user_agent;
    long timeout_ms, connect_timeout_ms;
    if (get_seconds(L, 1, "timeout", &timeout_ms) || get_seconds(L, 1, "connect_timeout", &connect_timeout_ms)
        || get_string(L, 1, "ca_file", 0, &ca_file) < 0 || get_string(L, 1, "ca_path", 0, &ca_path) < 0
        || get_string(L, 1, "proxy", 0, &proxy) < 0 || get_string(L, 1, "user_agent", 0, &user_agent) < 0)
        return 2;
    lua_getfield(L, 1, "max_response_bytes");
    size_t max_body = DEFAULT_MAX_RESPONSE;
    if (!lua_isnil(L, -1)) {
        lua_Number n = lua_tonumber(L, -1);
        if (lua_type(L, -1) != LUA_TNUMBER || !(n >= 1 && n <= 1073741824.0) || floor(n) != n)
            return fail_input(L, "max_response_bytes", "%s must be a whole number from 1 to 2^30%s", "");
        max_body = (size_t)n;
    }

    /* The metatable goes on before any foreign object exists, so every path below is collected. */
    session *s = lua_newuserdata(L, sizeof *s);
    memset(s, 0, sizeof *s);
    luaL_getmetatable(L, SESSION_MT);
    lua_setmetatable(L, -2);
    s->timeout_ms = timeout_ms ? timeout_ms : (long)(DEFAULT_TIMEOUT * 1000);
    s->connect_timeout_ms = connect_timeout_ms ? connect_timeout_ms : (long)(DEFAULT_CONNECT_TIMEOUT * 1000);
    http_options o = {
        .timeout_ms = s->timeout_ms, .connect_timeout_ms = s->connect_timeout_ms, .ca_file = ca_file.s,
        .ca_path = ca_path.s, .proxy = proxy.s,
        .user_agent = user_agent.s ? user_agent.s : "tencentcloud-iotexplorer-lua/" CORE_VERSION,
        .max_response_bytes = max_body,
    };
    char message[HTTP_MESSAGE_SIZE];
    s->http = http_session_new(&o, message, sizeof message);
    s->signer = s->http ? tc3_signer_new() : NULL;
    if (!s->signer) {
        int no_signer = s->http != NULL;
        session_release(s);
        return fail_local(L, "ClientError.SessionError", no_signer ? "could not create the signer (OpenSSL)" : message);
    }
    return 1;
}


/* Pushes nil, err and returns 2 when the session cannot take a request now; 0 when it can. */
int session_unusable(lua_State *L, const session *s) {
    if (!s->http || s->close_pending) return fail_local(L, "ClientError.SessionClosed", "the session is closed");
    if (s->busy)
        return fail_local(L, "ClientError.SessionBusy",
                          "the session is in the middle of a transfer (called from its own progress function)");
    return 0;
}
