/*
 * "acme_store etcd URL[,URL...] prefix=P key_file=F [node=NAME]
 *  [user=U password_file=F] [ssl_trusted_certificate=F];" (http level):
 * several servers share one certificate through etcd (issue 15,
 * docs/design.md "Shared store for fleets").  The blocking lifecycle is
 * common/io/acme_fleet_node.h; here is nginx's part of it:
 *
 *   configuration: the words parsed by acme_fleet_conf_parse, the files
 *                  read by acme_fleet_conf_load (nginx -t fails on a
 *                  missing or bad key_file)
 *   lease holder:  one node of the fleet (made by the master at
 *                  configuration time: it reads the key and password
 *                  files); every ACME_FLEET_SYNC_MS a round
 *                  (acme_fleet_node_sync) in the thread pool, one in flight;
 *                  its result on the event loop: the fleet's pending
 *                  challenges mirrored into the zone's table (any node
 *                  answers the CA), the ones gone removed, the revision
 *                  acknowledged at the next round; a newer certificate of
 *                  the store installed as if issued here
 *                  (ngx_acme_job_install); one ordered alone published
 *                  (ngx_acme_job_publish); the status' "store"
 *
 * The local store stays the certificates' store (a cache that lets a node
 * start without etcd).  The order's own steps with the store (claim,
 * challenges, publish, release) are in ngx_acme_job_fleet.c.
 */

#include "ngx_acme.h"


/* the owner of the challenges mirrored from the store (acme_chal_table.h):
 * no slot's (slots are offsets into the zone) */
#define NGX_ACME_MIRROR_OWNER   (ACME_CHAL_ANY_OWNER - 1)


struct ngx_acme_fleet_s {
    acme_fleet_conf_t         conf;

    /*
     * the node, made at configuration time by the master (which reads the
     * key and password files, as it reads ssl_certificate_key); each
     * worker has its copy, only the lease holder's sends requests
     */
    acme_fleet_node_t        *node;
    ngx_event_t               timer;
    ngx_thread_task_t        *task;
    int                       reachable;      /* last round: 1, 0; -1 none */
    int64_t                   acked;          /* challenges mirrored up to */
    unsigned                  busy:1;         /* a round in flight */

    /* the round's out (only the thread touches it while busy) */
    int                       rc;
    acme_fleet_sync_t         out;
    char                     *status_json;
};


typedef struct {
    acme_fleet_node_t        *node;
    char                     *id;
    time_t                    retry_at;
    ngx_pool_t               *pool;
} ngx_acme_fleet_op_t;


static void ngx_acme_fleet_conf_cleanup(void *data);
static void ngx_acme_fleet_timer(ngx_event_t *ev);
static void ngx_acme_fleet_thread(void *data, ngx_log_t *log);
static void ngx_acme_fleet_done(ngx_event_t *ev);
static void ngx_acme_fleet_mirror(ngx_acme_main_conf_t *amcf,
    ngx_acme_fleet_t *fl, ngx_log_t *log);
static void ngx_acme_fleet_certs(ngx_acme_main_conf_t *amcf,
    ngx_acme_fleet_t *fl, ngx_log_t *log);
static void ngx_acme_fleet_release_thread(void *data, ngx_log_t *log);
static void ngx_acme_fleet_release_done(ngx_event_t *ev);


/* -- configuration ---------------------------------------------------- */

