/*
 * The status views (acme_status_view.h): the view chosen per request, the
 * Prometheus text, the HTML page and mod_status' lines, and the order
 * counters of the status record (acme_job_status_ordered).
 */
#include <stdlib.h>
#include <string.h>

#include "unit.h"
#include "acme_job.h"
#include "acme_status_view.h"

#define NOW 1795000000LL
#define DAY 86400LL

static const char *const names_a[] = { "a.example.test", "b.example.test" };
static const char *const names_q[] = { "q\"uote.example.test" };
static const char *const names_x[] = { "x<y>&.example.test" };

/* 0 valid, 1 expired, 2 failed (no certificate), 3 expiring, 4 unmanaged
 * file certificate, valid, 5 renewing */
static void
fill(acme_status_cert_t *c)
{
    memset(c, 0, 6 * sizeof(*c));

    c[0].id = "a.example.test_ecdsa-256";
    c[0].names = names_a;
    c[0].n_names = 2;
    c[0].issuer = "pebble";
    c[0].key_type = "ecdsa:256";
    c[0].state = "valid";
    c[0].not_before = NOW - DAY;
    c[0].not_after = NOW + 89 * DAY;
    c[0].next_renewal = NOW + 59 * DAY;
    c[0].orders_valid = 3;
    c[0].orders_invalid = 1;
    c[0].renewals = 2;
    c[0].spki_pin = "CURPIN+/=";
    c[0].next_spki_pin = "NEXTPIN+/=";

    c[1].id = "old.example.test_rsa-2048";
    c[1].names = names_x;
    c[1].n_names = 1;
    c[1].issuer = "pe\\bble";
    c[1].key_type = "rsa:2048";
    c[1].state = "expired";
    c[1].not_before = NOW - 90 * DAY;
    c[1].not_after = NOW - 2 * DAY;

    c[2].id = "q.example.test_ecdsa-256";
    c[2].names = names_q;
    c[2].n_names = 1;
    c[2].issuer = "pebble";
    c[2].key_type = "ecdsa:256";
    c[2].state = "failed";
    c[2].failures = 2;
    c[2].last_error = "new-order: <script>alert(1)</script>\nline two";
    c[2].next_renewal = NOW + 600;
    c[2].orders_invalid = 2;

    c[3].id = "soon.example.test_ecdsa-256";
    c[3].names = names_a + 1;
    c[3].n_names = 1;
    c[3].issuer = "pebble";
    c[3].key_type = "ecdsa:256";
    c[3].state = "valid";
    c[3].not_before = NOW - 85 * DAY;
    c[3].not_after = NOW + 5 * DAY;

    c[4].id = "file:/etc/ssl/static.pem";
    c[4].names = names_a;
    c[4].n_names = 1;
    c[4].issuer = NULL;
    c[4].ca_issuer = "CN=Some CA";
    c[4].state = "valid";
    c[4].unmanaged = 1;
    c[4].file = "/etc/ssl/static.pem";
    c[4].not_before = NOW - DAY;
    c[4].not_after = NOW + 300 * DAY;

    c[5].id = "r.example.test_ecdsa-256";
    c[5].names = names_a;
    c[5].n_names = 1;
    c[5].issuer = "pebble";
    c[5].key_type = "ecdsa:256";
    c[5].state = "renewing";
    c[5].step = "challenge";
    c[5].not_before = NOW - DAY;
    c[5].not_after = NOW + 60 * DAY;
}

