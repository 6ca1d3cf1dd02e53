/*
 * dns-01 helpers, RFC 2136 UPDATE with RFC 8945 TSIG, plain queries: the
 * messages only (the blocking sender is io/acme_dns_client.c).  Wire format
 * per RFC 1035 section 4.
 *
 * Names we write are uncompressed and lowercase: TSIG's canonical form
 * needs that for the key and algorithm names anyway, and it keeps the
 * writer trivial.  The reader follows compression pointers, with a bound
 * on their number so a hostile message cannot loop.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "acme_dns.h"
#include "acme_util.h"

#define DNS_HDR_LEN        12
#define DNS_CLASS_IN       1
#define DNS_CLASS_NONE     254
#define DNS_CLASS_ANY      255
#define DNS_OPCODE_QUERY   0
#define DNS_OPCODE_UPDATE  5
#define DNS_MAX_MSG        65535
#define DNS_MAX_PTRS       64       /* compression pointers followed per name */


/* ---- dns-01 ---- */

char *
acme_dns01_txt_value(const char *key_authz)
{
    unsigned char  md[32];
    unsigned int   mdlen;

    if (key_authz == NULL
        || EVP_Digest(key_authz, strlen(key_authz), md, &mdlen, EVP_sha256(),
                      NULL) != 1)
    {
        ERR_clear_error();
        return NULL;
    }
    return acme_b64url_encode(md, mdlen);
}

char *
acme_dns01_record_name(const char *domain)
{
    size_t   n, i;
    char    *out;

    if (domain == NULL) {
        return NULL;
    }
    if (domain[0] == '*' && domain[1] == '.') {
        domain += 2;
    }
    n = strlen(domain);
    if (n > 0 && domain[n - 1] == '.') {
        n--;
    }
    /* "_acme-challenge." is 16 bytes; a presentation name is at most 253 */
    if (n == 0 || n + 16 > 253) {
        return NULL;
    }

    out = acme_sprintf("_acme-challenge.%.*s", (int) n, domain);
    if (out != NULL) {
        for (i = 0; out[i]; i++) {
            out[i] = (char) tolower((unsigned char) out[i]);
        }
    }
    return out;
}


/* ---- names ---- */

/*
 * Presentation name -> canonical text (lowercase, no trailing dot) in
 * out[256], checking label and total lengths.  The root is refused: no
 * name we handle is the root.
 */
static int
name_norm(const char *in, char *out, const char *what, char *err,
    size_t errlen)
{
    size_t  n, i, label;

    if (in == NULL || in[0] == '\0' || strcmp(in, ".") == 0) {
        return acme_err(err, errlen, "DNS: empty %s", what);
    }
    n = strlen(in);
    if (in[n - 1] == '.') {
        n--;
    }
    /* wire length is n + 2 (first length byte and the root) */
    if (n + 2 > 255) {
        return acme_err(err, errlen, "DNS: %s is longer than 255 bytes", what);
    }

    label = 0;
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char) in[i];

        if (c == '.') {
            if (label == 0) {
                return acme_err(err, errlen, "DNS: %s \"%s\" has an empty "
                                "label", what, in);
            }
            label = 0;
            out[i] = '.';
            continue;
        }
        if (c <= ' ' || c >= 0x7f || c == '\\') {
            return acme_err(err, errlen, "DNS: %s \"%s\" has an invalid "
                            "character", what, in);
        }
        if (++label > 63) {
            return acme_err(err, errlen, "DNS: %s \"%s\" has a label longer "
                            "than 63 bytes", what, in);
        }
        out[i] = (char) tolower(c);
    }
    if (label == 0) {
        return acme_err(err, errlen, "DNS: %s \"%s\" has an empty label",
                        what, in);
    }
    out[n] = '\0';
    return 0;
}

/* Is name (canonical) equal to zone or below it? */
static int
name_in_zone(const char *name, const char *zone)
{
    size_t  n = strlen(name), z = strlen(zone);

    if (n == z) {
        return strcmp(name, zone) == 0;
    }
    return n > z && name[n - z - 1] == '.' && strcmp(name + n - z, zone) == 0;
}


/* ---- writer ---- */

typedef struct {
    unsigned char  *p;
    size_t          len;
    size_t          cap;
    int             failed;     /* allocation failure or over DNS_MAX_MSG */
} wbuf_t;

static void
put(wbuf_t *b, const void *data, size_t n)
{
    unsigned char  *np;
    size_t          ncap;

    if (b->failed || n == 0) {
        return;
    }
    if (b->len + n > DNS_MAX_MSG) {
        b->failed = 1;
        return;
    }
    if (b->len + n > b->cap) {
        ncap = b->cap ? b->cap * 2 : 512;
        while (ncap < b->len + n) {
            ncap *= 2;
        }
        np = realloc(b->p, ncap);
        if (np == NULL) {
            b->failed = 1;
            return;
        }
        b->p = np;
        b->cap = ncap;
    }
    memcpy(b->p + b->len, data, n);
    b->len += n;
}

