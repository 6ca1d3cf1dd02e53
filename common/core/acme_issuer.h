/*
 * The issuer block (nginx "acme_issuer NAME { }", Apache <AcmeIssuer NAME>)
 * as plain values, with the rules both servers apply to it: the defaults,
 * what the whole block must have, and the small value rules (contact,
 * directory URL, renew percentage).  Pure: no file is looked at (the state
 * directory's check is acme_issuer_check_store, common/io/).
 *
 * Each problem is text plus whether it is a warning and which directive it
 * concerns, so each server names file:line in its own idiom.  Directive
 * names in the texts come from the caller's words[] (nginx "\"uri\"",
 * Apache "AcmeDirectory"); a text reads after the block's name:
 * "<AcmeIssuer x> (file:line) has no AcmeDirectory".
 */
#ifndef ACME_ISSUER_H
#define ACME_ISSUER_H

#include <stddef.h>

#include "acme_dns_conf.h"
#include "acme_eab.h"
#include "acme_job.h"
#include "acme_util.h"

#define ACME_ISSUER_CHALLENGES_MAX      ACME_JOB_CHALLENGES_MAX
#define ACME_ISSUER_TIMEOUT_MS          30000   /* each network step */
#define ACME_ISSUER_PATH_MAX            4096

/* Which directive a problem concerns (the index of words[]). */
typedef enum {
    ACME_ISSUER_AT_BLOCK = 0,       /* the block's opening line */
    ACME_ISSUER_AT_DIRECTORY,       /* uri / AcmeDirectory */
    ACME_ISSUER_AT_CHALLENGE,       /* challenge / AcmeChallenge */
    ACME_ISSUER_AT_DNS_UPDATE,      /* dns_update / AcmeDNSUpdate */
    ACME_ISSUER_AT_DNS_HOOK,        /* dns_hook / AcmeDNSHook */
    ACME_ISSUER_AT_STATE_DIR,       /* state_path / AcmeStateDir */
    ACME_ISSUER_AT_N
} acme_issuer_at_t;

typedef struct {
    int               warning;      /* 0: an error */
    acme_issuer_at_t  at;
    char              text[ACME_ERRLEN];
} acme_issuer_problem_t;

/*
 * One block's values as configured; a number of 0 or less (nginx's
 * NGX_CONF_UNSET) or a NULL string is "not given".  acme_issuer_check()
 * sets each such value to its default.  (dns-01's hook and propagation
 * timeouts default in acme_dns_conf.h.)  dns and eab hold what the
 * dns-01 and EAB directives configured, secrets included: free them with
 * acme_issuer_conf_clear() when the configuration goes away.
 */
