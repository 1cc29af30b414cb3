/*
 * Integration test of common/net.c over real nng TLS on loopback, with two CAs made by
 * deploy/make-certs.sh (argv[1] holds a/ and b/, each with ca.crt, coordinator.crt/.key and a client
 * agent1.crt/.key). A REP listener answers a HELLO frame (proto/wire.c) with a CHALLENGE; each case
 * checks that the exchange works, or that the connection is refused, as a user would expect:
 * the agent checks the coordinator's certificate and name, the coordinator may require client
 * certificates from its CA, and plain transports need an explicit allowance.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <nng/protocol/reqrep0/req.h>
#include <nng/supplemental/util/platform.h>

#include "common/net.h"
#include "proto/wire.h"

static const char *g_dir;

static char *path(const char *ca, const char *file)
{
    static char buf[8][1024];
    static int i;
    char *p = buf[i++ % 8];
    snprintf(p, 1024, "%s/%s/%s", g_dir, ca, file);
    return p;
}

typedef struct server {
    nng_socket sock;
    nng_listener l;
    nng_thread *thr;
    int port;
    int served;
} server;

/* Answers HELLO frames with CHALLENGE until the socket closes. */
static void serve(void *arg)
{
    server *s = arg;
    for (;;) {
        nng_msg *msg = NULL;
        if (nng_recvmsg(s->sock, &msg, 0) != 0)
            return;
        wire_msg in;
        pgs_error e = {0};
        wire_msg out = {.type = WIRE_ERROR};
        if (wire_decode(nng_msg_body(msg), nng_msg_len(msg), &in, &e) == 0 &&
            in.type == WIRE_HELLO) {
            out.type = WIRE_CHALLENGE;
            memset(out.u.challenge.nonce, 7, WIRE_NONCE_LEN);
            strcpy(out.u.challenge.version, "test-coordinator");
            wire_msg_clear(&in);
        } else {
            strcpy(out.u.error.code, "bad-frame");
            snprintf(out.u.error.message, sizeof(out.u.error.message), "%s", e.msg);
        }
        uint8_t *f = NULL;
        size_t n = 0;
        assert_int_equal(wire_encode(&out, &f, &n, &e), 0);
        nng_msg_clear(msg);
        nng_msg_append(msg, f, n);
        free(f);
        s->served++;
        if (nng_sendmsg(s->sock, msg, 0) != 0)
            nng_msg_free(msg);
    }
}

static int server_start(server *s, const char *scheme, const net_tls *t, pgs_error *e)
{
    memset(s, 0, sizeof(*s));
    assert_int_equal(nng_rep0_open(&s->sock), 0);
    char url[128];
    snprintf(url, sizeof(url), "%s://127.0.0.1:0", scheme);
    int rc = net_listen(s->sock, url, t, &s->l, e);
    if (rc != 0) {
        nng_close(s->sock);
        return rc;
    }
    assert_int_equal(nng_listener_get_int(s->l, NNG_OPT_TCP_BOUND_PORT, &s->port), 0);
    assert_int_equal(nng_thread_create(&s->thr, serve, s), 0);
    return 0;
}

static void server_stop(server *s)
{
    nng_close(s->sock);
    nng_thread_destroy(s->thr);
}

/* Dials the server and does one HELLO -> CHALLENGE exchange. 0, or the dial's error. */
static int exchange(const server *s, const char *scheme, const char *host, const net_tls *t,
                    pgs_error *e)
{
    nng_socket c;
    assert_int_equal(nng_req0_open(&c), 0);
    nng_socket_set_ms(c, NNG_OPT_REQ_RESENDTIME, NNG_DURATION_INFINITE);
    nng_socket_set_ms(c, NNG_OPT_RECVTIMEO, 5000);
    nng_socket_set_ms(c, NNG_OPT_SENDTIMEO, 5000);
    char url[128];
    snprintf(url, sizeof(url), "%s://%s:%d", scheme, host, s->port);
    nng_dialer d;
    int rc = net_dial(c, url, t, 1, 100, 1000, &d, e);
    if (rc == 0) {
        wire_msg hello = {.type = WIRE_HELLO}, reply;
        strcpy(hello.u.hello.agent, "agent1");
        strcpy(hello.u.hello.version, "test-agent");
        strcpy(hello.u.hello.key_id, "0123456789abcdef");
        uint8_t *f = NULL;
        size_t n = 0;
        assert_int_equal(wire_encode(&hello, &f, &n, e), 0);
        assert_int_equal(nng_send(c, f, n, 0), 0);
        free(f);
        void *buf = NULL;
        size_t len = 0;
        assert_int_equal(nng_recv(c, &buf, &len, NNG_FLAG_ALLOC), 0);
        assert_int_equal(wire_decode(buf, len, &reply, e), 0);
        assert_int_equal(reply.type, WIRE_CHALLENGE);
        nng_free(buf, len);
    }
    nng_close(c);
    return rc;
}