static void
put_u16(wbuf_t *b, unsigned v)
{
    unsigned char  c[2] = { (unsigned char) (v >> 8), (unsigned char) v };

    put(b, c, 2);
}

static void
put_u32(wbuf_t *b, uint32_t v)
{
    unsigned char  c[4] = { (unsigned char) (v >> 24),
                            (unsigned char) (v >> 16),
                            (unsigned char) (v >> 8), (unsigned char) v };

    put(b, c, 4);
}

static void
put_u48(wbuf_t *b, unsigned long long v)
{
    unsigned char  c[6];
    int            i;

    for (i = 5; i >= 0; i--) {
        c[i] = (unsigned char) v;
        v >>= 8;
    }
    put(b, c, 6);
}

/* A canonical name (from name_norm) as uncompressed wire labels. */
static void
put_name(wbuf_t *b, const char *name)
{
    const char     *s, *dot;
    unsigned char   l;

    for (s = name; *s; s = dot + 1) {
        dot = strchr(s, '.');
        if (dot == NULL) {
            dot = s + strlen(s);
        }
        l = (unsigned char) (dot - s);
        put(b, &l, 1);
        put(b, s, l);
        if (*dot == '\0') {
            break;
        }
    }
    put(b, "", 1);
}

static void
put_header(wbuf_t *b, uint16_t id, unsigned flags, unsigned qd, unsigned an,
    unsigned ns, unsigned ar)
{
    put_u16(b, id);
    put_u16(b, flags);
    put_u16(b, qd);
    put_u16(b, an);
    put_u16(b, ns);
    put_u16(b, ar);
}


/* ---- TSIG keys ---- */

static const struct {
    const char  *name;
    const char  *digest;
    size_t       size;
} tsig_algs[] = {
    { "hmac-sha256", "SHA256", 32 },
    { "hmac-sha384", "SHA384", 48 },
    { "hmac-sha512", "SHA512", 64 },
};

static int
tsig_alg_index(const char *alg)
{
    size_t  i, n;

    n = strlen(alg);
    if (n > 0 && alg[n - 1] == '.') {
        n--;
    }
    for (i = 0; i < sizeof(tsig_algs) / sizeof(tsig_algs[0]); i++) {
        if (strlen(tsig_algs[i].name) == n
            && strncasecmp(alg, tsig_algs[i].name, n) == 0)
        {
            return (int) i;
        }
    }
    return -1;
}

int
acme_tsig_key_init(acme_tsig_key_t *key, const char *name, const char *alg,
    const char *secret_b64, char *err, size_t errlen)
{
    char   canon[256];
    int    a;

    memset(key, 0, sizeof(*key));

    if (name_norm(name, canon, "TSIG key name", err, errlen) != 0) {
        return -1;
    }
    a = tsig_alg_index(alg ? alg : "hmac-sha256");
    if (a < 0) {
        return acme_err(err, errlen, "DNS: unsupported TSIG algorithm \"%s\" "
                        "(hmac-sha256, hmac-sha384 or hmac-sha512)", alg);
    }
    if (secret_b64 == NULL) {
        return acme_err(err, errlen, "DNS: TSIG key \"%s\" has no secret",
                        canon);
    }

    key->secret = acme_b64_secret_decode(secret_b64, &key->secret_len, NULL);
    if (key->secret == NULL) {
        return acme_err(err, errlen, "DNS: the secret of TSIG key \"%s\" is "
                        "not valid base64", canon);
    }
    if (key->secret_len == 0) {
        acme_tsig_key_clear(key);
        return acme_err(err, errlen, "DNS: the secret of TSIG key \"%s\" is "
                        "empty", canon);
    }

    key->name = acme_strdup(canon);
    if (key->name == NULL) {
        acme_tsig_key_clear(key);
        return acme_err(err, errlen, "DNS: out of memory");
    }
    key->alg = tsig_algs[a].name;
    return 0;
}

/*
 * Tokens of BIND's configuration grammar, enough for a key statement:
 * words, "quoted strings", and the punctuation { } ;.  Comments (#, //,
 * / * * /) are skipped.  Returns the token length, 0 at the end.
 */
static size_t
bind_token(const char **pp, const char **tok, int *quoted)
{
    const char  *p = *pp, *s;
    size_t       n;

    for ( ;; ) {
        while (*p && isspace((unsigned char) *p)) {
            p++;
        }
        if (*p == '#' || (p[0] == '/' && p[1] == '/')) {
            while (*p && *p != '\n') {
                p++;
            }
            continue;
        }
        if (p[0] == '/' && p[1] == '*') {
            s = strstr(p + 2, "*/");
            p = s ? s + 2 : p + strlen(p);
            continue;
        }
        break;
    }

    *quoted = 0;
    if (*p == '\0') {
        *pp = p;
        return 0;
    }
    if (*p == '"') {
        s = strchr(p + 1, '"');
        if (s == NULL) {
            *pp = p + strlen(p);
            return 0;
        }
        *tok = p + 1;
        *quoted = 1;
        *pp = s + 1;
        return (size_t) (s - p - 1);
    }
    if (*p == '{' || *p == '}' || *p == ';') {
        *tok = p;
        *pp = p + 1;
        return 1;
    }
    s = p;
    while (*p && !isspace((unsigned char) *p) && *p != '{' && *p != '}'
           && *p != ';' && *p != '"')
    {
        p++;
    }
    *tok = s;
    *pp = p;
    n = (size_t) (p - s);
    return n;
}

