/* Lua values -> JSON request bodies. The rules and their reasons are in jsonenc.h. */
#define _POSIX_C_SOURCE 200809L
#include "jsonenc.h"
#include "compat.h"

#include <lauxlib.h>

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ARRAY_MT "tencentcloud.iotexplorer.array"
#define EMPTY_ARRAY_MT "tencentcloud.iotexplorer.empty_array"
#define EMPTY_ARRAY "tencentcloud.iotexplorer.empty_array.value"
#define TWO_53 9007199254740992.0
#define KEEP_AFTER_ENCODE (64u * 1024u)   /* json_encode frees a buffer that grew past this */

/* ---- the buffer ---- */

static int grow(jsonenc_buf *b, size_t need) {
    size_t cap = b->cap ? b->cap : 256;
    while (cap - b->len < need) {
        if (cap > SIZE_MAX / 2) return -1;
        cap *= 2;
    }
    char *data = realloc(b->data, cap);
    if (!data) return -1;
    b->data = data;
    b->cap = cap;
    return 0;
}

static inline int reserve(jsonenc_buf *b, size_t need) {
    return b->cap - b->len >= need ? 0 : grow(b, need);
}

int jsonenc_raw(jsonenc_buf *b, const char *s, size_t len) {
    if (reserve(b, len)) return -1;
    memcpy(b->data + b->len, s, len);
    b->len += len;
    return 0;
}

void jsonenc_buf_free(jsonenc_buf *b) {
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

/* 1 for the bytes JSON does not allow raw inside a string: '"', '\\' and the control characters. */
static const unsigned char must_escape[256] = {
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    ['"'] = 1, ['\\'] = 1,
};

/* Bytes >= 0x80 pass through: the server sees what the caller gave (the Lua layer checks UTF-8 where the
 * API wants text). */
int jsonenc_string(jsonenc_buf *b, const char *s, size_t len) {
    static const char hex[] = "0123456789abcdef";
    if (reserve(b, len + 2)) return -1;
    b->data[b->len++] = '"';
    size_t run = 0;                        /* start of the bytes not yet copied */
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!must_escape[c]) continue;
        if (jsonenc_raw(b, s + run, i - run)) return -1;
        run = i + 1;
        char short_form = c == '"' || c == '\\' ? (char)c : c == '\n' ? 'n' : c == '\r' ? 'r' : c == '\t' ? 't'
                          : c == '\b' ? 'b' : c == '\f' ? 'f' : 0;
        if (short_form) {
            char esc[2] = { '\\', short_form };
            if (jsonenc_raw(b, esc, sizeof esc)) return -1;
        } else {
            char esc[6] = { '\\', 'u', '0', '0', hex[c >> 4], hex[c & 15] };
            if (jsonenc_raw(b, esc, sizeof esc)) return -1;
        }
    }
    if (jsonenc_raw(b, s + run, len - run) || reserve(b, 1)) return -1;
    b->data[b->len++] = '"';
    return 0;
}

static int add_int64(jsonenc_buf *b, int64_t v) {
    char digits[24], *p = digits + sizeof digits;
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;   /* INT64_MIN too */
    do {
        *--p = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0) *--p = '-';
    return jsonenc_raw(b, p, (size_t)(digits + sizeof digits - p));
}

/* Fractions with at most 6 decimals and 15 significant digits, the usual ones (22.543096, 0.25), without
 * printf and strtod: m = d * 10^6 rounded; if m / 10^6 (a correctly rounded division, as strtod of the
 * decimal text would round) is d again, the text of m / 10^6 reads back as d. Returns 0 when d is not
 * such a number. */
