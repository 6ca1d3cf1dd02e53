/*
 * One node of a fleet (issue 15; docs/design.md "Shared store for
 * fleets"): the blocking half of the shared-store lifecycle, written once
 * for both servers.  Every call may wait on the network (bounded by the
 * store client's timeouts), so it runs only in threads: nginx's thread
 * pool (like the DNS updates and hooks), Apache's job and fleet threads;
 * never on an event loop.  The calls are thread-safe: the node serialises
 * its use of the store client, and the challenge barrier waits without
 * holding that lock.
 *
 * What the host does with it:
 *   - every ~250 ms (acme_fleet_node_sync): keep this node alive in the
 *     store, receive the pending challenges of the whole fleet (mirror them
 *     into shared memory, so any node answers the CA), and receive the
 *     certificate records that changed (install a newer one, as if issued
 *     here: local store, then the in-memory swap);
 *   - before ordering (acme_fleet_node_claim): install / order / wait, and
 *     the lock with its lease when ordering;
 *   - for each http-01 / tls-alpn-01 challenge, before the CA is asked to
 *     validate (acme_fleet_node_challenge_put): publish it and wait, at
 *     most barrier_ms, until every live node mirrored it;
 *   - after issuance (acme_fleet_node_publish): the record, written only
 *     while this node's lease still holds the lock; then the lock goes.
 *
 * Sans-I/O parts (key layout, records, the decision) are acme_fleet.h;
 * the store protocol acme_kv.h / acme_etcd.h.
 */
#ifndef ACME_FLEET_NODE_H
#define ACME_FLEET_NODE_H

#include <stddef.h>
#include <stdint.h>

#include "acme_fleet.h"
#include "acme_kv_client.h"
#include "acme_seal.h"

#define ACME_FLEET_ORDER_TTL    60      /* s: the order lease (locks/<id>) */
#define ACME_FLEET_NODE_TTL     10      /* s: a node's liveness lease */
#define ACME_FLEET_BARRIER_MS   5000    /* challenge barrier, at most */
#define ACME_FLEET_SYNC_MS      250     /* host's sync period */

/*
 * The configuration, as both servers parse it from
 *   acme_store etcd URL[,URL...] prefix=P key_file=F [node=NAME]
 *       [user=U password_file=F] [ssl_trusted_certificate=F]
 *       [lease_ttl=SECONDS];
 * (nginx) / AcmeStore etcd ... (Apache), with acme_fleet_conf_parse.
 */
typedef struct {
    char           **endpoints;         /* "http(s)://host:port" */
    size_t           n_endpoints;
    char            *prefix;            /* ends with '/' */
    char            *key_file;
    char            *node;              /* default: the host name */
    char            *user;              /* NULL: no authentication */
    char            *password_file;
    char            *ca_file;           /* ssl_trusted_certificate= */
    long             lease_ttl;         /* s, the order lease: how long a
                                           node that died mid-order holds
                                           the others up (5..600; default
                                           ACME_FLEET_ORDER_TTL) */
} acme_fleet_conf_t;

/*
 * Parses the words after "etcd" (argv[0] is the endpoint list, the rest
 * name=value).  Checks shapes only (no file is read): http/https URLs
 * without path, prefix absolute, key_file given, user and password_file
 * together.  0, or -1 with err naming the word ("acme_store: ..." is the
 * host's).  Free with acme_fleet_conf_free.
 */
int acme_fleet_conf_parse(char *const *argv, size_t argc,
    acme_fleet_conf_t *conf, char *err, size_t errlen);
void acme_fleet_conf_free(acme_fleet_conf_t *conf);

/*
 * Reads key_file (acme_seal_key_parse) and password_file: the checks a
 * configuration test makes (the file exists, is readable, holds a key).
 * key may be NULL (only checked); *password malloc'd (NULL without
 * user), may be NULL.  0, or -1 with err naming the file.
 */
int acme_fleet_conf_load(const acme_fleet_conf_t *conf,
    unsigned char key[ACME_SEAL_KEY_LEN], char **password,
    char *err, size_t errlen);

typedef struct acme_fleet_node_s acme_fleet_node_t;

/*
 * A node from conf: reads the key and password files, makes the store
 * client (timeouts: connect 2 s, request 5 s).  No request is sent yet.
 * NULL with err.
 */
acme_fleet_node_t *acme_fleet_node_new(const acme_fleet_conf_t *conf,
    char *err, size_t errlen);
/* Revokes this node's leases (best effort, short timeout) and frees. */
void acme_fleet_node_free(acme_fleet_node_t *n);

const char *acme_fleet_node_name(const acme_fleet_node_t *n);

/* A pending challenge of the fleet (challenges/<token>). */
typedef struct {
    char    *type;              /* "http-01" or "tls-alpn-01" */
    char    *identifier;        /* the name validated */
    char    *token;
    char    *key_authz;
    char    *node;              /* the node that published it */
} acme_fleet_chal_t;

/* A certificate record that changed in the store (certs/<id>). */
typedef struct {
    char       *id;             /* the certificate's store id */
    char       *bundle;         /* key PEM + chain PEM (acme_cert.h);
                                   free with acme_bundle_free */
    size_t      bundle_len;
    long long   not_before;
    long long   not_after;
    char       *node;           /* who ordered it */
    char       *issuer;
    int64_t     revision;       /* its mod_revision */
    char        err[160];       /* non-empty: the record did not decode
                                   (bundle NULL): why, never key material */
} acme_fleet_cert_t;

