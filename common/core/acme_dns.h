/*
 * dns-01 (RFC 8555 section 8.4) support: the TXT value and record name,
 * RFC 2136 dynamic updates signed with TSIG (RFC 8945), and plain queries
 * to check that a record is visible on the authoritative servers.
 *
 * The message functions are sans-I/O: they build bytes to send and parse
 * bytes received, with the current time passed in.  The network part, for
 * threads only, is io/acme_dns_client.h.
 *
 * Names are given in presentation form ("_acme-challenge.example.com",
 * a trailing dot optional, no escapes); they are written uncompressed.
 */
#ifndef ACME_DNS_H
#define ACME_DNS_H

#include <stddef.h>
#include <stdint.h>

/* ---- dns-01 ---- */

/* base64url(SHA-256(key_authz)): the TXT record's content.  malloc'd. */
char *acme_dns01_txt_value(const char *key_authz);

/* "_acme-challenge.<domain>" with a leading "*." removed, lowercased, no
 * trailing dot.  malloc'd; NULL if domain is empty or too long. */
char *acme_dns01_record_name(const char *domain);

/* ---- TSIG keys ---- */

typedef struct {
    char            *name;          /* lowercase, no trailing dot */
    const char      *alg;           /* "hmac-sha256", "-sha384", "-sha512" */
    unsigned char   *secret;
    size_t           secret_len;
} acme_tsig_key_t;

/*
 * Fills *key from a key name, an algorithm (NULL = "hmac-sha256"; the BIND
 * spellings "hmac-sha256" and "HMAC-SHA256." both work) and the secret in
 * base64 (as tsig-keygen prints it; base64url accepted too).  0 or -1 with
 * err, which never contains the secret.  Free with acme_tsig_key_clear().
 */
int acme_tsig_key_init(acme_tsig_key_t *key, const char *name,
    const char *alg, const char *secret_b64, char *err, size_t errlen);

/*
 * The same from the text of a BIND key file as tsig-keygen writes it:
 *     key "acme-key" { algorithm hmac-sha256; secret "base64=="; };
 * The first key statement is used.
 */
int acme_tsig_key_from_bind(acme_tsig_key_t *key, const char *text,
    char *err, size_t errlen);

/* Cleanses the secret and frees the members (NULL-safe, idempotent). */
void acme_tsig_key_clear(acme_tsig_key_t *key);

/* ---- messages ---- */

#define ACME_DNS_TYPE_A       1
#define ACME_DNS_TYPE_NS      2
#define ACME_DNS_TYPE_CNAME   5
#define ACME_DNS_TYPE_SOA     6
#define ACME_DNS_TYPE_TXT     16
#define ACME_DNS_TYPE_TSIG    250

#define ACME_DNS_NOERROR      0
#define ACME_DNS_FORMERR      1
#define ACME_DNS_SERVFAIL     2
#define ACME_DNS_NXDOMAIN     3
#define ACME_DNS_NOTIMP       4
#define ACME_DNS_REFUSED      5
#define ACME_DNS_YXDOMAIN     6
#define ACME_DNS_YXRRSET      7
#define ACME_DNS_NXRRSET      8
#define ACME_DNS_NOTAUTH      9
#define ACME_DNS_NOTZONE      10
#define ACME_DNS_BADSIG       16      /* TSIG error field values */
#define ACME_DNS_BADKEY       17
#define ACME_DNS_BADTIME      18
#define ACME_DNS_BADTRUNC     22

#define ACME_DNS_TSIG_FUDGE   300

/* "NOERROR", "NOTAUTH", "BADSIG", ...; "RCODE<n>" for others (static or
 * in a buffer that the next call reuses: copy if you keep it). */
const char *acme_dns_rcode_name(int rcode);

/*
 * One request/response exchange.  Built by an acme_dns_*_build function,
 * it remembers what the response must match (ID, question) and, for signed
 * requests, the request MAC that the response's TSIG covers.
 */
typedef struct {
    uint16_t                 id;
    uint8_t                  opcode;        /* 0 QUERY, 5 UPDATE */
    uint16_t                 qtype;         /* SOA for an UPDATE's zone */
    char                     qname[256];    /* lowercase, no trailing dot;
                                               the zone for an UPDATE */
    const acme_tsig_key_t   *key;           /* borrowed; NULL = unsigned */
    unsigned char            mac[64];       /* the request's TSIG MAC */
    size_t                   mac_len;
} acme_dns_txn_t;

typedef enum {
    ACME_DNS_UPDATE_ADD = 1,        /* add name TXT "value" with ttl */
    ACME_DNS_UPDATE_DELETE          /* delete exactly name TXT "value" */
} acme_dns_update_op_t;

/*
 * An UPDATE (opcode 5) for zone: one TXT RR added or deleted, signed with
 * key (mandatory) at time now (unix seconds), fudge 300.  id is the message
 * ID (random in real use).  *out is malloc'd, *outlen its size.
 * 0, or -1 with err (bad names, name outside the zone, value too long).
 */
int acme_dns_update_build(acme_dns_txn_t *txn, const char *zone,
    const char *name, const char *txt, uint32_t ttl,
    acme_dns_update_op_t op, const acme_tsig_key_t *key, long long now,
    uint16_t id, unsigned char **out, size_t *outlen,
    char *err, size_t errlen);

/* A standard query (RD clear: meant for authoritative servers; rd = 1 to
 * ask a recursive resolver) for name/qtype. */
int acme_dns_query_build(acme_dns_txn_t *txn, const char *name,
    uint16_t qtype, int rd, uint16_t id, unsigned char **out,
    size_t *outlen, char *err, size_t errlen);

typedef struct {
    int          rcode;
    int          aa;                /* authoritative answer */
    int          tc;                /* truncated: ask again over TCP */
    int          signed_ok;         /* its TSIG was there and verified */
    int          tsig_error;        /* its TSIG's error field, 0 if none */
    char       **txt;               /* TXT answers owned by qname (the
                                       strings of one RR concatenated) */
    size_t       n_txt;
    char        *soa_owner;         /* owner of an SOA in answer or authority
                                       (= the zone apex), lowercase, or NULL */
    char       **ns;                /* NS targets owned by qname in the answer
                                       (lowercase); n_ns of them */
    size_t       n_ns;
} acme_dns_answer_t;

/*
 * Parses a response to txn's request.  0 when it is well formed, answers
 * this request (ID, QR, question) and, if the request was signed, its TSIG
 * verified -- except that a TSIG error response (BADSIG/BADKEY, sent
 * unsigned by the server) is returned with signed_ok = 0 and tsig_error
 * set.  -1 with err otherwise (including a forged or unsigned answer to a
 * signed request, or a response time outside the fudge).  The DNS rcode
 * itself is not judged here: see acme_dns_update_check().
 * Free *ans with acme_dns_answer_free().
 */
int acme_dns_response_parse(acme_dns_txn_t *txn, const unsigned char *msg,
    size_t len, long long now, acme_dns_answer_t *ans,
    char *err, size_t errlen);

void acme_dns_answer_free(acme_dns_answer_t *ans);

/*
 * The verdict on a parsed UPDATE response: 0 for a verified NOERROR, else
 * -1 with a clear err, e.g. "DNS UPDATE refused: NOTAUTH, TSIG BADSIG (the
 * server does not accept our signature: check the key name and secret)".
 */
int acme_dns_update_check(const acme_dns_answer_t *ans, char *err,
    size_t errlen);

#endif
