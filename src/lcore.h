/* What the Lua-facing files of tencentcloud.iotexplorer.core share: the session as they see it, and the
 * argument and error helpers. tc3.c and http.c know nothing of Lua; only the files including this do.
 *
 * One return convention for the whole core:
 *   - success returns its results;
 *   - a failure of the world (network, server, file system, signals, memory, a closed session) returns
 *     nil, err, where err is a plain table { code = "ClientError.X" or the service's code, message,
 *     sent = boolean, ... };
 *   - misuse by the calling Lua code (a wrong type, a missing field, an unknown option) raises a Lua error
 *     naming the argument, luaL_argerror style. The values a user typed are checked once, by the Lua layer
 *     (check.lua), with messages a person can act on; the core does not check them a second time, except for
 *     its own guard against header injection: CR, LF or NUL in anything that reaches a header line raises.
 * The core decides no policy: no retries, no sleeping between attempts, no credential look-up.
 *
 * Files: core.c (module table, clocks, signal functions), session.c (the session: what is fixed per
 * client), call.c (signed API calls), download.c (streaming a GET into a file), http_get.c (small plain
 * GETs), lcore.c (these helpers); tc3.c signs, http.c drives libcurl, signals.c catches SIGINT/SIGTERM,
 * outfile.c keeps downloads private until they are complete. */
#ifndef TCIOT_LCORE_H
#define TCIOT_LCORE_H

#include "compat.h"
#include "http.h"
#include "jsonenc.h"
#include "tc3.h"

#include <stddef.h>
#include <stdint.h>

#define CORE_VERSION "0.1.0"
#define SESSION_MT "tencentcloud.iotexplorer.core.session"
#define SIGNER_MT "tencentcloud.iotexplorer.core.signer"

/* Upvalues shared by every function of one module instance (one per Lua VM). */
#define UV_SIGNER lua_upvalueindex(1)  /* the signer core.sign uses */
#define UV_JSON lua_upvalueindex(2)    /* a private cjson.safe instance: nobody else's settings */

typedef struct lstr { const char *s; size_t len; } lstr;

/* Where a client's calls go and what every one of them says: fixed when the session is made. */
typedef struct target {
    lstr url;                          /* "scheme://host[:port]/" */
    lstr host;                         /* the Host header: host[:port], exactly as signed */
    lstr region, language, service;    /* language.s is NULL when none is sent */
} target;

typedef struct session {
    http_session *http;
    tc3_signer *signer;
    target target;                     /* its strings live in `fixed`; host.s is NULL for a download-only session */
    char *fixed;
    int interruptible;                 /* SIGINT/SIGTERM end a transfer of this session */
    int busy;                          /* a transfer is running: Lua code in its callback may call us */
    int close_pending;                 /* close() was called during that transfer */
    char *scratch;                     /* header lines of the request being sent, reused */
    size_t scratch_cap;
    jsonenc_buf body;                  /* the JSON body of the request being sent, reused */
    struct outfile *partial;           /* a cut download kept to resume (download.c); NULL for none */
} session;

typedef struct signer_box { tc3_signer *signer; } signer_box;

/* ---- errors (lcore.c) ---- */

void push_int64(lua_State *L, int64_t v);
/* Pushes nil and { code, message, sent = false }; returns 2: a failure before any request left. */
int fail_local(lua_State *L, const char *code, const char *message);
/* The error table after a request was attempted; the caller fills message and extra fields. */
void push_transport_error(lua_State *L, const char *code, const http_result *r);
/* nil, err for a transfer that ended without a usable response (network, timeout, size, abort, signal). */
int transport_failure(lua_State *L, const http_result *r);

/* ---- reading argument tables (lcore.c); each raises on misuse ---- */

/* What a string may hold: any bytes (keys, bodies); anything but NUL (file names, handed to C as they are);
 * or a header value: no CR, LF or NUL, which would let a caller end the line and smuggle in a header. */
enum { ANY_BYTES = 0, NO_NUL = 1, HEADER_VALUE = 2 };
/* t[field] as a string, left on the stack so the pointer stays valid. Returns 1, or 0 when nil and optional
 * (out->s = NULL). Raises for another type, for "" and for a byte `allowed` does not allow. */
int arg_string(lua_State *L, int t, const char *field, int required, int allowed, lstr *out);
/* An optional number of seconds in (0, 86400] as milliseconds; 0 when nil. */
long arg_seconds(lua_State *L, int t, const char *field);
/* An optional whole number in [min, max]; returns 1 and sets *out when present, 0 when nil. */
int arg_integer(lua_State *L, int t, const char *field, double min, double max, int64_t *out);
int arg_boolean(lua_State *L, int t, const char *field);   /* nil is false; anything but a boolean raises */
/* Raises when table t has a key that is not in the NULL-terminated list: a misspelt option. */
void arg_known(lua_State *L, int t, const char *what, const char *const *known);
int is_http_url(const lstr *url);      /* "http://" or "https://" (any case) and something after it */

