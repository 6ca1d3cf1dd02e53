/*
 * The inventory: the certificates a server loads from files and this module
 * does not manage (nginx ssl_certificate, Apache SSLCertificateFile), listed
 * in the status document after the managed ones with "managed": false.
 *
 * Built once per configuration load (nginx: postconfiguration in the master;
 * Apache: mod_ssl's ssl_add_cert_files hook in the parent), inherited by the
 * workers / children, never touched on a request's or a handshake's path
 * but to render it: one entry per distinct file, whoever uses it.  The
 * files are read by acme_inventory_add_file (common/io/acme_inventory_file.h).
 *
 * A bridge certificate (a server's own certificate next to a managed one,
 * acme_job.h) is not in the inventory: the managed entry's "bridge" shows it
 * while it is served, and it is not served afterwards.
 *
 * Ownership: the inventory owns everything in it (malloc'd); the host frees
 * it with acme_inventory_free when its configuration goes (a pool cleanup).
 */
#ifndef ACME_INVENTORY_H
#define ACME_INVENTORY_H

#include <stddef.h>

#include "acme_cert.h"
#include "acme_status.h"

typedef struct {
    char               *file;       /* the path the server opens */
    char               *error;      /* NULL: info holds the certificate */
    acme_cert_info_t    info;       /* its first certificate */
    char              **used_by;    /* server names / vhosts, each once,
                                       sorted */
    size_t              n_used_by;
} acme_inventory_cert_t;

typedef struct {
    acme_inventory_cert_t  *certs;
    size_t                  n;
    size_t                  cap;
} acme_inventory_t;

/*
 * The entry of file: *out is the existing one (returns 0) or a new empty
 * one (returns 1: the caller fills it with acme_inventory_set_pem or
 * acme_inventory_set_error).  -1: out of memory.  Pointers into the
 * inventory stay valid only until the next call.
 */
int acme_inventory_get(acme_inventory_t *inv, const char *file,
    acme_inventory_cert_t **out);

/* Adds user to c's used_by (kept sorted, by strcmp) unless it is there
 * already.  0, or -1 (out of memory). */
int acme_inventory_use(acme_inventory_cert_t *c, const char *user);

/* c's certificate from PEM (its first certificate; text around the blocks
 * and a private key in the same file are fine); when that fails, c->error
 * says why.  0 parsed, -1 not (c->error set, NULL only when out of
 * memory). */
int acme_inventory_set_pem(acme_inventory_cert_t *c, const char *pem,
    size_t len);

/* c could not be read: error (copied) is what the status shows.  0, or -1
 * out of memory. */
int acme_inventory_set_error(acme_inventory_cert_t *c, const char *error);

void acme_inventory_free(acme_inventory_t *inv);

/*
 * The status entry of an unmanaged certificate ("managed": false), pointing
 * into c (keep c while out is used): id and file are the path, names and
 * sans the certificate's dNSName and iPAddress SANs, key_type as
 * acme_key_type_name names it (acme_key_desc), issuer / directory /
 * challenge / next_renewal null; state "valid", "expired" (not_after <=
 * now) or "not yet valid" (not_before > now), or "failed" with last_error
 * when the file could not be read or parsed.  Everything else zero (the
 * host may add warn_window).  The one function both servers build these
 * entries with.
 */
void acme_inventory_status(const acme_inventory_cert_t *c, long long now,
    acme_status_cert_t *out);

#endif
