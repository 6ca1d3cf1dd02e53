#include <limits.h>
#include <stdlib.h>
#include <jansson.h>

#include "unit.h"
#include "acme_job.h"
#include "acme_status.h"
#include "acme_status_view.h"
#include "acme_util.h"

static const char *const cert_keys[] = {
    "id", "names", "issuer", "directory", "key_type", "challenge", "state", "step",
    "serial", "ca_issuer", "not_before", "not_after", "next_renewal",
    "last_success", "last_error", "consecutive_failures", "store_error",
    "reason", "pending", "bridge", "managed", "days_left", "expiring",
    "subject", "sans", "file", "used_by", "orders", "renewals",
    "spki_pin", "next_spki_pin", "ari", "issuers"
};

UNIT_TEST(status_render_parse_back)
{
    static const char *const names[] = { "a.example.test", "b.example.test" };
    acme_status_cert_t   c[2];
    char                *s;
    size_t               len, i;
    json_t              *doc, *certs, *o;
    json_error_t         je;
    void                *it;

    memset(c, 0, sizeof(c));
    c[0].id = "a.example.test_ecdsa-256";
    c[0].names = names;
    c[0].n_names = 2;
    c[0].issuer = "pebble";
    c[0].directory = "https://127.0.0.1:14000/dir";
    c[0].key_type = "ecdsa:256";
    c[0].challenge = "dns-01";
    c[0].state = "valid";
    c[0].serial = "0A1B";
    c[0].ca_issuer = "CN=Pebble Intermediate CA";
    c[0].not_before = 1795000000LL;
    c[0].not_after = 1795000000LL + 86400;
    c[0].next_renewal = 1795000000LL + 3600;
    c[0].last_success = 1795000000LL;
    c[0].spki_pin = "nYz5bqNHLNnzSaTxmxN1p9ypfUdvI+c9/r5DW0JLmlM=";
    c[0].next_spki_pin = "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=";

    c[1].id = "c.example.test_rsa-2048";
    c[1].names = names + 1;
    c[1].n_names = 1;
    c[1].issuer = "pebble";
    c[1].directory = "https://127.0.0.1:14000/dir";
    c[1].key_type = "rsa:2048";
    c[1].state = "renewing";
    c[1].step = "challenge";
    c[1].serial = "";
    c[1].last_error = "new-order: urn:ietf:params:acme:error:rateLimited: \"x\"";
    c[1].store_error = "read-only file system";
    c[1].failures = 2;
    c[1].pending_at = 1795000000LL + 7200 - 60;
    c[1].pending_not_before = 1795000000LL + 7200;
    c[1].pending_not_after = 1795000000LL + 86400;
    c[1].pending_serial = "0C";
    /* ARI (RFC 9773): a window, the time chosen, an explanation */
    c[0].ari_start = 1795000000LL + 3600;
    c[0].ari_end = 1795000000LL + 7200;
    c[0].ari_at = 1795000000LL + 4000;
    c[0].ari_next_poll = 1795000000LL + 60;
    c[0].ari_explanation = "https://ca.test/why";

    s = acme_status_render("nginx", 1234, c, 2, 1795000000LL, &len);
    CHECK(s != NULL);
    if (s == NULL) {
        return;
    }
    CHECK_INT(len, strlen(s));
    CHECK(strstr(s, "\n  \"version\": 2,") != NULL);       /* indented by 2 */

    doc = json_loads(s, 0, &je);
    CHECK(doc != NULL);
    CHECK_INT(json_integer_value(json_object_get(doc, "version")), 2);
    CHECK_STR(json_string_value(json_object_get(doc, "server")), "nginx");
    CHECK_STR(json_string_value(json_object_get(doc, "generated_at")),
              "2026-11-18T11:06:40Z");
    CHECK_INT(json_integer_value(json_object_get(doc, "acme_pid")), 1234);

    /* top-level key order */
    it = json_object_iter(doc);
    CHECK_STR(json_object_iter_key(it), "version");
    it = json_object_iter_next(doc, it);
    CHECK_STR(json_object_iter_key(it), "server");
    it = json_object_iter_next(doc, it);
    CHECK_STR(json_object_iter_key(it), "generated_at");
    it = json_object_iter_next(doc, it);
    CHECK_STR(json_object_iter_key(it), "acme_pid");
    it = json_object_iter_next(doc, it);
    CHECK_STR(json_object_iter_key(it), "certificates");

    certs = json_object_get(doc, "certificates");
    CHECK_INT(json_array_size(certs), 2);

    o = json_array_get(certs, 0);
    it = json_object_iter(o);
    for (i = 0; i < sizeof(cert_keys) / sizeof(cert_keys[0]); i++) {
        CHECK_STR(json_object_iter_key(it), cert_keys[i]);
        it = json_object_iter_next(o, it);
    }
    CHECK(it == NULL);
    CHECK_STR(json_string_value(json_object_get(o, "id")), "a.example.test_ecdsa-256");
    CHECK_INT(json_array_size(json_object_get(o, "names")), 2);
    CHECK_STR(json_string_value(json_array_get(json_object_get(o, "names"), 1)),
              "b.example.test");
    CHECK_STR(json_string_value(json_object_get(o, "state")), "valid");
    CHECK_STR(json_string_value(json_object_get(o, "challenge")), "dns-01");
    CHECK(json_is_null(json_object_get(o, "step")));
    CHECK_STR(json_string_value(json_object_get(o, "serial")), "0A1B");
    CHECK_STR(json_string_value(json_object_get(o, "ca_issuer")), "CN=Pebble Intermediate CA");
    CHECK_STR(json_string_value(json_object_get(o, "not_before")), "2026-11-18T11:06:40Z");
    CHECK_STR(json_string_value(json_object_get(o, "not_after")), "2026-11-19T11:06:40Z");
    CHECK_STR(json_string_value(json_object_get(o, "next_renewal")), "2026-11-18T12:06:40Z");
    CHECK_STR(json_string_value(json_object_get(o, "last_success")), "2026-11-18T11:06:40Z");
    CHECK(json_is_null(json_object_get(o, "last_error")));
    CHECK_INT(json_integer_value(json_object_get(o, "consecutive_failures")), 0);
    CHECK(json_is_null(json_object_get(o, "store_error")));
    CHECK(json_is_null(json_object_get(o, "pending")));
    CHECK_STR(json_string_value(json_object_get(o, "spki_pin")),
              "nYz5bqNHLNnzSaTxmxN1p9ypfUdvI+c9/r5DW0JLmlM=");
    CHECK_STR(json_string_value(json_object_get(o, "next_spki_pin")),
              "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=");

    {
        json_t *a = json_object_get(o, "ari");

        CHECK(json_is_object(a));
        CHECK(json_is_true(json_object_get(a, "supported")));
        CHECK_STR(json_string_value(json_object_get(a, "window_start")),
                  "2026-11-18T12:06:40Z");
        CHECK_STR(json_string_value(json_object_get(a, "window_end")),
                  "2026-11-18T13:06:40Z");
        CHECK_STR(json_string_value(json_object_get(a, "renew_at")),
                  "2026-11-18T12:13:20Z");
        CHECK_STR(json_string_value(json_object_get(a, "next_poll")),
                  "2026-11-18T11:07:40Z");
        CHECK_STR(json_string_value(json_object_get(a, "explanation_url")),
                  "https://ca.test/why");
        CHECK(json_is_null(json_object_get(a, "error")));
    }

    o = json_array_get(certs, 1);
    /* never asked: null */
    CHECK(json_is_null(json_object_get(o, "ari")));
    CHECK_STR(json_string_value(json_object_get(o, "step")), "challenge");
    CHECK(json_is_null(json_object_get(o, "challenge")));
    CHECK(json_is_null(json_object_get(o, "serial")));
    CHECK(json_is_null(json_object_get(o, "spki_pin")));
    CHECK(json_is_null(json_object_get(o, "next_spki_pin")));
    CHECK(json_is_null(json_object_get(o, "ca_issuer")));
    CHECK(json_is_null(json_object_get(o, "not_before")));
    CHECK(json_is_null(json_object_get(o, "not_after")));
    CHECK(json_is_null(json_object_get(o, "next_renewal")));
    CHECK(json_is_null(json_object_get(o, "last_success")));
    CHECK_STR(json_string_value(json_object_get(o, "last_error")), c[1].last_error);
    CHECK_INT(json_integer_value(json_object_get(o, "consecutive_failures")), 2);
    CHECK_STR(json_string_value(json_object_get(o, "store_error")),
              "read-only file system");
    o = json_object_get(o, "pending");
    CHECK(json_is_object(o));
    CHECK_STR(json_string_value(json_object_get(o, "serial")), "0C");
    CHECK_STR(json_string_value(json_object_get(o, "not_before")), "2026-11-18T13:06:40Z");
    CHECK_STR(json_string_value(json_object_get(o, "not_after")), "2026-11-19T11:06:40Z");
    CHECK_STR(json_string_value(json_object_get(o, "activate_at")), "2026-11-18T13:05:40Z");
    CHECK(json_is_null(json_object_get(json_array_get(certs, 0), "bridge")));

    json_decref(doc);
    free(s);
}

