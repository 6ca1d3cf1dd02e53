/*
 * DNS responses (acme_dns_response_parse, acme_dns_update_check) to the
 * requests the dns-01 code makes: TXT, SOA and NS queries and a
 * TSIG-signed RFC 2136 UPDATE.  Input: one control byte, then the
 * response message.  Control byte: bits 0-1 pick the request (0 TXT,
 * 1 SOA, 2 NS query, 3 signed UPDATE); with bit 2 set the harness signs the
 * message itself (ARCOUNT + 1 and a valid HMAC-SHA256 TSIG over it, at
 * the fixed clock), so mutations also reach what follows a verified
 * signature.  Seeds: fuzz/make_dns_seeds.py.  FUZZ_DNS_VERBOSE=1 in the
 * environment prints how each input was judged.
 */
#include <stdio.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "acme_dns.h"
#include "acme_util.h"
#include "fuzz.h"

#define QID         0x1234
#define UID         0x4242
#define KEYNAME     "acme-key"
#define SECRET      "0123456789abcdef0123456789ABCDEF"
#define SECRET_B64  "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlBQkNERUY="

typedef struct {
    unsigned char   b[70000];
    size_t          n;
} buf_t;

static void
put(buf_t *t, const void *p, size_t n)
{
    FUZZ_ASSERT(t->n + n <= sizeof(t->b));
    memcpy(t->b + t->n, p, n);
    t->n += n;
}

static void
put16(buf_t *t, unsigned v)
{
    unsigned char c[2] = { (unsigned char) (v >> 8), (unsigned char) v };
    put(t, c, 2);
}

/* "a.b" -> 1a1b0 */
static void
put_name(buf_t *t, const char *name)
{
    const char     *s = name, *dot;
    unsigned char   l;

    while (*s) {
        dot = strchr(s, '.');
        l = (unsigned char) (dot ? (size_t) (dot - s) : strlen(s));
        put(t, &l, 1);
        put(t, s, l);
        s += l + (dot != NULL);
    }
    put(t, "", 1);
}

/* Appends a valid TSIG (RFC 8945 section 4.3) for a response to txn. */
static void
sign(buf_t *m, const acme_dns_txn_t *txn)
{
    static buf_t    d;
    unsigned char   mac[EVP_MAX_MD_SIZE];
    unsigned int    maclen = 0;
    unsigned char   t48[6];
    long long       now = FUZZ_T0;
    int             i;

    for (i = 0; i < 6; i++) {
        t48[i] = (unsigned char) (now >> (8 * (5 - i)));
    }

    d.n = 0;
    put16(&d, (unsigned) txn->mac_len);
    put(&d, txn->mac, txn->mac_len);
    put(&d, m->b, m->n);
    put_name(&d, KEYNAME);
    put16(&d, 255);
    put16(&d, 0);
    put16(&d, 0);
    put_name(&d, "hmac-sha256");
    put(&d, t48, 6);
    put16(&d, 300);
    put16(&d, 0);
    put16(&d, 0);
    FUZZ_ASSERT(HMAC(EVP_sha256(), SECRET, (int) strlen(SECRET), d.b, d.n,
                     mac, &maclen) != NULL);

    /* ARCOUNT + 1, then the TSIG RR */
    i = (m->b[10] << 8 | m->b[11]) + 1;
    m->b[10] = (unsigned char) (i >> 8);
    m->b[11] = (unsigned char) i;
    put_name(m, KEYNAME);
    put16(m, 250);
    put16(m, 255);
    put16(m, 0);
    put16(m, 0);
    /* RDLENGTH: algorithm name (13), time (6), fudge, MAC size, MAC,
     * original ID, error, other length */
    put16(m, 13 + 6 + 2 + 2 + maclen + 2 + 2 + 2);
    put_name(m, "hmac-sha256");
    put(m, t48, 6);
    put16(m, 300);
    put16(m, maclen);
    put(m, mac, maclen);
    put16(m, txn->id);
    put16(m, 0);
    put16(m, 0);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static acme_tsig_key_t   key;
    static buf_t             m;
    acme_dns_txn_t           txn;
    acme_dns_answer_t        ans;
    unsigned char           *req;
    size_t                   reqlen, i;
    char                     err[ACME_ERRLEN];
    int                      kind, rc;

    if (key.name == NULL) {
        FUZZ_ASSERT(acme_tsig_key_init(&key, KEYNAME, "hmac-sha256",
                                       SECRET_B64, err, sizeof(err)) == 0);
    }
    if (size < 1) {
        return 0;
    }
    kind = data[0] & 3;

    memset(&txn, 0, sizeof(txn));
    switch (kind) {
    case 0:
        rc = acme_dns_query_build(&txn, "_acme-challenge.a.example.test",
                                  ACME_DNS_TYPE_TXT, 0, QID, &req, &reqlen,
                                  err, sizeof(err));
        break;
    case 1:
        rc = acme_dns_query_build(&txn, "_acme-challenge.a.example.test",
                                  ACME_DNS_TYPE_SOA, 1, QID, &req, &reqlen,
                                  err, sizeof(err));
        break;
    case 2:
        rc = acme_dns_query_build(&txn, "example.test", ACME_DNS_TYPE_NS, 0,
                                  QID, &req, &reqlen, err, sizeof(err));
        break;
    default:
        rc = acme_dns_update_build(&txn, "example.test",
                                   "_acme-challenge.a.example.test", "v", 60,
                                   ACME_DNS_UPDATE_ADD, &key, FUZZ_T0, UID,
                                   &req, &reqlen, err, sizeof(err));
        break;
    }
    FUZZ_ASSERT(rc == 0);
    free(req);

    m.n = 0;
    put(&m, data + 1, size - 1);
    if ((data[0] & 4) && m.n >= 12 && kind == 3) {
        sign(&m, &txn);
    }

    memset(&ans, 0, sizeof(ans));
    rc = acme_dns_response_parse(&txn, m.b, m.n, FUZZ_T0, &ans, err,
                                 sizeof(err));
    if (getenv("FUZZ_DNS_VERBOSE") != NULL) {
        fprintf(stderr, "fuzz_dns: kind %d: %s%s (rcode %d, signed %d, "
                "tsig error %d, %zu TXT, %zu NS, SOA %s)\n", kind,
                rc == 0 ? "parsed" : "refused: ", rc == 0 ? "" : err,
                ans.rcode, ans.signed_ok, ans.tsig_error, ans.n_txt, ans.n_ns,
                ans.soa_owner ? ans.soa_owner : "-");
    }
    if (rc == 0) {
        for (i = 0; i < ans.n_txt; i++) {
            (void) strlen(ans.txt[i]);
        }
        for (i = 0; i < ans.n_ns; i++) {
            (void) strlen(ans.ns[i]);
        }
        if (ans.soa_owner != NULL) {
            (void) strlen(ans.soa_owner);
        }
        (void) acme_dns_rcode_name(ans.rcode);
        if (kind == 3) {
            rc = acme_dns_update_check(&ans, err, sizeof(err));
            FUZZ_ASSERT(rc == 0 || err[0] != '\0');
        }
    } else {
        FUZZ_ASSERT(err[0] != '\0');
    }
    acme_dns_answer_free(&ans);
    return 0;
}