static int add_short_fraction(jsonenc_buf *b, double d, int *written) {
    *written = 0;
    if (!(fabs(d) < 1e9)) return 0;
    double scaled = nearbyint(d * 1e6);
    if (scaled / 1e6 != d) return 0;
    int64_t m = (int64_t)fabs(scaled);
    int64_t whole = m / 1000000, frac = m % 1000000;
    char text[32], *p = text;
    if (d < 0) *p++ = '-';
    p += snprintf(p, 12, "%lld", (long long)whole);
    *p++ = '.';
    for (int64_t unit = 100000; frac; unit /= 10) {
        *p++ = (char)('0' + frac / unit);
        frac %= unit;
    }
    *written = 1;
    return jsonenc_raw(b, text, (size_t)(p - text));
}

/* The fewest of 15, 16 or 17 significant digits that read back as d (17 always do). printf and strtod
 * follow LC_NUMERIC alike, so the round trip holds in any locale; JSON wants '.', so whatever the locale
 * put between the digits becomes '.'. */
static int add_double(jsonenc_buf *b, double d) {
    int written, bad = add_short_fraction(b, d, &written);
    if (written) return bad;
    char text[40];
    int n = 0;
    for (int digits = 15; digits <= 17; digits++) {
        n = snprintf(text, sizeof text, "%.*g", digits, d);
        if (strtod(text, NULL) == d) break;
    }
    if (n <= 0 || (size_t)n >= sizeof text) return -1;
    char out[40];
    size_t o = 0;
    for (int i = 0; i < n; i++) {
        char c = text[i];
        if ((c >= '0' && c <= '9') || c == '-' || c == '+' || c == 'e') {
            out[o++] = c;
        } else {
            out[o++] = '.';
            while (i + 1 < n && !(text[i + 1] >= '0' && text[i + 1] <= '9')) i++;
        }
    }
    return jsonenc_raw(b, out, o);
}

/* ---- the walk ---- */

typedef struct step { const char *key; size_t key_len; lua_Integer index; } step;

typedef struct encoder {
    lua_State *L;
    jsonenc_buf *b;
    jsonenc_error *err;
    const void *array_mt, *empty_array_mt;
    int depth;                             /* tables entered; path[0..depth-1] lead to the current value */
    step path[JSONENC_MAX_DEPTH + 1];
} encoder;

static int is_identifier(const char *s, size_t len) {
    if (len == 0 || (s[0] >= '0' && s[0] <= '9')) return 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_'))
            return 0;
    }
    return 1;
}

/* Writes the path as Lua would index it: Devices[2].Name, ["odd key"]. A path too long for out ends in
 * "..." after the last step that fits. */
static void write_path(const encoder *e, char *out, size_t cap) {
    size_t o = 0;
    out[0] = '\0';
    for (int d = 0; d < e->depth; d++) {
        const step *s = &e->path[d];
        char piece[192];                   /* the longest: 2 + 40 * 4 + 3 + 2 + NUL */
        int n;
        if (!s->key) {
            n = snprintf(piece, sizeof piece, "[%lld]", (long long)s->index);
        } else if (s->key_len < 80 && is_identifier(s->key, s->key_len)) {
            n = snprintf(piece, sizeof piece, "%s%.*s", d ? "." : "", (int)s->key_len, s->key);
        } else {                           /* printable ASCII kept, the rest as \ddd, at most 40 bytes */
            n = 2;
            memcpy(piece, "[\"", 2);
            for (size_t i = 0; i < s->key_len && i < 40; i++) {
                unsigned char c = (unsigned char)s->key[i];
                if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') piece[n++] = (char)c;
                else n += snprintf(piece + n, sizeof piece - (size_t)n, "\\%u", c);
            }
            if (s->key_len > 40) {
                memcpy(piece + n, "...", 3);
                n += 3;
            }
            memcpy(piece + n, "\"]", 3);
            n += 2;
        }
        if (n < 0 || o + (size_t)n + 4 >= cap) {
            memcpy(out + o, "...", 4);
            return;
        }
        memcpy(out + o, piece, (size_t)n + 1);
        o += (size_t)n;
    }
}

/* Records the failure of the current value, while every key on the path is still on the Lua stack. */
static jsonenc_status fail(encoder *e, jsonenc_status status, const char *fmt, const char *detail) {
    e->err->status = status;
    write_path(e, e->err->path, sizeof e->err->path);
    snprintf(e->err->what, sizeof e->err->what, fmt, detail);
    return status;
}

