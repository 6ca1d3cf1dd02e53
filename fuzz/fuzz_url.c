/*
 * URLs the CA hands out (directory entries, Location headers, order and
 * authorization URLs) as the transports parse them (acme_url_parse), and
 * the request each one becomes (acme_http_serialize).  The input is the
 * URL.  Properties: a parsed URL has a host, a port in 1..65535 and a path
 * starting with '/', and its request line has no CR or LF inside.
 */
#include <stdio.h>

#include "acme_http.h"
#include "acme_util.h"
#include "fuzz.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    acme_url_t           u;
    acme_http_request_t  req;
    char                *s, *wire, *eol, err[ACME_ERRLEN];
    size_t               len;

    s = fuzz_cstr(data, size);
    err[0] = '\0';
    if (acme_url_parse(s, &u, err, sizeof(err)) == 0) {
        FUZZ_ASSERT(u.host != NULL && *u.host != '\0');
        FUZZ_ASSERT(u.port >= 1 && u.port <= 65535);
        FUZZ_ASSERT(u.path != NULL && u.path[0] == '/');
        FUZZ_ASSERT(u.host_header != NULL);

        memset(&req, 0, sizeof(req));
        req.method = "POST";
        req.url = s;
        req.body = "{}";
        req.body_len = 2;
        req.content_type = "application/jose+json";
        wire = acme_http_serialize(&req, &u, NULL, &len);
        FUZZ_ASSERT(wire != NULL);
        eol = memchr(wire, '\n', len);
        FUZZ_ASSERT(eol != NULL && eol > wire && eol[-1] == '\r');
        FUZZ_ASSERT(memchr(wire, '\r', (size_t) (eol - 1 - wire)) == NULL);
        free(wire);
        acme_url_free(&u);
    } else {
        FUZZ_ASSERT(err[0] != '\0');
    }
    free(s);
    return 0;
}
