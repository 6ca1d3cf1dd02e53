/*
 * tls-alpn-01 (RFC 8737): the challenge certificate a server presents when
 * the CA connects with ALPN "acme-tls/1" and the SNI of a pending
 * authorization, and the mapping from the SNI to the identifier.
 */
#ifndef ACME_ALPN_H
#define ACME_ALPN_H

#include <stddef.h>
#include <openssl/x509.h>
#include <openssl/evp.h>

/* The ALPN protocol id, and its wire form (length-prefixed) for
 * SSL_select_next_proto-style comparisons. */
#define ACME_ALPN_PROTO      "acme-tls/1"
#define ACME_ALPN_PROTO_LEN  10

/*
 * Self-signed certificate for identifier (a DNS name, or an IP literal
 * which becomes an iPAddress SAN as RFC 8738 requires) with the critical
 * acmeIdentifier extension (1.3.6.1.5.5.7.1.31) holding the DER OCTET
 * STRING of SHA-256(key_authz), and a fresh P-256 key (cheap enough to
 * make per challenge).  The caller owns *cert and *key.  0, or -1 + err.
 */
int acme_alpn_challenge_cert(const char *identifier, const char *key_authz,
    X509 **cert, EVP_PKEY **key, char *err, size_t errlen);

/*
 * The identifier a tls-alpn-01 SNI stands for: a DNS name as is (lowered);
 * a reverse-DNS name ("4.3.2.1.in-addr.arpa", nibble "ip6.arpa") as the
 * IP literal (RFC 8738 section 6).  Writes into buf; NULL if invalid.
 */
const char *acme_alpn_sni_identifier(const char *sni, char *buf, size_t len);

/* Whether the ALPN protocol list offered by a client (wire format:
 * length-prefixed strings) contains "acme-tls/1": 2 when it is the only
 * protocol offered (as a CA validating tls-alpn-01 does, RFC 8737 section
 * 3), 1 when among others, 0 when not (or the list is malformed). */
int acme_alpn_offered(const unsigned char *in, size_t inlen);

#endif
