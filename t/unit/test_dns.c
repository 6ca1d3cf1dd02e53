/*
 * dns-01 helpers, TSIG-signed RFC 2136 updates and queries: messages are
 * rebuilt byte by byte here with an independent writer and the MACs
 * recomputed with OpenSSL's one-shot HMAC(); responses are forged here to
 * exercise the parser; the blocking sender talks to a fake server thread
 * on loopback (UDP answering with TC, then TCP).
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include "unit.h"
#include "acme_dns.h"
#include "acme_dns_client.h"
#include "acme_util.h"

/* ---- an independent little DNS writer ---- */

typedef struct {
    unsigned char   b[4096];
    size_t          n;
} tb_t;

static void
tb_put(tb_t *t, const void *p, size_t n)
{
    if (n > 0 && t->n + n <= sizeof(t->b)) {
        memcpy(t->b + t->n, p, n);
    }
    t->n += n;
}

static void
tb_u16(tb_t *t, unsigned v)
{
    unsigned char c[2] = { (unsigned char) (v >> 8), (unsigned char) v };
    tb_put(t, c, 2);
}

static void
tb_u32(tb_t *t, uint32_t v)
{
    tb_u16(t, v >> 16);
    tb_u16(t, v & 0xffff);
}

static void
tb_u48(tb_t *t, unsigned long long v)
{
    tb_u16(t, (unsigned) (v >> 32) & 0xffff);
    tb_u32(t, (uint32_t) v);
}

/* "a.b.c" -> 1a1b1c0 (no compression) */
static void
tb_name(tb_t *t, const char *name)
{
    const char *s = name;

    while (*s) {
        const char *dot = strchr(s, '.');
        size_t l = dot ? (size_t) (dot - s) : strlen(s);
        unsigned char c = (unsigned char) l;

        tb_put(t, &c, 1);
        tb_put(t, s, l);
        s += l;
        if (*s == '.') {
            s++;
        }
    }
    tb_put(t, "", 1);
}

static void
tb_hdr(tb_t *t, unsigned id, unsigned flags, unsigned qd, unsigned an,
    unsigned ns, unsigned ar)
{
    tb_u16(t, id);
    tb_u16(t, flags);
    tb_u16(t, qd);
    tb_u16(t, an);
    tb_u16(t, ns);
    tb_u16(t, ar);
}

static void
tb_txt_rr(tb_t *t, const char *owner, unsigned cls, uint32_t ttl,
    const char *txt)
{
    unsigned char l = (unsigned char) strlen(txt);

    tb_name(t, owner);
    tb_u16(t, 16);
    tb_u16(t, cls);
    tb_u32(t, ttl);
    tb_u16(t, 1u + l);
    tb_put(t, &l, 1);
    tb_put(t, txt, l);
}

/*
 * RFC 8945 MAC with OpenSSL's one-shot HMAC(): [len(prior) prior] || msg
 * (as before the TSIG) || TSIG variables.
 */
static unsigned
ref_mac(const unsigned char *secret, size_t slen, const unsigned char *prior,
    size_t prior_len, const unsigned char *msg, size_t mlen,
    const char *keyname, unsigned long long t, unsigned fudge,
    unsigned error, unsigned char *out)
{
    tb_t d;
    unsigned int outlen = 0;

    d.n = 0;
    if (prior != NULL) {
        tb_u16(&d, (unsigned) prior_len);
        tb_put(&d, prior, prior_len);
    }
    tb_put(&d, msg, mlen);
    tb_name(&d, keyname);
    tb_u16(&d, 255);
    tb_u32(&d, 0);
    tb_name(&d, "hmac-sha256");
    tb_u48(&d, t);
    tb_u16(&d, fudge);
    tb_u16(&d, error);
    tb_u16(&d, 0);
    HMAC(EVP_sha256(), secret, (int) slen, d.b, d.n, out, &outlen);
    return outlen;
}

/* Appends a TSIG RR to t (whose ARCOUNT must already count it). */
static void
tb_tsig(tb_t *t, const char *keyname, unsigned long long time_signed,
    unsigned fudge, const unsigned char *mac, size_t maclen, unsigned orig_id,
    unsigned error)
{
    tb_t r;

    r.n = 0;
    tb_name(&r, "hmac-sha256");
    tb_u48(&r, time_signed);
    tb_u16(&r, fudge);
    tb_u16(&r, (unsigned) maclen);
    tb_put(&r, mac, maclen);
    tb_u16(&r, orig_id);
    tb_u16(&r, error);
    tb_u16(&r, 0);

    tb_name(t, keyname);
    tb_u16(t, 250);
    tb_u16(t, 255);
    tb_u32(t, 0);
    tb_u16(t, (unsigned) r.n);
    tb_put(t, r.b, r.n);
}

/* 32 bytes "0123...": base64 of it, as tsig-keygen would print */
static const unsigned char secret_raw[] = "0123456789abcdef0123456789ABCDEF";
static const char secret_b64[] = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlBQkNERUY=";

static void
test_key(acme_tsig_key_t *k)
{
    char err[ACME_ERRLEN] = "";

    CHECK_INT(acme_tsig_key_init(k, "ACME-Key.", NULL, secret_b64, err,
                                 sizeof(err)), 0);
}

/*
 * A signed response to a request whose MAC was req_mac: header fields,
 * question = zone/SOA (UPDATE) or qname/qtype, no records, TSIG signed
 * at t (or unsigned with error when mac is suppressed).
 */
static void
signed_update_response(tb_t *t, unsigned id, unsigned rcode,
    const char *zone, const unsigned char *req_mac, size_t req_mac_len,
    unsigned long long ts, const unsigned char *secret, size_t slen)
{
    unsigned char mac[64];
    unsigned ml;

    t->n = 0;
    tb_hdr(t, id, 0x8000 | 5 << 11 | rcode, 1, 0, 0, 0);
    tb_name(t, zone);
    tb_u16(t, 6);
    tb_u16(t, 1);
    ml = ref_mac(secret, slen, req_mac, req_mac_len, t->b, t->n, "acme-key",
                 ts, 300, 0, mac);
    t->b[11] = 1;               /* ARCOUNT: the TSIG */
    tb_tsig(t, "acme-key", ts, 300, mac, ml, id, 0);
}

