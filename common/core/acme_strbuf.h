/*
 * A growing text buffer for the renderers (acme_status_view.h): append,
 * printf, and the escapes the views need.  Out of memory is sticky: every
 * later call does nothing and acme_strbuf_done returns NULL.
 */
#ifndef ACME_STRBUF_H
#define ACME_STRBUF_H

#include <stddef.h>

typedef struct {
    char    *data;
    size_t   len;
    size_t   cap;
    int      failed;
} acme_strbuf_t;

/* b zeroed (acme_strbuf_t b = {0}) is an empty buffer. */
void acme_strbuf_add(acme_strbuf_t *b, const char *s, size_t len);
void acme_strbuf_puts(acme_strbuf_t *b, const char *s);     /* NULL: "" */
void acme_strbuf_printf(acme_strbuf_t *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* s with & < > " ' as HTML character references (NULL: ""). */
void acme_strbuf_html(acme_strbuf_t *b, const char *s);

/* s as a Prometheus label value: \ " and newline as \\ \" \n. */
void acme_strbuf_prom_label(acme_strbuf_t *b, const char *s);

/* The text (malloc'd, NUL-terminated; *len its length), or NULL after an
 * allocation failed (the buffer is freed either way). */
char *acme_strbuf_done(acme_strbuf_t *b, size_t *len);

#endif