UNIT_TEST(status_view_format)
{
    CHECK_INT(acme_status_format(NULL, 0, NULL), ACME_STATUS_JSON);
    CHECK_INT(acme_status_format("format=html", 11, NULL), ACME_STATUS_HTML);
    CHECK_INT(acme_status_format("a=1&format=prometheus&b", 23, "text/html"),
              ACME_STATUS_PROMETHEUS);
    CHECK_INT(acme_status_format("format=json", 11, "text/html"),
              ACME_STATUS_JSON);
    CHECK_INT(acme_status_format("format=xml", 10, NULL), -1);
    CHECK_INT(acme_status_format("format=", 7, NULL), -1);
    /* only the given length counts */
    CHECK_INT(acme_status_format("format=htmlx", 11, NULL), ACME_STATUS_HTML);
    CHECK_INT(acme_status_format("xformat=html", 12, NULL), ACME_STATUS_JSON);

    /* a browser */
    CHECK_INT(acme_status_format(NULL, 0, "text/html,application/xhtml+xml,"
                                 "application/xml;q=0.9,*/*;q=0.8"),
              ACME_STATUS_HTML);
    /* Prometheus' scraper */
    CHECK_INT(acme_status_format(NULL, 0, "application/openmetrics-text;"
                                 "version=1.0.0,application/openmetrics-text;"
                                 "version=0.0.1;q=0.75,text/plain;"
                                 "version=0.0.4;q=0.5,*/*;q=0.1"),
              ACME_STATUS_PROMETHEUS);
    CHECK_INT(acme_status_format(NULL, 0, "text/plain; version=0.0.4"),
              ACME_STATUS_PROMETHEUS);
    CHECK_INT(acme_status_format(NULL, 0, "TEXT/PLAIN"),
              ACME_STATUS_PROMETHEUS);
    CHECK_INT(acme_status_format(NULL, 0, "*/*"), ACME_STATUS_JSON);
    CHECK_INT(acme_status_format(NULL, 0, "application/json"),
              ACME_STATUS_JSON);
    /* the highest q wins, then the first */
    CHECK_INT(acme_status_format(NULL, 0, "text/html;q=0.5, text/plain"),
              ACME_STATUS_PROMETHEUS);
    CHECK_INT(acme_status_format(NULL, 0, "application/json, text/html"),
              ACME_STATUS_JSON);
    CHECK_INT(acme_status_format(NULL, 0, "text/html;q=0"), ACME_STATUS_JSON);

    CHECK_STR(acme_status_content_type(ACME_STATUS_PROMETHEUS),
              "text/plain; version=0.0.4; charset=utf-8");
    CHECK_STR(acme_status_content_type(ACME_STATUS_HTML),
              "text/html; charset=utf-8");
    CHECK_STR(acme_status_content_type(ACME_STATUS_JSON), "application/json");
}

UNIT_TEST(status_view_order_counts)
{
    acme_status_cert_t    c[6];
    acme_status_counts_t  k;
    size_t                idx[6];

    fill(c);
    acme_status_order(c, 6, NOW, idx);
    /* expired, failed, expiring, renewing, then the valid ones by expiry */
    CHECK_INT(idx[0], 1);
    CHECK_INT(idx[1], 2);
    CHECK_INT(idx[2], 3);
    CHECK_INT(idx[3], 5);
    CHECK_INT(idx[4], 0);
    CHECK_INT(idx[5], 4);

    acme_status_count(c, 6, NOW, &k);
    CHECK_INT(k.total, 6);
    CHECK_INT(k.valid, 3);          /* a, file, renewing */
    CHECK_INT(k.expiring, 2);       /* expired + soon */
    CHECK_INT(k.failing, 1);
    CHECK_INT(k.unmanaged, 1);

    CHECK_INT(acme_status_days_left(NOW + DAY + 5, NOW), 1);
    CHECK_INT(acme_status_days_left(NOW - 5, NOW), -1);
}