/* ---- dns-01 ---- */

UNIT_TEST(dns01_txt_value_and_record_name)
{
    char *v, *n;

    /* computed independently (Python hashlib + base64url) */
    v = acme_dns01_txt_value("evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA."
                             "9jg46WB3rR_AHD-EBXdN7cBkH1WOu0tA3M9fm21mqTI");
    CHECK_STR(v, "lCM7cZyQXcVHK2nnW3jjAhNT3Fvm18UN-kWZZknKoYM");
    free(v);
    CHECK(acme_dns01_txt_value(NULL) == NULL);

    n = acme_dns01_record_name("*.Example.COM.");
    CHECK_STR(n, "_acme-challenge.example.com");
    free(n);
    n = acme_dns01_record_name("www.example.test");
    CHECK_STR(n, "_acme-challenge.www.example.test");
    free(n);

    CHECK(acme_dns01_record_name("") == NULL);
    CHECK(acme_dns01_record_name("*.") == NULL);
    CHECK(acme_dns01_record_name(NULL) == NULL);
    {
        char longname[260];

        memset(longname, 'a', sizeof(longname) - 1);
        longname[sizeof(longname) - 1] = '\0';
        CHECK(acme_dns01_record_name(longname) == NULL);
    }
}

/* ---- keys ---- */

UNIT_TEST(dns_tsig_key_init)
{
    acme_tsig_key_t k;
    char err[ACME_ERRLEN];

    test_key(&k);
    CHECK_STR(k.name, "acme-key");
    CHECK_STR(k.alg, "hmac-sha256");
    CHECK_INT(k.secret_len, 32);
    CHECK(k.secret && memcmp(k.secret, secret_raw, 32) == 0);
    acme_tsig_key_clear(&k);
    CHECK(k.secret == NULL && k.name == NULL);
    acme_tsig_key_clear(&k);

    CHECK_INT(acme_tsig_key_init(&k, "k", "HMAC-SHA512.", "YWJj", err,
                                 sizeof(err)), 0);
    CHECK_STR(k.alg, "hmac-sha512");
    acme_tsig_key_clear(&k);

    err[0] = '\0';
    CHECK_INT(acme_tsig_key_init(&k, "k", "hmac-md5", "YWJj", err,
                                 sizeof(err)), -1);
    CHECK(strstr(err, "unsupported TSIG algorithm \"hmac-md5\"") != NULL);

    err[0] = '\0';
    CHECK_INT(acme_tsig_key_init(&k, "k", NULL, "sEcReT!!", err,
                                 sizeof(err)), -1);
    CHECK(strstr(err, "not valid base64") != NULL);
    CHECK(strstr(err, "sEcReT") == NULL);

    err[0] = '\0';
    CHECK_INT(acme_tsig_key_init(&k, "k", NULL, "", err, sizeof(err)), -1);
    CHECK(strstr(err, "empty") != NULL);

    err[0] = '\0';
    CHECK_INT(acme_tsig_key_init(&k, "bad..name", NULL, "YWJj", err,
                                 sizeof(err)), -1);
    CHECK(strstr(err, "empty label") != NULL);

    err[0] = '\0';
    CHECK_INT(acme_tsig_key_init(&k, "", NULL, "YWJj", err, sizeof(err)), -1);
    CHECK(strstr(err, "TSIG key name") != NULL);
}

UNIT_TEST(dns_tsig_key_from_bind)
{
    acme_tsig_key_t k;
    char err[ACME_ERRLEN] = "";
    char text[512];

    /* as tsig-keygen prints it, with comments around */
    snprintf(text, sizeof(text),
             "# generated\n/* block\n comment */\n"
             "key \"acme-key\" {\n\talgorithm hmac-sha256;\n"
             "\tsecret \"%s\"; // trailing\n};\n", secret_b64);
    CHECK_INT(acme_tsig_key_from_bind(&k, text, err, sizeof(err)), 0);
    CHECK_STR(k.name, "acme-key");
    CHECK_STR(k.alg, "hmac-sha256");
    CHECK(k.secret_len == 32 && memcmp(k.secret, secret_raw, 32) == 0);
    acme_tsig_key_clear(&k);

    /* bare name, no algorithm: hmac-sha256 */
    CHECK_INT(acme_tsig_key_from_bind(&k, "key upd.example { secret "
                                      "\"YWJj\"; };", err, sizeof(err)), 0);
    CHECK_STR(k.name, "upd.example");
    CHECK_STR(k.alg, "hmac-sha256");
    acme_tsig_key_clear(&k);

    /* a key reference inside another statement is not the key */
    CHECK_INT(acme_tsig_key_from_bind(&k, "zone \"z\" { allow-update { key "
                                      "\"ref\"; }; };\nkey \"real\" { "
                                      "secret \"YWJj\"; };", err,
                                      sizeof(err)), 0);
    CHECK_STR(k.name, "real");
    acme_tsig_key_clear(&k);

    err[0] = '\0';
    CHECK_INT(acme_tsig_key_from_bind(&k, "key \"x\" { algorithm "
                                      "hmac-sha256; };", err, sizeof(err)), -1);
    CHECK(strstr(err, "no secret") != NULL);

    err[0] = '\0';
    CHECK_INT(acme_tsig_key_from_bind(&k, "options { };", err, sizeof(err)), -1);
    CHECK(strstr(err, "no key statement") != NULL);

    err[0] = '\0';
    CHECK_INT(acme_tsig_key_from_bind(&k, "key \"x\" { secret \"YWJj\";",
                                      err, sizeof(err)), -1);
    CHECK(strstr(err, "unterminated") != NULL);

    err[0] = '\0';
    CHECK_INT(acme_tsig_key_from_bind(&k, "key \"x\" { algorithm hmac-sha1; "
                                      "secret \"YWJj\"; };", err, sizeof(err)),
              -1);
    CHECK(strstr(err, "hmac-sha1") != NULL);
}

