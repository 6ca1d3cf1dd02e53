/*
 * The blocking DNS client (acme_dns_client.h): sends the messages of
 * acme_dns.h over UDP/TCP and waits for the answer, every wait bounded by
 * poll().  Threads only (nginx's thread pool, Apache's job thread).
 */
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/rand.h>

#include "acme_dns.h"
#include "acme_dns_client.h"
#include "acme_util.h"

#define DNS_HDR_LEN        12
#define DNS_MAX_MSG        65535


static uint16_t
get_u16(const unsigned char *p)
{
    return (uint16_t) (p[0] << 8 | p[1]);
}


/* ---- blocking network helpers ---- */

/* Waits for events until the deadline: 1 ready, 0 timed out, -1 error. */
static int
wait_fd(int fd, short events, long long deadline)
{
    struct pollfd  pfd;
    long long      left;
    int            n;

    for ( ;; ) {
        left = deadline - acme_monotonic_ms();
        if (left <= 0) {
            return 0;
        }
        pfd.fd = fd;
        pfd.events = events;
        pfd.revents = 0;
        n = poll(&pfd, 1, left > 60000 ? 60000 : (int) left);
        if (n > 0) {
            return 1;
        }
        if (n < 0 && errno != EINTR) {
            return -1;
        }
    }
}

static int
dns_socket(const char *server, int port, int type, char *peer,
    size_t peerlen, char *err, size_t errlen)
{
    struct addrinfo   hints, *res, *ai;
    char              portstr[16];
    int               fd, rc, e;

    if (port < 0 || port > 65535) {
        snprintf(peer, peerlen, "%s", server);
        return acme_err(err, errlen, "DNS server %s: invalid port %d", server,
                        port);
    }
    snprintf(portstr, sizeof(portstr), "%d", port > 0 ? port : 53);
    snprintf(peer, peerlen, "%s:%s", server, portstr);

    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = type;
    hints.ai_flags = AI_NUMERICSERV;

    rc = getaddrinfo(server, portstr, &hints, &res);
    if (rc != 0) {
        return acme_err(err, errlen, "DNS server %s: %s", peer,
                        gai_strerror(rc));
    }

    fd = -1;
    e = 0;
    for (ai = res; ai != NULL; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK
                    | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0) {
            e = errno;
            continue;
        }
        /* UDP: connect() filters datagrams from other peers.  TCP: the
         * handshake completes under poll() in the caller. */
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0
            || errno == EINPROGRESS)
        {
            break;
        }
        e = errno;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);

    if (fd < 0) {
        return acme_err(err, errlen, "DNS server %s: %s", peer,
                        strerror(e ? e : EADDRNOTAVAIL));
    }
    return fd;
}

static int
exchange_udp(const char *server, int port, const unsigned char *msg,
    size_t len, long long deadline, unsigned char **resp, size_t *resplen,
    char *err, size_t errlen)
{
    unsigned char  *buf;
    char            peer[300];
    long long       resend;
    ssize_t         n;
    int             fd, sent, r;

    fd = dns_socket(server, port, SOCK_DGRAM, peer, sizeof(peer), err, errlen);
    if (fd < 0) {
        return -1;
    }
    buf = malloc(DNS_MAX_MSG);
    if (buf == NULL) {
        close(fd);
        return acme_err(err, errlen, "DNS: out of memory");
    }

    /* one resend halfway: a lost datagram does not cost the whole timeout */
    resend = acme_monotonic_ms() + (deadline - acme_monotonic_ms()) / 2;
    sent = 0;

    for ( ;; ) {
        if (sent < 2 && (sent == 0 || acme_monotonic_ms() >= resend)) {
            if (send(fd, msg, len, 0) < 0 && errno != EAGAIN) {
                acme_err(err, errlen, "DNS server %s: send: %s", peer,
                         strerror(errno));
                goto fail;
            }
            sent++;
        }

        r = wait_fd(fd, POLLIN, sent < 2 && resend < deadline ? resend
                                                               : deadline);
        if (r < 0) {
            acme_err(err, errlen, "DNS server %s: poll: %s", peer,
                     strerror(errno));
            goto fail;
        }
        if (r == 0) {
            if (acme_monotonic_ms() >= deadline) {
                acme_err(err, errlen, "DNS server %s: no answer over UDP in "
                         "time", peer);
                goto fail;
            }
            continue;
        }

        n = recv(fd, buf, DNS_MAX_MSG, 0);
        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR) {
                continue;
            }
            /* ICMP port unreachable shows up here as ECONNREFUSED */
            acme_err(err, errlen, "DNS server %s: %s", peer, strerror(errno));
            goto fail;
        }
        /* a stray or late datagram with another ID is skipped */
        if (n >= 2 && buf[0] == msg[0] && buf[1] == msg[1]) {
            break;
        }
    }

    close(fd);
    *resp = buf;
    *resplen = (size_t) n;
    return 0;

fail:

    close(fd);
    free(buf);
    return -1;
}