char *
ngx_acme_store(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_acme_main_conf_t  *amcf = conf;

    char                *password, **argv, **file;
    char                 err[512];
    ngx_str_t           *value, name;
    ngx_uint_t           i, k;
    ngx_acme_fleet_t    *fl;
    ngx_pool_cleanup_t  *cln;

    if (amcf->fleet != NULL) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (ngx_strcmp(value[1].data, "etcd") != 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "acme_store: unknown backend \"%V\" (the only "
                           "one is \"etcd\")", &value[1]);
        return NGX_CONF_ERROR;
    }

    if (cf->args->nelts < 3) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "acme_store: the etcd endpoints are missing");
        return NGX_CONF_ERROR;
    }

    fl = ngx_pcalloc(cf->pool, sizeof(ngx_acme_fleet_t));
    argv = ngx_pcalloc(cf->pool, cf->args->nelts * sizeof(char *));
    cln = ngx_pool_cleanup_add(cf->pool, 0);

    if (fl == NULL || argv == NULL || cln == NULL) {
        return NGX_CONF_ERROR;
    }

    /* the words after "etcd" (the parser's tokens end with a NUL) */
    for (i = 2; i < cf->args->nelts; i++) {
        argv[i - 2] = (char *) value[i].data;
    }

    err[0] = '\0';

    if (acme_fleet_conf_parse(argv, cf->args->nelts - 2, &fl->conf, err,
                              sizeof(err))
        != 0)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "acme_store: %s", err);
        return NGX_CONF_ERROR;
    }

    cln->handler = ngx_acme_fleet_conf_cleanup;
    cln->data = fl;

    /* files relative to nginx's prefix, as its other file parameters */
    for (k = 0; k < 3; k++) {
        file = (k == 0) ? &fl->conf.key_file
               : (k == 1) ? &fl->conf.password_file : &fl->conf.ca_file;

        if (*file == NULL || (*file)[0] == '/') {
            continue;
        }

        name.data = (u_char *) *file;
        name.len = ngx_strlen(*file);

        if (ngx_conf_full_name(cf->cycle, &name, 1) != NGX_OK) {
            return NGX_CONF_ERROR;
        }

        free(*file);
        *file = acme_strndup((char *) name.data, name.len);

        if (*file == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    /* the files now, so that "nginx -t" fails on them */
    password = NULL;

    if (acme_fleet_conf_load(&fl->conf, NULL, &password, err, sizeof(err))
        != 0)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "acme_store: %s", err);
        return NGX_CONF_ERROR;
    }

    if (password != NULL) {
        OPENSSL_cleanse(password, ngx_strlen(password));
        free(password);
    }

    /* no request yet: the lease holder's first round is the first */
    fl->node = acme_fleet_node_new(&fl->conf, err, sizeof(err));

    if (fl->node == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "acme_store: %s", err);
        return NGX_CONF_ERROR;
    }

    fl->reachable = -1;
    amcf->fleet = fl;

    return NGX_CONF_OK;
}


static void
ngx_acme_fleet_conf_cleanup(void *data)
{
    ngx_acme_fleet_t  *fl = data;

    /* a node that never held a lease sends nothing */
    acme_fleet_node_free(fl->node);
    fl->node = NULL;
    acme_fleet_conf_free(&fl->conf);
}


/* -- the lease holder's rounds ------------------------------------------ */

void
ngx_acme_fleet_init_process(ngx_acme_main_conf_t *amcf, ngx_log_t *log)
{
    ngx_acme_fleet_t  *fl;

    fl = amcf->fleet;

    if (fl == NULL) {
        return;
    }

    fl->task = ngx_thread_task_alloc(ngx_cycle->pool,
                                     sizeof(ngx_acme_main_conf_t *));
    if (fl->task == NULL) {
        return;
    }

    *(ngx_acme_main_conf_t **) fl->task->ctx = amcf;
    fl->task->handler = ngx_acme_fleet_thread;
    fl->task->event.handler = ngx_acme_fleet_done;
    fl->task->event.data = amcf;

    fl->timer.handler = ngx_acme_fleet_timer;
    fl->timer.data = amcf;
    fl->timer.log = log;
    fl->timer.cancelable = 1;

    ngx_add_timer(&fl->timer, ACME_FLEET_SYNC_MS);
}


/*
 * The worker exits: the thread pool is gone (its tasks ended), so the node
 * is freed here; that revokes its leases (bounded by a short timeout), so
 * the other nodes neither wait for it nor for its locks.
 */
void
ngx_acme_fleet_exit_process(ngx_acme_main_conf_t *amcf)
{
    ngx_acme_fleet_t  *fl;

    fl = amcf->fleet;

    if (fl == NULL) {
        return;
    }

    if (fl->timer.timer_set) {
        ngx_del_timer(&fl->timer);
    }

    if (fl->node) {
        acme_fleet_node_free(fl->node);
        fl->node = NULL;
    }
}


acme_fleet_node_t *
ngx_acme_fleet_node(ngx_acme_main_conf_t *amcf)
{
    if (amcf->fleet == NULL || amcf->fleet->reachable < 0) {
        return NULL;
    }

    return amcf->fleet->node;
}


ngx_uint_t
ngx_acme_fleet_reachable(ngx_acme_main_conf_t *amcf)
{
    return amcf->fleet != NULL && amcf->fleet->reachable == 1;
}


static void
ngx_acme_fleet_timer(ngx_event_t *ev)
{
    ngx_acme_main_conf_t  *amcf = ev->data;

    ngx_acme_fleet_t  *fl;

    fl = amcf->fleet;

    if (ngx_exiting || ngx_quit || ngx_terminate || amcf->exiting) {
        return;
    }

    /* only the worker that runs ACME is a node of the fleet */
    if (amcf->lease_held && !fl->busy && fl->node) {
        fl->rc = 0;

        if (ngx_thread_task_post(amcf->thread_pool, fl->task) == NGX_OK) {
            fl->busy = 1;
        }
    }

    ngx_add_timer(ev, ACME_FLEET_SYNC_MS);
}


