/*
 * The challenge table (common/core/acme_chal_table.h) at the size an nginx
 * zone gives it (an eighth of the zone), 90 % full, half http-01, half
 * tls-alpn-01: the time of a find (the request / handshake path) and of a
 * remove + add (a writer), averaged over many.  bench/chal_table.sh builds
 * and runs it.
 *
 *   chal_table ZONE_BYTES [ITERATIONS]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "acme_chal_table.h"

static double
now(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

int
main(int argc, char **argv)
{
    char                key[32], id[32], out[ACME_CHAL_KEYAUTHZ_MAX + 1];
    void               *mem;
    size_t              size;
    unsigned            i, k, fill, iters, hits = 0;
    double              t0, t1, t2;
    acme_chal_table_t  *t;

    if (argc < 2) {
        fprintf(stderr, "usage: chal_table ZONE_BYTES [ITERATIONS]\n");
        return 2;
    }
    size = (size_t) strtoull(argv[1], NULL, 10) / 8;
    iters = argc > 2 ? (unsigned) strtoul(argv[2], NULL, 10) : 100000;
    mem = aligned_alloc(4096, (size + 4095) / 4096 * 4096);
    t = mem ? acme_chal_table_init(mem, size) : NULL;
    if (t == NULL || iters == 0) {
        fprintf(stderr, "chal_table: no table in %zu bytes\n", size);
        return 1;
    }

    fill = t->capacity * 9 / 10 + 1;
    for (i = 0; i < fill; i++) {
        snprintf(key, sizeof(key), "token%u", i);
        snprintf(id, sizeof(id), "host%u.example.test", i);
        acme_chal_table_add(t, i & 1 ? ACME_CHAL_TLS_ALPN_01
                                     : ACME_CHAL_HTTP_01, id, key, key, 1, 1);
    }

    t0 = now();
    for (i = 0; i < iters; i++) {
        k = (unsigned) ((i * 2654435761u) % fill);
        if (k & 1) {
            snprintf(id, sizeof(id), "HOST%u.example.test", k);
            hits += acme_chal_table_find(t, ACME_CHAL_TLS_ALPN_01, id,
                                         strlen(id), 1, out, sizeof(out)) >= 0;
        } else {
            snprintf(key, sizeof(key), "token%u", k);
            hits += acme_chal_table_find(t, ACME_CHAL_HTTP_01, key,
                                         strlen(key), 1, out, sizeof(out)) >= 0;
        }
    }
    t1 = now();
    for (i = 0; i < iters; i++) {
        snprintf(key, sizeof(key), "token%u", (unsigned) (i * 2 % fill));
        acme_chal_table_remove(t, key, 1);
        acme_chal_table_add(t, ACME_CHAL_HTTP_01, NULL, key, key, 1, 1);
    }
    t2 = now();

    printf("zone %zu KB: capacity %u, %u entries: find %.0f ns, "
           "remove + add %.0f ns (%u of %u found)\n",
           size * 8 / 1024, (unsigned) t->capacity, fill,
           (t1 - t0) / iters * 1e9, (t2 - t1) / iters * 1e9, hits, iters);
    free(mem);
    return hits == iters ? 0 : 1;
}
