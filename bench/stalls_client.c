/*
 * bench/stalls.sh's load generator: sequential keep-alive GETs of one small
 * file on 127.0.0.1:PORT, one request every INTERVAL_US microseconds (the
 * next one at once when a request took longer: at most one in flight, so
 * the load is bounded), until SIGTERM/SIGINT.  It then prints one line per
 * request: "START_US LATENCY_US", START_US on CLOCK_MONOTONIC (the same
 * clock as Python's time.monotonic()).  A closed connection is reopened and
 * the request that found it closed is sent again (its latency includes the
 * reconnect).
 *
 *   stalls_client PORT PATH INTERVAL_US
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t stop;

static void
on_signal(int sig)
{
    (void) sig;
    stop = 1;
}

static long long
now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int
connect_to(int port)
{
    struct sockaddr_in  sa;
    int                 fd, one = 1;

    fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) {
        return -1;
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((unsigned short) port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *) &sa, sizeof(sa)) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* one request/response on fd: 0, or -1 when the connection failed */
static int
exchange(int fd, const char *req, size_t req_len)
{
    char     buf[16384], *hdr_end, *cl;
    size_t   have = 0, need = 0;
    ssize_t  n;

    if (send(fd, req, req_len, MSG_NOSIGNAL) != (ssize_t) req_len) {
        return -1;
    }
    for ( ;; ) {
        n = recv(fd, buf + have, sizeof(buf) - 1 - have, 0);
        if (n <= 0) {
            if (n < 0 && errno == EINTR && !stop) {
                continue;
            }
            return -1;
        }
        have += (size_t) n;
        buf[have] = '\0';
        if (need == 0) {
            hdr_end = strstr(buf, "\r\n\r\n");
            if (hdr_end == NULL) {
                if (have >= sizeof(buf) - 1) {
                    return -1;
                }
                continue;
            }
            cl = strcasestr(buf, "\r\nContent-Length:");
            if (cl == NULL || cl > hdr_end) {
                return -1;
            }
            need = (size_t) (hdr_end + 4 - buf) + strtoul(cl + 17, NULL, 10);
            if (need >= sizeof(buf)) {
                return -1;
            }
        }
        if (have >= need) {
            return 0;
        }
    }
}

int
main(int argc, char **argv)
{
    struct sigaction  sa;
    long long        *start, *lat, t0, next, interval;
    size_t            n = 0, cap = 1 << 16, i;
    char              req[512];
    int               fd = -1, port, len;

    if (argc != 4) {
        fprintf(stderr, "usage: %s PORT PATH INTERVAL_US\n", argv[0]);
        return 2;
    }
    port = atoi(argv[1]);
    interval = atoll(argv[3]);
    len = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: stalls\r\n"
                   "\r\n", argv[2]);

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);

    start = malloc(cap * sizeof(*start));
    lat = malloc(cap * sizeof(*lat));
    if (start == NULL || lat == NULL) {
        return 1;
    }

    next = now_us();
    while (!stop) {
        t0 = now_us();
        if (t0 < next) {
            usleep((useconds_t) (next - t0));
            continue;
        }
        next = t0 + interval;
        if (fd < 0) {
            fd = connect_to(port);
            if (fd < 0) {
                usleep(10000);      /* not listening yet */
                next = now_us();
                continue;
            }
        }
        if (exchange(fd, req, (size_t) len) != 0) {
            close(fd);
            fd = connect_to(port);
            if (fd < 0 || exchange(fd, req, (size_t) len) != 0) {
                if (fd >= 0) {
                    close(fd);
                }
                fd = -1;
                continue;
            }
        }
        if (n == cap) {
            cap *= 2;
            start = realloc(start, cap * sizeof(*start));
            lat = realloc(lat, cap * sizeof(*lat));
            if (start == NULL || lat == NULL) {
                return 1;
            }
        }
        start[n] = t0;
        lat[n] = now_us() - t0;
        n++;
    }

    for (i = 0; i < n; i++) {
        printf("%lld %lld\n", start[i], lat[i]);
    }
    return 0;
}