/* Thread: one round. */
static void
ngx_acme_fleet_thread(void *data, ngx_log_t *log)
{
    ngx_acme_main_conf_t  *amcf = *(ngx_acme_main_conf_t **) data;

    ngx_acme_fleet_t  *fl;

    fl = amcf->fleet;

    fl->rc = acme_fleet_node_sync(fl->node, fl->acked, &fl->out);
    fl->status_json = acme_fleet_node_status_json(fl->node);

    OPENSSL_thread_stop();
}


static void
ngx_acme_fleet_done(ngx_event_t *ev)
{
    ngx_acme_main_conf_t  *amcf = ev->data;

    ngx_log_t         *log;
    ngx_acme_fleet_t  *fl;
    ngx_acme_shctx_t  *sh;

    fl = amcf->fleet;
    log = fl->timer.log;
    fl->busy = 0;

    if (fl->reachable < 0) {
        ngx_log_error(NGX_LOG_NOTICE, log, 0,
                      "acme: acme_store: worker process %P is the node "
                      "\"%s\" of the fleet", ngx_pid,
                      acme_fleet_node_name(fl->node));
    }

    if (fl->status_json) {
        sh = ngx_acme_shm_ctx(amcf);

        ngx_acme_shm_lock(amcf);
        ngx_cpystrn(sh->fleet_status, (u_char *) fl->status_json,
                    sizeof(sh->fleet_status));
        ngx_acme_shm_unlock(amcf);

        free(fl->status_json);
        fl->status_json = NULL;
    }

    if (fl->rc != 0) {
        if (fl->reachable != 0) {
            ngx_log_error(NGX_LOG_ERR, log, 0,
                          "acme: acme_store: the shared store is "
                          "unreachable: %s; serving the certificates this "
                          "server has, no order unless one is about to "
                          "expire", fl->out.err[0] ? fl->out.err : "error");
        }

        fl->reachable = 0;
        acme_fleet_sync_free(&fl->out);
        return;
    }

    if (fl->reachable == 0) {
        ngx_log_error(NGX_LOG_NOTICE, log, 0,
                      "acme: acme_store: the shared store is reachable "
                      "again (%s)",
                      fl->out.endpoint ? fl->out.endpoint : "");
    }

    fl->reachable = 1;

    if (amcf->lease_held && !amcf->exiting) {
        ngx_acme_fleet_mirror(amcf, fl, log);
        ngx_acme_fleet_certs(amcf, fl, log);
    }

    acme_fleet_sync_free(&fl->out);
}


/*
 * The fleet's pending challenges into the zone's table, so that this
 * server answers the CA for any node: those it lacks added (its own are
 * there already), those gone removed (only mirrors); then the revision is
 * acknowledged at the next round (the ordering node waits for that).
 */
static void
ngx_acme_fleet_mirror(ngx_acme_main_conf_t *amcf, ngx_acme_fleet_t *fl,
    ngx_log_t *log)
{
    int                 rc;
    size_t              i, added, bad;
    const char         *self;
    ngx_uint_t          ok;
    acme_chal_type_t    type;
    ngx_acme_shctx_t   *sh;
    acme_fleet_chal_t  *c;

    sh = ngx_acme_shm_ctx(amcf);
    self = acme_fleet_node_name(fl->node);
    added = 0;
    bad = 0;

    ngx_acme_shm_lock(amcf);

    ok = ngx_acme_shm_fence_ok_locked(amcf, amcf->lease_gen);

    for (i = 0; ok && i < fl->out.n_chals; i++) {
        c = &fl->out.chals[i];

        if (c->node && self && ngx_strcmp(c->node, self) == 0) {
            continue;
        }

        if (c->type && ngx_strcmp(c->type, "tls-alpn-01") == 0) {
            type = ACME_CHAL_TLS_ALPN_01;

        } else if (c->type && ngx_strcmp(c->type, "http-01") == 0) {
            type = ACME_CHAL_HTTP_01;

        } else {
            continue;
        }

        rc = acme_chal_table_mirror(sh->tokens, type, c->identifier,
                                    c->token, c->key_authz,
                                    NGX_ACME_MIRROR_OWNER, amcf->lease_gen);
        if (rc == 1) {
            added++;

        } else if (rc < 0) {
            bad++;
        }
    }

    for (i = 0; ok && i < fl->out.n_gone; i++) {
        acme_chal_table_remove_owner(sh->tokens, fl->out.gone[i],
                                     amcf->lease_gen, NGX_ACME_MIRROR_OWNER);
    }

    ngx_acme_shm_unlock(amcf);

    if (!ok) {
        return;
    }

    if (added) {
        ngx_log_error(NGX_LOG_INFO, log, 0,
                      "acme: acme_store: %uz challenge(s) of other nodes "
                      "answered here too", added);
    }

    if (bad) {
        ngx_log_error(NGX_LOG_WARN, log, 0,
                      "acme: acme_store: %uz challenge(s) of other nodes "
                      "could not be mirrored (zone full or malformed)", bad);
    }

    fl->acked = fl->out.chal_revision;
}