int
acme_tsig_key_from_bind(acme_tsig_key_t *key, const char *text, char *err,
    size_t errlen)
{
    const char  *p, *tok;
    char        *name, *alg, *secret, **slot;
    size_t       n;
    int          quoted, rc, depth;

    memset(key, 0, sizeof(*key));
    name = alg = secret = NULL;
    rc = -1;
    p = text ? text : "";

    /* key NAME { ... } at the top level: a "key" inside another
     * statement (allow-update { key "x"; }) is a reference, skipped */
    depth = 0;
    for ( ;; ) {
        n = bind_token(&p, &tok, &quoted);
        if (n == 0) {
            acme_err(err, errlen, "DNS: no key statement in the TSIG key text");
            goto done;
        }
        if (quoted) {
            continue;
        }
        if (tok[0] == '{') {
            depth++;
        } else if (tok[0] == '}' && depth > 0) {
            depth--;
        } else if (depth == 0 && n == 3 && strncmp(tok, "key", 3) == 0) {
            break;
        }
    }
    n = bind_token(&p, &tok, &quoted);
    if (n == 0 || (!quoted && (tok[0] == '{' || tok[0] == ';'))) {
        acme_err(err, errlen, "DNS: key statement without a name");
        goto done;
    }
    name = acme_strndup(tok, n);
    n = bind_token(&p, &tok, &quoted);
    if (n != 1 || quoted || tok[0] != '{') {
        acme_err(err, errlen, "DNS: key \"%s\": \"{\" expected", name);
        goto done;
    }

    depth = 1;
    while (depth > 0) {
        n = bind_token(&p, &tok, &quoted);
        if (n == 0) {
            acme_err(err, errlen, "DNS: key \"%s\": unterminated statement",
                     name);
            goto done;
        }
        if (quoted) {
            continue;
        }
        if (tok[0] == '{') {
            depth++;
            continue;
        }
        if (tok[0] == '}') {
            depth--;
            continue;
        }
        if (depth != 1) {
            continue;
        }
        if (n == 9 && strncmp(tok, "algorithm", 9) == 0) {
            slot = &alg;
        } else if (n == 6 && strncmp(tok, "secret", 6) == 0) {
            slot = &secret;
        } else {
            continue;
        }
        n = bind_token(&p, &tok, &quoted);
        if (n == 0 || (!quoted && (tok[0] == ';' || tok[0] == '}'))) {
            acme_err(err, errlen, "DNS: key \"%s\": a value is missing", name);
            goto done;
        }
        free(*slot);
        *slot = acme_strndup(tok, n);
    }

    if (secret == NULL) {
        acme_err(err, errlen, "DNS: key \"%s\" has no secret", name);
        goto done;
    }
    rc = acme_tsig_key_init(key, name, alg, secret, err, errlen);

done:

    free(name);
    free(alg);
    if (secret != NULL) {
        OPENSSL_cleanse(secret, strlen(secret));
        free(secret);
    }
    return rc;
}

void
acme_tsig_key_clear(acme_tsig_key_t *key)
{
    if (key == NULL) {
        return;
    }
    if (key->secret != NULL) {
        OPENSSL_cleanse(key->secret, key->secret_len);
        free(key->secret);
    }
    free(key->name);
    memset(key, 0, sizeof(*key));
}


/* ---- TSIG ---- */

typedef struct {
    const unsigned char  *data;
    size_t                len;
} chunk_t;

static int
hmac_chunks(const acme_tsig_key_t *key, const chunk_t *c, size_t n,
    unsigned char *out, size_t *outlen)
{
    EVP_MAC      *mac;
    EVP_MAC_CTX  *ctx;
    OSSL_PARAM    params[2];
    size_t        i;
    int           ok, a;

    a = tsig_alg_index(key->alg);
    if (a < 0) {
        return -1;
    }
    mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    ctx = mac ? EVP_MAC_CTX_new(mac) : NULL;
    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST,
                                        (char *) tsig_algs[a].digest, 0);
    params[1] = OSSL_PARAM_construct_end();

    ok = ctx != NULL
         && EVP_MAC_init(ctx, key->secret, key->secret_len, params) == 1;
    for (i = 0; ok && i < n; i++) {
        ok = EVP_MAC_update(ctx, c[i].data, c[i].len) == 1;
    }
    ok = ok && EVP_MAC_final(ctx, out, outlen, 64) == 1;

    EVP_MAC_CTX_free(ctx);
    EVP_MAC_free(mac);
    if (!ok) {
        ERR_clear_error();
        return -1;
    }
    return 0;
}

