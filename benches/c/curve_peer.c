/* The libzmq side of omq's CURVE benchmark (benches/src/bin/curve.rs), in the manner of libzmq's
 * perf/local_thr and perf/remote_thr, for a libzmq built with libsodium (pyzmq's).
 *
 *   curve_peer recv EP SIZE COUNT SECRET       binds a CURVE-server PULL at EP, prints
 *                                              "endpoint E", then "rate R" (msg/s, first to last)
 *   curve_peer send EP SIZE COUNT SECRET SERVER connects a CURVE-client PUSH, sends COUNT
 *                                              messages, then waits for stdin to close
 *   curve_peer pub EP SIZE COUNT SECRET        binds a CURVE-server PUB (SNDHWM COUNT), prints
 *                                              "endpoint E", sends warm-up messages ('w') until
 *                                              a line arrives on stdin, then COUNT messages ('m')
 *                                              and end markers ('e') until stdin closes
 *   curve_peer sub EP SIZE COUNT SECRET SERVER a CURVE-client SUB: prints "ready" at the first
 *                                              warm-up message, then "got N SECONDS" for the
 *                                              'm' messages up to COUNT or the first 'e'
 *
 * Keys are 40-character Z85 strings. The few libzmq declarations it needs are written out here,
 * so that no zmq.h is required; the constants are libzmq's stable ABI values. */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void *zmq_ctx_new(void);
void *zmq_socket(void *ctx, int type);
int zmq_close(void *s);
int zmq_setsockopt(void *s, int option, const void *value, size_t len);
int zmq_getsockopt(void *s, int option, void *value, size_t *len);
int zmq_bind(void *s, const char *addr);
int zmq_connect(void *s, const char *addr);
int zmq_send(void *s, const void *buf, size_t len, int flags);
int zmq_recv(void *s, void *buf, size_t len, int flags);
char *zmq_z85_decode(unsigned char *dest, const char *string);
int zmq_curve_public(char *z85_public_key, const char *z85_secret_key);

enum {
    ZMQ_PUB = 1, ZMQ_SUB = 2, ZMQ_PULL = 7, ZMQ_PUSH = 8, ZMQ_SNDHWM = 23, ZMQ_RCVHWM = 24,
    ZMQ_SUBSCRIBE = 6, ZMQ_DONTWAIT = 1, ZMQ_LINGER = 17, ZMQ_LAST_ENDPOINT = 32,
    ZMQ_CURVE_SERVER = 47, ZMQ_CURVE_PUBLICKEY = 48, ZMQ_CURVE_SECRETKEY = 49,
    ZMQ_CURVE_SERVERKEY = 50,
};

