/* What the Lua-facing files of tencentcloud.iotexplorer.core share: the session as they see it, and the
 * argument and error helpers. tc3.c and http.c know nothing of Lua; only the files including this do.
 *
 * One return convention for the whole core:
 *   - success returns its results;
 *   - a failure of the world (network, server, file system, signals, memory) returns nil, err, where err
 *     is a plain table { code = "ClientError.X" | the service's code, message, sent = boolean, ... };
 *   - a bad field of a request table returns nil, { code = "ClientError.InvalidParameter", field, ... };
 *     only a wrong session or a request that is not a table raises.
 * The core decides no policy: no retries, no sleeping between attempts, no credential look-up. */
#ifndef TCIOT_LCORE_H
#define TCIOT_LCORE_H

#include "compat.h"
#include "http.h"
#include "tc3.h"

#include <stddef.h>
#include <stdint.h>

#define CORE_VERSION "0.1.0"
#define SESSION_MT "tencentcloud.iotexplorer.core.session"
#define SIGNER_MT "tencentcloud.iotexplorer.core.signer"

/* Upvalues shared by every function of one module instance (one per Lua VM). */
#define UV_SIGNER lua_upvalueindex(1)  /* the signer core.sign uses */
#define UV_JSON lua_upvalueindex(2)    /* a private cjson.safe instance: nobody else's settings */

/* Where a request's header lines and URL are written; wiped when freed (it holds the Authorization). */
typedef struct call_scratch { char *data; size_t cap; } call_scratch;

typedef struct session {
    http_session *http;
    tc3_signer *signer;
    long timeout_ms, connect_timeout_ms;
    int busy;                          /* a transfer is running: Lua code in its callback may call us */
    int close_pending;                 /* close() was called during that transfer */
    call_scratch scratch;              /* header lines and URL of the request being sent, reused */
} session;

typedef struct signer_box { tc3_signer *signer; } signer_box;

typedef struct lstr { const char *s; size_t len; } lstr;

/* ---- errors (lcore.c) ---- */

void push_int64(lua_State *L, int64_t v);
/* Pushes nil and { code, message, sent = false }; returns 2: a failure before any request left. */
int fail_local(lua_State *L, const char *code, const char *message);
/* ClientError.InvalidParameter naming the field; the message is fmt with the field and `what`. */
int fail_input(lua_State *L, const char *field, const char *fmt, const char *what);
/* The error table after a request was attempted; the caller fills message and extra fields. */
void push_transport_error(lua_State *L, const char *code, const http_result *r);
/* nil, err for a transfer that ended without a response (network, timeout, size, abort). */
int transport_failure(lua_State *L, const http_result *r);

/* ---- reading request tables (lcore.c) ---- */

int get_string(lua_State *L, int t, const char *field, int required, lstr *out);
int get_seconds(lua_State *L, int t, const char *field, long *ms);
int get_timestamp(lua_State *L, int t, const char *field, int64_t *out);
size_t http_scheme_len(const lstr *url);

/* ---- sessions (session.c) ---- */

session *check_session(lua_State *L);
void session_release(session *s);
int session_unusable(lua_State *L, const session *s);
int session_close(lua_State *L);
int session_tostring(lua_State *L);

/* ---- building a call (call.c) ---- */

#define CALL_MAX_HEADERS 16

typedef enum call_kind { CALL_ACTION, CALL_DESCRIBE_BATCH_PRODUCTION } call_kind;

/* Reads the request table at t (core.call's fields for CALL_ACTION, core.describe_batch_production's for the
 * other), signs it with signer and fills req: header lines in lines (CALL_MAX_HEADERS of room) and the URL
 * in scratch, the body and the strings req points at left on the Lua stack. Needs the module's upvalues.
 * Returns 0, or 2 with nil, err pushed. */
int call_build(lua_State *L, int t, call_kind kind, tc3_signer *signer, call_scratch *scratch,
               const char **lines, http_request *req);
/* Pushes what a call returns for a finished transfer: the Response, or nil, err. Returns 1 or 2. */
int call_result(lua_State *L, http_status hs, const http_result *r);
void call_scratch_free(call_scratch *scratch);

/* ---- the functions the module exports ---- */

int core_new_session(lua_State *L);               /* session.c */
int core_sign(lua_State *L);                      /* call.c */
int core_call(lua_State *L);
int core_describe_batch_production(lua_State *L);
int core_download(lua_State *L);                  /* download.c */
#ifdef TCIOT_TEST_HOOKS
int core_decode_response(lua_State *L);           /* call.c, test builds only */
#endif

#endif