/* ---- building ---- */

/* The whole UPDATE, byte for byte, against an independent rebuild. */
static void
check_update_bytes(acme_dns_update_op_t op)
{
    acme_tsig_key_t k;
    acme_dns_txn_t txn;
    unsigned char *msg = NULL, mac[64];
    size_t len = 0;
    unsigned ml;
    char err[ACME_ERRLEN] = "";
    tb_t t;
    const long long now = 1764150000;

    test_key(&k);
    CHECK_INT(acme_dns_update_build(&txn, "Example.Test.",
                                    "_acme-challenge.WWW.example.test",
                                    "abc-DEF_123", 60, op, &k, now, 0x1234,
                                    &msg, &len, err, sizeof(err)), 0);

    t.n = 0;
    tb_hdr(&t, 0x1234, 0x2800, 1, 0, 1, 0);
    tb_name(&t, "example.test");
    tb_u16(&t, 6);
    tb_u16(&t, 1);
    if (op == ACME_DNS_UPDATE_ADD) {
        tb_txt_rr(&t, "_acme-challenge.www.example.test", 1, 60, "abc-DEF_123");
    } else {
        tb_txt_rr(&t, "_acme-challenge.www.example.test", 254, 0,
                  "abc-DEF_123");
    }
    ml = ref_mac(secret_raw, 32, NULL, 0, t.b, t.n, "acme-key",
                 (unsigned long long) now, 300, 0, mac);
    CHECK_INT(ml, 32);
    t.b[11] = 1;
    tb_tsig(&t, "acme-key", (unsigned long long) now, 300, mac, ml, 0x1234, 0);

    CHECK_INT(len, t.n);
    CHECK(msg != NULL && len == t.n && memcmp(msg, t.b, len) == 0);

    /* the txn remembers what the response must match */
    CHECK_INT(txn.id, 0x1234);
    CHECK_INT(txn.opcode, 5);
    CHECK_INT(txn.qtype, ACME_DNS_TYPE_SOA);
    CHECK_STR(txn.qname, "example.test");
    CHECK_INT(txn.mac_len, 32);
    CHECK(memcmp(txn.mac, mac, 32) == 0);
    CHECK(txn.key == &k);

    free(msg);
    acme_tsig_key_clear(&k);
}

UNIT_TEST(dns_update_add_bytes_and_tsig)
{
    check_update_bytes(ACME_DNS_UPDATE_ADD);
}

UNIT_TEST(dns_update_delete_bytes_and_tsig)
{
    check_update_bytes(ACME_DNS_UPDATE_DELETE);
}

UNIT_TEST(dns_update_long_txt_split)
{
    acme_tsig_key_t k;
    acme_dns_txn_t txn;
    unsigned char *msg = NULL;
    size_t len = 0, off;
    char err[ACME_ERRLEN] = "", txt[301];

    test_key(&k);
    memset(txt, 'x', 300);
    txt[300] = '\0';
    CHECK_INT(acme_dns_update_build(&txn, "example.test", "a.example.test",
                                    txt, 60, ACME_DNS_UPDATE_ADD, &k, 1, 7,
                                    &msg, &len, err, sizeof(err)), 0);
    /* header 12 + zone 14 + 4, then owner 16, type/class/ttl 8, rdlen 2 */
    off = 12 + 14 + 4 + 16 + 8;
    CHECK(msg && msg[off] == 0x01 && msg[off + 1] == 0x2e);  /* 302 */
    CHECK(msg && msg[off + 2] == 255);
    CHECK(msg && msg[off + 2 + 256] == 45);
    free(msg);
    acme_tsig_key_clear(&k);
}

UNIT_TEST(dns_update_bad_inputs)
{
    acme_tsig_key_t k;
    acme_dns_txn_t txn;
    unsigned char *msg = (unsigned char *) "x";
    size_t len = 1;
    char err[ACME_ERRLEN];
    char big[5000];

    test_key(&k);

    err[0] = '\0';
    CHECK_INT(acme_dns_update_build(&txn, "example.test", "a.example.org",
                                    "v", 60, ACME_DNS_UPDATE_ADD, &k, 1, 1,
                                    &msg, &len, err, sizeof(err)), -1);
    CHECK(strstr(err, "not in zone \"example.test\"") != NULL);
    CHECK(msg == NULL && len == 0);

    /* "xexample.test" is not below "example.test" */
    err[0] = '\0';
    CHECK_INT(acme_dns_update_build(&txn, "example.test", "xexample.test",
                                    "v", 60, ACME_DNS_UPDATE_ADD, &k, 1, 1,
                                    &msg, &len, err, sizeof(err)), -1);
    CHECK(strstr(err, "not in zone") != NULL);

    err[0] = '\0';
    CHECK_INT(acme_dns_update_build(&txn, "example.test", "a.example.test",
                                    "v", 60, ACME_DNS_UPDATE_ADD, NULL, 1, 1,
                                    &msg, &len, err, sizeof(err)), -1);
    CHECK(strstr(err, "TSIG key is required") != NULL);

    err[0] = '\0';
    CHECK_INT(acme_dns_update_build(&txn, "", "a.example.test", "v", 60,
                                    ACME_DNS_UPDATE_ADD, &k, 1, 1, &msg, &len,
                                    err, sizeof(err)), -1);
    CHECK(strstr(err, "empty zone") != NULL);

    err[0] = '\0';
    CHECK_INT(acme_dns_update_build(&txn, "example.test", "a b.example.test",
                                    "v", 60, ACME_DNS_UPDATE_ADD, &k, 1, 1,
                                    &msg, &len, err, sizeof(err)), -1);
    CHECK(strstr(err, "invalid character") != NULL);

    memset(big, 'a', 70);
    strcpy(big + 70, ".example.test");
    err[0] = '\0';
    CHECK_INT(acme_dns_update_build(&txn, "example.test", big, "v", 60,
                                    ACME_DNS_UPDATE_ADD, &k, 1, 1, &msg, &len,
                                    err, sizeof(err)), -1);
    CHECK(strstr(err, "longer than 63") != NULL);

    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    err[0] = '\0';
    CHECK_INT(acme_dns_update_build(&txn, "example.test", "a.example.test",
                                    big, 60, ACME_DNS_UPDATE_ADD, &k, 1, 1,
                                    &msg, &len, err, sizeof(err)), -1);
    CHECK(strstr(err, "longer than 4000") != NULL);

    acme_tsig_key_clear(&k);
}