/* Reads or writes exactly len bytes before the deadline. */
static int
tcp_io(int fd, int writing, unsigned char *p, size_t len, long long deadline,
    const char *peer, char *err, size_t errlen)
{
    size_t   done = 0;
    ssize_t  n;
    int      r;

    while (done < len) {
        r = wait_fd(fd, writing ? POLLOUT : POLLIN, deadline);
        if (r == 0) {
            return acme_err(err, errlen, "DNS server %s: timed out over TCP",
                            peer);
        }
        if (r < 0) {
            return acme_err(err, errlen, "DNS server %s: poll: %s", peer,
                            strerror(errno));
        }
        n = writing ? send(fd, p + done, len - done, MSG_NOSIGNAL)
                    : recv(fd, p + done, len - done, 0);
        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR) {
                continue;
            }
            return acme_err(err, errlen, "DNS server %s: %s", peer,
                            strerror(errno));
        }
        if (n == 0) {
            return acme_err(err, errlen, "DNS server %s: connection closed "
                            "early", peer);
        }
        done += (size_t) n;
    }
    return 0;
}

static int
exchange_tcp(const char *server, int port, const unsigned char *msg,
    size_t len, long long deadline, unsigned char **resp, size_t *resplen,
    char *err, size_t errlen)
{
    unsigned char   lenbuf[2], *out, *buf;
    char            peer[300];
    size_t          n;
    socklen_t       sl;
    int             fd, r, soerr;

    if (len > DNS_MAX_MSG) {
        return acme_err(err, errlen, "DNS: message too long");
    }

    fd = dns_socket(server, port, SOCK_STREAM, peer, sizeof(peer), err,
                    errlen);
    if (fd < 0) {
        return -1;
    }

    r = wait_fd(fd, POLLOUT, deadline);
    soerr = 0;
    sl = sizeof(soerr);
    if (r <= 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0
        || soerr != 0)
    {
        close(fd);
        return acme_err(err, errlen, "DNS server %s: TCP connect: %s", peer,
                        r == 0 ? "timed out" : strerror(soerr ? soerr : errno));
    }

    /* RFC 1035 section 4.2.2: a two-byte length before each message */
    out = malloc(len + 2);
    if (out == NULL) {
        close(fd);
        return acme_err(err, errlen, "DNS: out of memory");
    }
    out[0] = (unsigned char) (len >> 8);
    out[1] = (unsigned char) len;
    memcpy(out + 2, msg, len);
    r = tcp_io(fd, 1, out, len + 2, deadline, peer, err, errlen);
    free(out);
    if (r != 0) {
        close(fd);
        return -1;
    }

    if (tcp_io(fd, 0, lenbuf, 2, deadline, peer, err, errlen) != 0) {
        close(fd);
        return -1;
    }
    n = (size_t) get_u16(lenbuf);
    buf = malloc(n ? n : 1);
    if (buf == NULL) {
        close(fd);
        return acme_err(err, errlen, "DNS: out of memory");
    }
    if (tcp_io(fd, 0, buf, n, deadline, peer, err, errlen) != 0) {
        close(fd);
        free(buf);
        return -1;
    }
    close(fd);

    *resp = buf;
    *resplen = n;
    return 0;
}

int
acme_dns_exchange(const char *server, int port, int tcp,
    const unsigned char *msg, size_t len, int timeout_ms,
    unsigned char **resp, size_t *resplen, char *err, size_t errlen)
{
    long long  deadline;

    *resp = NULL;
    *resplen = 0;
    if (server == NULL || server[0] == '\0') {
        return acme_err(err, errlen, "DNS: no server given");
    }
    if (len < DNS_HDR_LEN) {
        return acme_err(err, errlen, "DNS: message too short");
    }

    deadline = acme_monotonic_ms() + (timeout_ms > 0 ? timeout_ms : 5000);

    if (!tcp && len <= 512) {
        if (exchange_udp(server, port, msg, len, deadline, resp, resplen,
                         err, errlen) != 0)
        {
            return -1;
        }
        /* TC: the same question again over TCP (RFC 7766) */
        if (*resplen < 4 || !((*resp)[2] & 0x02)) {
            return 0;
        }
        free(*resp);
        *resp = NULL;
        *resplen = 0;
    }

    return exchange_tcp(server, port, msg, len, deadline, resp, resplen,
                        err, errlen);
}

uint16_t
acme_dns_random_id(void)
{
    unsigned char  r[2];

    if (RAND_bytes(r, 2) != 1) {
        ERR_clear_error();
        return (uint16_t) (acme_monotonic_ms() ^ getpid());
    }
    return (uint16_t) (r[0] << 8 | r[1]);
}

/* Sends a built message and parses the response (UDP, TCP on TC). */
static int
round_trip(const char *server, int port, acme_dns_txn_t *txn,
    const unsigned char *msg, size_t len, int timeout_ms,
    acme_dns_answer_t *ans, char *err, size_t errlen)
{
    unsigned char  *resp;
    size_t          rlen;
    int             rc;

    if (acme_dns_exchange(server, port, 0, msg, len, timeout_ms, &resp, &rlen,
                          err, errlen) != 0)
    {
        return -1;
    }
    rc = acme_dns_response_parse(txn, resp, rlen, (long long) time(NULL), ans,
                                 err, errlen);
    free(resp);
    return rc;
}