UNIT_TEST(status_view_prometheus)
{
    acme_status_cert_t  c[6];
    char               *s;
    size_t              len;

    fill(c);
    s = acme_status_prometheus(c, 6, NOW, &len);
    CHECK(s != NULL);
    if (s == NULL) {
        return;
    }
    CHECK_INT(strlen(s), len);
    CHECK(strstr(s, "# TYPE acme_certificate_not_after_seconds gauge\n")
          != NULL);
    CHECK(strstr(s, "# TYPE acme_orders_total counter\n") != NULL);
    CHECK(strstr(s, "# TYPE acme_renewals_total counter\n") != NULL);
    CHECK(strstr(s, "acme_certificate_not_after_seconds{id=\"a.example.test_"
                 "ecdsa-256\",names=\"a.example.test,b.example.test\","
                 "issuer=\"pebble\",key_type=\"ecdsa:256\"} 1802689600\n")
          != NULL);
    /* escaping: quote, backslash, newline in label values */
    CHECK(strstr(s, "names=\"q\\\"uote.example.test\"") != NULL);
    CHECK(strstr(s, "issuer=\"pe\\\\bble\"") != NULL);
    CHECK(strstr(s, "acme_certificate_state{id=\"a.example.test_ecdsa-256\","
                 "names=\"a.example.test,b.example.test\",issuer=\"pebble\","
                 "key_type=\"ecdsa:256\",state=\"valid\"} 1\n") != NULL);
    CHECK(strstr(s, ",state=\"failed\"} 0\n") != NULL);
    CHECK(strstr(s, "acme_orders_total{id=\"a.example.test_ecdsa-256\","
                 "names=\"a.example.test,b.example.test\",issuer=\"pebble\","
                 "key_type=\"ecdsa:256\",result=\"valid\"} 3\n") != NULL);
    CHECK(strstr(s, "key_type=\"ecdsa:256\",result=\"invalid\"} 1\n") != NULL);
    CHECK(strstr(s, "acme_renewals_total{id=\"a.example.test_ecdsa-256\",")
          != NULL);
    CHECK(strstr(s, "acme_certificate_consecutive_failures{id=\"q.example."
                 "test_ecdsa-256\"") != NULL);
    /* the failed one has no certificate: no not_after */
    CHECK(strstr(s, "acme_certificate_not_after_seconds{id=\"q.") == NULL);
    /* the file's certificate: managed 0, no ACME series */
    CHECK(strstr(s, "acme_certificate_managed{id=\"file:/etc/ssl/static.pem\""
                 ",names=\"a.example.test\",issuer=\"\",key_type=\"\"} 0\n")
          != NULL);
    CHECK(strstr(s, "acme_orders_total{id=\"file:") == NULL);
    CHECK(strstr(s, "acme_certificate_next_renewal_seconds{id=\"file:")
          == NULL);
    CHECK(strstr(s, "acme_certificate_expiring{id=\"soon.example.test_ecdsa-"
                 "256\",names=\"b.example.test\",issuer=\"pebble\",key_type="
                 "\"ecdsa:256\"} 1\n") != NULL);
    /* the pins as labels of an info series: current and next */
    CHECK(strstr(s, "# TYPE acme_certificate_pin_info gauge\n") != NULL);
    CHECK(strstr(s, "acme_certificate_pin_info{id=\"a.example.test_ecdsa-"
                 "256\",names=\"a.example.test,b.example.test\",issuer="
                 "\"pebble\",key_type=\"ecdsa:256\",pin=\"current\","
                 "spki=\"CURPIN+/=\"} 1\n") != NULL);
    CHECK(strstr(s, ",pin=\"next\",spki=\"NEXTPIN+/=\"} 1\n") != NULL);
    CHECK(strstr(s, "acme_certificate_pin_info{id=\"old.") == NULL);
    /* one line ends each sample: no raw newline inside a value */
    CHECK(strstr(s, "\n\n") == NULL);
    free(s);

    /* no certificate at all: the families only */
    s = acme_status_prometheus(NULL, 0, NOW, &len);
    CHECK(s != NULL && strstr(s, "{") == NULL);
    free(s);
}

UNIT_TEST(status_view_html)
{
    acme_status_cert_t  c[6];
    char               *s, *p;
    size_t              len, rows = 0;
    const char         *order[] = {
        "old.example.test", "q.example.test", "soon.example.test",
        "r.example.test", "a.example.test_ecdsa", "file:/etc/ssl"
    };
    size_t              i;

    fill(c);
    s = acme_status_html("nginx", 42, c, 6, NOW, &len);
    CHECK(s != NULL);
    if (s == NULL) {
        return;
    }
    CHECK_INT(strlen(s), len);
    CHECK(strstr(s, "<title>ACME certificates (nginx)</title>") != NULL);
    /* escaped everywhere, no script, no outside resource */
    CHECK(strstr(s, "<script") == NULL);
    CHECK(strstr(s, "&lt;script&gt;alert(1)&lt;/script&gt;") != NULL);
    CHECK(strstr(s, "x&lt;y&gt;&amp;.example.test") != NULL);
    CHECK(strstr(s, "q&quot;uote.example.test") != NULL);
    CHECK(strstr(s, "http:") == NULL && strstr(s, "https:") == NULL);
    CHECK(strstr(s, "<b>3</b>valid") != NULL);
    CHECK(strstr(s, "<b>2</b>expiring") != NULL);
    CHECK(strstr(s, "<b>1</b>failing") != NULL);
    CHECK(strstr(s, "<b>1</b>unmanaged") != NULL);
    CHECK(strstr(s, "expired 2 days ago") != NULL);
    CHECK(strstr(s, "89 days left") != NULL);
    CHECK(strstr(s, "pin <code>CURPIN+/=</code>") != NULL);
    CHECK(strstr(s, "next pin <code>NEXTPIN+/=</code>") != NULL);

    /* one row per certificate, worst first */
    p = strstr(s, "<tbody>");
    CHECK(p != NULL);
    for (i = 0; p != NULL && i < 6; i++) {
        p = strstr(p, "<tr ");
        CHECK(p != NULL);
        if (p == NULL) {
            break;
        }
        rows++;
        CHECK(strstr(p, order[i]) != NULL
              && (i == 5 || strstr(p, order[i]) < strstr(p + 1, "<tr ")));
        p++;
    }
    CHECK_INT(rows, 6);
    free(s);

    /* mod_status: ?auto lines, and the fragment */
    s = acme_status_server_status(c, 6, NOW, 1, &len);
    CHECK_STR(s, "ACMECertificates: 6\nACMEValid: 3\nACMEExpiring: 2\n"
              "ACMEFailing: 1\nACMEUnmanaged: 1\n");
    free(s);
    s = acme_status_server_status(c, 6, NOW, 0, &len);
    CHECK(s != NULL && strstr(s, "<h2>ACME certificates</h2>") != NULL
          && strstr(s, "6 certificates: 3 valid, 2 expiring, 1 failing, "
                    "1 unmanaged") != NULL
          && strstr(s, "<html") == NULL);
    free(s);
}

