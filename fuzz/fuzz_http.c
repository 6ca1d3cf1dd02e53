/*
 * The HTTP/1.1 response parser (acme_http_parser_*), as both transports
 * feed it whatever the socket returned.  Input: one control byte, then the
 * response bytes.  Control byte: the low 6 bits + 1 are the size of the
 * pieces fed (63 -> all at once), bit 6 makes the request a HEAD, bit 7
 * lowers the body limit to 64 bytes.  Seeds use printable control bytes
 * ('0' = pieces of 49 bytes...).  Properties: a DONE response has its
 * strings NUL-terminated and its body within the limit; the Retry-After
 * it carries parses within bounds; its Link targets (acme_http_links) are
 * at most max absolute http(s) URLs without spaces, quotes or angle
 * brackets.
 */
#include <stdio.h>
#include <strings.h>

#include "acme_http.h"
#include "acme_sched.h"
#include "fuzz.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    acme_http_parser_t          *p;
    const acme_http_response_t  *r;
    char                        *links[4];
    size_t                       piece, off, n, max, i, nl;
    long long                    ra;
    int                          rc;

    if (size < 1) {
        return 0;
    }
    piece = (data[0] & 0x3f) == 0x3f ? size : (size_t) (data[0] & 0x3f) + 1;
    max = data[0] & 0x80 ? 64 : 0;
    p = acme_http_parser_new(max);
    if (p == NULL) {
        return 0;
    }
    if (data[0] & 0x40) {
        acme_http_parser_set_head(p);
    }
    data++;
    size--;

    rc = ACME_HTTP_AGAIN;
    for (off = 0; off < size && rc == ACME_HTTP_AGAIN; off += n) {
        n = size - off < piece ? size - off : piece;
        rc = acme_http_parser_feed(p, (const char *) data + off, n);
    }
    if (rc == ACME_HTTP_AGAIN) {
        rc = acme_http_parser_eof(p);
    }
    FUZZ_ASSERT(rc == ACME_HTTP_DONE || rc == ACME_HTTP_ERROR);

    r = acme_http_parser_response(p);
    if (rc == ACME_HTTP_DONE) {
        FUZZ_ASSERT(r != NULL && r->status >= 200 && r->status <= 999);
        FUZZ_ASSERT(r->body != NULL && r->body[r->body_len] == '\0');
        FUZZ_ASSERT(r->body_len <= (max ? max : ACME_HTTP_MAX_BODY));
        if (r->location) (void) strlen(r->location);
        if (r->replay_nonce) (void) strlen(r->replay_nonce);
        if (r->content_type) (void) strlen(r->content_type);
        ra = acme_sched_parse_retry_after(r->retry_after, FUZZ_T0);
        FUZZ_ASSERT(ra == 0 || (ra >= FUZZ_T0 && ra <= FUZZ_T0 + 7 * 86400));
        nl = acme_http_links(r->link, "alternate", "https://ca.test/cert/1",
                             links, 4);
        FUZZ_ASSERT(nl <= 4);
        for (i = 0; i < nl; i++) {
            FUZZ_ASSERT(strncasecmp(links[i], "http", 4) == 0
                        && strstr(links[i], "://") != NULL);
            FUZZ_ASSERT(strpbrk(links[i], " \t\r\n<>\"") == NULL);
            free(links[i]);
        }
    } else {
        FUZZ_ASSERT(r == NULL);
        FUZZ_ASSERT(strlen(acme_http_parser_error(p)) > 0);
    }

    acme_http_parser_free(p);
    return 0;
}