int
acme_dns_update_blocking(const char *server, int port, const char *zone,
    const char *name, const char *txt, uint32_t ttl,
    acme_dns_update_op_t op, const acme_tsig_key_t *key, int timeout_ms,
    char *err, size_t errlen)
{
    acme_dns_txn_t      txn;
    acme_dns_answer_t   ans;
    unsigned char      *msg;
    size_t              len;
    int                 rc;

    if (acme_dns_update_build(&txn, zone, name, txt, ttl, op, key,
                              (long long) time(NULL), acme_dns_random_id(),
                              &msg, &len, err, errlen) != 0)
    {
        return -1;
    }
    rc = round_trip(server, port, &txn, msg, len, timeout_ms, &ans, err,
                    errlen);
    free(msg);
    if (rc != 0) {
        return -1;
    }
    rc = acme_dns_update_check(&ans, err, errlen);
    acme_dns_answer_free(&ans);

    if (rc != 0 && err != NULL && errlen > 0) {
        /* say which server and zone: several may be configured */
        char  inner[ACME_ERRLEN];

        snprintf(inner, sizeof(inner), "%s", err);
        acme_err(err, errlen, "%s [server %s port %d, zone %s]", inner, server,
                 port > 0 ? port : 53, txn.qname);
    }
    return rc;
}

/* Builds a query for name/qtype, sends it and parses the answer. */
static int
query_round_trip(const char *server, int port, const char *name,
    uint16_t qtype, int rd, int timeout_ms, acme_dns_txn_t *txn, acme_dns_answer_t *ans,
    char *err, size_t errlen)
{
    unsigned char  *msg;
    size_t          len;
    int             rc;

    if (acme_dns_query_build(txn, name, qtype, rd, acme_dns_random_id(),
                             &msg, &len, err, errlen)
        != 0)
    {
        return -1;
    }
    rc = round_trip(server, port, txn, msg, len, timeout_ms, ans, err,
                    errlen);
    free(msg);
    return rc;
}

int
acme_dns_txt_visible_blocking(const char *server, int port, const char *name,
    const char *txt, int timeout_ms, char *err, size_t errlen)
{
    acme_dns_txn_t      txn;
    acme_dns_answer_t   ans;
    size_t              i;
    int                 rc;

    if (query_round_trip(server, port, name, ACME_DNS_TYPE_TXT, 0, timeout_ms, &txn,
                         &ans, err, errlen)
        != 0)
    {
        return -1;
    }

    if (ans.rcode != ACME_DNS_NOERROR && ans.rcode != ACME_DNS_NXDOMAIN) {
        acme_err(err, errlen, "DNS server %s: TXT query for %s: %s", server,
                 txn.qname, acme_dns_rcode_name(ans.rcode));
        acme_dns_answer_free(&ans);
        return -1;
    }

    rc = 0;
    for (i = 0; i < ans.n_txt; i++) {
        if (txt == NULL || strcmp(ans.txt[i], txt) == 0) {
            rc = 1;
        }
    }
    acme_dns_answer_free(&ans);
    return rc;
}

int
acme_dns_find_zone_blocking(const char *server, int port, int rd,
    const char *name, int timeout_ms, char **zone, char *err, size_t errlen)
{
    acme_dns_txn_t      txn;
    acme_dns_answer_t   ans;

    *zone = NULL;
    if (query_round_trip(server, port, name, ACME_DNS_TYPE_SOA, rd, timeout_ms, &txn,
                         &ans, err, errlen)
        != 0)
    {
        return -1;
    }

    if (ans.soa_owner == NULL || ans.soa_owner[0] == '\0') {
        acme_err(err, errlen, "DNS server %s: no zone found for %s (%s, no "
                 "SOA record)", server, txn.qname,
                 acme_dns_rcode_name(ans.rcode));
        acme_dns_answer_free(&ans);
        return -1;
    }
    *zone = ans.soa_owner;
    ans.soa_owner = NULL;
    acme_dns_answer_free(&ans);
    return 0;
}

int
acme_dns_zone_ns_blocking(const char *server, int port, int rd,
    const char *zone, int timeout_ms, char ***ns, size_t *n, char *err,
    size_t errlen)
{
    acme_dns_txn_t      txn;
    acme_dns_answer_t   ans;

    *ns = NULL;
    *n = 0;
    if (query_round_trip(server, port, zone, ACME_DNS_TYPE_NS, rd, timeout_ms, &txn,
                         &ans, err, errlen)
        != 0)
    {
        return -1;
    }

    if (ans.rcode != ACME_DNS_NOERROR || ans.n_ns == 0) {
        acme_err(err, errlen, "DNS server %s: no NS records for %s (%s)",
                 server, txn.qname, acme_dns_rcode_name(ans.rcode));
        acme_dns_answer_free(&ans);
        return -1;
    }
    *ns = ans.ns;
    *n = ans.n_ns;
    ans.ns = NULL;
    ans.n_ns = 0;
    acme_dns_answer_free(&ans);
    return 0;
}
