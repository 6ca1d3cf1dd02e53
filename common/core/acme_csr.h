/* Certificate signing requests for finalize. */
#ifndef ACME_CSR_H
#define ACME_CSR_H

#include <stddef.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

/*
 * The subjectAltName extension acme_csr_build puts into a CSR for names
 * (the self-signed placeholder takes the same one).  NULL with err.
 */
X509_EXTENSION *acme_san_extension(const char *const *names, size_t n_names,
    char *err, size_t errlen);

/*
 * Builds a DER CSR signed with key, with a subjectAltName extension holding
 * names (DNS names; IPv4/IPv6 literals become iPAddress entries).  The
 * subject is empty unless with_cn, then CN = names[0].  malloc'd DER in
 * *der / *der_len.  Returns 0, or -1 with err filled.
 */
int acme_csr_build(EVP_PKEY *key, const char *const *names, size_t n_names,
    int with_cn, unsigned char **der, size_t *der_len, char *err, size_t errlen);

#endif