/* The TSIG variables of RFC 8945 section 4.3.3, for the digest. */
static void
put_tsig_vars(wbuf_t *b, const char *key_name, const char *alg,
    unsigned long long time_signed, unsigned fudge, unsigned error,
    const unsigned char *other, size_t other_len)
{
    put_name(b, key_name);
    put_u16(b, DNS_CLASS_ANY);
    put_u32(b, 0);
    put_name(b, alg);
    put_u48(b, time_signed);
    put_u16(b, fudge);
    put_u16(b, error);
    put_u16(b, (unsigned) other_len);
    put(b, other, other_len);
}

/*
 * Signs the request in *b (whose ARCOUNT does not count the TSIG yet):
 * computes the MAC, appends the TSIG RR, bumps ARCOUNT, and keeps the MAC
 * in txn for the response.
 */
static int
tsig_sign_request(wbuf_t *b, acme_dns_txn_t *txn, const acme_tsig_key_t *key,
    long long now)
{
    wbuf_t          vars, rdata;
    chunk_t         c[2];
    unsigned char   mac[64];
    size_t          maclen;
    unsigned        arcount;
    int             rc;

    memset(&vars, 0, sizeof(vars));
    memset(&rdata, 0, sizeof(rdata));
    rc = -1;

    put_tsig_vars(&vars, key->name, key->alg, (unsigned long long) now,
                  ACME_DNS_TSIG_FUDGE, 0, NULL, 0);
    if (vars.failed || b->failed) {
        goto done;
    }

    c[0].data = b->p;
    c[0].len = b->len;
    c[1].data = vars.p;
    c[1].len = vars.len;
    if (hmac_chunks(key, c, 2, mac, &maclen) != 0) {
        goto done;
    }

    put_name(&rdata, key->alg);
    put_u48(&rdata, (unsigned long long) now);
    put_u16(&rdata, ACME_DNS_TSIG_FUDGE);
    put_u16(&rdata, (unsigned) maclen);
    put(&rdata, mac, maclen);
    put_u16(&rdata, txn->id);
    put_u16(&rdata, 0);            /* error */
    put_u16(&rdata, 0);            /* other len */
    if (rdata.failed) {
        goto done;
    }

    put_name(b, key->name);
    put_u16(b, ACME_DNS_TYPE_TSIG);
    put_u16(b, DNS_CLASS_ANY);
    put_u32(b, 0);
    put_u16(b, (unsigned) rdata.len);
    put(b, rdata.p, rdata.len);
    if (b->failed) {
        goto done;
    }

    arcount = ((unsigned) b->p[10] << 8 | b->p[11]) + 1;
    b->p[10] = (unsigned char) (arcount >> 8);
    b->p[11] = (unsigned char) arcount;

    memcpy(txn->mac, mac, maclen);
    txn->mac_len = maclen;
    txn->key = key;
    rc = 0;

done:

    free(vars.p);
    free(rdata.p);
    return rc;
}


/* ---- building ---- */

int
acme_dns_update_build(acme_dns_txn_t *txn, const char *zone,
    const char *name, const char *txt, uint32_t ttl,
    acme_dns_update_op_t op, const acme_tsig_key_t *key, long long now,
    uint16_t id, unsigned char **out, size_t *outlen,
    char *err, size_t errlen)
{
    wbuf_t   b, rdata;
    char     zn[256], rn[256];
    size_t   tl, off, n;

    *out = NULL;
    *outlen = 0;
    memset(txn, 0, sizeof(*txn));

    if (key == NULL || key->name == NULL || key->secret == NULL) {
        return acme_err(err, errlen, "DNS UPDATE: a TSIG key is required");
    }
    if (op != ACME_DNS_UPDATE_ADD && op != ACME_DNS_UPDATE_DELETE) {
        return acme_err(err, errlen, "DNS UPDATE: unknown operation");
    }
    if (name_norm(zone, zn, "zone", err, errlen) != 0
        || name_norm(name, rn, "record name", err, errlen) != 0)
    {
        return -1;
    }
    if (!name_in_zone(rn, zn)) {
        return acme_err(err, errlen, "DNS UPDATE: \"%s\" is not in zone "
                        "\"%s\"", rn, zn);
    }
    if (txt == NULL) {
        return acme_err(err, errlen, "DNS UPDATE: no TXT value");
    }
    /* character-strings of at most 255 bytes each, in an RDATA < 64 KiB */
    tl = strlen(txt);
    if (tl > 4000) {
        return acme_err(err, errlen, "DNS UPDATE: TXT value longer than 4000 "
                        "bytes");
    }

    memset(&b, 0, sizeof(b));
    memset(&rdata, 0, sizeof(rdata));

    off = 0;
    do {
        unsigned char l;

        n = tl - off > 255 ? 255 : tl - off;
        l = (unsigned char) n;
        put(&rdata, &l, 1);
        put(&rdata, txt + off, n);
        off += n;
    } while (off < tl);

    txn->id = id;
    txn->opcode = DNS_OPCODE_UPDATE;
    txn->qtype = ACME_DNS_TYPE_SOA;
    memcpy(txn->qname, zn, sizeof(zn));

    /* zone section: 1, prerequisites: 0, updates: 1, additional: 0 (TSIG) */
    put_header(&b, id, DNS_OPCODE_UPDATE << 11, 1, 0, 1, 0);
    put_name(&b, zn);
    put_u16(&b, ACME_DNS_TYPE_SOA);
    put_u16(&b, DNS_CLASS_IN);

    /* RFC 2136 section 2.5.1 (add) and 2.5.4 (delete an RR: class NONE,
     * TTL 0, the RDATA to match) */
    put_name(&b, rn);
    put_u16(&b, ACME_DNS_TYPE_TXT);
    put_u16(&b, op == ACME_DNS_UPDATE_ADD ? DNS_CLASS_IN : DNS_CLASS_NONE);
    put_u32(&b, op == ACME_DNS_UPDATE_ADD ? ttl : 0);
    put_u16(&b, (unsigned) rdata.len);
    put(&b, rdata.p, rdata.len);
    free(rdata.p);

    if (rdata.failed || b.failed || tsig_sign_request(&b, txn, key, now) != 0) {
        free(b.p);
        return acme_err(err, errlen, "DNS UPDATE: cannot build the message "
                        "(out of memory or HMAC failure)");
    }

    *out = b.p;
    *outlen = b.len;
    return 0;
}

