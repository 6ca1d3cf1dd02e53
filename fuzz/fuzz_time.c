/*
 * RFC 3339 date-times (acme_time_parse_rfc3339), HTTP-dates
 * (acme_time_parse_http_date) and Retry-After values
 * (acme_sched_parse_retry_after), as a CA sends them.  The input is the
 * text.  Properties: a parsed RFC 3339 time formats back to the same time;
 * a Retry-After is 0 or within [now, now + 7 days].
 */
#include <stdio.h>

#include "acme_sched.h"
#include "acme_util.h"
#include "fuzz.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char       *s, buf[32];
    long long   t, r;

    s = fuzz_cstr(data, size);

    t = acme_time_parse_rfc3339(s);
    FUZZ_ASSERT(t >= -1);
    if (t >= 0 && t < 253402300800LL) {         /* up to year 9999 */
        FUZZ_ASSERT(acme_time_parse_rfc3339(acme_time_rfc3339(t, buf,
                                                              sizeof(buf)))
                    == t);
    }

    t = acme_time_parse_http_date(s);
    FUZZ_ASSERT(t >= -1);

    r = acme_sched_parse_retry_after(s, FUZZ_T0);
    FUZZ_ASSERT(r == 0 || (r >= FUZZ_T0 && r <= FUZZ_T0 + 7 * 86400));

    free(s);
    return 0;
}
