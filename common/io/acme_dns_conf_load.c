/*
 * dns-01 directive values that need the file system (acme_dns_conf_load.h).
 */
#include <stdio.h>
#include <string.h>

#include "acme_dns.h"
#include "acme_dns_conf.h"
#include "acme_dns_conf_load.h"
#include "acme_dns_publish.h"
#include "acme_util.h"


int
acme_dns_update_conf_load(const acme_dns_update_args_t *a,
    acme_dns_conf_t *c, char *err, size_t errlen)
{
    char  inner[ACME_ERRLEN];

    if (acme_dns_update_conf(a, c, err, errlen) != 0) {
        return -1;
    }
    if (!a->secret_is_file) {
        return 0;
    }

    inner[0] = '\0';
    if (acme_tsig_key_from_file(&c->key, a->key_name, a->alg, a->secret,
                                inner, sizeof(inner))
        != 0)
    {
        acme_tsig_key_clear(&c->key);
        return acme_err(err, errlen, "cannot load the TSIG key \"%.64s\" from "
                        "\"%s\": %s", a->key_name, a->secret,
                        inner[0] ? inner : "invalid key");
    }
    return 0;
}
