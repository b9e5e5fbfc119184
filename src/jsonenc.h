/* Request bodies: Lua values -> JSON text, written so that the service reads back exactly the numbers and
 * shapes the caller meant. lua-cjson (2.1.0 as Debian ships it) rounds numbers to 14 digits and writes every
 * empty table as {}; this encoder does not:
 *   - Lua 5.4 integers are exact over the whole 64-bit range; a float with an integral value below 2^53 in
 *     magnitude is written as an integer (LuaJIT's numbers are doubles: exact up to 2^53); any other number
 *     with the fewest of 15, 16 or 17 significant digits that reads back as the same double;
 *   - NaN and the infinities are refused (JSON has no spelling for them);
 *   - a table with keys exactly 1..n is an array, one with string keys only an object, anything else is
 *     refused; a table whose metatable is the array marker is an array even when empty ([]), a plain
 *     empty table is {};
 *   - strings: '"', '\\' and control characters escaped, every other byte passed through as given;
 *   - a light userdata NULL (lua-cjson's cjson.null) is null; nothing else of another type is taken.
 * Tables are read raw: no __index, __pairs or __len runs, so no Lua code runs while encoding. Nesting is
 * limited to JSONENC_MAX_DEPTH tables, which also stops cycles. The failure names the offending value by
 * its path from the top, e.g. Devices[2].Name. */
#ifndef TCIOT_JSONENC_H
#define TCIOT_JSONENC_H

#include <lua.h>
#include <stddef.h>

#define JSONENC_MAX_DEPTH 64

/* A growing byte buffer: zero-initialise it, reuse it across encodes (jsonenc_value appends; set len to 0
 * to start over), free it with jsonenc_buf_free. Its text is not NUL-terminated. */
typedef struct jsonenc_buf {
    char *data;
    size_t len, cap;
} jsonenc_buf;

typedef enum jsonenc_status {
    JSONENC_OK = 0,
    JSONENC_NO_MEMORY,
    JSONENC_NOT_FINITE,                /* NaN or an infinity */
    JSONENC_BAD_TYPE,                  /* a function, thread, userdata or non-NULL light userdata */
    JSONENC_BAD_KEYS,                  /* a table that is neither an array nor an object */
    JSONENC_TOO_DEEP                   /* more than JSONENC_MAX_DEPTH nested tables (or a cycle) */
} jsonenc_status;

typedef struct jsonenc_error {
    jsonenc_status status;
    char path[160];                    /* the offending value from the top: "Devices[2].Name"; "" = the top */
    char what[160];                    /* what is wrong with it, to follow the name: "is NaN" */
} jsonenc_error;

/* Creates the array marker's metatable and the read-only empty array in the registry (once per state;
 * calling it again is harmless). Call from luaopen before any encode. */
void jsonenc_open(lua_State *L);

/* Push the marker metatable (setmetatable(t, it) makes t an array) and the read-only empty array. */
void jsonenc_push_array_mt(lua_State *L);
void jsonenc_push_empty_array(lua_State *L);

/* Appends the JSON text of the value at idx to b. Returns JSONENC_OK, or the failure with err filled in;
 * b->len is then unspecified (the caller discards the text). Uses up to 3 stack slots per nesting level
 * and leaves the stack as it found it. Never raises. */
jsonenc_status jsonenc_value(lua_State *L, int idx, jsonenc_buf *b, jsonenc_error *err);

/* Appends s as a JSON string literal. Returns 0, or -1 when out of memory. */
int jsonenc_string(jsonenc_buf *b, const char *s, size_t len);

/* Appends len bytes as they are. Returns 0, or -1 when out of memory. */
int jsonenc_raw(jsonenc_buf *b, const char *s, size_t len);

/* Frees the buffer's memory and zeroes it. */
void jsonenc_buf_free(jsonenc_buf *b);

/* Pushes the Lua function json_encode(value[, name]) -> JSON text | nil, err, where err is
 * { code = "ClientError.InvalidParameter", field = path, or name (default "value") for the value itself,
 * message, sent = false }. It owns a
 * reusable buffer (an upvalue), so repeated calls do not allocate beyond the resulting string. */
void jsonenc_push_encoder(lua_State *L);

/* core.array([t]) -> t: marks t (or a new empty table) as an array. Raises when t is not a table or already
 * has another metatable: marking must not silently replace someone's metatable. */
int jsonenc_lua_array(lua_State *L);

#endif
