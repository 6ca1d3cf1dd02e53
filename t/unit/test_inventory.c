/*
 * The inventory of certificates loaded from files (acme_inventory.h,
 * acme_inventory_file.h) and acme_key_desc.
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "unit.h"
#include "acme_cert.h"
#include "acme_inventory.h"
#include "acme_inventory_file.h"
#include "acme_key.h"
#include "acme_status.h"
#include "acme_status_view.h"
#include "acme_util.h"

static const char *const inv_names[] = { "static.example.test", "192.0.2.9" };

UNIT_TEST(key_desc_names_every_key)
{
    EVP_PKEY *k;
    char      buf[24];

    k = acme_key_generate(ACME_KEY_EC_P384);
    CHECK_STR(acme_key_desc(k, buf, sizeof(buf)), "ecdsa:384");
    EVP_PKEY_free(k);

    k = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t) 1024);
    CHECK_STR(acme_key_desc(k, buf, sizeof(buf)), "rsa:1024");
    EVP_PKEY_free(k);

    k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "secp256k1");
    CHECK_STR(acme_key_desc(k, buf, sizeof(buf)), "ecdsa:256");
    EVP_PKEY_free(k);

    k = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    CHECK_STR(acme_key_desc(k, buf, sizeof(buf)), "ed25519");
    EVP_PKEY_free(k);

    CHECK_STR(acme_key_desc(NULL, buf, sizeof(buf)), "unknown");
}

static char *
write_file(const char *dir, const char *name, const char *data)
{
    char *path = acme_sprintf("%s/%s", dir, name);
    FILE *f = path ? fopen(path, "w") : NULL;

    if (f != NULL) {
        fputs(data, f);
        fclose(f);
    }
    return path;
}

static json_t *
render_one(const acme_status_cert_t *c, long long now, json_t **doc)
{
    char         *s;
    json_error_t  je;

    s = acme_status_render("nginx", 0, c, 1, now, NULL);
    *doc = s ? json_loads(s, 0, &je) : NULL;
    free(s);
    return *doc ? json_array_get(json_object_get(*doc, "certificates"), 0)
                : NULL;
}

UNIT_TEST(inventory_one_entry_per_file)
{
    EVP_PKEY            *key = acme_key_generate(ACME_KEY_EC_P256);
    char                *dir = unit_tmpdir(), *pem, *keypem, *both, *f1, *f2,
                        *f3, *f4, *missing;
    acme_inventory_t     inv;
    acme_status_cert_t   st;
    json_t              *doc, *o;
    long long            now = (long long) time(NULL);

    CHECK(key != NULL && dir != NULL);
    if (key == NULL || dir == NULL) {
        return;
    }
    pem = acme_selfsigned_pem(key, inv_names, 2, 90, NULL);
    keypem = acme_key_to_pem(key, NULL);
    both = acme_sprintf("%s%s", keypem, pem);       /* key first: fine */
    f1 = write_file(dir, "a.pem", pem);
    f2 = write_file(dir, "both.pem", both);
    f3 = write_file(dir, "junk.pem", "not a certificate\n");
    f4 = write_file(dir, "other.pem", pem);
    missing = acme_sprintf("%s/missing.pem", dir);

    memset(&inv, 0, sizeof(inv));
    CHECK_INT(acme_inventory_add_file(&inv, f1, "b.example.test"), 0);
    CHECK_INT(acme_inventory_add_file(&inv, f1, "a.example.test"), 0);
    CHECK_INT(acme_inventory_add_file(&inv, f1, "b.example.test"), 0);
    CHECK_INT(acme_inventory_add_file(&inv, f2, "c.example.test"), 0);
    CHECK_INT(acme_inventory_add_file(&inv, f3, "d.example.test"), 0);
    CHECK_INT(acme_inventory_add_file(&inv, missing, "e.example.test"), 0);
    CHECK_INT(acme_inventory_add_file(&inv, f4, NULL), 0);
    CHECK_INT(inv.n, 5);
    if (inv.n != 5) {
        goto done;
    }

    /* one entry for f1, both users once, sorted */
    CHECK_STR(inv.certs[0].file, f1);
    CHECK(inv.certs[0].error == NULL);
    CHECK_INT(inv.certs[0].n_used_by, 2);
    CHECK_STR(inv.certs[0].used_by[0], "a.example.test");
    CHECK_STR(inv.certs[0].used_by[1], "b.example.test");
    CHECK(inv.certs[1].error == NULL);              /* key + certificate */
    CHECK_STR(inv.certs[1].info.serial, inv.certs[0].info.serial);
    CHECK(inv.certs[2].error != NULL
          && strstr(inv.certs[2].error, "no certificate") != NULL);
    CHECK(inv.certs[3].error != NULL
          && strstr(inv.certs[3].error, "no such file") != NULL);
    CHECK_INT(inv.certs[4].n_used_by, 0);

    /* the status entry of a parsed one */
    acme_inventory_status(&inv.certs[0], now, &st);
    CHECK_INT(st.unmanaged, 1);
    CHECK_STR(st.id, f1);
    CHECK_STR(st.file, f1);
    CHECK_STR(st.state, "valid");
    CHECK_STR(st.key_type, "ecdsa:256");
    CHECK_STR(st.subject, "CN=static.example.test");
    CHECK_STR(st.ca_issuer, "CN=static.example.test");
    CHECK_STR(st.serial, inv.certs[0].info.serial);
    CHECK(st.issuer == NULL && st.directory == NULL && st.challenge == NULL);
    CHECK_INT(st.n_sans, 2);
    CHECK_INT(st.n_names, 2);
    CHECK_INT(st.n_used_by, 2);

    o = render_one(&st, now, &doc);
    CHECK(o != NULL);
    if (o != NULL) {
        CHECK(json_is_false(json_object_get(o, "managed")));
        CHECK_STR(json_string_value(json_object_get(o, "file")), f1);
        CHECK_STR(json_string_value(json_array_get(
                      json_object_get(o, "sans"), 1)), "192.0.2.9");
        CHECK_STR(json_string_value(json_array_get(
                      json_object_get(o, "used_by"), 1)), "b.example.test");
        CHECK_INT(json_integer_value(json_object_get(o, "days_left")), 89);
        CHECK(json_is_false(json_object_get(o, "expiring")));
        CHECK(json_is_null(json_object_get(o, "issuer")));
        CHECK(json_is_null(json_object_get(o, "next_renewal")));
    }
    json_decref(doc);

    /* one that cannot be read: failed, with the error */
    acme_inventory_status(&inv.certs[3], now, &st);
    CHECK_STR(st.state, "failed");
    CHECK(st.last_error != NULL && strstr(st.last_error, "missing.pem") == NULL
          && strstr(st.last_error, "no such file") != NULL);
    CHECK_STR(st.id, missing);
    CHECK_INT(st.not_after, 0);
    o = render_one(&st, now, &doc);
    CHECK(o != NULL && json_is_null(json_object_get(o, "days_left")));
    CHECK(o != NULL && json_is_false(json_object_get(o, "expiring")));
    json_decref(doc);

