/*
 * dns-01 directive values that need the file system, for the configuration
 * parsers of both servers (startup only): the TSIG secret of dns_update /
 * AcmeDNSUpdate from a file, and the program of dns_hook / AcmeDNSHook.
 * The pure rules are core/acme_dns_conf.h.
 */
#ifndef ACME_DNS_CONF_LOAD_H
#define ACME_DNS_CONF_LOAD_H

#include <stddef.h>

#include "acme_dns_conf.h"

/*
 * acme_dns_update_conf(), and with a->secret_is_file the key read from the
 * file a->secret (acme_tsig_key_from_file: a BIND key statement or the bare
 * base64 secret).  0 with c->update, c->zone and c->key set (the key is
 * freed by acme_dns_conf_clear()), or -1 with err naming the bad part and
 * the file, never the secret.
 */
int acme_dns_update_conf_load(const acme_dns_update_args_t *a,
    acme_dns_conf_t *c, char *err, size_t errlen);

/* The hook program is checked with acme_run_check (acme_run.h). */

#endif
