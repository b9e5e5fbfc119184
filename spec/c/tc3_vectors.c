/* The signer alone, without Lua, against the vectors published in Tencent Cloud's signature docs. */
#include "../../src/tc3.h"

#include <stdio.h>
#include <string.h>

static int failures, passes;

static void expect(const char *what, const char *got, const char *want) {
    if (strcmp(got, want) != 0) {
        failures++;
        printf("not ok - %s\n  got  %s\n  want %s\n", what, got, want);
    } else {
        passes++;
        printf("ok - %s\n", what);
    }
}

static const char body[] =
    "{\"Limit\": 1, \"Filters\": [{\"Values\": [\"\\u672a\\u547d\\u540d\"], \"Name\": \"instance-name\"}]}";

static void check(tc3_signer *s, const char *key, const char *signed_headers, const char *want_request_hash,
                  const char *want_signature) {
    tc3_request r = {
        .secret_id = "AKIDz8krbsJ5yKBZQpn74WFkmLPx3*******", .secret_key = key, .secret_key_len = strlen(key),
        .service = "cvm", .method = "POST", .query = "", .host = "cvm.tencentcloudapi.com",
        .action = "DescribeInstances", .content_type = "application/json; charset=utf-8",
        .signed_headers = signed_headers, .payload = body, .payload_len = strlen(body), .timestamp = 1551113065,
    };
    char label[160], hash[TC3_HEX_LEN + 1];
    size_t len;
    if (tc3_sign(s, &r) != TC3_OK) {
        failures++;
        printf("not ok - tc3_sign failed\n");
        return;
    }
    const char *canonical = tc3_canonical_request(s, &len);
    tc3_sha256_hex(s, canonical, len, hash);
    snprintf(label, sizeof label, "canonical request hash, %s", signed_headers);
    expect(label, hash, want_request_hash);
    snprintf(label, sizeof label, "signature, %s, key %.8s...", signed_headers, key + 24);
    expect(label, tc3_signature(s), want_signature);
    expect("credential date", tc3_date(s), "2019-02-25");
}

int main(void) {
    tc3_signer *s = tc3_signer_new();
    if (!s) return 1;
    char hash[TC3_HEX_LEN + 1];
    tc3_sha256_hex(s, body, strlen(body), hash);
    expect("hashed payload", hash, "35e9c5b0e3ae67532d3c9f17ead6c90222632e5b1ff7f6e89887f1398934f064");
    for (int round = 0; round < 2; round++) {      /* the second round runs on cached signing keys */
        check(s, "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE", "content-type;host",
              "5ffe6a04c0664d6b969fab9a13bdab201d63ee709638e2749d62a09ca18d7031",
              "72e494ea809ad7a8c8f7a4507b9bddcbaa8e581f516e8da2f66e2c5a96525168");
        check(s, "Gu5t9xGARNpq86cd98joQYCN3*******", "content-type;host",
              "5ffe6a04c0664d6b969fab9a13bdab201d63ee709638e2749d62a09ca18d7031",
              "2230eefd229f582d8b1b891af7107b91597240707d778ab3738f756258d7652c");
        check(s, "Gu5t9xGARNpq86cd98joQYCN3*******", "content-type;host;x-tc-action",
              "7019a55be8395899b900fb5564e4200d984910f34794a27cb3fb7d10ff6a1e84",
              "be4f67d323c78ab9acb7395e43c0dbcf822a9cfac32fea2449a7bc7726b770a3");
    }
    char date[TC3_DATE_LEN + 1];
    tc3_utc_date(1551139199, date);                /* 2019-02-25T23:59:59Z: still the 25th in UTC */
    expect("last second of a UTC day", date, "2019-02-25");
    tc3_utc_date(1551139200, date);
    expect("first second of the next UTC day", date, "2019-02-26");
    tc3_signer_free(s);
    printf("%d passed, %d failed\n", passes, failures);
    return failures != 0;
}