UNIT_TEST(dns_query_bytes)
{
    acme_dns_txn_t txn;
    unsigned char *msg;
    size_t len;
    char err[ACME_ERRLEN] = "";
    tb_t t;

    CHECK_INT(acme_dns_query_build(&txn, "_acme-challenge.Example.test.",
                                   ACME_DNS_TYPE_TXT, 0, 0xbeef, &msg, &len,
                                   err, sizeof(err)), 0);
    t.n = 0;
    tb_hdr(&t, 0xbeef, 0, 1, 0, 0, 0);
    tb_name(&t, "_acme-challenge.example.test");
    tb_u16(&t, 16);
    tb_u16(&t, 1);
    CHECK(len == t.n && memcmp(msg, t.b, len) == 0);
    CHECK(txn.key == NULL);
    free(msg);

    /* rd = 1 sets the RD bit */
    CHECK_INT(acme_dns_query_build(&txn, "example.test", ACME_DNS_TYPE_SOA, 1,
                                   1, &msg, &len, err, sizeof(err)), 0);
    CHECK(msg[2] == 0x01 && msg[3] == 0x00);
    free(msg);
}

/* ---- parsing ---- */

static void
build_update(acme_dns_txn_t *txn, acme_tsig_key_t *k, long long now)
{
    unsigned char *msg;
    size_t len;
    char err[ACME_ERRLEN] = "";

    CHECK_INT(acme_dns_update_build(txn, "example.test",
                                    "_acme-challenge.example.test", "v", 60,
                                    ACME_DNS_UPDATE_ADD, k, now, 0x4242, &msg,
                                    &len, err, sizeof(err)), 0);
    free(msg);
}

UNIT_TEST(dns_update_response_signed_ok)
{
    acme_tsig_key_t k;
    acme_dns_txn_t txn;
    acme_dns_answer_t ans;
    char err[ACME_ERRLEN] = "";
    tb_t t;

    test_key(&k);
    build_update(&txn, &k, 1000000);
    signed_update_response(&t, 0x4242, 0, "example.test", txn.mac,
                           txn.mac_len, 1000010, secret_raw, 32);

    CHECK_INT(acme_dns_response_parse(&txn, t.b, t.n, 1000000, &ans, err,
                                      sizeof(err)), 0);
    CHECK_INT(ans.rcode, 0);
    CHECK_INT(ans.signed_ok, 1);
    CHECK_INT(ans.tsig_error, 0);
    CHECK_INT(acme_dns_update_check(&ans, err, sizeof(err)), 0);
    acme_dns_answer_free(&ans);

    /* a refusal that is signed: rcode reported with a hint */
    signed_update_response(&t, 0x4242, ACME_DNS_REFUSED, "example.test",
                           txn.mac, txn.mac_len, 1000000, secret_raw, 32);
    CHECK_INT(acme_dns_response_parse(&txn, t.b, t.n, 1000000, &ans, err,
                                      sizeof(err)), 0);
    CHECK_INT(ans.signed_ok, 1);
    err[0] = '\0';
    CHECK_INT(acme_dns_update_check(&ans, err, sizeof(err)), -1);
    CHECK(strstr(err, "DNS UPDATE refused: REFUSED") != NULL);
    CHECK(strstr(err, "update-policy") != NULL);
    acme_dns_answer_free(&ans);

    acme_tsig_key_clear(&k);
}

