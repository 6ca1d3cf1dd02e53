/*
 * Fencing tokens for whoever drives ACME under a lease.
 *
 * The lease (one driver at a time: a worker process, later perhaps one
 * server of several sharing a store) has a generation that grows by one
 * every time the lease changes hands.  A driver takes the generation when
 * its order starts: that is the order's fence.  Everything the order puts
 * where others see it (a published challenge, a "renewing" mark) carries
 * the fence, and the order may change shared state only while its fence is
 * still the current generation (acme_fence_current, checked under the same
 * lock as the change).  Removals match the fence too, so a driver that was
 * paused past the lease's expiry and resumes after another took over
 * removes nothing of the new driver's: it finds its fence stale and stops.
 */
#ifndef ACME_FENCE_H
#define ACME_FENCE_H

#include <stdint.h>

typedef uint64_t acme_fence_t;

#define ACME_FENCE_NONE  ((acme_fence_t) 0)   /* never a valid fence */

/* The generation after current (skips ACME_FENCE_NONE on wrap-around). */
static inline acme_fence_t
acme_fence_next(acme_fence_t current)
{
    return current + 1 == ACME_FENCE_NONE ? 1 : current + 1;
}

/* 1 when mine may still act: it is the lease's current generation. */
static inline int
acme_fence_current(acme_fence_t mine, acme_fence_t current)
{
    return mine != ACME_FENCE_NONE && mine == current;
}

#endif