UNIT_TEST(status_render_empty_and_no_pid)
{
    char         *s;
    json_t       *doc;
    json_error_t  je;

    s = acme_status_render("apache", 0, NULL, 0, 1795000000LL, NULL);
    CHECK(s != NULL);
    doc = s ? json_loads(s, 0, &je) : NULL;
    CHECK(doc != NULL);
    CHECK_STR(json_string_value(json_object_get(doc, "server")), "apache");
    CHECK(json_is_null(json_object_get(doc, "acme_pid")));
    CHECK(json_is_array(json_object_get(doc, "certificates")));
    CHECK_INT(json_array_size(json_object_get(doc, "certificates")), 0);
    json_decref(doc);
    free(s);
}

UNIT_TEST(status_render_invalid_utf8)
{
    acme_status_cert_t   c;
    char                *s;
    json_t              *doc;
    json_error_t         je;

    memset(&c, 0, sizeof(c));
    c.id = "x_ecdsa-256";
    c.state = "failed";
    c.last_error = "bad \xff byte";
    s = acme_status_render("nginx", -1, &c, 1, 1795000000LL, NULL);
    CHECK(s != NULL);
    doc = s ? json_loads(s, 0, &je) : NULL;
    CHECK(doc != NULL);
    CHECK(json_is_string(json_object_get(json_array_get(
          json_object_get(doc, "certificates"), 0), "last_error")));
    json_decref(doc);
    free(s);
}

