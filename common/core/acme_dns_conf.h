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

/* The checked configuration.  Clear the key with acme_tsig_key_clear(). */
typedef struct {
    acme_dns_server_t  server;
    char               zone[256];   /* lowercase, no trailing dot; "" none */
    acme_tsig_key_t    key;         /* filled by acme_dns_update_conf() only
                                     * for an inline secret */
} acme_dns_update_conf_t;

/*
 * The value rules of dns_update / AcmeDNSUpdate that need no file: key
 * name and secret given, the server address, the algorithm, the zone, and
 * an inline secret decoded into c->key.  0, or -1 with err naming the bad
 * part (never the secret); the caller adds the directive and file:line.
 * A secret from a file: io/acme_dns_conf_load.h.
 */
int acme_dns_update_conf(const acme_dns_update_args_t *a,
    acme_dns_update_conf_t *c, char *err, size_t errlen);

/*
 * The first "nameserver ADDRESS" line of a resolv.conf text (resolv.conf(5):
 * the keyword starts the line, "#" or ";" in the first column is a comment;
 * leading blanks are tolerated).  0 with out filled, -1 when there is none.
 */
int acme_dns_resolv_conf_nameserver(const char *text, char *out,
    size_t outlen);

/* The environment of a hook program: nothing but this fixed PATH. */
#define ACME_DNS_HOOK_PATH  "PATH=/usr/local/sbin:/usr/local/bin:" \
                            "/usr/sbin:/usr/bin:/sbin:/bin"

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
