/*
 * bench/keepalive.sh's client: n GETs of url with the blocking transport of
 * common/io (Apache's): on one transport with keep-alive ("keep"), on one
 * transport without it (a new connection each, the TLS session resumed:
 * "resume"), or one acme_transport_exchange() each (a new connection and a
 * full handshake each, as before keep-alive: "fresh").  Prints the
 * milliseconds per request.
 *
 *   keepalive_client URL CA_FILE N keep|resume|fresh
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "acme_transport.h"
#include "acme_util.h"

int
main(int argc, char **argv)
{
    acme_transport_opts_t  o;
    acme_transport_t      *t;
    acme_http_request_t    req;
    acme_http_parser_t    *p;
    char                   err[ACME_ERRLEN];
    long long              start;
    int                    i, n;

    if (argc != 5) {
        fprintf(stderr, "usage: %s URL CA_FILE N keep|resume|fresh\n",
                argv[0]);
        return 2;
    }
    n = atoi(argv[3]);

    memset(&o, 0, sizeof(o));
    o.ca_file = argv[2];
    o.verify = 1;
    o.keepalive_ms = strcmp(argv[4], "keep") == 0 ? 0 : -1;

    memset(&req, 0, sizeof(req));
    req.method = "GET";
    req.url = argv[1];

    t = acme_transport_new(&o);
    if (t == NULL || n <= 0) {
        return 1;
    }

    start = acme_monotonic_ms();
    for (i = 0; i < n; i++) {
        p = strcmp(argv[4], "fresh") == 0
            ? acme_transport_exchange(&o, &req, err, sizeof(err))
            : acme_transport_request(t, &req, err, sizeof(err));
        if (p == NULL || acme_http_parser_response(p)->status != 200) {
            fprintf(stderr, "request %d: %s\n", i, p ? "not 200" : err);
            acme_http_parser_free(p);
            acme_transport_free(t);
            return 1;
        }
        acme_http_parser_free(p);
    }
    printf("%.3f\n", (double) (acme_monotonic_ms() - start) / n);

    acme_transport_free(t);
    return 0;
}