UNIT_TEST(status_render_bridge)
{
    acme_status_cert_t   c;
    char                *s;
    json_t              *doc, *b;
    json_error_t         je;

    memset(&c, 0, sizeof(c));
    c.id = "x_ecdsa-256";
    c.state = "fallback";
    c.bridge_file = "/etc/letsencrypt/live/x/fullchain.pem";
    c.bridge_serial = "03AB";
    c.bridge_not_before = 1795000000LL;
    c.bridge_not_after = 1795000000LL + 86400;
    s = acme_status_render("apache", 0, &c, 1, 1795000000LL, NULL);
    CHECK(s != NULL);
    doc = s ? json_loads(s, 0, &je) : NULL;
    CHECK(doc != NULL);
    b = json_object_get(json_array_get(json_object_get(doc, "certificates"),
                                       0), "bridge");
    CHECK(json_is_object(b));
    CHECK_STR(json_string_value(json_object_get(b, "file")), c.bridge_file);
    CHECK_STR(json_string_value(json_object_get(b, "serial")), "03AB");
    CHECK_STR(json_string_value(json_object_get(b, "not_before")),
              "2026-11-18T11:06:40Z");
    CHECK_STR(json_string_value(json_object_get(b, "not_after")),
              "2026-11-19T11:06:40Z");
    json_decref(doc);
    free(s);
}

