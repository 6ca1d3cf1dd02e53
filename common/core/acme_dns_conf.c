/*
 * dns-01 publishing: the pure helpers of acme_dns_conf.h (no I/O).
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "acme_dns.h"
#include "acme_dns_conf.h"
#include "acme_util.h"

#define SERVER_FORMS  "IP[:PORT], [IPv6]:PORT or HOST[:PORT]"


static int
host_ok(const char *h)
{
    const char *c;
    int         digits_dots = 1;
    struct in_addr a4;

    if (h[0] == '\0' || h[0] == '-' || h[0] == '.' || strlen(h) > 253) {
        return 0;
    }
    for (c = h; *c; c++) {
        if ((*c >= '0' && *c <= '9') || *c == '.') {
            continue;
        }
        digits_dots = 0;
        if ((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z')
            || *c == '-')
        {
            continue;
        }
        return 0;
    }
    /* all digits and dots: must be an IPv4 address */
    return !digits_dots || inet_pton(AF_INET, h, &a4) == 1;
}


int
acme_dns_server_parse(const char *arg, size_t len, acme_dns_server_t *srv,
    char *err, size_t errlen)
{
    char             buf[300], *host, *port, *c, *end;
    long             n = 53;
    struct in6_addr  a6;

    if (len == 0 || len >= sizeof(buf)) {
        goto bad;
    }
    memcpy(buf, arg, len);
    buf[len] = '\0';
    if (memchr(arg, '\0', len) != NULL) {
        goto bad;
    }

    host = buf;
    port = NULL;

    if (buf[0] == '[') {
        c = strchr(buf, ']');
        if (c == NULL || c == buf + 1 || (c[1] != '\0' && c[1] != ':')) {
            goto bad;
        }
        *c = '\0';
        host = buf + 1;
        port = c[1] == ':' ? c + 2 : NULL;
        if (inet_pton(AF_INET6, host, &a6) != 1) {
            goto bad;
        }

    } else if ((c = strchr(buf, ':')) != NULL && strchr(c + 1, ':') != NULL) {
        /* an IPv6 literal without a port */
        if (inet_pton(AF_INET6, buf, &a6) != 1) {
            goto bad;
        }

    } else {
        if (c != NULL) {
            *c = '\0';
            port = c + 1;
        }
        if (!host_ok(host)) {
            goto bad;
        }
    }

    if (port != NULL) {
        n = strtol(port, &end, 10);
        if (*port < '0' || *port > '9' || *end != '\0' || n < 1
            || n > 65535)
        {
            goto bad;
        }
    }

    if (strlen(host) >= sizeof(srv->host)) {
        goto bad;
    }
    memcpy(srv->host, host, strlen(host) + 1);
    srv->port = (int) n;
    return 0;

bad:
    return acme_err(err, errlen, "'%.*s' is not a DNS server address "
                    "(expected " SERVER_FORMS ")", (int) (len > 200 ? 200 : len),
                    arg);
}


static const char *const tsig_alg_names[] = {
    "hmac-sha256", "hmac-sha384", "hmac-sha512"
};


int
acme_dns_update_conf(const acme_dns_update_args_t *a, acme_dns_conf_t *c,
    char *err, size_t errlen)
{
    const char  *z;
    size_t       i, n;

    memset(&c->update, 0, sizeof(c->update));
    memset(&c->key, 0, sizeof(c->key));
    c->zone[0] = '\0';

    if (a->key_name == NULL || a->key_name[0] == '\0'
        || a->secret == NULL || a->secret[0] == '\0')
    {
        return acme_err(err, errlen, "a TSIG key name and a secret are "
                        "needed");
    }

    if (a->server == NULL
        || acme_dns_server_parse(a->server, strlen(a->server), &c->update,
                                 err, errlen) != 0)
    {
        if (a->server == NULL) {
            acme_err(err, errlen, "no DNS server given");
        }
        return -1;
    }

    if (a->alg != NULL) {
        for (i = 0; i < sizeof(tsig_alg_names) / sizeof(tsig_alg_names[0]);
             i++)
        {
            if (strcasecmp(a->alg, tsig_alg_names[i]) == 0) {
                break;
            }
        }
        if (i == sizeof(tsig_alg_names) / sizeof(tsig_alg_names[0])) {
            return acme_err(err, errlen, "unknown TSIG algorithm '%.64s' "
                            "(hmac-sha256, hmac-sha384 or hmac-sha512)",
                            a->alg);
        }
    }

    if (a->zone != NULL) {
        z = a->zone;
        n = strlen(z);
        if (n > 1 && z[n - 1] == '.') {
            n--;
        }
        for (i = 0; i < n; i++) {
            if (!((z[i] >= 'a' && z[i] <= 'z') || (z[i] >= 'A' && z[i] <= 'Z')
                  || (z[i] >= '0' && z[i] <= '9') || z[i] == '-'
                  || z[i] == '_' || z[i] == '.'))
            {
                break;
            }
        }
        if (n == 0 || n >= sizeof(c->zone) || i < n || z[0] == '.') {
            return acme_err(err, errlen, "'%.*s' is not a DNS zone name",
                            (int) (n > 200 ? 200 : n), z);
        }
        for (i = 0; i < n; i++) {
            c->zone[i] = (z[i] >= 'A' && z[i] <= 'Z') ? z[i] + 32 : z[i];
        }
        c->zone[n] = '\0';
    }

    if (!a->secret_is_file
        && acme_tsig_key_init(&c->key, a->key_name, a->alg, a->secret,
                              err, errlen) != 0)
    {
        char  inner[ACME_ERRLEN];

        snprintf(inner, sizeof(inner), "%s", err ? err : "");
        acme_tsig_key_clear(&c->key);
        return acme_err(err, errlen, "cannot load the TSIG key \"%.64s\" "
                        "(inline secret): %s", a->key_name,
                        inner[0] ? inner : "invalid key");
    }

    return 0;
}


