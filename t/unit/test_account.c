/*
 * One account per issuer: acme_account_gate (who creates the account, the
 * URL the others then use).
 */
#include <stdlib.h>
#include <string.h>

#include "acme_account.h"
#include "acme_key.h"
#include "unit.h"

UNIT_TEST(account_gate_one_leader)
{
    acme_account_gate_t  g;
    EVP_PKEY            *k, *other;
    char                *url;
    int                  a, b, c;

    k = acme_key_generate(ACME_KEY_EC_P256);
    other = acme_key_generate(ACME_KEY_EC_P256);
    memset(&g, 0, sizeof(g));

    /* the first job leads, the others wait; asking again changes nothing */
    CHECK_INT(acme_account_gate_enter(&g, k, &a, &url), ACME_GATE_LEAD);
    CHECK(url == NULL);
    CHECK_INT(acme_account_gate_enter(&g, k, &b, &url), ACME_GATE_WAIT);
    CHECK_INT(acme_account_gate_enter(&g, k, &c, &url), ACME_GATE_WAIT);
    CHECK_INT(acme_account_gate_enter(&g, k, &a, &url), ACME_GATE_LEAD);

    /* the leader fails without an account: the next one takes over */
    acme_account_gate_leave(&g, &c);
    CHECK_INT(acme_account_gate_enter(&g, k, &b, &url), ACME_GATE_WAIT);
    acme_account_gate_leave(&g, &a);
    CHECK_INT(acme_account_gate_enter(&g, k, &b, &url), ACME_GATE_LEAD);
    CHECK_INT(acme_account_gate_enter(&g, k, &c, &url), ACME_GATE_WAIT);

    /* it gets one: every job uses it */
    CHECK_INT(acme_account_gate_set(&g, k, "https://ca/acct/1"), 0);
    CHECK_INT(acme_account_gate_enter(&g, k, &c, &url), ACME_GATE_USE);
    CHECK_STR(url, "https://ca/acct/1");
    free(url);
    acme_account_gate_leave(&g, &b);
    CHECK_INT(acme_account_gate_enter(&g, k, &a, &url), ACME_GATE_USE);
    CHECK_STR(url, "https://ca/acct/1");
    free(url);

    /* a URL found again after a refusal replaces it */
    CHECK_INT(acme_account_gate_set(&g, k, "https://ca/acct/2"), 0);
    CHECK_INT(acme_account_gate_enter(&g, k, &a, &url), ACME_GATE_USE);
    CHECK_STR(url, "https://ca/acct/2");
    free(url);

    /* the URL is never handed to another key */
    CHECK_INT(acme_account_gate_enter(&g, other, &a, &url), ACME_GATE_LEAD);
    CHECK(url == NULL);

    acme_account_gate_free(&g);
    EVP_PKEY_free(k);
    EVP_PKEY_free(other);
}


/* the store refused the URL: the gate keeps it and says so until a write
 * of that URL succeeds; a new URL is not known to be stored */
UNIT_TEST(account_gate_unsaved)
{
    acme_account_gate_t  g;
    EVP_PKEY            *k;
    char                *url;
    int                  a;

    k = acme_key_generate(ACME_KEY_EC_P256);
    memset(&g, 0, sizeof(g));
    CHECK_INT(acme_account_gate_unsaved(&g), 0);
    acme_account_gate_stored(&g, "https://ca/acct/1", 0);
    CHECK_INT(acme_account_gate_unsaved(&g), 0);        /* no URL yet */

    CHECK_INT(acme_account_gate_set(&g, k, "https://ca/acct/1"), 0);
    CHECK_INT(acme_account_gate_unsaved(&g), 0);
    acme_account_gate_stored(&g, "https://ca/acct/1", 0);
    CHECK_INT(acme_account_gate_unsaved(&g), 1);
    CHECK_INT(acme_account_gate_enter(&g, k, &a, &url), ACME_GATE_USE);
    CHECK_STR(url, "https://ca/acct/1");
    free(url);

    /* set again with the same URL (a retry): still unsaved until stored */
    CHECK_INT(acme_account_gate_set(&g, k, "https://ca/acct/1"), 0);
    CHECK_INT(acme_account_gate_unsaved(&g), 1);
    acme_account_gate_stored(&g, "https://ca/acct/other", 1);
    CHECK_INT(acme_account_gate_unsaved(&g), 1);
    acme_account_gate_stored(&g, "https://ca/acct/1", 1);
    CHECK_INT(acme_account_gate_unsaved(&g), 0);

    /* another URL starts over */
    acme_account_gate_stored(&g, "https://ca/acct/1", 0);
    CHECK_INT(acme_account_gate_set(&g, k, "https://ca/acct/2"), 0);
    CHECK_INT(acme_account_gate_unsaved(&g), 0);

    acme_account_gate_free(&g);
    EVP_PKEY_free(k);
}