UNIT_TEST(dns_update_response_forgeries)
{
    acme_tsig_key_t k;
    acme_dns_txn_t txn;
    acme_dns_answer_t ans;
    char err[ACME_ERRLEN];
    unsigned char other[32];
    tb_t t;

    test_key(&k);
    build_update(&txn, &k, 1000000);

    /* one flipped bit in the signed part */
    signed_update_response(&t, 0x4242, 0, "example.test", txn.mac,
                           txn.mac_len, 1000000, secret_raw, 32);
    t.b[3] ^= 0x01;                   /* rcode NOERROR -> FORMERR */
    err[0] = '\0';
    CHECK_INT(acme_dns_response_parse(&txn, t.b, t.n, 1000000, &ans, err,
                                      sizeof(err)), -1);
    CHECK(strstr(err, "does not verify") != NULL);

    /* signed with another secret */
    memset(other, 7, sizeof(other));
    signed_update_response(&t, 0x4242, 0, "example.test", txn.mac,
                           txn.mac_len, 1000000, other, 32);
    err[0] = '\0';
    CHECK_INT(acme_dns_response_parse(&txn, t.b, t.n, 1000000, &ans, err,
                                      sizeof(err)), -1);
    CHECK(strstr(err, "does not verify") != NULL);

    /* signed over another request's MAC */
    signed_update_response(&t, 0x4242, 0, "example.test", other, 32, 1000000,
                           secret_raw, 32);
    err[0] = '\0';
    CHECK_INT(acme_dns_response_parse(&txn, t.b, t.n, 1000000, &ans, err,
                                      sizeof(err)), -1);
    CHECK(strstr(err, "does not verify") != NULL);

    /* time outside the fudge */
    signed_update_response(&t, 0x4242, 0, "example.test", txn.mac,
                           txn.mac_len, 1000000 - 301, secret_raw, 32);
    err[0] = '\0';
    CHECK_INT(acme_dns_response_parse(&txn, t.b, t.n, 1000000, &ans, err,
                                      sizeof(err)), -1);
    CHECK(strstr(err, "301 s away") != NULL);

    /* wrong ID */
    signed_update_response(&t, 0x4243, 0, "example.test", txn.mac,
                           txn.mac_len, 1000000, secret_raw, 32);
    err[0] = '\0';
    CHECK_INT(acme_dns_response_parse(&txn, t.b, t.n, 1000000, &ans, err,
                                      sizeof(err)), -1);
    CHECK(strstr(err, "does not match") != NULL);

    /* wrong zone echoed */
    signed_update_response(&t, 0x4242, 0, "example.org", txn.mac,
                           txn.mac_len, 1000000, secret_raw, 32);
    err[0] = '\0';
    CHECK_INT(acme_dns_response_parse(&txn, t.b, t.n, 1000000, &ans, err,
                                      sizeof(err)), -1);
    CHECK(strstr(err, "another question") != NULL);

    /* unsigned NOERROR is not believed */
    t.n = 0;
    tb_hdr(&t, 0x4242, 0x8000 | 5 << 11, 1, 0, 0, 0);
    tb_name(&t, "example.test");
    tb_u16(&t, 6);
    tb_u16(&t, 1);
    err[0] = '\0';
    CHECK_INT(acme_dns_response_parse(&txn, t.b, t.n, 1000000, &ans, err,
                                      sizeof(err)), -1);
    CHECK(strstr(err, "not signed") != NULL);

    /* truncated in the middle of a record */
    signed_update_response(&t, 0x4242, 0, "example.test", txn.mac,
                           txn.mac_len, 1000000, secret_raw, 32);
    err[0] = '\0';
    CHECK_INT(acme_dns_response_parse(&txn, t.b, t.n - 5, 1000000, &ans, err,
                                      sizeof(err)), -1);
    CHECK(strstr(err, "malformed") != NULL);

    /* a query (not a response) */
    t.b[2] &= 0x7f;
    err[0] = '\0';
    CHECK_INT(acme_dns_response_parse(&txn, t.b, t.n, 1000000, &ans, err,
                                      sizeof(err)), -1);
    CHECK(strstr(err, "not a response") != NULL);

    acme_tsig_key_clear(&k);
}

UNIT_TEST(dns_update_response_badsig_badkey)
{
    acme_tsig_key_t k;
    acme_dns_txn_t txn;
    acme_dns_answer_t ans;
    char err[ACME_ERRLEN] = "";
    tb_t t;
    unsigned e;

    test_key(&k);
    build_update(&txn, &k, 1000000);

    for (e = ACME_DNS_BADSIG; e <= ACME_DNS_BADKEY; e++) {
        /* what a server sends when our signature fails: NOTAUTH, unsigned
         * TSIG carrying the error (RFC 8945 section 5.3.2) */
        t.n = 0;
        tb_hdr(&t, 0x4242, 0x8000 | 5 << 11 | ACME_DNS_NOTAUTH, 1, 0, 0, 1);
        tb_name(&t, "example.test");
        tb_u16(&t, 6);
        tb_u16(&t, 1);
        tb_tsig(&t, "acme-key", 1000000, 300, NULL, 0, 0x4242, e);

        CHECK_INT(acme_dns_response_parse(&txn, t.b, t.n, 1000000, &ans, err,
                                          sizeof(err)), 0);
        CHECK_INT(ans.rcode, ACME_DNS_NOTAUTH);
        CHECK_INT(ans.tsig_error, e);
        CHECK_INT(ans.signed_ok, 0);
        err[0] = '\0';
        CHECK_INT(acme_dns_update_check(&ans, err, sizeof(err)), -1);
        if (e == ACME_DNS_BADSIG) {
            CHECK(strstr(err, "NOTAUTH, TSIG BADSIG") != NULL);
            CHECK(strstr(err, "secret") != NULL);
        } else {
            CHECK(strstr(err, "NOTAUTH, TSIG BADKEY") != NULL);
            CHECK(strstr(err, "does not know this key") != NULL);
        }
        acme_dns_answer_free(&ans);
    }

    /* a TSIG with another key name is an error */
    t.n = 0;
    tb_hdr(&t, 0x4242, 0x8000 | 5 << 11 | ACME_DNS_NOTAUTH, 1, 0, 0, 1);
    tb_name(&t, "example.test");
    tb_u16(&t, 6);
    tb_u16(&t, 1);
    tb_tsig(&t, "other-key", 1000000, 300, NULL, 0, 0x4242, ACME_DNS_BADSIG);
    err[0] = '\0';
    CHECK_INT(acme_dns_response_parse(&txn, t.b, t.n, 1000000, &ans, err,
                                      sizeof(err)), -1);
    CHECK(strstr(err, "\"other-key\"") != NULL);

    CHECK_STR(acme_dns_rcode_name(ACME_DNS_NOTZONE), "NOTZONE");
    CHECK_STR(acme_dns_rcode_name(ACME_DNS_BADTIME), "BADTIME");
    CHECK_STR(acme_dns_rcode_name(12), "RCODE12");

    acme_tsig_key_clear(&k);
}