typedef struct {
    const char   *name;
    const char   *directory;        /* NULL or "": missing (an error) */
    const char   *state_dir;        /* NULL: state_root followed by name;
                                       stays NULL with no_store */
    int           no_store;         /* nginx-acme's "state_path off": the
                                       account key and certificates in
                                       memory only (no store at all) */
    const char   *state_root;       /* the server's default, ends in '/' */
    const char   *challenges[ACME_ISSUER_CHALLENGES_MAX];
    size_t        n_challenges;     /* 0: http-01 */
    acme_dns_conf_t  dns;           /* RFC 2136 or a program, not both */
    acme_eab_conf_t  eab;
    int           account_key;      /* acme_key_type_t; -1: default */
    int           renew_percent;    /* 1-99; 0: acme_sched_renew_at's rule */
    long          timeout_ms;
    long          retry_delay;      /* seconds: the first backoff step */
    long          clock_skew;       /* seconds a new certificate may be
                                       served before its notBefore
                                       (acme_job_activate_at) */
    long          max_orders;       /* orders in flight at once, 1-64
                                       (acme_job_pipeline) */
    long          ari_poll;         /* seconds: the shortest wait between
                                       two renewalInfo fetches of a
                                       certificate (acme_ari_next_poll's
                                       poll_min; ari_poll_interval /
                                       AcmeARIPollInterval) */
    const char   *preferred_chain;  /* nginx-acme's preferred_chain: the
                                       issuer CN of the chain's top
                                       certificate; NULL: the default chain
                                       (acme_order_config_t) */
    const char   *profile;          /* nginx-acme's profile NAME [require]
                                       (acme_order_config_t); NULL: none */
    int           profile_require;
    const char   *proxy;            /* proxy / AcmeProxy: the HTTP CONNECT
                                       proxy's URL (acme_proxy.h, checked
                                       with acme_proxy_check); NULL: direct */
    int           proxy_given;      /* the directive was given ("off"
                                       too): a second one is refused */
    /* events (acme_event.h): acme_event_command / AcmeEventCommand in the
     * block, else the server-wide one (acme_issuer_events_inherit) */
    const char   *event_command;    /* absolute path; NULL: none */
    int           event_timeout_ms; /* 0: ACME_EVENT_TIMEOUT_MS */
    /* acme_expiry_warning / AcmeExpiryWarning: seconds before notAfter a
     * certificate counts as expiring (acme_status_expiring); 0: the last
     * 10 % of its lifetime */
    long long     expiry_warning;

    char          state_default[ACME_ISSUER_PATH_MAX];  /* state_dir's
                                                       storage when default */
} acme_issuer_conf_t;

/* Every value "not given". */
void acme_issuer_init(acme_issuer_conf_t *c);

/*
 * Applies the defaults and checks the block as a whole (a directory URL;
 * dns-01 needs dns_update or dns_hook, which exclude each other; the
 * default state directory fits).  Writes at most max problems to out and
 * returns how many there were; words[ACME_ISSUER_AT_N] are the server's
 * directive names.
 */
size_t acme_issuer_check(acme_issuer_conf_t *c, const char *const *words,
    acme_issuer_problem_t *out, size_t max);

/*
 * 1 when the two blocks (after acme_issuer_check) have one state directory
 * (trailing '/' aside): each issuer's account and certificates must have
 * their own, so both servers refuse such a configuration.
 */
int acme_issuer_state_shared(const acme_issuer_conf_t *a,
    const acme_issuer_conf_t *b);

/*
 * The block's event command and warning window, or where it has none the
 * server-wide ones (nginx's http{} level, Apache's server config) given
 * here: the block's own win.
 */
void acme_issuer_events_inherit(acme_issuer_conf_t *c, const char *prog,
    int timeout_ms, long long expiry_warning);

/* Frees what dns and eab hold (the secrets cleansed) and zeroes them. */
void acme_issuer_conf_clear(acme_issuer_conf_t *c);

/* 1 when an error is among the n problems. */
int acme_issuer_has_error(const acme_issuer_problem_t *p, size_t n);

/*
 * An ACME profile name (profile / AcmeProfile): 0 when usable, -1 with the
 * reason in err (empty, or a byte outside printable ASCII, a space or a
 * quote: names are tokens such as "shortlived").
 */
int acme_issuer_profile_name(const char *name, char *err, size_t errlen);

/*
 * The directory URL (RFC 8555 section 7.1.1): 0 when usable, 1 when
 * usable with a warning in err (plain HTTP), -1 with the reason in err.
 */
int acme_issuer_directory(const char *url, char *err, size_t errlen);

/*
 * An account contact: "mailto:" is put before a value without a scheme
 * (no ':').  Writes the NUL-terminated contact to buf (size at least
 * len + ACME_ISSUER_CONTACT_EXTRA) and returns its length; -1 for an
 * empty value (err says so).
 */
#define ACME_ISSUER_CONTACT_EXTRA  (sizeof("mailto:"))

long acme_issuer_contact(const char *value, size_t len, char *buf,
    size_t size, char *err, size_t errlen);

/* "N%", N from 1 to 99: N, or -1. */
int acme_issuer_renew_percent(const char *arg, size_t len);

#endif