static jsonenc_status no_memory(encoder *e) {
    return fail(e, JSONENC_NO_MEMORY, "could not be encoded: out of memory%s", "");
}

static jsonenc_status encode(encoder *e, int idx);

static jsonenc_status encode_number(encoder *e, int idx) {
#if COMPAT_HAS_INTEGERS
    if (lua_isinteger(e->L, idx)) return add_int64(e->b, (int64_t)lua_tointeger(e->L, idx)) ? no_memory(e) : 0;
#endif
    double d = (double)lua_tonumber(e->L, idx);
    if (isnan(d)) return fail(e, JSONENC_NOT_FINITE, "is NaN, which JSON cannot carry%s", "");
    if (isinf(d)) return fail(e, JSONENC_NOT_FINITE, "is %s, which JSON cannot carry", d > 0 ? "infinity" : "-infinity");
    int bad = fabs(d) < TWO_53 && d == floor(d) ? add_int64(e->b, (int64_t)d) : add_double(e->b, d);
    return bad ? no_memory(e) : JSONENC_OK;
}

/* The value under the key at -2 (value at -1), then pops the value. */
static jsonenc_status encode_member(encoder *e, const char *key, size_t key_len, lua_Integer index) {
    e->path[e->depth] = (step){ key, key_len, index };
    e->depth++;
    jsonenc_status st = encode(e, lua_gettop(e->L));
    e->depth--;
    lua_pop(e->L, 1);
    return st;
}

/* The table's pair at -2, -1 cannot go into the array or object being written: pops the pair and fails. */
static jsonenc_status bad_key(encoder *e, int in_object, int marked) {
    int type = lua_type(e->L, -2);
    lua_pop(e->L, 2);
    if (type == LUA_TNUMBER && in_object)
        return fail(e, JSONENC_BAD_KEYS, "mixes string and number keys: it is neither an array nor an object%s", "");
    if (type == LUA_TNUMBER)
        return fail(e, JSONENC_BAD_KEYS, "is not an array: its keys are not exactly 1..n%s", "");
    if (type == LUA_TSTRING && marked)
        return fail(e, JSONENC_BAD_KEYS, "is marked as an array but has string keys%s", "");
    if (type == LUA_TSTRING)
        return fail(e, JSONENC_BAD_KEYS, "mixes number and string keys: it is neither an array nor an object%s", "");
    return fail(e, JSONENC_BAD_KEYS, "has a %s key: JSON keys are strings", lua_typename(e->L, type));
}

/* An object: lua_next already produced the first pair (a string key). Pops the iteration's key. */
static jsonenc_status encode_object(encoder *e, int t) {
    lua_State *L = e->L;
    char sep = '{';
    do {
        if (lua_type(L, -2) != LUA_TSTRING) return bad_key(e, 1, 0);
        size_t key_len;
        const char *key = lua_tolstring(L, -2, &key_len);   /* a string already: no conversion in place */
        if (jsonenc_raw(e->b, &sep, 1) || jsonenc_string(e->b, key, key_len) || jsonenc_raw(e->b, ":", 1)) {
            lua_pop(L, 2);
            return no_memory(e);
        }
        sep = ',';
        jsonenc_status st = encode_member(e, key, key_len, 0);
        if (st) {
            lua_pop(L, 1);
            return st;
        }
    } while (lua_next(L, t));
    return jsonenc_raw(e->b, "}", 1) ? no_memory(e) : JSONENC_OK;
}

/* The positive integer key at idx, or 0 when the key is anything else. */
static lua_Integer index_key(lua_State *L, int idx) {
    if (lua_type(L, idx) != LUA_TNUMBER) return 0;
#if COMPAT_HAS_INTEGERS
    if (lua_isinteger(L, idx)) return lua_tointeger(L, idx) > 0 ? lua_tointeger(L, idx) : 0;
#endif
    lua_Number n = lua_tonumber(L, idx);
    return n >= 1 && n < TWO_53 && n == floor(n) ? (lua_Integer)n : 0;
}