UNIT_TEST(dns_txt_response_compression_cname)
{
    acme_dns_txn_t txn;
    acme_dns_answer_t ans;
    unsigned char *q;
    size_t qlen;
    char err[ACME_ERRLEN] = "";
    tb_t t;
    size_t qname_off = 12;

    CHECK_INT(acme_dns_query_build(&txn, "_acme-challenge.example.test",
                                   ACME_DNS_TYPE_TXT, 0, 99, &q, &qlen, err,
                                   sizeof(err)), 0);
    free(q);

    /* answer: qname CNAME c.example.test (compressed), then two TXT RRs at
     * the target (one of two strings), one TXT at an unrelated name */
    t.n = 0;
    tb_hdr(&t, 99, 0x8400, 1, 4, 0, 0);
    tb_name(&t, "_acme-challenge.example.test");
    tb_u16(&t, 16);
    tb_u16(&t, 1);
    {
        unsigned char ptr[2] = { 0xc0, (unsigned char) qname_off };
        unsigned char ex[2] = { 0xc0, (unsigned char) (qname_off + 16) };
        size_t target;

        tb_put(&t, ptr, 2);                         /* owner = qname */
        tb_u16(&t, 5);
        tb_u16(&t, 1);
        tb_u32(&t, 60);
        tb_u16(&t, 4);
        target = t.n;
        tb_put(&t, "\001c", 2);                     /* c.<example.test> */
        tb_put(&t, ex, 2);

        {
            unsigned char tp[2] = { 0xc0, (unsigned char) target };

            tb_put(&t, tp, 2);
            tb_u16(&t, 16);
            tb_u16(&t, 1);
            tb_u32(&t, 60);
            tb_u16(&t, 8);
            tb_put(&t, "\003abc\003def", 8);

            tb_put(&t, tp, 2);
            tb_u16(&t, 16);
            tb_u16(&t, 1);
            tb_u32(&t, 60);
            tb_u16(&t, 4);
            tb_put(&t, "\003xyz", 4);
        }
        tb_txt_rr(&t, "other.example.test", 1, 60, "nope");
    }

    CHECK_INT(acme_dns_response_parse(&txn, t.b, t.n, 0, &ans, err,
                                      sizeof(err)), 0);
    CHECK_INT(ans.aa, 1);
    CHECK_INT(ans.n_txt, 2);
    if (ans.n_txt == 2) {
        CHECK_STR(ans.txt[0], "abcdef");
        CHECK_STR(ans.txt[1], "xyz");
    }
    acme_dns_answer_free(&ans);
    acme_dns_answer_free(&ans);   /* idempotent */
}

UNIT_TEST(dns_soa_response_zone_and_nxdomain)
{
    acme_dns_txn_t txn;
    acme_dns_answer_t ans;
    unsigned char *q;
    size_t qlen;
    char err[ACME_ERRLEN] = "";
    tb_t t;

    CHECK_INT(acme_dns_query_build(&txn, "_acme-challenge.www.example.test",
                                   ACME_DNS_TYPE_SOA, 0, 5, &q, &qlen, err,
                                   sizeof(err)), 0);
    free(q);

    /* NXDOMAIN, SOA of the zone in the authority section */
    t.n = 0;
    tb_hdr(&t, 5, 0x8400 | ACME_DNS_NXDOMAIN, 1, 0, 1, 0);
    tb_name(&t, "_acme-challenge.www.example.test");
    tb_u16(&t, 6);
    tb_u16(&t, 1);
    tb_name(&t, "Example.TEST");
    tb_u16(&t, 6);
    tb_u16(&t, 1);
    tb_u32(&t, 60);
    {
        tb_t r;

        r.n = 0;
        tb_name(&r, "ns.example.test");
        tb_name(&r, "hostmaster.example.test");
        tb_u32(&r, 1);
        tb_u32(&r, 60);
        tb_u32(&r, 60);
        tb_u32(&r, 600);
        tb_u32(&r, 60);
        tb_u16(&t, (unsigned) r.n);
        tb_put(&t, r.b, r.n);
    }

    CHECK_INT(acme_dns_response_parse(&txn, t.b, t.n, 0, &ans, err,
                                      sizeof(err)), 0);
    CHECK_INT(ans.rcode, ACME_DNS_NXDOMAIN);
    CHECK_INT(ans.n_txt, 0);
    CHECK_STR(ans.soa_owner, "example.test");
    acme_dns_answer_free(&ans);

    /* trailing garbage is refused */
    tb_put(&t, "zz", 2);
    err[0] = '\0';
    CHECK_INT(acme_dns_response_parse(&txn, t.b, t.n, 0, &ans, err,
                                      sizeof(err)), -1);
    CHECK(strstr(err, "2 stray bytes") != NULL);
}

UNIT_TEST(dns_response_hostile_names)
{
    acme_dns_txn_t txn;
    acme_dns_answer_t ans;
    unsigned char *q;
    size_t qlen;
    char err[ACME_ERRLEN];
    tb_t t;

    CHECK_INT(acme_dns_query_build(&txn, "a.test", ACME_DNS_TYPE_TXT, 0, 1,
                                   &q, &qlen, err, sizeof(err)), 0);
    free(q);

    /* a compression pointer to itself (loop) in the answer */
    t.n = 0;
    tb_hdr(&t, 1, 0x8000, 1, 1, 0, 0);
    tb_name(&t, "a.test");
    tb_u16(&t, 16);
    tb_u16(&t, 1);
    {
        unsigned char self[2] = { 0xc0, (unsigned char) t.n };

        tb_put(&t, self, 2);
    }
    tb_u16(&t, 16);
    tb_u16(&t, 1);
    tb_u32(&t, 1);
    tb_u16(&t, 0);
    err[0] = '\0';
    CHECK_INT(acme_dns_response_parse(&txn, t.b, t.n, 0, &ans, err,
                                      sizeof(err)), -1);
    CHECK(strstr(err, "malformed") != NULL);

    /* pointer past the end */
    t.b[t.n - 11] = 0xff;
    err[0] = '\0';
    CHECK_INT(acme_dns_response_parse(&txn, t.b, t.n, 0, &ans, err,
                                      sizeof(err)), -1);

    /* TXT RDATA whose string length runs past the RDATA */
    t.n = 0;
    tb_hdr(&t, 1, 0x8000, 1, 1, 0, 0);
    tb_name(&t, "a.test");
    tb_u16(&t, 16);
    tb_u16(&t, 1);
    tb_name(&t, "a.test");
    tb_u16(&t, 16);
    tb_u16(&t, 1);
    tb_u32(&t, 1);
    tb_u16(&t, 2);
    tb_put(&t, "\011x", 2);
    err[0] = '\0';
    CHECK_INT(acme_dns_response_parse(&txn, t.b, t.n, 0, &ans, err,
                                      sizeof(err)), -1);
    CHECK(strstr(err, "TXT") != NULL);

    /* too short */
    err[0] = '\0';
    CHECK_INT(acme_dns_response_parse(&txn, t.b, 5, 0, &ans, err,
                                      sizeof(err)), -1);
    CHECK(strstr(err, "shorter than a header") != NULL);

    /* truncated (TC) unsigned response: returned as such, for a TCP retry */
    t.n = 0;
    tb_hdr(&t, 1, 0x8200, 1, 0, 0, 0);
    tb_name(&t, "a.test");
    tb_u16(&t, 16);
    tb_u16(&t, 1);
    CHECK_INT(acme_dns_response_parse(&txn, t.b, t.n, 0, &ans, err,
                                      sizeof(err)), 0);
    CHECK_INT(ans.tc, 1);
    acme_dns_answer_free(&ans);
}