int
acme_dns_query_build(acme_dns_txn_t *txn, const char *name, uint16_t qtype,
    int rd, uint16_t id, unsigned char **out, size_t *outlen,
    char *err, size_t errlen)
{
    wbuf_t  b;
    char    qn[256];

    *out = NULL;
    *outlen = 0;
    memset(txn, 0, sizeof(*txn));

    if (name_norm(name, qn, "query name", err, errlen) != 0) {
        return -1;
    }

    txn->id = id;
    txn->opcode = DNS_OPCODE_QUERY;
    txn->qtype = qtype;
    memcpy(txn->qname, qn, sizeof(qn));

    memset(&b, 0, sizeof(b));
    put_header(&b, id, rd ? 0x0100 : 0, 1, 0, 0, 0);
    put_name(&b, qn);
    put_u16(&b, qtype);
    put_u16(&b, DNS_CLASS_IN);
    if (b.failed) {
        free(b.p);
        return acme_err(err, errlen, "DNS: out of memory");
    }

    *out = b.p;
    *outlen = b.len;
    return 0;
}


/* ---- parsing ---- */

static uint16_t
get_u16(const unsigned char *p)
{
    return (uint16_t) (p[0] << 8 | p[1]);
}

static uint32_t
get_u32(const unsigned char *p)
{
    return (uint32_t) p[0] << 24 | (uint32_t) p[1] << 16
           | (uint32_t) p[2] << 8 | p[3];
}

/*
 * Reads the name at *off into out[256] (lowercase, no trailing dot; "" for
 * the root) and moves *off past it in the message.  -1 if malformed.
 */
static int
read_name(const unsigned char *msg, size_t len, size_t *off, char *out)
{
    size_t          pos, o, next;
    unsigned        l, ptrs;
    int             jumped;

    pos = *off;
    o = 0;
    ptrs = 0;
    jumped = 0;
    next = 0;

    for ( ;; ) {
        if (pos >= len) {
            return -1;
        }
        l = msg[pos];

        if ((l & 0xc0) == 0xc0) {
            if (pos + 1 >= len || ++ptrs > DNS_MAX_PTRS) {
                return -1;
            }
            if (!jumped) {
                next = pos + 2;
                jumped = 1;
            }
            pos = (size_t) ((l & 0x3f) << 8 | msg[pos + 1]);
            continue;
        }
        if (l & 0xc0) {
            return -1;      /* extended label types are not used */
        }
        if (l == 0) {
            pos++;
            break;
        }
        if (pos + 1 + l > len || o + l + 1 > 255) {
            return -1;
        }
        if (o > 0) {
            out[o++] = '.';
        }
        for (unsigned i = 0; i < l; i++) {
            out[o++] = (char) tolower(msg[pos + 1 + i]);
        }
        pos += 1 + l;
    }

    out[o] = '\0';
    *off = jumped ? next : pos;
    return 0;
}

typedef struct {
    char                  name[256];
    uint16_t              type;
    uint16_t              cls;
    uint32_t              ttl;
    size_t                start;       /* offset of the RR's owner name */
    size_t                rdata;       /* offset of RDATA */
    uint16_t              rdlen;
} rr_t;