static void test_net_tls_exchange_and_server_name(void **state)
{
    (void)state;
    server s;
    pgs_error e = {0};
    net_tls st = {.cert_file = path("a", "coordinator.crt"), .key_file = path("a", "coordinator.key")};
    assert_int_equal(server_start(&s, "tls+tcp", &st, &e), 0);

    net_tls ct = {.ca_file = path("a", "ca.crt"), .server_name = "localhost"};
    if (exchange(&s, "tls+tcp", "127.0.0.1", &ct, &e) != 0)
        fail_msg("%s", e.msg);
    assert_int_equal(s.served, 1);

    /* The certificate does not carry this name: refused, even though the CA is right. */
    ct.server_name = "coordinator.elsewhere";
    assert_int_not_equal(exchange(&s, "tls+tcp", "127.0.0.1", &ct, &e), 0);
    assert_non_null(strstr(e.msg, "dial tls+tcp://127.0.0.1:"));
    /* A CA that did not sign the server: refused. */
    ct.server_name = "localhost";
    ct.ca_file = path("b", "ca.crt");
    assert_int_not_equal(exchange(&s, "tls+tcp", "127.0.0.1", &ct, &e), 0);
    /* Without a name to check, the dialer refuses to start at all. */
    ct.ca_file = path("a", "ca.crt");
    ct.server_name = NULL;
    assert_int_equal(exchange(&s, "tls+tcp", "127.0.0.1", &ct, &e), PGS_EINVAL);
    assert_non_null(strstr(e.msg, "tls_server_name"));
    assert_int_equal(s.served, 1);
    server_stop(&s);
}

static void test_net_tls_client_certificates(void **state)
{
    (void)state;
    server s;
    pgs_error e = {0};
    /* tls_ca set on the listener: clients need a certificate from that CA. */
    net_tls st = {.cert_file = path("a", "coordinator.crt"),
                  .key_file = path("a", "coordinator.key"),
                  .ca_file = path("a", "ca.crt")};
    assert_int_equal(server_start(&s, "tls+tcp", &st, &e), 0);
    net_tls ct = {.ca_file = path("a", "ca.crt"), .server_name = "localhost"};
    assert_int_not_equal(exchange(&s, "tls+tcp", "127.0.0.1", &ct, &e), 0);
    ct.cert_file = path("b", "agent1.crt");
    ct.key_file = path("b", "agent1.key");
    assert_int_not_equal(exchange(&s, "tls+tcp", "127.0.0.1", &ct, &e), 0);
    assert_int_equal(s.served, 0);
    ct.cert_file = path("a", "agent1.crt");
    ct.key_file = path("a", "agent1.key");
    if (exchange(&s, "tls+tcp", "127.0.0.1", &ct, &e) != 0)
        fail_msg("%s", e.msg);
    assert_int_equal(s.served, 1);
    server_stop(&s);
}

static void test_net_insecure_transport_needs_allowance(void **state)
{
    (void)state;
    server s;
    pgs_error e = {0};
    net_tls st = {0};
    assert_int_equal(server_start(&s, "tcp", &st, &e), PGS_EINVAL);
    assert_non_null(strstr(e.msg, "allow_insecure_transport"));
    st.allow_insecure = 1;
    assert_int_equal(server_start(&s, "tcp", &st, &e), 0);
    net_tls ct = {0};
    assert_int_equal(exchange(&s, "tcp", "127.0.0.1", &ct, &e), PGS_EINVAL);
    ct.allow_insecure = 1;
    if (exchange(&s, "tcp", "127.0.0.1", &ct, &e) != 0)
        fail_msg("%s", e.msg);
    server_stop(&s);
    assert_int_equal(net_url_check("http://x", 1, &e), PGS_EINVAL);
}

static void test_net_key_file_must_be_private(void **state)
{
    (void)state;
    server s;
    pgs_error e = {0};
    char loose[1100];
    snprintf(loose, sizeof(loose), "%s/loose.key", g_dir);
    FILE *in = fopen(path("a", "coordinator.key"), "r"), *out = fopen(loose, "w");
    assert_non_null(in);
    assert_non_null(out);
    int ch;
    while ((ch = fgetc(in)) != EOF)
        fputc(ch, out);
    fclose(in);
    fclose(out);
    net_tls st = {.cert_file = path("a", "coordinator.crt"), .key_file = loose};
    assert_int_equal(server_start(&s, "tls+tcp", &st, &e), PGS_EINVAL);
    assert_non_null(strstr(e.msg, "chmod 600"));
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: net_tls_test CERTDIR (with a/ and b/ from deploy/make-certs.sh)\n");
        return 2;
    }
    g_dir = argv[1];
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_net_tls_exchange_and_server_name),
        cmocka_unit_test(test_net_tls_client_certificates),
        cmocka_unit_test(test_net_insecure_transport_needs_allowance),
        cmocka_unit_test(test_net_key_file_must_be_private),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