/* ---- the blocking sender against a fake server on loopback ---- */

typedef struct {
    int     udp;
    int     tcp;
    int     port;
    int     udp_truncate;   /* answer UDP queries with TC set */
    int     udp_silent;     /* never answer over UDP */
    int     udp_seen;
    int     tcp_seen;
} fake_dns_t;

/* The response: the question echoed, one TXT "over-tcp" or "over-udp". */
static size_t
fake_answer(const unsigned char *q, size_t qlen, int tc, const char *txt,
    unsigned char *out)
{
    tb_t t;

    t.n = 0;
    tb_put(&t, q, qlen);
    t.b[2] = 0x84 | (tc ? 0x02 : 0);
    t.b[3] = 0;
    t.b[7] = tc ? 0 : 1;
    if (!tc) {
        unsigned char ptr[2] = { 0xc0, 12 };
        unsigned char l = (unsigned char) strlen(txt);

        tb_put(&t, ptr, 2);
        tb_u16(&t, 16);
        tb_u16(&t, 1);
        tb_u32(&t, 1);
        tb_u16(&t, 1u + l);
        tb_put(&t, &l, 1);
        tb_put(&t, txt, l);
    }
    memcpy(out, t.b, t.n);
    return t.n;
}

static void *
fake_dns_run(void *arg)
{
    fake_dns_t *f = arg;
    unsigned char buf[1024], out[1200];
    struct sockaddr_in peer;
    socklen_t pl;
    struct pollfd pfd[2];
    ssize_t n;
    size_t m;
    int c, rounds;

    /* bounded: a handful of events, then a short idle ends the thread */
    for (rounds = 0; rounds < 20; rounds++) {
        pfd[0].fd = f->udp;
        pfd[0].events = POLLIN;
        pfd[1].fd = f->tcp;
        pfd[1].events = POLLIN;
        if (poll(pfd, 2, 3000) <= 0) {
            break;
        }
        if (pfd[0].revents & POLLIN) {
            pl = sizeof(peer);
            n = recvfrom(f->udp, buf, sizeof(buf), 0,
                         (struct sockaddr *) &peer, &pl);
            if (n < 12) {
                continue;
            }
            f->udp_seen++;
            if (f->udp_silent) {
                continue;
            }
            /* a stray datagram with another ID first: must be skipped */
            out[0] = buf[0] ^ 0xff;
            out[1] = buf[1];
            memset(out + 2, 0, 10);
            out[2] = 0x80;
            sendto(f->udp, out, 12, 0, (struct sockaddr *) &peer, pl);
            m = fake_answer(buf, (size_t) n, f->udp_truncate, "over-udp", out);
            sendto(f->udp, out, m, 0, (struct sockaddr *) &peer, pl);
        }
        if (pfd[1].revents & POLLIN) {
            unsigned char lb[2];
            size_t want, got = 0;

            c = accept(f->tcp, NULL, NULL);
            if (c < 0) {
                continue;
            }
            f->tcp_seen++;
            if (recv(c, lb, 2, MSG_WAITALL) == 2) {
                want = (size_t) lb[0] << 8 | lb[1];
                while (got < want && want <= sizeof(buf)) {
                    n = recv(c, buf + got, want - got, 0);
                    if (n <= 0) {
                        break;
                    }
                    got += (size_t) n;
                }
                if (got == want) {
                    m = fake_answer(buf, want, 0, "over-tcp", out + 2);
                    out[0] = (unsigned char) (m >> 8);
                    out[1] = (unsigned char) m;
                    /* in two writes, to exercise partial reads */
                    send(c, out, 3, MSG_NOSIGNAL);
                    send(c, out + 3, m - 1, MSG_NOSIGNAL);
                }
            }
            close(c);
        }
    }
    return NULL;
}

