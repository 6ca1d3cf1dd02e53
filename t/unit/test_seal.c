#include <stdlib.h>
#include <string.h>

#include "acme_seal.h"
#include "unit.h"

static const unsigned char key1[ACME_SEAL_KEY_LEN] = "0123456789abcdef0123456789abcdef";
static const unsigned char key2[ACME_SEAL_KEY_LEN] = "0123456789abcdef0123456789abcdeF";

UNIT_TEST(seal_roundtrip_and_binding)
{
    const char      *pem = "-----BEGIN PRIVATE KEY-----\nMIG...\n-----END PRIVATE KEY-----\n";
    char            *s, *s2, err[512];
    unsigned char   *p;
    size_t           len;

    s = acme_seal(key1, "/acme/certs/a.example_ecdsa-256/key", pem, strlen(pem),
                  err, sizeof(err));
    CHECK(s != NULL);
    CHECK(acme_seal_is_sealed(s, strlen(s)));
    CHECK(strstr(s, "PRIVATE") == NULL);

    p = acme_seal_open(key1, "/acme/certs/a.example_ecdsa-256/key", s,
                       strlen(s), &len, err, sizeof(err));
    CHECK(p != NULL && len == strlen(pem) && memcmp(p, pem, len) == 0);
    free(p);

    /* another name, another key, an altered byte: refused */
    p = acme_seal_open(key1, "/acme/certs/b.example_ecdsa-256/key", s,
                       strlen(s), &len, err, sizeof(err));
    CHECK(p == NULL && strstr(err, "does not open") != NULL);
    p = acme_seal_open(key2, "/acme/certs/a.example_ecdsa-256/key", s,
                       strlen(s), &len, err, sizeof(err));
    CHECK(p == NULL);
    s[strlen(s) - 5] = s[strlen(s) - 5] == 'A' ? 'B' : 'A';
    p = acme_seal_open(key1, "/acme/certs/a.example_ecdsa-256/key", s,
                       strlen(s), &len, err, sizeof(err));
    CHECK(p == NULL);

    /* a fresh nonce each time */
    s2 = acme_seal(key1, "n", "x", 1, err, sizeof(err));
    free(s);
    s = acme_seal(key1, "n", "x", 1, err, sizeof(err));
    CHECK(s != NULL && s2 != NULL && strcmp(s, s2) != 0);
    free(s);
    free(s2);

    /* not sealed at all */
    p = acme_seal_open(key1, "n", pem, strlen(pem), &len, err, sizeof(err));
    CHECK(p == NULL && strstr(err, "not sealed") != NULL);
    p = acme_seal_open(key1, "n", "acme-seal-v1:AAAA", 17, &len, err,
                       sizeof(err));
    CHECK(p == NULL && strstr(err, "malformed") != NULL);
}

UNIT_TEST(seal_key_parse)
{
    unsigned char  k[ACME_SEAL_KEY_LEN];
    char           err[512];
    /* openssl rand -base64 32 */
    const char    *b = "  q83vEjRWeJCrze8SNFZ4kKvN7xI0VniQq83vEjRWeJA=\n";

    CHECK(acme_seal_key_parse(b, strlen(b), k, err, sizeof(err)) == 0);
    CHECK(k[0] == 0xab && k[1] == 0xcd && k[31] == 0x90);
    CHECK(acme_seal_key_parse(key1, sizeof(key1), k, err, sizeof(err)) == 0);
    CHECK(memcmp(k, key1, sizeof(key1)) == 0);
    CHECK(acme_seal_key_parse("c2hvcnQ=", 8, k, err, sizeof(err)) == -1);
    CHECK(strstr(err, "openssl rand") != NULL && strstr(err, "c2hv") == NULL);
}