UNIT_TEST(status_view_counters)
{
    acme_job_status_t   rec;
    acme_status_cert_t  out;

    memset(&rec, 0, sizeof(rec));
    acme_job_status_ordered(&rec, 0, 0);
    acme_job_status_ordered(&rec, 1, 0);        /* the first certificate */
    acme_job_status_ordered(&rec, 1, 1);        /* replaced it */
    acme_job_status_ordered(&rec, 0, 1);
    memset(&out, 0, sizeof(out));
    acme_job_status_view(&rec, NOW, NULL, 0, &out);
    CHECK_INT(out.orders_valid, 2);
    CHECK_INT(out.orders_invalid, 2);
    CHECK_INT(out.renewals, 1);
}

/* an inventory entry's id is its file: the page names the path once */
UNIT_TEST(status_html_file_path_once)
{
    static const char *const names[] = { "static.example.test" };
    acme_status_cert_t   c;
    char                *s, *p;
    size_t               len;
    int                  n = 0;

    memset(&c, 0, sizeof(c));
    c.id = "/etc/ssl/static.pem";
    c.file = "/etc/ssl/static.pem";
    c.unmanaged = 1;
    c.names = names;
    c.n_names = 1;
    c.state = "valid";
    c.not_before = 1795000000LL - 86400;
    c.not_after = 1795000000LL + 80 * 86400LL;
    s = acme_status_html("nginx", 0, &c, 1, 1795000000LL, &len);
    CHECK(s != NULL);
    for (p = s; p != NULL && (p = strstr(p, "/etc/ssl/static.pem")) != NULL;
         p++)
    {
        n++;
    }
    CHECK_INT(n, 1);
    free(s);
}


/* With a shared store the page says which node this is, whether the store
 * answers, and per certificate the fleet's decision and the lock holder. */
UNIT_TEST(status_html_store_and_fleet)
{
    static const char *const names[] = { "a.example.test" };
    acme_status_cert_t   c;
    char                *s;
    size_t               len;

    memset(&c, 0, sizeof(c));
    c.id = "a.example.test_ecdsa-256";
    c.names = names;
    c.n_names = 1;
    c.state = "valid";
    c.fleet = 1;
    c.fleet_action = "wait";
    c.fleet_holder = "web<1>";

    s = acme_status_render_as_store(ACME_STATUS_HTML, "nginx", 0,
            "{\"backend\": \"etcd\", \"node\": \"web2\", \"reachable\": true,"
            " \"endpoint\": \"http://e:2379\", \"error\": null, \"nodes\": 3,"
            " \"locks\": {}}", &c, 1, 1795000000LL, &len);
    CHECK(s != NULL);
    CHECK(strstr(s, "shared store etcd &middot; this node <b>web2</b> "
                    "&middot; reachable at http://e:2379 &middot; 3 nodes "
                    "alive") != NULL);
    CHECK(strstr(s, "fleet: wait, ordered by node web&lt;1&gt;") != NULL);
    free(s);

    c.fleet_action = NULL;
    c.fleet_holder = NULL;
    s = acme_status_render_as_store(ACME_STATUS_HTML, "nginx", 0,
            "{\"backend\": \"etcd\", \"node\": \"web2\", \"reachable\": false,"
            " \"error\": \"connect: refused\"}", &c, 1, 1795000000LL, &len);
    CHECK(s != NULL);
    CHECK(strstr(s, "unreachable: connect: refused") != NULL);
    CHECK(strstr(s, "fleet: idle") != NULL);
    free(s);

    s = acme_status_render_as_store(ACME_STATUS_HTML, "nginx", 0, "", &c, 1,
                                    1795000000LL, &len);
    CHECK(s != NULL && strstr(s, "shared store not reached yet") != NULL);
    free(s);

    /* without a store: no line */
    c.fleet = 0;
    s = acme_status_render_as_store(ACME_STATUS_HTML, "nginx", 0, NULL, &c, 1,
                                    1795000000LL, &len);
    CHECK(s != NULL && strstr(s, "shared store") == NULL
          && strstr(s, "fleet:") == NULL);
    free(s);
}