static int
fake_dns_start(fake_dns_t *f, pthread_t *th)
{
    struct sockaddr_in a;
    socklen_t al = sizeof(a);
    int one = 1;

    /* bind UDP to an ephemeral port, then TCP to the same one */
    for (int tries = 0; tries < 20; tries++) {
        memset(&a, 0, sizeof(a));
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        f->udp = socket(AF_INET, SOCK_DGRAM, 0);
        if (f->udp < 0 || bind(f->udp, (struct sockaddr *) &a, sizeof(a)) != 0
            || getsockname(f->udp, (struct sockaddr *) &a, &al) != 0)
        {
            return -1;
        }
        f->tcp = socket(AF_INET, SOCK_STREAM, 0);
        setsockopt(f->tcp, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (bind(f->tcp, (struct sockaddr *) &a, sizeof(a)) == 0
            && listen(f->tcp, 4) == 0)
        {
            f->port = ntohs(a.sin_port);
            return pthread_create(th, NULL, fake_dns_run, f) == 0 ? 0 : -1;
        }
        close(f->udp);
        close(f->tcp);
    }
    return -1;
}

static void
fake_dns_stop(fake_dns_t *f, pthread_t th)
{
    /* shutting the sockets wakes poll() in the thread */
    shutdown(f->udp, SHUT_RDWR);
    shutdown(f->tcp, SHUT_RDWR);
    pthread_join(th, NULL);
    close(f->udp);
    close(f->tcp);
}

UNIT_TEST(dns_exchange_udp_and_tc_fallback)
{
    fake_dns_t f;
    pthread_t th;
    char err[ACME_ERRLEN] = "";
    int rc;

    memset(&f, 0, sizeof(f));
    CHECK_INT(fake_dns_start(&f, &th), 0);
    rc = acme_dns_txt_visible_blocking("127.0.0.1", f.port, "a.test",
                                       "over-udp", 5000, err, sizeof(err));
    CHECK_INT(rc, 1);
    CHECK_INT(f.tcp_seen, 0);

    /* truncated over UDP: asked again over TCP */
    f.udp_truncate = 1;
    rc = acme_dns_txt_visible_blocking("127.0.0.1", f.port, "a.test",
                                       "over-tcp", 5000, err, sizeof(err));
    if (rc != 1) {
        fprintf(stderr, "  %s\n", err);
    }
    CHECK_INT(rc, 1);
    CHECK_INT(f.tcp_seen, 1);

    /* present but not the value we look for */
    rc = acme_dns_txt_visible_blocking("127.0.0.1", f.port, "a.test", "zzz",
                                       5000, err, sizeof(err));
    CHECK_INT(rc, 0);

    fake_dns_stop(&f, th);
}

UNIT_TEST(dns_exchange_timeout_and_refused)
{
    fake_dns_t f;
    pthread_t th;
    unsigned char q[12] = { 1, 2 }, *resp;
    size_t rlen;
    char err[ACME_ERRLEN] = "";

    memset(&f, 0, sizeof(f));
    f.udp_silent = 1;
    CHECK_INT(fake_dns_start(&f, &th), 0);

    /* silent server: a bounded wait, then a clear error (resent once) */
    CHECK_INT(acme_dns_exchange("127.0.0.1", f.port, 0, q, sizeof(q), 300,
                                &resp, &rlen, err, sizeof(err)), -1);
    CHECK(strstr(err, "no answer over UDP in time") != NULL);
    CHECK(resp == NULL);
    fake_dns_stop(&f, th);
    CHECK(f.udp_seen >= 1);

    /* nobody listening any more: refused over TCP */
    err[0] = '\0';
    CHECK_INT(acme_dns_exchange("127.0.0.1", f.port, 1, q, sizeof(q), 2000,
                                &resp, &rlen, err, sizeof(err)), -1);
    CHECK(strstr(err, "refused") != NULL);

    err[0] = '\0';
    CHECK_INT(acme_dns_exchange("127.0.0.1", 70000, 0, q, sizeof(q), 500,
                                &resp, &rlen, err, sizeof(err)), -1);
    CHECK(strstr(err, "invalid port") != NULL);
}

UNIT_TEST(dns_ns_response)
{
    acme_dns_txn_t txn;
    acme_dns_answer_t ans;
    unsigned char *q;
    size_t qlen;
    char err[ACME_ERRLEN] = "";
    tb_t t;
    unsigned char apex[2] = { 0xc0, 12 };

    CHECK_INT(acme_dns_query_build(&txn, "example.test", ACME_DNS_TYPE_NS, 0,
                                   77, &q, &qlen, err, sizeof(err)), 0);
    free(q);

    /* two NS at the apex (owner compressed, second target compressed too),
     * one NS of another name that must be ignored */
    t.n = 0;
    tb_hdr(&t, 77, 0x8400, 1, 3, 0, 0);
    tb_name(&t, "example.test");
    tb_u16(&t, 2);
    tb_u16(&t, 1);
    tb_put(&t, apex, 2);
    tb_u16(&t, 2);
    tb_u16(&t, 1);
    tb_u32(&t, 60);
    tb_u16(&t, 18);
    tb_name(&t, "NS1.example.test");
    tb_put(&t, apex, 2);
    tb_u16(&t, 2);
    tb_u16(&t, 1);
    tb_u32(&t, 60);
    tb_u16(&t, 6);
    tb_put(&t, "\003ns2", 4);
    tb_put(&t, apex, 2);
    tb_name(&t, "sub.example.test");
    tb_u16(&t, 2);
    tb_u16(&t, 1);
    tb_u32(&t, 60);
    tb_u16(&t, 4);
    tb_put(&t, "\001x", 2);
    tb_put(&t, apex, 2);

    CHECK_INT(acme_dns_response_parse(&txn, t.b, t.n, 0, &ans, err,
                                      sizeof(err)), 0);
    CHECK_INT(ans.n_ns, 2);
    if (ans.n_ns == 2) {
        CHECK_STR(ans.ns[0], "ns1.example.test");
        CHECK_STR(ans.ns[1], "ns2.example.test");
    }
    acme_dns_answer_free(&ans);

    /* an NS RDATA whose name runs past its RDLENGTH (18 -> 5) */
    CHECK_INT(t.b[12 + 14 + 4 + 2 + 8 + 1], 18);
    t.b[12 + 14 + 4 + 2 + 8 + 1] = 5;
    err[0] = '\0';
    CHECK_INT(acme_dns_response_parse(&txn, t.b, t.n, 0, &ans, err,
                                      sizeof(err)), -1);
}
