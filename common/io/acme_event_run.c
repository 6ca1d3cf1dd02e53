/*
 * The event command run (acme_event_run.h).
 */
#include <stdlib.h>
#include <string.h>

#include "acme_event_run.h"
#include "acme_util.h"


int
acme_event_run(const acme_run_t *r, const acme_event_t *ev, char *err,
    size_t errlen)
{
    char        **argv, *envbuf, *envp[ACME_EVENT_ENVP_MAX], msg[ACME_ERRLEN];
    acme_run_t    run;
    int           rc;

    if (ev->prog == NULL) {
        return 0;
    }
    argv = calloc(ev->n_names + 4, sizeof(char *));
    envbuf = malloc(ACME_EVENT_ENV_LEN);
    if (argv == NULL || envbuf == NULL) {
        free(argv);
        free(envbuf);
        return acme_err(err, errlen, "event command %s %s: out of memory",
                        ev->event, ev->id);
    }
    acme_event_command(ev, argv, envbuf, envp);

    run = *r;
    run.timeout_ms = ev->timeout_ms > 0 ? ev->timeout_ms
                                        : ACME_EVENT_TIMEOUT_MS;
    run.what = "event command";
    rc = acme_run(&run, argv, envp, msg, sizeof(msg));
    free(argv);
    free(envbuf);
    if (rc != 0) {
        return acme_err(err, errlen, "event command %s %s: %s", ev->event,
                        ev->id, msg);
    }
    return 0;
}
