/* The multi handle (multi.c): many calls of one Lua VM in flight at once, over one curl_multi_poll. */
#ifndef TCIOT_MULTI_H
#define TCIOT_MULTI_H

#include "compat.h"

#define MULTI_MT "tencentcloud.iotexplorer.core.multi"
#define MULTI_MAX_CONCURRENCY 64

/* core.new_multi(session, { concurrency = 8 }) -> multi | nil, err */
int core_new_multi(lua_State *L);
/* Registers the multi handle's metatable; the module's two upvalues (signer box, JSON) are on top of the
 * stack and stay there. */
void multi_open(lua_State *L);

#endif