static int
read_rr(const unsigned char *msg, size_t len, size_t *off, rr_t *rr)
{
    rr->start = *off;
    if (read_name(msg, len, off, rr->name) != 0 || *off + 10 > len) {
        return -1;
    }
    rr->type = get_u16(msg + *off);
    rr->cls = get_u16(msg + *off + 2);
    rr->ttl = get_u32(msg + *off + 4);
    rr->rdlen = get_u16(msg + *off + 8);
    rr->rdata = *off + 10;
    if (rr->rdata + rr->rdlen > len) {
        return -1;
    }
    *off = rr->rdata + rr->rdlen;
    return 0;
}

/* TXT RDATA: its character-strings concatenated (RFC 8555 uses one). */
static char *
txt_join(const unsigned char *p, size_t n)
{
    char    *out;
    size_t   i, o, l;

    out = malloc(n + 1);
    if (out == NULL) {
        return NULL;
    }
    for (i = 0, o = 0; i < n; i += 1 + l) {
        l = p[i];
        if (i + 1 + l > n) {
            free(out);
            return NULL;
        }
        memcpy(out + o, p + i + 1, l);
        o += l;
    }
    out[o] = '\0';
    return out;
}

/* Appends s (taken over) to a string list; -1 (s freed) on failure. */
static int
list_add(char ***list, size_t *n, char *s)
{
    char  **nl;

    if (s == NULL) {
        return -1;
    }
    nl = realloc(*list, (*n + 1) * sizeof(char *));
    if (nl == NULL) {
        free(s);
        return -1;
    }
    *list = nl;
    (*list)[(*n)++] = s;
    return 0;
}

/*
 * Verifies the TSIG RR (the last RR of the message, at tsig->start) of a
 * response to txn.  See acme_dns_response_parse for the outcomes.
 */
static int
tsig_verify_response(acme_dns_txn_t *txn, const unsigned char *msg,
    size_t len, const rr_t *tsig, long long now, acme_dns_answer_t *ans,
    char *err, size_t errlen)
{
    const acme_tsig_key_t  *key = txn->key;
    const unsigned char    *r, *mac, *other;
    char                    alg[256];
    size_t                  off, maclen, other_len, explen;
    unsigned long long      time_signed;
    unsigned                fudge, orig_id, error, arcount;
    unsigned char           hdr[DNS_HDR_LEN], prefix[2], calc[64];
    wbuf_t                  vars;
    chunk_t                 c[5];
    long long               skew;
    int                     a;

    if (strcmp(tsig->name, key->name) != 0) {
        return acme_err(err, errlen, "DNS: the response is signed with key "
                        "\"%s\", not \"%s\"", tsig->name, key->name);
    }

    off = tsig->rdata;
    if (read_name(msg, len, &off, alg) != 0
        || off + 10 > tsig->rdata + tsig->rdlen)
    {
        return acme_err(err, errlen, "DNS: malformed TSIG in the response");
    }
    r = msg + off;
    time_signed = (unsigned long long) get_u16(r) << 32 | get_u32(r + 2);
    fudge = get_u16(r + 6);
    maclen = get_u16(r + 8);
    off += 10;
    if (off + maclen + 6 > tsig->rdata + tsig->rdlen) {
        return acme_err(err, errlen, "DNS: malformed TSIG in the response");
    }
    mac = msg + off;
    off += maclen;
    orig_id = get_u16(msg + off);
    error = get_u16(msg + off + 2);
    other_len = get_u16(msg + off + 4);
    other = msg + off + 6;
    if (off + 6 + other_len != (size_t) tsig->rdata + tsig->rdlen) {
        return acme_err(err, errlen, "DNS: malformed TSIG in the response");
    }

    ans->tsig_error = (int) error;

    /* BADSIG and BADKEY answers are unsigned (RFC 8945 section 5.3.2) */
    if (error != 0 && maclen == 0) {
        return 0;
    }

    a = tsig_alg_index(alg);
    if (a < 0 || strcmp(tsig_algs[a].name, key->alg) != 0) {
        return acme_err(err, errlen, "DNS: the response TSIG uses algorithm "
                        "\"%s\", not %s", alg, key->alg);
    }
    explen = tsig_algs[a].size;
    if (maclen != explen) {
        return acme_err(err, errlen, "DNS: the response TSIG MAC has %zu "
                        "bytes, %zu expected", maclen, explen);
    }

    /* the digest covers the message as it was before the TSIG was added:
     * original ID, ARCOUNT one less, up to the TSIG RR */
    memcpy(hdr, msg, DNS_HDR_LEN);
    hdr[0] = (unsigned char) (orig_id >> 8);
    hdr[1] = (unsigned char) orig_id;
    arcount = get_u16(msg + 10) - 1;
    hdr[10] = (unsigned char) (arcount >> 8);
    hdr[11] = (unsigned char) arcount;

    prefix[0] = (unsigned char) (txn->mac_len >> 8);
    prefix[1] = (unsigned char) txn->mac_len;

    memset(&vars, 0, sizeof(vars));
    put_tsig_vars(&vars, key->name, key->alg, time_signed, fudge, error,
                  other, other_len);
    if (vars.failed) {
        free(vars.p);
        return acme_err(err, errlen, "DNS: out of memory");
    }

    c[0].data = prefix;
    c[0].len = 2;
    c[1].data = txn->mac;
    c[1].len = txn->mac_len;
    c[2].data = hdr;
    c[2].len = DNS_HDR_LEN;
    c[3].data = msg + DNS_HDR_LEN;
    c[3].len = tsig->start - DNS_HDR_LEN;
    c[4].data = vars.p;
    c[4].len = vars.len;

    if (hmac_chunks(key, c, 5, calc, &explen) != 0) {
        free(vars.p);
        return acme_err(err, errlen, "DNS: HMAC failure");
    }
    free(vars.p);

    if (explen != maclen || CRYPTO_memcmp(calc, mac, maclen) != 0) {
        return acme_err(err, errlen, "DNS: the response's TSIG signature does "
                        "not verify (forged response, or a different secret "
                        "for key \"%s\")", key->name);
    }

    skew = now - (long long) time_signed;
    if (skew > (long long) fudge || -skew > (long long) fudge) {
        return acme_err(err, errlen, "DNS: the response's TSIG time is %lld "
                        "s away from ours (fudge %u): check the clocks",
                        skew, fudge);
    }

    ans->signed_ok = 1;
    return 0;
}

