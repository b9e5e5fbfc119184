/* The request every signing baseline signs, and the published vector each checks itself against first. */
#ifndef SIGN_COMMON_H
#define SIGN_COMMON_H

#define SIGN_SECRET_ID "AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE"
#define SIGN_SECRET_KEY "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE"
#define SIGN_SERVICE "iotexplorer"
#define SIGN_HOST "iotexplorer.tencentcloudapi.com"
#define SIGN_CONTENT_TYPE "application/json"
#define SIGN_PAYLOAD "{\"ProductId\":\"R32ONVL0EU\",\"BatchProductionId\":\"LC-ya6zinv9\"}"
#define SIGN_TIMESTAMP 1551113065L     /* 2019-02-25 */
#define COLD_KEYS 64                   /* distinct keys cycled through when the key cache is to stay cold */

/* Published vector (NOTES.md): service cvm, content-type;host. */
#define VEC_SERVICE "cvm"
#define VEC_HOST "cvm.tencentcloudapi.com"
#define VEC_CONTENT_TYPE "application/json; charset=utf-8"
#define VEC_PAYLOAD "{\"Limit\": 1, \"Filters\": [{\"Values\": [\"\\u672a\\u547d\\u540d\"], \"Name\": \"instance-name\"}]}"
#define VEC_SIGNATURE "72e494ea809ad7a8c8f7a4507b9bddcbaa8e581f516e8da2f66e2c5a96525168"

#endif
