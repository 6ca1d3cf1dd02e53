/*
 * The blocking DNS client: the messages of acme_dns.h sent to a server and
 * its answer awaited, for threads only (nginx's thread pool, Apache's job
 * thread), never an event loop; every wait is bounded by poll().
 */
#ifndef ACME_DNS_CLIENT_H
#define ACME_DNS_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "acme_dns.h"

/* A message ID from the CSPRNG (RFC 5452: unpredictable IDs). */
uint16_t acme_dns_random_id(void);

/*
 * Sends msg to server (an IP literal or a host name resolved with
 * getaddrinfo) at port (53 when 0) and waits for the response with the
 * same ID, at most timeout_ms in all.  UDP with one resend halfway,
 * then TCP if the answer was truncated; tcp = 1 goes straight to TCP.
 * *resp is malloc'd.  0, or -1 with err.
 */
int acme_dns_exchange(const char *server, int port, int tcp,
    const unsigned char *msg, size_t len, int timeout_ms,
    unsigned char **resp, size_t *resplen, char *err, size_t errlen);

/* Adds or deletes one TXT RR through an update to server; 0 or -1 with err. */
int acme_dns_update_blocking(const char *server, int port,
    const char *zone, const char *name, const char *txt, uint32_t ttl,
    acme_dns_update_op_t op, const acme_tsig_key_t *key, int timeout_ms,
    char *err, size_t errlen);

/*
 * Asks server (RD clear) for the TXT records of name: 1 if one of them is
 * exactly txt, 0 if not (including NXDOMAIN/NODATA), -1 with err on
 * failure.  With txt == NULL: 1 if name has any TXT record.
 */
int acme_dns_txt_visible_blocking(const char *server, int port,
    const char *name, const char *txt, int timeout_ms,
    char *err, size_t errlen);

/*
 * The zone that contains name, as server sees it: the owner of the SOA
 * that an SOA query for name returns (answer or authority section).
 * *zone malloc'd.  0, or -1 with err.
 */
int acme_dns_find_zone_blocking(const char *server, int port, int rd,
    const char *name, int timeout_ms, char **zone, char *err, size_t errlen);

/*
 * The name servers of zone as server lists them (NS query, answer
 * section): *ns is a malloc'd array of n malloc'd names (free each, then
 * the array).  With acme_dns_txt_visible_blocking on each (resolved by
 * the host), a record can be checked on every authoritative server before
 * the challenge is answered.  0, or -1 with err (also when there is none).
 */
int acme_dns_zone_ns_blocking(const char *server, int port, int rd,
    const char *zone, int timeout_ms, char ***ns, size_t *n,
    char *err, size_t errlen);

#endif