int
acme_dns_response_parse(acme_dns_txn_t *txn, const unsigned char *msg,
    size_t len, long long now, acme_dns_answer_t *ans, char *err,
    size_t errlen)
{
    unsigned    flags, qd, an, ns, ar, i, total;
    size_t      off;
    char        qn[256], chase[256], *s;
    rr_t        rr, tsig;
    int         have_tsig;

    memset(ans, 0, sizeof(*ans));

    if (len < DNS_HDR_LEN) {
        return acme_err(err, errlen, "DNS: response shorter than a header");
    }
    if (get_u16(msg) != txn->id) {
        return acme_err(err, errlen, "DNS: response ID %u does not match the "
                        "request's %u", get_u16(msg), txn->id);
    }
    flags = get_u16(msg + 2);
    if (!(flags & 0x8000)) {
        return acme_err(err, errlen, "DNS: the message is not a response");
    }
    if (((flags >> 11) & 0xf) != txn->opcode) {
        return acme_err(err, errlen, "DNS: response opcode %u, request's %u",
                        (flags >> 11) & 0xf, txn->opcode);
    }
    ans->aa = (flags & 0x0400) != 0;
    ans->tc = (flags & 0x0200) != 0;
    ans->rcode = (int) (flags & 0xf);

    qd = get_u16(msg + 4);
    an = get_u16(msg + 6);
    ns = get_u16(msg + 8);
    ar = get_u16(msg + 10);

    off = DNS_HDR_LEN;
    /* error responses may omit the question; otherwise it must be ours */
    if (qd > 1) {
        return acme_err(err, errlen, "DNS: response has %u questions", qd);
    }
    if (qd == 1) {
        if (read_name(msg, len, &off, qn) != 0 || off + 4 > len) {
            return acme_err(err, errlen, "DNS: malformed question in the "
                            "response");
        }
        if (strcmp(qn, txn->qname) != 0
            || get_u16(msg + off) != txn->qtype)
        {
            return acme_err(err, errlen, "DNS: the response is for another "
                            "question (\"%s\")", qn);
        }
        off += 4;
    }

    /* a truncated response is not parsed further: ask again over TCP */
    if (ans->tc) {
        if (txn->key != NULL) {
            return acme_err(err, errlen, "DNS: truncated response to a signed "
                            "request");
        }
        return 0;
    }

    strcpy(chase, txn->qname);
    have_tsig = 0;
    total = an + ns + ar;

    for (i = 0; i < total; i++) {
        if (read_rr(msg, len, &off, &rr) != 0) {
            acme_dns_answer_free(ans);
            return acme_err(err, errlen, "DNS: malformed resource record in "
                            "the response");
        }

        if (rr.type == ACME_DNS_TYPE_TSIG) {
            /* RFC 8945 section 5.4: only as the very last record */
            if (i != total - 1 || i < an + ns) {
                acme_dns_answer_free(ans);
                return acme_err(err, errlen, "DNS: TSIG record not last in "
                                "the response");
            }
            tsig = rr;
            have_tsig = 1;
            continue;
        }

        if (i < an && rr.type == ACME_DNS_TYPE_CNAME
            && strcmp(rr.name, chase) == 0)
        {
            size_t o = rr.rdata;

            if (read_name(msg, len, &o, chase) != 0) {
                acme_dns_answer_free(ans);
                return acme_err(err, errlen, "DNS: malformed CNAME in the "
                                "response");
            }
            continue;
        }

        if (i < an && rr.type == ACME_DNS_TYPE_TXT && rr.cls == DNS_CLASS_IN
            && strcmp(rr.name, chase) == 0)
        {
            s = txt_join(msg + rr.rdata, rr.rdlen);
            if (list_add(&ans->txt, &ans->n_txt, s) != 0) {
                acme_dns_answer_free(ans);
                return acme_err(err, errlen, "DNS: malformed TXT record in "
                                "the response");
            }
            continue;
        }

        if (i < an && rr.type == ACME_DNS_TYPE_NS && rr.cls == DNS_CLASS_IN
            && strcmp(rr.name, chase) == 0)
        {
            size_t o = rr.rdata;

            if (read_name(msg, len, &o, qn) != 0 || o != rr.rdata + rr.rdlen
                || list_add(&ans->ns, &ans->n_ns, acme_strdup(qn)) != 0)
            {
                acme_dns_answer_free(ans);
                return acme_err(err, errlen, "DNS: malformed NS record in "
                                "the response");
            }
            continue;
        }

        if (i < an + ns && rr.type == ACME_DNS_TYPE_SOA
            && ans->soa_owner == NULL)
        {
            ans->soa_owner = acme_strdup(rr.name);
        }
    }

    if (off != len) {
        acme_dns_answer_free(ans);
        return acme_err(err, errlen, "DNS: %zu stray bytes after the "
                        "response's records", len - off);
    }

    if (txn->key == NULL) {
        return 0;
    }

    if (!have_tsig) {
        /* an unsigned error is still an error; an unsigned success could
         * be forged, so it is not believed */
        if (ans->rcode != ACME_DNS_NOERROR) {
            return 0;
        }
        acme_dns_answer_free(ans);
        return acme_err(err, errlen, "DNS: the response to a signed request "
                        "is not signed");
    }

    if (tsig_verify_response(txn, msg, len, &tsig, now, ans, err, errlen)
        != 0)
    {
        acme_dns_answer_free(ans);
        return -1;
    }
    return 0;
}