done:
    acme_inventory_free(&inv);
    CHECK(inv.n == 0 && inv.certs == NULL);
    acme_inventory_free(&inv);                      /* idempotent */
    unlink(f1);
    unlink(f2);
    unlink(f3);
    unlink(f4);
    rmdir(dir);
    free(f1);
    free(f2);
    free(f3);
    free(f4);
    free(missing);
    free(both);
    free(keypem);
    free(pem);
    free(dir);
    EVP_PKEY_free(key);
}

UNIT_TEST(inventory_states_and_expiring)
{
    acme_inventory_cert_t  c;
    acme_status_cert_t     st;
    json_t                *doc, *o;
    long long              now = 1795000000LL, day = 86400;

    memset(&c, 0, sizeof(c));
    c.file = "/etc/ssl/x.pem";
    snprintf(c.info.serial, sizeof(c.info.serial), "0A");
    snprintf(c.info.key_name, sizeof(c.info.key_name), "rsa:1024");

    /* 2 days left of 90: inside the default window (10 %) */
    c.info.not_before = now - 88 * day;
    c.info.not_after = now + 2 * day;
    acme_inventory_status(&c, now, &st);
    CHECK_STR(st.state, "valid");
    CHECK_STR(st.key_type, "rsa:1024");
    CHECK_INT(acme_status_expiring(st.not_before, st.not_after,
                                   st.warn_window, now), 1);
    o = render_one(&st, now, &doc);
    CHECK(o != NULL && json_is_true(json_object_get(o, "expiring")));
    CHECK(o != NULL
          && json_integer_value(json_object_get(o, "days_left")) == 2);
    json_decref(doc);

    /* expired a day ago */
    c.info.not_before = now - 91 * day;
    c.info.not_after = now - day;
    acme_inventory_status(&c, now, &st);
    CHECK_STR(st.state, "expired");
    o = render_one(&st, now, &doc);
    CHECK(o != NULL
          && json_integer_value(json_object_get(o, "days_left")) == -1);
    CHECK(o != NULL && json_is_true(json_object_get(o, "expiring")));
    json_decref(doc);

    /* at not_after exactly: expired */
    c.info.not_after = now;
    acme_inventory_status(&c, now, &st);
    CHECK_STR(st.state, "expired");

    /* notBefore ahead */
    c.info.not_before = now + 60;
    c.info.not_after = now + 90 * day;
    acme_inventory_status(&c, now, &st);
    CHECK_STR(st.state, "not yet valid");
    CHECK_INT(acme_status_expiring(st.not_before, st.not_after,
                                   st.warn_window, now), 0);

    /* no key name: null */
    c.info.key_name[0] = '\0';
    acme_inventory_status(&c, now, &st);
    CHECK(st.key_type == NULL);
}

UNIT_TEST(inventory_states_in_the_views)
{
    acme_inventory_cert_t  c[2];
    acme_status_cert_t     st[2];
    char                  *prom, *html;
    long long              now = 1795000000LL;

    memset(c, 0, sizeof(c));
    c[0].file = "/etc/ssl/missing.pem";
    c[0].error = "cannot read the certificate: no such file";
    c[1].file = "/etc/ssl/ahead.pem";
    c[1].info.not_before = now + 3600;
    c[1].info.not_after = now + 90 * 86400;
    acme_inventory_status(&c[0], now, &st[0]);
    acme_inventory_status(&c[1], now, &st[1]);

    /* the inventory's state, not one derived from the dates alone */
    prom = acme_status_prometheus(st, 2, now, NULL);
    CHECK(prom != NULL);
    if (prom != NULL) {
        CHECK(strstr(prom, "id=\"/etc/ssl/missing.pem\"") != NULL);
        CHECK(strstr(prom, "state=\"failed\"} 1\n") != NULL);
        CHECK(strstr(prom, "state=\"not yet valid\"} 1\n") != NULL);
        CHECK(strstr(prom, "state=\"valid\"} 1\n") == NULL);
    }
    html = acme_status_html("nginx", 0, st, 2, now, NULL);
    CHECK(html != NULL);
    if (html != NULL) {
        CHECK(strstr(html, ">failed</span>") != NULL);
        CHECK(strstr(html, ">not yet valid</span>") != NULL);
    }
    free(prom);
    free(html);
}