/* An array: lua_next already produced the first pair. Every key must be a positive integer and the largest
 * one the count, which makes the keys exactly 1..n; then the values go out in index order. */
static jsonenc_status encode_array(encoder *e, int t, int marked) {
    lua_State *L = e->L;
    lua_Integer count = 0, max = 0;
    do {
        lua_Integer k = index_key(L, -2);
        if (!k) return bad_key(e, 0, marked);
        if (k > max) max = k;
        count++;
        lua_pop(L, 1);
    } while (lua_next(L, t));
    if (max != count) return fail(e, JSONENC_BAD_KEYS, "is not an array: its keys are not exactly 1..n%s", "");
    if (jsonenc_raw(e->b, "[", 1)) return no_memory(e);
    for (lua_Integer i = 1; i <= count; i++) {
        if (i > 1 && jsonenc_raw(e->b, ",", 1)) return no_memory(e);
        lua_rawgeti(L, t, i);
        jsonenc_status st = encode_member(e, NULL, 0, i);
        if (st) return st;
    }
    return jsonenc_raw(e->b, "]", 1) ? no_memory(e) : JSONENC_OK;
}

static jsonenc_status encode_table(encoder *e, int t) {
    lua_State *L = e->L;
    if (e->depth >= JSONENC_MAX_DEPTH)
        return fail(e, JSONENC_TOO_DEEP, "is nested more than 64 tables deep (a table that contains itself?)%s", "");
    if (!lua_checkstack(L, 4)) return no_memory(e);
    int marked = 0;
    if (lua_getmetatable(L, t)) {
        const void *mt = lua_topointer(L, -1);
        marked = mt == e->array_mt || mt == e->empty_array_mt;
        lua_pop(L, 1);
    }
    lua_pushnil(L);
    if (!lua_next(L, t)) return jsonenc_raw(e->b, marked ? "[]" : "{}", 2) ? no_memory(e) : JSONENC_OK;
    if (lua_type(L, -2) == LUA_TSTRING && !marked) return encode_object(e, t);
    return encode_array(e, t, marked);
}

static jsonenc_status encode(encoder *e, int idx) {
    lua_State *L = e->L;
    switch (lua_type(L, idx)) {
    case LUA_TSTRING: {
        size_t len;
        const char *s = lua_tolstring(L, idx, &len);
        return jsonenc_string(e->b, s, len) ? no_memory(e) : JSONENC_OK;
    }
    case LUA_TNUMBER:
        return encode_number(e, idx);
    case LUA_TBOOLEAN:
        return (lua_toboolean(L, idx) ? jsonenc_raw(e->b, "true", 4) : jsonenc_raw(e->b, "false", 5))
            ? no_memory(e) : JSONENC_OK;
    case LUA_TTABLE:
        return encode_table(e, idx);
    case LUA_TNIL:
        return jsonenc_raw(e->b, "null", 4) ? no_memory(e) : JSONENC_OK;
    case LUA_TLIGHTUSERDATA:
        if (lua_touserdata(L, idx) == NULL) return jsonenc_raw(e->b, "null", 4) ? no_memory(e) : JSONENC_OK;
        return fail(e, JSONENC_BAD_TYPE, "is a %s (only cjson.null is taken, as null)", "light userdata");
    default:
        return fail(e, JSONENC_BAD_TYPE, "is a %s, which JSON cannot carry", luaL_typename(L, idx));
    }
}

static const void *registry_pointer(lua_State *L, const char *name) {
    lua_getfield(L, LUA_REGISTRYINDEX, name);
    const void *p = lua_topointer(L, -1);
    lua_pop(L, 1);
    return p;
}

