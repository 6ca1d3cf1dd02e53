/*
 * The shared zone: what every worker (and the master at start) must see.
 *
 * Slots are found by certificate id, so a reload that keeps the zone (same
 * name and size) keeps every certificate, its status and generation: the new
 * workers serve at once and schedule from the stored validity instead of
 * ordering again.  Slots are never freed: ids that leave the configuration
 * cost a few hundred bytes until the next restart.
 */

#include "ngx_acme.h"

#include <signal.h>


static ngx_int_t ngx_acme_shm_init(ngx_shm_zone_t *shm_zone, void *data);
static u_char *ngx_acme_shm_copy_locked(ngx_slab_pool_t *shpool,
    const char *pem, size_t len);


ngx_int_t
ngx_acme_shm_add(ngx_conf_t *cf, ngx_acme_main_conf_t *amcf)
{
    if (amcf->zone_name.len == 0) {
        ngx_str_set(&amcf->zone_name, "ngx_acme");
    }

    if (amcf->zone_size == 0) {
        amcf->zone_size = 1024 * 1024;
    }

    amcf->shm_zone = ngx_shared_memory_add(cf, &amcf->zone_name,
                                           amcf->zone_size,
                                           &ngx_http_acme_module);
    if (amcf->shm_zone == NULL) {
        return NGX_ERROR;
    }

    if (amcf->shm_zone->data) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "acme shared zone \"%V\" is already used",
                           &amcf->zone_name);
        return NGX_ERROR;
    }

    amcf->shm_zone->init = ngx_acme_shm_init;
    amcf->shm_zone->data = amcf;

    return NGX_OK;
}


static ngx_int_t
ngx_acme_shm_init(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_acme_main_conf_t  *amcf = shm_zone->data;

    size_t                 size;
    ngx_slab_pool_t       *shpool;
    ngx_acme_shctx_t      *sh;
    ngx_acme_main_conf_t  *oamcf = data;

    shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

    if (oamcf) {
        /* reload with the same zone: keep everything */
        shm_zone->data = amcf;
        return NGX_OK;
    }

    if (shm_zone->shm.exists) {
        /* Windows only */
        return NGX_OK;
    }

    sh = ngx_slab_calloc(shpool, sizeof(ngx_acme_shctx_t));
    if (sh == NULL) {
        return NGX_ERROR;
    }

    ngx_queue_init(&sh->slots);
    ngx_rbtree_init(&sh->slot_tree, &sh->slot_sentinel,
                    ngx_str_rbtree_insert_value);

    /* pending challenges: a fixed table, an eighth of the zone */
    size = ngx_align(shm_zone->shm.size / NGX_ACME_TOKENS_SHARE,
                     ngx_pagesize);

    sh->tokens = acme_chal_table_init(ngx_slab_alloc(shpool, size), size);
    if (sh->tokens == NULL) {
        return NGX_ERROR;
    }

    shpool->data = sh;

    shpool->log_ctx = ngx_slab_alloc(shpool,
                                     sizeof(" in acme zone \"\"")
                                     + shm_zone->shm.name.len);
    if (shpool->log_ctx) {
        ngx_sprintf(shpool->log_ctx, " in acme zone \"%V\"%Z",
                    &shm_zone->shm.name);
    }

    return NGX_OK;
}


ngx_acme_shctx_t *
ngx_acme_shm_ctx(ngx_acme_main_conf_t *amcf)
{
    ngx_slab_pool_t  *shpool;

    shpool = (ngx_slab_pool_t *) amcf->shm_zone->shm.addr;

    return shpool->data;
}


void
ngx_acme_shm_lock(ngx_acme_main_conf_t *amcf)
{
    ngx_slab_pool_t  *shpool;

    shpool = (ngx_slab_pool_t *) amcf->shm_zone->shm.addr;
    ngx_shmtx_lock(&shpool->mutex);
}


void
ngx_acme_shm_unlock(ngx_acme_main_conf_t *amcf)
{
    ngx_slab_pool_t  *shpool;

    shpool = (ngx_slab_pool_t *) amcf->shm_zone->shm.addr;
    ngx_shmtx_unlock(&shpool->mutex);
}


