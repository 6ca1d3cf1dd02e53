/*
 * Running the event command (common/core/acme_event.h says when and what)
 * through the dns-01 hook's runner (acme_run.h): no shell, the fixed
 * environment of acme_event_command, stderr lines to the host's log,
 * killed after the event's timeout.  Threads only (nginx's thread pool,
 * Apache's event thread).
 */
#ifndef ACME_EVENT_RUN_H
#define ACME_EVENT_RUN_H

#include <stddef.h>

#include "acme_event.h"
#include "acme_run.h"

/*
 * Runs ev->prog for ev.  r gives the runner, stop and log (r->timeout_ms
 * and r->what are set here: ev->timeout_ms, "event command").  0 when the
 * program exited with 0, else -1 with err ("event command EVENT ID: ...",
 * acme_run's reason).
 */
int acme_event_run(const acme_run_t *r, const acme_event_t *ev, char *err,
    size_t errlen);

#endif