/* ---- sessions (session.c) ---- */

session *check_session(lua_State *L);
void download_forget(session *s);      /* removes the session's partial download, if any (download.c) */
void session_release(session *s);
/* Pushes nil, err and returns 2 when the session cannot take a request now (closed, or busy); 0 when it can. */
int session_unusable(lua_State *L, const session *s);
int session_close(lua_State *L);
int session_tostring(lua_State *L);

/* ---- signals (core.c over signals.c) ---- */

/* Around one blocking operation: watch_begin returns 0, or 2 with nil, err pushed when a trapped signal
 * already arrived. watch_end restores the previous handlers when the last watcher leaves and, unless signals
 * are trapped, raises a signal that arrived meanwhile again so the host's handler runs. Call watch_end only
 * after everything the operation made is freed and removed. `stop` is what libcurl's callback polls. */
typedef struct watch {
    int held;                          /* this operation holds the handlers (signals_hold) */
    int watching;                      /* held, or signals are trapped: the operation ends on a signal */
} watch;
int watch_begin(lua_State *L, watch *w, int interruptible);
void watch_end(watch *w);
const volatile sig_atomic_t *watch_flag(const watch *w);    /* NULL when not watching */
int watch_signal(void);                            /* the signal that arrived, 0 for none */
void push_interrupted(lua_State *L, int sent);     /* nil, { code = ClientError.Interrupted, signal, sent } */

/* ---- building a call (call.c) ---- */

#define CALL_MAX_HEADERS 16

/* Reads core.call's request table at index t, signs it with the session's signer and target and fills req:
 * the header lines in `lines` (CALL_MAX_HEADERS of room; their text in the session's scratch buffer), the
 * body and other strings left on the Lua stack. Raises on misuse like core.call. Returns 0, or 2 with nil,
 * err pushed. The session must be usable (session_unusable). */
int call_build(lua_State *L, session *s, int t, const char **lines, http_request *req);
/* Pushes what core.call returns for a finished transfer: the Response (1), or nil, err (2); working values
 * may stay below them on the stack. */
int call_result(lua_State *L, http_status hs, const http_result *r);
/* After a request left the session's body buffer (sent, or copied by libcurl): frees the buffer if one huge
 * request grew it. */
void call_trim_body(session *s);

/* What a signed request is made of, shared with the bound signer (lsigner.c): what changes from one request
 * to the next (the rest is the target's), its signing and its one header list. */
typedef struct call_input {
    lstr secret_id, secret_key, token, action, version, content_type, signed_headers, method, query;
    int64_t timestamp;
    int unsigned_request;              /* Authorization: SKIP (STS AssumeRoleWithWebIdentity) */
} call_input;

/* Signs the request in (to tg, with this payload) into signer; core.call, core.sign and the bound signer. */
tc3_status sign_input(tc3_signer *signer, const target *tg, const call_input *in, const char *payload,
                      size_t payload_len);
/* The headers of one request (call.c's one list, the lines core.call sends) written into the table at
 * index t: core.sign, the bound signer. A signed request's signer must hold its signature. */
void set_headers(lua_State *L, const tc3_signer *signer, const target *tg, const call_input *in, int t);
/* Pushes { canonical_request, string_to_sign, signature } of the signer's last signature. */
void push_signing_parts(lua_State *L, const tc3_signer *signer);
/* Reads where a request is signed for and how from the table at index t, for core.sign and core.signer:
 * host, region, language?, service? ("iotexplorer"), content_type? and signed_headers? (core.call's).
 * Strings stay on the Lua stack; misuse raises. */
void read_signing_target(lua_State *L, int t, target *tg, call_input *in);

#define DEFAULT_SERVICE "iotexplorer"  /* the service a session, core.sign and core.signer sign for by default */
#define MAX_TIMESTAMP 253402300799.0   /* 9999-12-31T23:59:59Z: the last second a request may be signed for */

/* ---- the functions the module exports ---- */

int core_new_session(lua_State *L);               /* session.c */
int core_sign(lua_State *L);                      /* call.c */
int core_call(lua_State *L);
int core_download(lua_State *L);                  /* download.c */
int core_http_get(lua_State *L);                  /* http_get.c */
int core_signer(lua_State *L);                    /* lsigner.c */
int core_decode_response(lua_State *L);           /* call.c */

#endif