UNIT_TEST(status_render_unmanaged_and_window)
{
    static const char *const sans[] = { "static.example.test" };
    static const char *const used[] = { "static.example.test:443" };
    acme_status_cert_t   c;
    char                *s;
    json_t              *doc, *o;
    json_error_t         je;
    long long            now = 1795000000LL;

    /* 90-day certificate: the default window is its last 9 days */
    CHECK_INT(acme_status_expiring(now - 80 * 86400LL, now + 10 * 86400LL,
                                   0, now), 0);
    CHECK_INT(acme_status_expiring(now - 82 * 86400LL, now + 8 * 86400LL,
                                   0, now), 1);
    CHECK_INT(acme_status_expiring(now - 82 * 86400LL, now + 8 * 86400LL,
                                   7 * 86400LL, now), 0);
    CHECK_INT(acme_status_expiring(now - 90 * 86400LL, now - 1, 0, now), 1);
    CHECK_INT(acme_status_expiring(0, 0, 0, now), 0);

    memset(&c, 0, sizeof(c));
    c.id = "static.example.test";
    c.state = "expired";
    c.unmanaged = 1;
    c.subject = "CN=static.example.test";
    c.sans = sans;
    c.n_sans = 1;
    c.file = "/etc/ssl/static.pem";
    c.used_by = used;
    c.n_used_by = 1;
    c.not_before = now - 30 * 86400LL;
    c.not_after = now - 1;
    c.orders_valid = 3;
    c.orders_invalid = 1;
    c.renewals = 2;
    s = acme_status_render("nginx", 0, &c, 1, now, NULL);
    CHECK(s != NULL);
    doc = s ? json_loads(s, 0, &je) : NULL;
    CHECK(doc != NULL);
    o = json_array_get(json_object_get(doc, "certificates"), 0);
    CHECK(json_is_false(json_object_get(o, "managed")));
    CHECK_INT(json_integer_value(json_object_get(o, "days_left")), -1);
    CHECK(json_is_true(json_object_get(o, "expiring")));
    CHECK_STR(json_string_value(json_object_get(o, "subject")),
              "CN=static.example.test");
    CHECK_STR(json_string_value(json_array_get(json_object_get(o, "sans"), 0)),
              "static.example.test");
    CHECK_STR(json_string_value(json_object_get(o, "file")), c.file);
    CHECK_STR(json_string_value(json_array_get(json_object_get(o, "used_by"),
                                               0)), used[0]);
    CHECK_INT(json_integer_value(json_object_get(json_object_get(o, "orders"),
                                                 "valid")), 3);
    CHECK_INT(json_integer_value(json_object_get(json_object_get(o, "orders"),
                                                 "invalid")), 1);
    CHECK_INT(json_integer_value(json_object_get(o, "renewals")), 2);
    json_decref(doc);
    free(s);

    c.unmanaged = 0;
    c.not_after = 0;
    s = acme_status_render("nginx", 0, &c, 1, now, NULL);
    doc = s ? json_loads(s, 0, &je) : NULL;
    CHECK(doc != NULL);
    o = json_array_get(json_object_get(doc, "certificates"), 0);
    CHECK(json_is_true(json_object_get(o, "managed")));
    CHECK(json_is_null(json_object_get(o, "days_left")));
    CHECK(json_is_false(json_object_get(o, "expiring")));
    json_decref(doc);
    free(s);
}

/* times from a certificate or a state file can be anything: no overflow
 * (UBSan, t/test_fuzz.py's sanitizer run, checks these) */
UNIT_TEST(status_time_extremes)
{
    CHECK(acme_sub_sat(LLONG_MAX, -1) == LLONG_MAX);
    CHECK(acme_sub_sat(LLONG_MIN, 1) == LLONG_MIN);
    CHECK(acme_sub_sat(5, 7) == -2);
    CHECK_INT(acme_status_expiring(LLONG_MIN + 1, LLONG_MAX, 0, 0), 0);
    CHECK_INT(acme_status_expiring(LLONG_MIN, LLONG_MAX, LLONG_MAX, 0), 1);
    CHECK_INT(acme_status_expiring(-5, LLONG_MIN, 0, 0), 1);
    CHECK(acme_status_days_left(LLONG_MIN, LLONG_MAX) < 0);
    CHECK(acme_status_days_left(LLONG_MAX, LLONG_MIN) > 0);
    CHECK(acme_status_days_left(100, 100 + 1) == -1);
    CHECK(acme_status_days_left(100, 100 + 86400) == -1);
    CHECK(acme_status_days_left(100, 100 + 86401) == -2);
    CHECK(acme_status_days_left(100 + 86399, 100) == 0);
}