int
acme_dns_resolv_conf_nameserver(const char *text, char *out, size_t outlen)
{
    const char *p, *e;

    for (p = text; p != NULL && *p; p = strchr(p, '\n'), p = p ? p + 1 : p) {
        p += strspn(p, " \t");
        if (strncmp(p, "nameserver", 10) != 0
            || (p[10] != ' ' && p[10] != '\t'))
        {
            /* also "# nameserver ..." and "; nameserver ..." */
            continue;
        }
        p += 10;
        p += strspn(p, " \t");
        e = p + strcspn(p, " \t\r\n#;");
        if (e > p && (size_t) (e - p) < outlen) {
            memcpy(out, p, e - p);
            out[e - p] = '\0';
            return 0;
        }
    }
    return -1;
}


void
acme_dns_hook_command(const char *prog, const char *op,
    const char *identifier, const char *txt, char *argv[5], char *envp[2])
{
    if (identifier[0] == '*' && identifier[1] == '.') {
        identifier += 2;
    }
    argv[0] = (char *) prog;
    argv[1] = (char *) op;
    argv[2] = (char *) identifier;
    argv[3] = (char *) txt;
    argv[4] = NULL;
    envp[0] = (char *) ACME_DNS_HOOK_PATH;
    envp[1] = NULL;
}


int
acme_dns01_record(const char *identifier, const char *key_authz,
    acme_dns01_record_t *rec, char *err, size_t errlen)
{
    memset(rec, 0, sizeof(*rec));
    rec->domain = acme_strdup(strncmp(identifier, "*.", 2) == 0
                              ? identifier + 2 : identifier);
    rec->name = acme_dns01_record_name(identifier);
    rec->txt = key_authz ? acme_dns01_txt_value(key_authz) : NULL;
    if (rec->domain == NULL || rec->name == NULL || rec->txt == NULL) {
        acme_dns01_record_free(rec);
        return acme_err(err, errlen, "dns-01: cannot make the TXT record of "
                        "\"%s\"", identifier);
    }
    return 0;
}


void
acme_dns01_record_free(acme_dns01_record_t *rec)
{
    free(rec->domain);
    free(rec->name);
    free(rec->txt);
    memset(rec, 0, sizeof(*rec));
}


void
acme_dns_server_list(const acme_dns_server_t *srv, size_t n, char *buf,
    size_t len)
{
    size_t  i, used = 0;
    int     w;

    if (len == 0) {
        return;
    }
    buf[0] = '\0';
    for (i = 0; i < n && used < len; i++) {
        w = snprintf(buf + used, len - used, "%s%s:%d", i ? ", " : "",
                     srv[i].host, srv[i].port);
        if (w < 0) {
            break;
        }
        used += (size_t) w;
    }
}


int
acme_dns_conf_add_check(acme_dns_conf_t *c, const char *arg, size_t len,
    char *err, size_t errlen)
{
    acme_dns_server_t  *n;

    n = realloc(c->checks, (c->n_checks + 1) * sizeof(acme_dns_server_t));
    if (n == NULL) {
        return acme_err(err, errlen, "out of memory");
    }
    c->checks = n;
    if (acme_dns_server_parse(arg, len, &n[c->n_checks], err, errlen) != 0) {
        return -1;
    }
    c->n_checks++;
    return 0;
}


int
acme_dns_conf_timeout(long long ms, char *err, size_t errlen)
{
    if (ms < ACME_DNS_TIMEOUT_MIN_MS || ms > ACME_DNS_TIMEOUT_MAX_MS) {
        return acme_err(err, errlen, "must be between %ds and %ds",
                        ACME_DNS_TIMEOUT_MIN_MS / 1000,
                        ACME_DNS_TIMEOUT_MAX_MS / 1000);
    }
    return 0;
}


int
acme_dns_conf_used(const acme_dns_conf_t *c)
{
    return c->update.host[0] != '\0' || c->hook != NULL;
}


void
acme_dns_conf_clear(acme_dns_conf_t *c)
{
    acme_tsig_key_clear(&c->key);
    free(c->checks);
    memset(c, 0, sizeof(*c));
}
