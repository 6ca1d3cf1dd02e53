/*
 * Status rendering (acme_status_render) of whatever the status fields
 * hold: names from the configuration, and serial, issuer and errors that
 * come from a CA's certificate and problem documents.  Input: lines
 * (split at '\n'); the first 11 are id, names (split at ','), issuer,
 * directory, key type, state, step, serial, ca_issuer, last_error,
 * challenge, an empty line meaning NULL; the bytes of the following line
 * seed the numbers.  Two certificates are rendered: the parsed one and a
 * copy with every string NULL.  Property: the output is valid JSON with
 * both certificates.
 */
#include <stdio.h>

#include <jansson.h>

#include "acme_status.h"
#include "fuzz.h"

#define NFIELDS 11

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    acme_status_cert_t   c[2];
    const char          *f[NFIELDS], *names[8];
    char                *s, *p, *nl, *out;
    size_t               i, n, len;
    long long            v[4];
    json_t              *j;
    json_error_t         jerr;

    s = fuzz_cstr(data, size);
    memset(f, 0, sizeof(f));
    memset(v, 0, sizeof(v));
    p = s;
    for (i = 0; i < NFIELDS && p != NULL; i++) {
        nl = strchr(p, '\n');
        if (nl != NULL) {
            *nl = '\0';
        }
        f[i] = *p ? p : NULL;
        p = nl ? nl + 1 : NULL;
    }
    if (p != NULL) {
        for (i = 0; p[i] != '\0' && i < 4 * 8; i++) {
            v[i / 8] = (long long) ((unsigned long long) v[i / 8] << 8
                                    | (unsigned char) p[i]);
        }
    }

    /* names: field 1 split at ',' */
    n = 0;
    if (f[1] != NULL) {
        p = (char *) f[1];
        while (n < 8) {
            names[n++] = p;
            if ((p = strchr(p, ',')) == NULL) {
                break;
            }
            *p++ = '\0';
        }
    }

    memset(c, 0, sizeof(c));
    c[0].id = f[0];
    c[0].names = names;
    c[0].n_names = n;
    c[0].issuer = f[2];
    c[0].directory = f[3];
    c[0].key_type = f[4];
    c[0].state = f[5];
    c[0].step = f[6];
    c[0].serial = f[7];
    c[0].ca_issuer = f[8];
    c[0].last_error = f[9];
    c[0].challenge = f[10];
    c[0].not_before = v[0];
    c[0].not_after = v[1];
    c[0].next_renewal = v[2];
    c[0].last_success = v[3];
    c[0].failures = (unsigned) v[0];
    c[1].not_after = -v[1];

    out = acme_status_render("nginx", (long) v[3], c, 2, FUZZ_T0, &len);
    FUZZ_ASSERT(out != NULL);
    FUZZ_ASSERT(strlen(out) == len);
    j = json_loads(out, 0, &jerr);
    FUZZ_ASSERT(j != NULL);
    FUZZ_ASSERT(json_array_size(json_object_get(j, "certificates")) == 2);
    json_decref(j);
    free(out);
    free(s);
    return 0;
}
