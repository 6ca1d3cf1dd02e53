/*
 * The checks both servers make on what a challenge request carries: the
 * http-01 token of a request path (acme_token_ok), the ALPN protocol list
 * of a ClientHello (acme_alpn_offered), the SNI of a tls-alpn-01
 * handshake (acme_alpn_sni_identifier, RFC 8738 reverse names) and the
 * dns-01 record name (acme_dns01_record_name).  The input is the raw
 * bytes (for the C-string functions, up to the first NUL).  Properties:
 * an accepted token is base64url; an identifier fits its buffer and is
 * lowercase or an IP literal; a smaller buffer never overflows.
 */
#include <stdio.h>

#include <arpa/inet.h>

#include "acme_alpn.h"
#include "acme_dns.h"
#include "acme_util.h"
#include "fuzz.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char  *id;
    char        *s, *small, *rec, buf[256];
    size_t       i;

    if (acme_token_ok((const char *) data, size)) {
        FUZZ_ASSERT(size >= 1 && size <= ACME_TOKEN_MAX);
        for (i = 0; i < size; i++) {
            FUZZ_ASSERT(strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                               "0123456789-_", data[i]) != NULL
                        && data[i] != '\0');
        }
    }

    (void) acme_alpn_offered(data, size);

    s = fuzz_cstr(data, size);

    id = acme_alpn_sni_identifier(s, buf, sizeof(buf));
    if (id != NULL) {
        FUZZ_ASSERT(strlen(id) < sizeof(buf));
        for (i = 0; id[i]; i++) {
            FUZZ_ASSERT(!(id[i] >= 'A' && id[i] <= 'Z'));
        }
    }

    /* an exactly sized heap buffer, so ASan sees any overflow */
    small = malloc(16);
    FUZZ_ASSERT(small != NULL);
    id = acme_alpn_sni_identifier(s, small, 16);
    if (id != NULL) {
        FUZZ_ASSERT(strlen(id) < 16);
    }
    free(small);

    rec = acme_dns01_record_name(s);
    if (rec != NULL) {
        FUZZ_ASSERT(strncmp(rec, "_acme-challenge.", 16) == 0);
        free(rec);
    }

    free(s);
    return 0;
}