/* dates far apart (a certificate can carry any, the fuzzer found them):
 * no signed overflow, the same answers */
UNIT_TEST(status_expiring_extreme_dates)
{
    const long long big = 7305793467240297013LL, small = -7838719453664022006LL;

    CHECK_INT(acme_status_expiring(small, big, 0, 1800000000LL), 0);
    CHECK_INT(acme_status_expiring(small, big, 0, big), 1);
    CHECK_INT(acme_status_expiring(small, small + 10, 0, big), 1);
    CHECK_INT(acme_status_expiring(0, big, 0, small), 0);
    CHECK_INT(acme_status_expiring(small, -1, 0, big), 1);
}

/* the shared store (issue 15): "store" and each certificate's "fleet" only
 * with one; Prometheus acme_store_reachable */
UNIT_TEST(status_render_store)
{
    acme_status_cert_t   c[2];
    acme_job_status_t    rec;
    char                *s;
    json_t              *doc, *st, *f;
    json_error_t         je;

    memset(c, 0, sizeof(c));
    memset(&rec, 0, sizeof(rec));
    acme_job_status_fleet(&rec, "wait", "node-b");
    acme_job_status_view(&rec, 1795000000LL, NULL, 0, &c[0]);
    c[0].id = "x_ecdsa-256";
    c[0].fleet = 1;
    c[1].id = "/etc/ssl/y.pem";
    c[1].state = "valid";
    c[1].unmanaged = 1;
    c[1].fleet = 1;

    s = acme_status_render_store("nginx", 1, "{\"backend\": \"etcd\", "
                                 "\"node\": \"a\", \"reachable\": true}",
                                 c, 2, 1795000000LL, NULL);
    doc = s ? json_loads(s, 0, &je) : NULL;
    CHECK(doc != NULL);
    st = json_object_get(doc, "store");
    CHECK(json_is_true(json_object_get(st, "reachable")));
    CHECK_STR(json_string_value(json_object_get(st, "node")), "a");
    f = json_object_get(json_array_get(json_object_get(doc, "certificates"),
                                       0), "fleet");
    CHECK_STR(json_string_value(json_object_get(f, "action")), "wait");
    CHECK_STR(json_string_value(json_object_get(f, "holder")), "node-b");
    /* an unmanaged certificate has none */
    CHECK(json_object_get(json_array_get(json_object_get(doc, "certificates"),
                                         1), "fleet") == NULL);
    json_decref(doc);
    free(s);

    /* before the first round: null; "idle" before any decision */
    acme_job_status_fleet(&rec, NULL, NULL);
    acme_job_status_view(&rec, 1795000000LL, NULL, 0, &c[0]);
    s = acme_status_render_store("nginx", 1, "", c, 1, 1795000000LL, NULL);
    doc = s ? json_loads(s, 0, &je) : NULL;
    CHECK(doc != NULL);
    CHECK(json_is_null(json_object_get(doc, "store")));
    f = json_object_get(json_array_get(json_object_get(doc, "certificates"),
                                       0), "fleet");
    CHECK_STR(json_string_value(json_object_get(f, "action")), "idle");
    CHECK(json_is_null(json_object_get(f, "holder")));
    json_decref(doc);
    free(s);

    /* no store: neither key */
    c[0].fleet = 0;
    s = acme_status_render("nginx", 1, c, 1, 1795000000LL, NULL);
    doc = s ? json_loads(s, 0, &je) : NULL;
    CHECK(doc != NULL && json_object_get(doc, "store") == NULL);
    CHECK(json_object_get(json_array_get(json_object_get(doc, "certificates"),
                                         0), "fleet") == NULL);
    json_decref(doc);
    free(s);

    s = acme_status_prometheus_store(c, 1, 1795000000LL,
                                     "{\"reachable\": false}", NULL);
    CHECK(s != NULL && strstr(s, "\nacme_store_reachable 0\n") != NULL);
    free(s);
    s = acme_status_prometheus(c, 1, 1795000000LL, NULL);
    CHECK(s != NULL && strstr(s, "acme_store_reachable") == NULL);
    free(s);
}