/*
 * Finds or creates the slot of a certificate id; called locked.  A tree
 * by id (ngx_str_rbtree, as nginx's own zones index their nodes): the
 * master looks up every certificate at each start and reload.
 */
ngx_acme_slot_t *
ngx_acme_shm_slot(ngx_acme_main_conf_t *amcf, ngx_str_t *id,
    ngx_uint_t *created)
{
    uint32_t           hash;
    ngx_str_node_t    *sn;
    ngx_slab_pool_t   *shpool;
    ngx_acme_slot_t   *slot;
    ngx_acme_shctx_t  *sh;

    shpool = (ngx_slab_pool_t *) amcf->shm_zone->shm.addr;
    sh = shpool->data;

    *created = 0;

    if (id->len >= NGX_ACME_ID_LEN) {
        return NULL;
    }

    hash = ngx_crc32_short(id->data, id->len);

    sn = ngx_str_rbtree_lookup(&sh->slot_tree, id, hash);
    if (sn) {
        return (ngx_acme_slot_t *) ((u_char *) sn
                                    - offsetof(ngx_acme_slot_t, sn));
    }

    slot = ngx_slab_calloc_locked(shpool, sizeof(ngx_acme_slot_t));
    if (slot == NULL) {
        return NULL;
    }

    ngx_memcpy(slot->id, id->data, id->len);
    slot->sn.node.key = hash;
    slot->sn.str.len = id->len;
    slot->sn.str.data = slot->id;
    ngx_rbtree_insert(&sh->slot_tree, &slot->sn.node);
    ngx_queue_insert_tail(&sh->slots, &slot->queue);

    *created = 1;

    return slot;
}


/*
 * Replaces the slot's bundle and bumps its generation and the global one;
 * a bundle that waited (ngx_acme_shm_hold_locked) is dropped: pem may be
 * that one, served at its time.
 */
