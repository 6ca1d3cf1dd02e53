/*
 * mod_acme_auto: module record and the order of things.
 *
 *   pre_config    register the "acme-auto-shm" mutex (Mutex directive)
 *   check_config  resolve AcmeCertificate against <AcmeIssuer>, validate
 *                 names and state dirs (also under "apache2 -t"; writes nothing;
 *                 acme_auto_check.c)
 *   post_config   (parent, root; before mod_ssl and mod_watchdog) shared
 *                 memory + global mutex, state dirs owned by the child user,
 *                 stored bundles into shm, placeholders for mod_ssl, the
 *                 singleton watchdog callback (acme_auto_startup.c)
 *   ssl hooks     add_cert_files: the placeholder (acme_auto_startup.c);
 *                 init_server: cert callback (acme_auto_ssl.c)
 *   child_init    attach the mutex, parse current certs, refresh thread
 *   post_read_request  http-01 answers (after the other modules' hooks)
 *   protocol_propose / protocol_switch / ssl_answer_challenge
 *                 tls-alpn-01 answers (acme_auto_alpn.c)
 *   handler       acme-status
 *   status_hook   mod_status' /server-status lines (optional hook)
 */
#include <signal.h>
#include <pthread.h>

#include "httpd.h"
#include "http_config.h"
#include "http_log.h"
#include "http_protocol.h"
#include "http_request.h"
#include "http_ssl.h"
#include "http_core.h"
#include "util_mutex.h"
#include "apr_optional_hooks.h"
#include "mod_status.h"

#include "mod_acme_auto.h"


/* mod_ssl's optional hook (mod_ssl_openssl.h, not shipped in Debian's
 * apache2-dev); optional hooks are bound by name at run time. */
#ifndef SSL_DECLARE
#define SSL_DECLARE(type) type
#endif
APR_DECLARE_EXTERNAL_HOOK(ssl, SSL, int, init_server,
                          (server_rec *s, apr_pool_t *p, int is_proxy,
                           SSL_CTX *ctx))

int
acme_auto_thread_create(pthread_t *t, void *(*fn)(void *), void *arg)
{
    sigset_t all, old;
    int      rc;

    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    rc = pthread_create(t, NULL, fn, arg);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return rc;
}

static int
acme_auto_pre_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp)
{
    (void) plog;
    (void) ptemp;
    return ap_mutex_register(pconf, ACME_AUTO_MUTEX_ID, NULL, APR_LOCK_DEFAULT,
                             0) == APR_SUCCESS ? OK : !OK;
}

static void
acme_auto_child_init(apr_pool_t *pchild, server_rec *s)
{
    if (!acme_auto_shm_ready()) {
        return;
    }
    if (acme_auto_shm_child_init(s, pchild) != APR_SUCCESS) {
        return;
    }
    acme_auto_ssl_child_init(pchild, s);
    acme_auto_jobs_child_init(pchild);
    acme_auto_events_child_init(pchild);
}

static void
acme_auto_register_hooks(apr_pool_t *p)
{
    static const char *const before_ssl[] = {
        "mod_ssl.c", "mod_watchdog.c", NULL
    };
    static const char *const after_ssl[] = { "mod_ssl.c", NULL };

    (void) p;
    ap_hook_pre_config(acme_auto_pre_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_check_config(acme_auto_check_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_post_config(acme_auto_post_config, NULL, before_ssl,
                        APR_HOOK_MIDDLE);
    ap_hook_post_config(acme_auto_post_config_after_ssl, after_ssl, NULL,
                        APR_HOOK_MIDDLE);
    ap_hook_child_init(acme_auto_child_init, NULL, NULL, APR_HOOK_MIDDLE);
    /* after mod_md's http-01 hook (docs/design.md) */
    ap_hook_post_read_request(acme_auto_post_read_request, NULL, NULL,
                              APR_HOOK_MIDDLE + 1);
    acme_auto_alpn_register_hooks();
    acme_auto_ssl_register_hooks();
    ap_hook_handler(acme_auto_status_handler, NULL, NULL, APR_HOOK_MIDDLE);
    /* mod_status' page and ?auto: bound by name, only when it is loaded */
    APR_OPTIONAL_HOOK(ap, status_hook, acme_auto_status_hook, NULL, NULL,
                      APR_HOOK_MIDDLE);
    ap_hook_ssl_add_cert_files(acme_auto_add_cert_files, NULL, NULL,
                               APR_HOOK_MIDDLE);
    APR_OPTIONAL_HOOK(ssl, init_server, acme_auto_ssl_init_server, NULL, NULL,
                      APR_HOOK_MIDDLE);
}

AP_DECLARE_MODULE(acme_auto) = {
    STANDARD20_MODULE_STUFF,
    acme_auto_create_dir_conf,      /* per-directory config */
    acme_auto_merge_dir_conf,
    acme_auto_create_srv_conf,
    acme_auto_merge_srv_conf,
    acme_auto_cmds,
    acme_auto_register_hooks,
    AP_MODULE_FLAG_NONE
};