typedef struct {
    int                  reachable;     /* the store answered */
    char                 err[256];      /* !reachable: why */
    const char          *endpoint;      /* the endpoint that answered last */
    acme_fleet_chal_t   *chals;         /* every pending challenge (the
                                           host adds those it lacks) */
    size_t               n_chals;
    char               **gone;          /* tokens listed by the previous
                                           round and no longer pending: the
                                           host removes its mirror of them
                                           (never its own challenges) */
    size_t               n_gone;
    int64_t              chal_revision; /* the store revision of that list:
                                           pass it as acked to the next sync
                                           once the list is mirrored */
    acme_fleet_cert_t   *certs;         /* records changed since the last
                                           sync (all of them at the first) */
    size_t               n_certs;
    size_t               n_nodes;       /* live nodes (this one included) */
} acme_fleet_sync_t;

/*
 * One round: keeps this node's liveness lease (nodes/<node>, granted again
 * when it expired) with the revision up to which the host has mirrored
 * challenges (acked), keeps the order leases this node holds alive, lists
 * the pending challenges and the certificate records changed since the
 * last round.  0, or -1 when the store is unreachable (out->reachable 0,
 * out->err; the next round starts over).  Free out with
 * acme_fleet_sync_free.
 */
int acme_fleet_node_sync(acme_fleet_node_t *n, int64_t acked,
    acme_fleet_sync_t *out);
void acme_fleet_sync_free(acme_fleet_sync_t *s);

typedef struct {
    acme_fleet_action_t  action;
    long long            next_check;    /* unix time: look again then */
    /* INSTALL: the store's certificate (bundle as in acme_fleet_cert_t) */
    char                *bundle;
    size_t               bundle_len;
    long long            not_before;
    long long            not_after;
    int64_t              record_revision;   /* 0: no record */
    char                 holder[128];   /* WAIT: the node holding the lock;
                                           ORDER: this node; INSTALL: the
                                           node that ordered the record */
    char                 err[256];      /* unreachable store, bad record */
} acme_fleet_claim_t;

/*
 * What this node does for certificate id now (acme_fleet_next with the
 * store's facts filled in from certs/<id> and locks/<id>; f's local and
 * due fields are the host's).  LOCK is carried out here: an order lease
 * (lease_ttl) and locks/<id> written if absent; then the record
 * is read once more (a node that published and let go of the lock between
 * the two reads is seen: INSTALL, lock given back) -> ORDER, or WAIT when
 * another node won.  ORDER leaves the lease held and kept alive by sync
 * until acme_fleet_node_publish or acme_fleet_node_release.  Returns
 * out->action; free out with acme_fleet_claim_free.
 */
acme_fleet_action_t acme_fleet_node_claim(acme_fleet_node_t *n,
    const char *id, const acme_fleet_facts_t *f, acme_fleet_claim_t *out);
void acme_fleet_claim_free(acme_fleet_claim_t *c);

/*
 * Publishes a pending challenge of the order of id (under its order lease:
 * it vanishes with the lease) and waits, at most ACME_FLEET_BARRIER_MS,
 * until every other live node has mirrored it (acme_fleet_challenges_ready;
 * stop, when non-NULL and non-zero, ends the wait early).  0, with
 * *missing the number of nodes that had not mirrored it at the end of the
 * wait (the order goes on: a validation that lands there fails and is
 * retried), or -1 with err (unreachable, or the lease is gone: the order
 * must stop).
 */
int acme_fleet_node_challenge_put(acme_fleet_node_t *n, const char *id,
    const char *type, const char *identifier, const char *token,
    const char *key_authz, int (*stop)(void *), void *stop_data,
    size_t *missing, char *err, size_t errlen);
/* Removes challenges/<token> (best effort: the lease removes it anyway). */
void acme_fleet_node_challenge_delete(acme_fleet_node_t *n,
    const char *token);

/*
 * Writes the record of id after an order: fenced by this node's lock when
 * it holds one (ORDER), else only if certs/<id> is still at
 * if_revision (PUBLISH after ORDER_ALONE; 0: only if absent).  Then the
 * lock and its lease are given back.  ACME_KV_OK, ACME_KV_FENCED (the
 * lease ended: another node may have ordered; the host keeps serving its
 * certificate and installs the store's at the next sync), ACME_KV_CONFLICT
 * (the record changed), or ACME_KV_UNAVAILABLE (publish later) with err.
 */
acme_kv_status_t acme_fleet_node_publish(acme_fleet_node_t *n,
    const char *id, const acme_fleet_record_t *rec, int64_t if_revision,
    char *err, size_t errlen);

/* Gives back the lock of id and its lease (an order that was aborted). */
void acme_fleet_node_release(acme_fleet_node_t *n, const char *id);

/*
 * An order of id failed and this node tries again at retry_at (unix time,
 * its backoff): the lock stays this node's until then, under a lease of
 * that length that is not kept alive (the order's own lease and its
 * challenges go now), so the fleet backs off as one server would: the
 * other nodes WAIT instead of each ordering in turn, and take over 15 s
 * after retry_at (at most an hour from now: a node whose own setup fails
 * holds the fleet up no longer) when this node has not taken the lock
 * again by then.  This node's next claim
 * takes the lock afresh.  retry_at within a few seconds (or a lock no longer
 * this node's): as acme_fleet_node_release.  Best effort: a store that
 * cannot be reached leaves the lease to end by itself.
 */
void acme_fleet_node_release_until(acme_fleet_node_t *n, const char *id,
    long long retry_at);

/*
 * This node's view for the status: reachable, endpoint, node, and the
 * ids whose locks it holds (JSON object, malloc'd):
 *   {"backend": "etcd", "node": N, "reachable": true, "endpoint": URL,
 *    "error": null, "nodes": 3, "locks": {"<id>": "<lease hex>"}}
 */
char *acme_fleet_node_status_json(acme_fleet_node_t *n);

#endif
