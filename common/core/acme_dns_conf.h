/*
 * dns-01 publishing, the pure helpers (acme_dns_conf.c): SERVER[:PORT]
 * parsing, the resolv.conf parser, the record of an identifier, the hook's
 * command line and environment (the PATH rule).  The blocking sequence
 * that uses them is io/acme_dns_publish.h.
 */
#ifndef ACME_DNS_CONF_H
#define ACME_DNS_CONF_H

#include <stddef.h>

#include "acme_dns.h"
#include "acme_util.h"

/* A DNS server as configured: an IP literal or a host name, and a port. */
typedef struct {
    char    host[256];
    int     port;
} acme_dns_server_t;

/*
 * SERVER[:PORT]: IPv4[:PORT], HOST[:PORT], [IPv6]:PORT or a bare IPv6
 * literal; port 53 when not given.  0, or -1 with err ("'X' is not a DNS
 * server address (expected ...)"; the caller adds the directive).
 */
int acme_dns_server_parse(const char *arg, size_t len, acme_dns_server_t *srv,
    char *err, size_t errlen);

/*
 * dns_update / AcmeDNSUpdate: the values as each host's syntax splits them
 * (nginx key=value parameters, Apache positional arguments).  Strings are
 * borrowed, NUL-terminated.
 */
typedef struct {
    const char  *server;            /* SERVER[:PORT] */
    const char  *key_name;
    const char  *secret;            /* base64, or a path if secret_is_file */
    int          secret_is_file;    /* the path already made absolute */
    const char  *alg;               /* NULL: hmac-sha256 */
    const char  *zone;              /* NULL: found by an SOA query */
} acme_dns_update_args_t;

/* A hook's run when the configuration gives no timeout. */
#define ACME_DNS_HOOK_TIMEOUT_MS    60000
/* The propagation wait when the configuration gives no timeout. */
#define ACME_DNS_CHECK_TIMEOUT_MS   120000
/* The bounds of both timeouts as configured (dns_hook timeout=,
 * dns_propagation_check timeout=, AcmeDNSHook, AcmeDNSPropagationCheck). */
#define ACME_DNS_TIMEOUT_MIN_MS     1000
#define ACME_DNS_TIMEOUT_MAX_MS     3600000

/*
 * The dns-01 settings of an issuer block (acme_issuer_conf_t.dns), filled
 * by both configuration parsers and read by the publisher
 * (io/acme_dns_publish.h); read-only after configuration, so threads may
 * use them.  All zero: nothing configured.  Free with acme_dns_conf_clear().
 */
typedef struct {
    /* dns_update / AcmeDNSUpdate: RFC 2136 when update.host[0] != '\0' */
    acme_dns_server_t   update;
    char                zone[256];          /* lowercase, no trailing dot;
                                               "": found by an SOA query */
    acme_tsig_key_t     key;
    /* dns_hook / AcmeDNSHook */
    const char         *hook;               /* NULL: none; borrowed */
    int                 hook_timeout_ms;    /* 0: ACME_DNS_HOOK_TIMEOUT_MS */
    /* dns_propagation_check / AcmeDNSPropagationCheck; none: the update
     * server, else the zone's NS hosts */
    acme_dns_server_t  *checks;             /* acme_dns_conf_add_check() */
    size_t              n_checks;
    int                 check_timeout_ms;   /* 0: ACME_DNS_CHECK_TIMEOUT_MS */
} acme_dns_conf_t;

/*
 * The value rules of dns_update / AcmeDNSUpdate that need no file: key
 * name and secret given, the server address, the algorithm, the zone, and
 * an inline secret decoded into c->key.  Sets c->update, c->zone and c->key
 * only.  0, or -1 with err naming the bad part (never the secret); the
 * caller adds the directive and file:line.  A secret from a file:
 * io/acme_dns_conf_load.h.
 */
int acme_dns_update_conf(const acme_dns_update_args_t *a, acme_dns_conf_t *c,
    char *err, size_t errlen);

/* One SERVER[:PORT] (acme_dns_server_parse) added to c->checks.  0, or -1
 * with err. */
int acme_dns_conf_add_check(acme_dns_conf_t *c, const char *arg, size_t len,
    char *err, size_t errlen);

/*
 * A configured hook or propagation timeout: 0 when it is within
 * ACME_DNS_TIMEOUT_MIN_MS..ACME_DNS_TIMEOUT_MAX_MS, else -1 with err
 * ("must be between 1s and 3600s"; the caller names the directive and the
 * value).
 */
int acme_dns_conf_timeout(long long ms, char *err, size_t errlen);

/* 1 when an update server or a hook is configured. */
int acme_dns_conf_used(const acme_dns_conf_t *c);

/* Cleanses the key and frees the check list; c is all zero again. */
void acme_dns_conf_clear(acme_dns_conf_t *c);

/*
 * The first "nameserver ADDRESS" line of a resolv.conf text (resolv.conf(5):
 * the keyword starts the line, "#" or ";" in the first column is a comment;
 * leading blanks are tolerated).  0 with out filled, -1 when there is none.
 */
int acme_dns_resolv_conf_nameserver(const char *text, char *out,
    size_t outlen);

/* The environment of a hook program: nothing but this fixed PATH. */
#define ACME_DNS_HOOK_PATH  ACME_PROGRAM_PATH

/*
 * The hook's argv ("prog", op, domain, txt, NULL) and envp (ACME_DNS_HOOK_PATH,
 * NULL): no shell, the environment of the server is not passed on.  domain
 * is the identifier without "*.".  The pointers borrow the arguments.
 */
void acme_dns_hook_command(const char *prog, const char *op,
    const char *identifier, const char *txt, char *argv[5], char *envp[2]);

/* The record a dns-01 challenge sets. */
typedef struct {
    char    *domain;        /* the identifier without "*." */
    char    *name;          /* "_acme-challenge.<domain>", lowercase */
    char    *txt;           /* base64url(SHA-256(key authorization)) */
} acme_dns01_record_t;

/* 0, or -1 with err.  Free with acme_dns01_record_free(). */
int acme_dns01_record(const char *identifier, const char *key_authz,
    acme_dns01_record_t *rec, char *err, size_t errlen);
void acme_dns01_record_free(acme_dns01_record_t *rec);

/* "h1:p1, h2:p2" into buf (truncated to fit). */
void acme_dns_server_list(const acme_dns_server_t *srv, size_t n, char *buf,
    size_t len);

#endif