jsonenc_status jsonenc_value(lua_State *L, int idx, jsonenc_buf *b, jsonenc_error *err) {
    encoder e;
    e.L = L;
    e.b = b;
    e.err = err;
    e.depth = 0;
    e.array_mt = registry_pointer(L, ARRAY_MT);
    e.empty_array_mt = registry_pointer(L, EMPTY_ARRAY_MT);
    err->status = JSONENC_OK;
    err->path[0] = err->what[0] = '\0';
    int top = lua_gettop(L);
    jsonenc_status st = encode(&e, lua_absindex(L, idx));
    lua_settop(L, top);
    return st;
}

/* ---- the markers ---- */

static int empty_array_newindex(lua_State *L) {
    return luaL_error(L, "the empty array marker is read-only: use array() for an array to fill");
}

void jsonenc_open(lua_State *L) {
    luaL_newmetatable(L, ARRAY_MT);
    lua_pop(L, 1);
    if (luaL_newmetatable(L, EMPTY_ARRAY_MT)) {
        lua_pushcfunction(L, empty_array_newindex);
        lua_setfield(L, -2, "__newindex");
        lua_pushboolean(L, 0);
        lua_setfield(L, -2, "__metatable");   /* getmetatable() says false; setmetatable() refuses */
    }
    lua_getfield(L, LUA_REGISTRYINDEX, EMPTY_ARRAY);
    if (lua_isnil(L, -1)) {
        lua_newtable(L);
        lua_pushvalue(L, -3);
        lua_setmetatable(L, -2);
        lua_setfield(L, LUA_REGISTRYINDEX, EMPTY_ARRAY);
    }
    lua_pop(L, 2);
}

void jsonenc_push_array_mt(lua_State *L) { lua_getfield(L, LUA_REGISTRYINDEX, ARRAY_MT); }

void jsonenc_push_empty_array(lua_State *L) { lua_getfield(L, LUA_REGISTRYINDEX, EMPTY_ARRAY); }

int jsonenc_lua_array(lua_State *L) {
    if (lua_isnoneornil(L, 1)) {
        lua_settop(L, 0);
        lua_newtable(L);
    }
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    jsonenc_push_array_mt(L);
    if (lua_getmetatable(L, 1)) {
        if (!lua_rawequal(L, -1, -2)) luaL_argerror(L, 1, "the table already has a metatable");
        lua_pop(L, 1);
    }
    lua_setmetatable(L, 1);
    return 1;
}

/* ---- json_encode ---- */

static int buf_gc(lua_State *L) {
    jsonenc_buf_free(lua_touserdata(L, 1));
    return 0;
}

static int json_encode(lua_State *L) {
    jsonenc_buf *b = lua_touserdata(L, lua_upvalueindex(1));
    jsonenc_error err;
    const char *top = luaL_optstring(L, 2, "value");
    lua_settop(L, 2);
    b->len = 0;
    jsonenc_status st = jsonenc_value(L, 1, b, &err);
    if (st == JSONENC_NO_MEMORY) {
        jsonenc_buf_free(b);
        return luaL_error(L, "not enough memory");
    }
    if (st) {
        lua_pushnil(L);
        lua_createtable(L, 0, 4);
        lua_pushliteral(L, "ClientError.InvalidParameter");
        lua_setfield(L, -2, "code");
        const char *field = err.path[0] ? err.path : top;
        lua_pushstring(L, field);
        lua_setfield(L, -2, "field");
        lua_pushfstring(L, "%s %s", field, err.what);
        lua_setfield(L, -2, "message");
        lua_pushboolean(L, 0);
        lua_setfield(L, -2, "sent");
        return 2;
    }
    lua_pushlstring(L, b->data, b->len);
    if (b->cap > KEEP_AFTER_ENCODE) jsonenc_buf_free(b);
    return 1;
}

void jsonenc_push_encoder(lua_State *L) {
    jsonenc_buf *b = lua_newuserdata(L, sizeof *b);
    memset(b, 0, sizeof *b);
    lua_createtable(L, 0, 1);
    lua_pushcfunction(L, buf_gc);
    lua_setfield(L, -2, "__gc");
    lua_setmetatable(L, -2);
    lua_pushcclosure(L, json_encode, 1);
}