void
acme_dns_answer_free(acme_dns_answer_t *ans)
{
    size_t  i;

    if (ans == NULL) {
        return;
    }
    for (i = 0; i < ans->n_txt; i++) {
        free(ans->txt[i]);
    }
    for (i = 0; i < ans->n_ns; i++) {
        free(ans->ns[i]);
    }
    free(ans->txt);
    free(ans->ns);
    free(ans->soa_owner);
    ans->txt = NULL;
    ans->n_txt = 0;
    ans->ns = NULL;
    ans->n_ns = 0;
    ans->soa_owner = NULL;
}

const char *
acme_dns_rcode_name(int rcode)
{
    static const char  *names[] = {
        "NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED",
        "YXDOMAIN", "YXRRSET", "NXRRSET", "NOTAUTH", "NOTZONE"
    };
    static __thread char  buf[16];

    if (rcode >= 0 && rcode <= ACME_DNS_NOTZONE) {
        return names[rcode];
    }
    switch (rcode) {
    case ACME_DNS_BADSIG:
        return "BADSIG";
    case ACME_DNS_BADKEY:
        return "BADKEY";
    case ACME_DNS_BADTIME:
        return "BADTIME";
    case ACME_DNS_BADTRUNC:
        return "BADTRUNC";
    }
    snprintf(buf, sizeof(buf), "RCODE%d", rcode);
    return buf;
}

int
acme_dns_update_check(const acme_dns_answer_t *ans, char *err, size_t errlen)
{
    const char  *hint;
    char         tsig[32];

    if (ans->rcode == ACME_DNS_NOERROR && ans->tsig_error == 0
        && ans->signed_ok)
    {
        return 0;
    }

    switch (ans->tsig_error) {
    case ACME_DNS_BADSIG:
        hint = "the server does not accept our signature: check the key's "
               "secret and algorithm";
        break;
    case ACME_DNS_BADKEY:
        hint = "the server does not know this key name or algorithm";
        break;
    case ACME_DNS_BADTIME:
        hint = "our clock and the server's differ by more than the fudge";
        break;
    default:
        switch (ans->rcode) {
        case ACME_DNS_NOERROR:
            hint = "the success was not signed";
            break;
        case ACME_DNS_REFUSED:
            hint = "the server's policy does not let this key update this "
                   "name (allow-update / update-policy)";
            break;
        case ACME_DNS_NOTAUTH:
            hint = "the server is not authoritative for the zone, or "
                   "rejected the key";
            break;
        case ACME_DNS_NOTZONE:
            hint = "the name is not in the zone";
            break;
        case ACME_DNS_SERVFAIL:
            hint = "the server failed to apply the update";
            break;
        default:
            hint = NULL;
        }
    }

    tsig[0] = '\0';
    if (ans->tsig_error != 0) {
        snprintf(tsig, sizeof(tsig), ", TSIG %s",
                 acme_dns_rcode_name(ans->tsig_error));
    }

    return acme_err(err, errlen, "DNS UPDATE refused: %s%s%s%s%s",
                    acme_dns_rcode_name(ans->rcode), tsig,
                    hint ? " (" : "", hint ? hint : "", hint ? ")" : "");
}