static void check(int ok, const char *what) {
    if (!ok) { perror(what); exit(1); }
}

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
    if (argc < 6) { fprintf(stderr, "usage: see the source\n"); return 2; }
    const char *role = argv[1], *ep = argv[2], *secret = argv[5];
    size_t size = strtoul(argv[3], NULL, 10);
    long count = strtol(argv[4], NULL, 10);
    char public_key[41];
    check(zmq_curve_public(public_key, secret) == 0, "zmq_curve_public");
    void *ctx = zmq_ctx_new();
    char *buf = calloc(size ? size : 1, 1);
    if (strcmp(role, "recv") == 0) {
        void *s = zmq_socket(ctx, ZMQ_PULL);
        int one = 1;
        check(zmq_setsockopt(s, ZMQ_CURVE_SERVER, &one, sizeof one) == 0, "curve_server");
        check(zmq_setsockopt(s, ZMQ_CURVE_SECRETKEY, secret, 40) == 0, "secret");
        check(zmq_setsockopt(s, ZMQ_CURVE_PUBLICKEY, public_key, 40) == 0, "public");
        check(zmq_bind(s, ep) == 0, "bind");
        char last[256];
        size_t len = sizeof last;
        check(zmq_getsockopt(s, ZMQ_LAST_ENDPOINT, last, &len) == 0, "last_endpoint");
        printf("endpoint %s\n", last);
        fflush(stdout);
        check(zmq_recv(s, buf, size, 0) >= 0, "recv");
        double start = now();
        for (long i = 1; i < count; i++) {
            check(zmq_recv(s, buf, size, 0) >= 0, "recv");
        }
        printf("rate %.0f\n", (count - 1) / (now() - start));
        fflush(stdout);
        int zero = 0;
        zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof zero);
        zmq_close(s);
    } else if (strcmp(role, "pub") == 0) {
        void *s = zmq_socket(ctx, ZMQ_PUB);
        int one = 1, hwm = (int)count;
        check(zmq_setsockopt(s, ZMQ_SNDHWM, &hwm, sizeof hwm) == 0, "sndhwm");
        check(zmq_setsockopt(s, ZMQ_CURVE_SERVER, &one, sizeof one) == 0, "curve_server");
        check(zmq_setsockopt(s, ZMQ_CURVE_SECRETKEY, secret, 40) == 0, "secret");
        check(zmq_setsockopt(s, ZMQ_CURVE_PUBLICKEY, public_key, 40) == 0, "public");
        check(zmq_bind(s, ep) == 0, "bind");
        char last[256];
        size_t len = sizeof last;
        check(zmq_getsockopt(s, ZMQ_LAST_ENDPOINT, last, &len) == 0, "last_endpoint");
        printf("endpoint %s\n", last);
        fflush(stdout);
        /* Warm-up until the parent says go (a line on stdin), checked between sends. */
        buf[0] = 'w';
        struct pollfd in = {0, POLLIN, 0};
        for (;;) {
            zmq_send(s, buf, size, ZMQ_DONTWAIT);
            if (poll(&in, 1, 1) > 0) break;
        }
        while (getchar() != '\n') {}
        buf[0] = 'm';
        for (long i = 0; i < count; i++) {
            check(zmq_send(s, buf, size, 0) >= 0, "send");
        }
        /* End markers until stdin closes (poll reports POLLHUP at end of file). */
        buf[0] = 'e';
        while (poll(&in, 1, 1) == 0 || getchar() != EOF) {
            zmq_send(s, buf, size, ZMQ_DONTWAIT);
        }
        int zero = 0;
        zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof zero);
        zmq_close(s);
    } else if (strcmp(role, "sub") == 0) {
        if (argc < 7) { fprintf(stderr, "sub needs the server key\n"); return 2; }
        void *s = zmq_socket(ctx, ZMQ_SUB);
        int hwm = (int)count;
        check(zmq_setsockopt(s, ZMQ_RCVHWM, &hwm, sizeof hwm) == 0, "rcvhwm");
        check(zmq_setsockopt(s, ZMQ_CURVE_SERVERKEY, argv[6], 40) == 0, "serverkey");
        check(zmq_setsockopt(s, ZMQ_CURVE_SECRETKEY, secret, 40) == 0, "secret");
        check(zmq_setsockopt(s, ZMQ_CURVE_PUBLICKEY, public_key, 40) == 0, "public");
        check(zmq_setsockopt(s, ZMQ_SUBSCRIBE, "", 0) == 0, "subscribe");
        check(zmq_connect(s, ep) == 0, "connect");
        do { check(zmq_recv(s, buf, size, 0) >= 0, "recv"); } while (buf[0] != 'w');
        printf("ready\n");
        fflush(stdout);
        do { check(zmq_recv(s, buf, size, 0) >= 0, "recv"); } while (buf[0] == 'w');
        double start = now();
        long got = buf[0] == 'm';
        while (got < count) {
            check(zmq_recv(s, buf, size, 0) >= 0, "recv");
            if (buf[0] == 'e') break;
            got += buf[0] == 'm';
        }
        printf("got %ld %.6f\n", got, now() - start);
        fflush(stdout);
        int zero = 0;
        zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof zero);
        zmq_close(s);
    } else {
        if (argc < 7) { fprintf(stderr, "send needs the server key\n"); return 2; }
        void *s = zmq_socket(ctx, ZMQ_PUSH);
        check(zmq_setsockopt(s, ZMQ_CURVE_SERVERKEY, argv[6], 40) == 0, "serverkey");
        check(zmq_setsockopt(s, ZMQ_CURVE_SECRETKEY, secret, 40) == 0, "secret");
        check(zmq_setsockopt(s, ZMQ_CURVE_PUBLICKEY, public_key, 40) == 0, "public");
        check(zmq_connect(s, ep) == 0, "connect");
        for (long i = 0; i < count; i++) {
            check(zmq_send(s, buf, size, 0) >= 0, "send");
        }
        /* Keep the connection until the receiver has everything (libzmq can lose the tail when
         * it closes right after sending). */
        while (getchar() != EOF) {}
        zmq_close(s);
    }
    /* No zmq_ctx_term: with CURVE subscribers gone, libzmq 4.3.5's term can wait forever for
     * its reaper (seen with the publisher). Everything that matters was delivered already. */
    (void)ctx;
    free(buf);
    return 0;
}