ngx_int_t
ngx_acme_shm_set_bundle_locked(ngx_acme_main_conf_t *amcf,
    ngx_acme_slot_t *slot, const char *pem, size_t len, ngx_uint_t activate)
{
    u_char           *p;
    ngx_slab_pool_t  *shpool;
    ngx_acme_shctx_t *sh;

    shpool = (ngx_slab_pool_t *) amcf->shm_zone->shm.addr;
    sh = shpool->data;

    p = ngx_acme_shm_copy_locked(shpool, pem, len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    if (slot->bundle) {
        ngx_slab_free_locked(shpool, slot->bundle);
    }

    if (slot->next_bundle) {
        ngx_slab_free_locked(shpool, slot->next_bundle);
        slot->next_bundle = NULL;
    }

    slot->bundle = p;
    slot->bundle_len = len;
    slot->generation++;
    sh->generation++;

    if (activate && sh->settled == sh->generation - 1) {
        /* active at once, nothing else waiting: still settled */
        sh->settled = sh->generation;
    }

    slot->pending_global = sh->generation;
    slot->published_at = ngx_time();

    if (activate) {
        /* the master, before any worker exists */
        slot->active = slot->generation;
    }

    return NGX_OK;
}


/* A NUL-terminated copy of pem in the slab. */
static u_char *
ngx_acme_shm_copy_locked(ngx_slab_pool_t *shpool, const char *pem, size_t len)
{
    u_char  *p;

    p = ngx_slab_alloc_locked(shpool, len + 1);
    if (p == NULL) {
        return NULL;
    }

    ngx_memcpy(p, pem, len);
    p[len] = '\0';

    return p;
}


/*
 * Keeps a bundle that is not to be served before at (acme_job_activate_at)
 * in the slot, replacing one that waited, the status showing it pending;
 * the bundle served stays.  The lease holder serves it at its time
 * (ngx_acme_job_activate).
 */
ngx_int_t
ngx_acme_shm_hold_locked(ngx_acme_main_conf_t *amcf, ngx_acme_slot_t *slot,
    const char *pem, size_t len, const acme_cert_info_t *info, long long at)
{
    u_char           *p;
    ngx_slab_pool_t  *shpool;

    shpool = (ngx_slab_pool_t *) amcf->shm_zone->shm.addr;

    p = ngx_acme_shm_copy_locked(shpool, pem, len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    if (slot->next_bundle) {
        ngx_slab_free_locked(shpool, slot->next_bundle);
    }

    slot->next_bundle = p;
    slot->next_bundle_len = len;

    acme_job_status_set_pending(&slot->status, at, info->not_before,
                                info->not_after, info->serial, info->issuer,
                                info->spki_pin);

    return NGX_OK;
}


/* Every worker, every tick: "I am alive and parsed up to this." */
void
ngx_acme_shm_heartbeat(ngx_acme_main_conf_t *amcf, ngx_uint_t parsed)
{
    time_t              now;
    ngx_uint_t          i;
    ngx_acme_worker_t  *w, *free_w;
    ngx_acme_shctx_t   *sh;

    now = ngx_time();
    sh = ngx_acme_shm_ctx(amcf);
    free_w = NULL;

    ngx_acme_shm_lock(amcf);

    for (i = 0; i < NGX_ACME_MAX_WORKERS; i++) {
        w = &sh->workers[i];

        if (w->pid == ngx_pid) {
            break;
        }

        if (free_w == NULL
            && (w->pid == 0 || w->heartbeat + NGX_ACME_WORKER_LIVE < now))
        {
            free_w = w;
        }
    }

    if (i == NGX_ACME_MAX_WORKERS) {
        w = free_w;
    }

    if (w) {
        w->pid = ngx_pid;
        w->parsed = parsed;
        w->heartbeat = now;
    }

    ngx_acme_shm_unlock(amcf);
}


/*
 * Activates each new bundle once every live worker has parsed it (or after
 * NGX_ACME_ACTIVATE_MAX seconds, so a stuck worker cannot hold a renewal
 * back): every worker right after it reported a parse, the lease holder
 * also every tick.
 */
void
ngx_acme_shm_activate(ngx_acme_main_conf_t *amcf, ngx_log_t *log)
{
    time_t              now;
    ngx_uint_t          i, ready, waiting;
    ngx_queue_t        *q;
    ngx_acme_slot_t    *slot;
    ngx_acme_worker_t  *w;
    ngx_acme_shctx_t   *sh;

    now = ngx_time();
    sh = ngx_acme_shm_ctx(amcf);

    ngx_acme_shm_lock(amcf);

    if (sh->settled == sh->generation) {
        /* no walk (each slot is a page of the zone a worker would map) */
        ngx_acme_shm_unlock(amcf);
        return;
    }

    waiting = 0;

    for (q = ngx_queue_head(&sh->slots);
         q != ngx_queue_sentinel(&sh->slots);
         q = ngx_queue_next(q))
    {
        slot = ngx_queue_data(q, ngx_acme_slot_t, queue);

        if (slot->active == slot->generation || slot->bundle == NULL) {
            continue;
        }

        ready = 1;

        for (i = 0; i < NGX_ACME_MAX_WORKERS; i++) {
            w = &sh->workers[i];

            if (w->pid == 0 || w->heartbeat + NGX_ACME_WORKER_LIVE < now) {
                continue;
            }

            if (w->parsed < slot->pending_global) {
                ready = 0;
                break;
            }
        }

        if (!ready && slot->published_at + NGX_ACME_ACTIVATE_MAX > now) {
            waiting = 1;
            continue;
        }

        slot->active = slot->generation;

        ngx_log_error(NGX_LOG_NOTICE, log, 0,
                      "acme: certificate \"%s\" activated in all worker "
                      "processes%s", slot->id,
                      ready ? "" : " (not every worker reported in time)");

        /* the event program's "installed": the lease holder's next tick */
        slot->event_installed = 1;
    }

    if (!waiting) {
        sh->settled = sh->generation;
    }

    ngx_acme_shm_unlock(amcf);
}


void
ngx_acme_shm_set_info_locked(ngx_acme_slot_t *slot,
    const acme_cert_info_t *info)
{
    acme_job_status_set_cert(&slot->status, info->not_before,
                             info->not_after, info->serial, info->issuer,
                             info->spki_pin);
}


/*
 * Fencing (acme_fence.h): an order may change the zone only while the
 * lease generation it started under is still the current one.  Called
 * locked, as part of the change it guards.
 */
ngx_uint_t
ngx_acme_shm_fence_ok_locked(ngx_acme_main_conf_t *amcf, acme_fence_t fence)
{
    ngx_acme_shctx_t  *sh;

    sh = ngx_acme_shm_ctx(amcf);

    return acme_fence_current(fence, sh->lease_gen)
           && sh->lease_pid == ngx_pid;
}


/* The owner of a slot's entries in the table: its offset in the zone. */
static uint64_t
ngx_acme_shm_owner(ngx_acme_main_conf_t *amcf, ngx_acme_slot_t *slot)
{
    return (uint64_t) ((u_char *) slot - amcf->shm_zone->shm.addr);
}


/*
 * NGX_OK; NGX_DECLINED for a malformed entry, NGX_ERROR when the zone is
 * full, NGX_BUSY when fence is stale (the lease moved on: nothing added).
 * The table (acme_chal_table.h) takes an eighth of the zone.
 */
ngx_int_t
ngx_acme_shm_token_add(ngx_acme_main_conf_t *amcf, ngx_acme_slot_t *slot,
    acme_fence_t fence, acme_chal_type_t type, const char *identifier,
    const char *token, const char *key_authz)
{
    int                rc;
    ngx_acme_shctx_t  *sh;

    sh = ngx_acme_shm_ctx(amcf);

    ngx_acme_shm_lock(amcf);

    if (!ngx_acme_shm_fence_ok_locked(amcf, fence)) {
        ngx_acme_shm_unlock(amcf);
        return NGX_BUSY;
    }

    rc = acme_chal_table_add(sh->tokens, type, identifier, token, key_authz,
                             ngx_acme_shm_owner(amcf, slot), fence);

    ngx_acme_shm_unlock(amcf);

    return rc == ACME_CHAL_OK ? NGX_OK
           : rc == ACME_CHAL_BAD ? NGX_DECLINED : NGX_ERROR;
}


/* Removes the entries of token that the order with this fence published. */
void
ngx_acme_shm_token_del(ngx_acme_main_conf_t *amcf, const char *token,
    acme_fence_t fence)
{
    ngx_acme_shm_lock(amcf);
    acme_chal_table_remove(ngx_acme_shm_ctx(amcf)->tokens, token, fence);
    ngx_acme_shm_unlock(amcf);
}


/*
 * Drops the tokens of one slot published under fence, or every token when
 * slot is NULL (a new lease holder: what older generations left behind).
 */
void
ngx_acme_shm_tokens_drop_locked(ngx_acme_main_conf_t *amcf,
    ngx_acme_slot_t *slot, acme_fence_t fence)
{
    ngx_acme_shctx_t  *sh;

    sh = ngx_acme_shm_ctx(amcf);

    if (slot == NULL) {
        acme_chal_table_clear(sh->tokens);

    } else {
        acme_chal_table_drop(sh->tokens, fence,
                             ngx_acme_shm_owner(amcf, slot));
    }
}


/*
 * Copies the key authorization pending for key into buf (NUL-terminated,
 * *buf_len its size, then the length copied): http-01 by token, tls-alpn-01
 * by identifier.  NGX_OK, or NGX_DECLINED when nothing is pending for it.
 * Only the current lease generation's entries answer; the scheduler runs
 * one tls-alpn-01 order per name at a time, so the first match is the one.
 */
ngx_int_t
ngx_acme_shm_find(ngx_acme_main_conf_t *amcf, acme_chal_type_t type,
    const char *key, size_t len, u_char *buf, size_t *buf_len)
{
    int                n;
    ngx_acme_shctx_t  *sh;

    sh = ngx_acme_shm_ctx(amcf);

    ngx_acme_shm_lock(amcf);
    n = acme_chal_table_find(sh->tokens, type, key, len, sh->lease_gen,
                             (char *) buf, *buf_len);
    ngx_acme_shm_unlock(amcf);

    if (n < 0) {
        return NGX_DECLINED;
    }

    *buf_len = n;

    return NGX_OK;
}



/*
 * The ACME lease: returns NGX_OK when this worker holds it (taking it when
 * it is free, expired or its holder is gone), NGX_DECLINED otherwise.
 * Taking it starts a new lease generation (amcf->lease_gen, the fence of
 * the orders started under it, see acme_fence.h) and drops what older
 * generations left behind: their challenge tokens and "renewing" marks.
 * A former holder that was only paused finds its fence stale and touches
 * nothing more.
 */
ngx_int_t
ngx_acme_shm_lease(ngx_acme_main_conf_t *amcf, ngx_log_t *log)
{
    time_t             now;
    ngx_pid_t          old;
    ngx_queue_t       *q;
    ngx_acme_slot_t   *slot;
    ngx_acme_shctx_t  *sh;

    now = ngx_time();
    sh = ngx_acme_shm_ctx(amcf);

    ngx_acme_shm_lock(amcf);

    if (sh->lease_pid == ngx_pid) {
        sh->lease_expires = now + NGX_ACME_LEASE_TTL;
        amcf->lease_gen = sh->lease_gen;
        ngx_acme_shm_unlock(amcf);
        return NGX_OK;
    }

    old = sh->lease_pid;

    if (old != 0
        && sh->lease_expires >= now
        && !(kill(old, 0) == -1 && ngx_errno == NGX_ESRCH))
    {
        ngx_acme_shm_unlock(amcf);
        return NGX_DECLINED;
    }

    sh->lease_pid = ngx_pid;
    sh->lease_expires = now + NGX_ACME_LEASE_TTL;
    sh->lease_gen = acme_fence_next(sh->lease_gen);
    amcf->lease_gen = sh->lease_gen;

    ngx_acme_shm_tokens_drop_locked(amcf, NULL, ACME_FENCE_NONE);

    for (q = ngx_queue_head(&sh->slots);
         q != ngx_queue_sentinel(&sh->slots);
         q = ngx_queue_next(q))
    {
        slot = ngx_queue_data(q, ngx_acme_slot_t, queue);
        slot->fence = ACME_FENCE_NONE;
        slot->status.renewing = 0;
        slot->status.step[0] = '\0';
    }

    ngx_acme_shm_unlock(amcf);

    if (old) {
        ngx_log_error(NGX_LOG_NOTICE, log, 0,
                      "acme: worker process %P took over the ACME lease "
                      "from process %P (lease generation %uL)", ngx_pid, old,
                      (uint64_t) amcf->lease_gen);

    } else {
        ngx_log_error(NGX_LOG_NOTICE, log, 0,
                      "acme: worker process %P took the ACME lease "
                      "(lease generation %uL)", ngx_pid,
                      (uint64_t) amcf->lease_gen);
    }

    return NGX_OK;
}


void
ngx_acme_shm_lease_release(ngx_acme_main_conf_t *amcf)
{
    ngx_acme_shctx_t  *sh;

    sh = ngx_acme_shm_ctx(amcf);

    ngx_acme_shm_lock(amcf);

    if (sh->lease_pid == ngx_pid) {
        sh->lease_pid = 0;
        sh->lease_expires = 0;
    }

    ngx_acme_shm_unlock(amcf);
}


/* The pid driving ACME, or 0 when nobody holds a live lease. */
ngx_pid_t
ngx_acme_shm_lease_pid(ngx_acme_main_conf_t *amcf)
{
    ngx_pid_t          pid;
    ngx_acme_shctx_t  *sh;

    sh = ngx_acme_shm_ctx(amcf);

    ngx_acme_shm_lock(amcf);

    pid = sh->lease_pid;

    if (sh->lease_expires < ngx_time()) {
        pid = 0;
    }

    ngx_acme_shm_unlock(amcf);

    return pid;
}
