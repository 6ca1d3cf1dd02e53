/*
 * The renderers' text buffer (acme_strbuf.h).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "acme_strbuf.h"

static int
grow(acme_strbuf_t *b, size_t more)
{
    size_t  cap;
    char   *p;

    if (b->failed) {
        return -1;
    }
    if (b->len + more + 1 <= b->cap) {
        return 0;
    }
    cap = b->cap ? b->cap : 1024;
    while (cap < b->len + more + 1) {
        cap *= 2;
    }
    p = realloc(b->data, cap);
    if (p == NULL) {
        free(b->data);
        b->data = NULL;
        b->len = b->cap = 0;
        b->failed = 1;
        return -1;
    }
    b->data = p;
    b->cap = cap;
    return 0;
}

void
acme_strbuf_add(acme_strbuf_t *b, const char *s, size_t len)
{
    if (len == 0 || grow(b, len) != 0) {
        return;
    }
    memcpy(b->data + b->len, s, len);
    b->len += len;
    b->data[b->len] = '\0';
}

void
acme_strbuf_puts(acme_strbuf_t *b, const char *s)
{
    if (s != NULL) {
        acme_strbuf_add(b, s, strlen(s));
    }
}

void
acme_strbuf_printf(acme_strbuf_t *b, const char *fmt, ...)
{
    va_list  ap;
    int      n;

    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n <= 0 || grow(b, (size_t) n) != 0) {
        return;
    }
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t) n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t) n;
}

void
acme_strbuf_html(acme_strbuf_t *b, const char *s)
{
    const char  *p, *esc;

    if (s == NULL) {
        return;
    }
    for (p = s; *p; p++) {
        switch (*p) {
        case '&':  esc = "&amp;"; break;
        case '<':  esc = "&lt;"; break;
        case '>':  esc = "&gt;"; break;
        case '"':  esc = "&quot;"; break;
        case '\'': esc = "&#39;"; break;
        default:   esc = NULL; break;
        }
        if (esc != NULL) {
            acme_strbuf_add(b, s, (size_t) (p - s));
            acme_strbuf_puts(b, esc);
            s = p + 1;
        }
    }
    acme_strbuf_add(b, s, (size_t) (p - s));
}

void
acme_strbuf_prom_label(acme_strbuf_t *b, const char *s)
{
    const char  *p, *esc;

    if (s == NULL) {
        return;
    }
    for (p = s; *p; p++) {
        switch (*p) {
        case '\\': esc = "\\\\"; break;
        case '"':  esc = "\\\""; break;
        case '\n': esc = "\\n"; break;
        default:   esc = NULL; break;
        }
        if (esc != NULL) {
            acme_strbuf_add(b, s, (size_t) (p - s));
            acme_strbuf_puts(b, esc);
            s = p + 1;
        }
    }
    acme_strbuf_add(b, s, (size_t) (p - s));
}

char *
acme_strbuf_done(acme_strbuf_t *b, size_t *len)
{
    char  *out;

    if (len) {
        *len = 0;
    }
    if (b->failed) {
        return NULL;
    }
    if (b->data == NULL && grow(b, 0) != 0) {
        return NULL;
    }
    b->data[b->len] = '\0';
    out = b->data;
    if (len) {
        *len = b->len;
    }
    b->data = NULL;
    b->len = b->cap = 0;
    return out;
}