/* Certificate records that changed: a newer one is installed. */
static void
ngx_acme_fleet_certs(ngx_acme_main_conf_t *amcf, ngx_acme_fleet_t *fl,
    ngx_log_t *log)
{
    size_t              i;
    ngx_uint_t          k, have;
    long long           not_after;
    ngx_acme_cert_t   **certs, *cert;
    acme_fleet_cert_t  *r;

    certs = amcf->certs.elts;

    for (i = 0; i < fl->out.n_certs; i++) {
        r = &fl->out.certs[i];
        cert = NULL;

        for (k = 0; r->id && k < amcf->certs.nelts; k++) {
            if (ngx_strcmp(certs[k]->id.data, r->id) == 0) {
                cert = certs[k];
                break;
            }
        }

        /* another server's certificate */
        if (cert == NULL || cert->slot == NULL) {
            continue;
        }

        cert->fleet_rev = r->revision;

        if (r->bundle == NULL) {
            ngx_log_error(NGX_LOG_WARN, log, 0,
                          "acme: certificate \"%V\": the shared store's "
                          "record is not usable: %s", &cert->id, r->err);
            continue;
        }

        ngx_acme_shm_lock(amcf);
        have = (cert->slot->bundle != NULL);
        not_after = cert->slot->status.not_after;
        ngx_acme_shm_unlock(amcf);

        if (have && r->not_after <= not_after) {
            continue;
        }

        if (cert->job) {
            /* asked again when it ends (ngx_acme_schedule) */
            cert->fleet_recheck = 1;
            continue;
        }

        (void) ngx_acme_job_install(amcf, cert, r->bundle, r->bundle_len,
                                    r->node, r->issuer, log);
    }

    /* certificates ordered alone while the store was unreachable */
    for (k = 0; k < amcf->certs.nelts; k++) {
        cert = certs[k];

        if (cert->fleet_unpublished && cert->job == NULL && cert->slot) {
            (void) ngx_acme_job_publish(amcf, cert, log);
        }
    }
}


/* -- an aborted order's lock ------------------------------------------ */

void
ngx_acme_fleet_release(ngx_acme_main_conf_t *amcf, acme_fleet_node_t *node,
    const char *id, time_t retry_at)
{
    ngx_pool_t           *pool;
    ngx_thread_task_t    *task;
    ngx_acme_fleet_op_t  *op;

    pool = ngx_create_pool(1024, ngx_cycle->log);
    if (pool == NULL) {
        return;
    }

    task = ngx_thread_task_alloc(pool, sizeof(ngx_acme_fleet_op_t));
    if (task == NULL) {
        ngx_destroy_pool(pool);
        return;
    }

    op = task->ctx;
    op->node = node;
    op->retry_at = retry_at;
    op->pool = pool;
    op->id = ngx_pnalloc(pool, ngx_strlen(id) + 1);

    if (op->id) {
        ngx_cpystrn((u_char *) op->id, (u_char *) id, ngx_strlen(id) + 1);
    }

    task->handler = ngx_acme_fleet_release_thread;
    task->event.handler = ngx_acme_fleet_release_done;
    task->event.data = op;

    if (op->id == NULL
        || ngx_thread_task_post(amcf->thread_pool, task) != NGX_OK)
    {
        /* the lease ends by itself (ACME_FLEET_ORDER_TTL) */
        ngx_destroy_pool(pool);
    }
}


static void
ngx_acme_fleet_release_thread(void *data, ngx_log_t *log)
{
    ngx_acme_fleet_op_t  *op = data;

    if (op->retry_at) {
        acme_fleet_node_release_until(op->node, op->id,
                                      (long long) op->retry_at);

    } else {
        acme_fleet_node_release(op->node, op->id);
    }

    OPENSSL_thread_stop();
}


static void
ngx_acme_fleet_release_done(ngx_event_t *ev)
{
    ngx_acme_fleet_op_t  *op = ev->data;

    ngx_destroy_pool(op->pool);
}


/* -- status ------------------------------------------------------------- */

u_char *
ngx_acme_fleet_status(ngx_acme_main_conf_t *amcf, ngx_pool_t *pool)
{
    u_char            *p;
    ngx_acme_shctx_t  *sh;

    if (amcf->fleet == NULL || amcf->shm_zone == NULL) {
        return NULL;
    }

    p = ngx_pnalloc(pool, sizeof(sh->fleet_status));
    if (p == NULL) {
        return NULL;
    }

    sh = ngx_acme_shm_ctx(amcf);

    ngx_acme_shm_lock(amcf);
    ngx_cpystrn(p, sh->fleet_status, sizeof(sh->fleet_status));
    ngx_acme_shm_unlock(amcf);

    return p;
}
