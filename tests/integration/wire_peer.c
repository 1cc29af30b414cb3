/*
 * A hand-driven agent for the coordinator's integration tests: speaks (or breaks) the wire
 * protocol on purpose and prints what the coordinator did, one line on stdout:
 *
 *   welcome             the handshake succeeded (then it holds the connection for --hold s)
 *   refused MESSAGE     an ERROR reply (for HELLO or AUTH)
 *   dropped             the connection was closed without a reply
 *   reply TYPE          any other reply
 *
 * usage: wire_peer URL MODE [--ca F --server-name N] [--cert F --key F] [--insecure]
 *                            [--agent NAME --identity FILE] [--hold SECONDS]
 * MODE: auth (the whole handshake), badsig (AUTH signed with another nonce), garbage (bytes that
 * are no frame), oversize (a frame bigger than the coordinator accepts), reply-type (a
 * CHALLENGE sent as a request), poll-first (POLL before HELLO), bad-json (HELLO with an
 * unknown field), data-flood (after auth, DATA for a job it was never given).
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <nng/supplemental/util/platform.h>

#include "common/keys.h"
#include "common/net.h"
#include "proto/wire.h"

static nng_socket g_sock;

/* Sends raw bytes and waits for the reply: 0 and *out, or -1 when the connection dropped. */
static int xfer(const void *buf, size_t len, wire_msg *out)
{
    nng_msg *msg = NULL;
    if (nng_msg_alloc(&msg, 0) != 0 || nng_msg_append(msg, buf, len) != 0)
        return -1;
    if (nng_sendmsg(g_sock, msg, 0) != 0) {
        nng_msg_free(msg);
        return -1;
    }
    nng_msg *rep = NULL;
    if (nng_recvmsg(g_sock, &rep, 0) != 0)
        return -1;
    pgs_error e = {0};
    int rc = wire_decode(nng_msg_body(rep), nng_msg_len(rep), out, &e);
    nng_msg_free(rep);
    if (rc != 0) {
        printf("undecodable reply: %s\n", e.msg);
        exit(1);
    }
    return 0;
}

static int send_msg(const wire_msg *m, wire_msg *out)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    pgs_error e = {0};
    if (wire_encode(m, &buf, &len, &e) != 0) {
        printf("encode: %s\n", e.msg);
        exit(1);
    }
    int rc = xfer(buf, len, out);
    free(buf);
    return rc;
}

/* Prints what a reply means and exits when it ends the exchange. */
static void expect(int rc, const wire_msg *r, wire_type want)
{
    if (rc != 0) {
        printf("dropped\n");
        exit(0);
    }
    if (r->type == WIRE_ERROR) {
        printf("refused %s\n", r->u.error.message);
        exit(0);
    }
    if (r->type != want) {
        printf("reply %s\n", wire_type_name(r->type));
        exit(0);
    }
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"ca", required_argument, NULL, 'a'},       {"server-name", required_argument, NULL, 'n'},
        {"cert", required_argument, NULL, 'c'},     {"key", required_argument, NULL, 'k'},
        {"insecure", no_argument, NULL, 'i'},       {"agent", required_argument, NULL, 'g'},
        {"identity", required_argument, NULL, 'd'}, {"hold", required_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    net_tls tls = {0};
    const char *agent = NULL, *identity = NULL;
    int hold = 0, c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'a': tls.ca_file = optarg; break;
        case 'n': tls.server_name = optarg; break;
        case 'c': tls.cert_file = optarg; break;
        case 'k': tls.key_file = optarg; break;
        case 'i': tls.allow_insecure = 1; break;
        case 'g': agent = optarg; break;
        case 'd': identity = optarg; break;
        case 'h': hold = atoi(optarg); break;
        default: return 2;
        }
    }
    if (argc - optind != 2) {
        fprintf(stderr, "usage: wire_peer URL MODE [options]\n");
        return 2;
    }
    const char *url = argv[optind], *mode = argv[optind + 1];
    pgs_error e = {0};
    if (nng_req0_open(&g_sock) != 0)
        return 1;
    nng_socket_set_ms(g_sock, NNG_OPT_REQ_RESENDTIME, NNG_DURATION_INFINITE);
    nng_socket_set_ms(g_sock, NNG_OPT_RECVTIMEO, 3000); /* a dropped peer waits this long */
    nng_socket_set_size(g_sock, NNG_OPT_RECVMAXSZ, 0);
    nng_dialer d;
    if (net_dial(g_sock, url, &tls, 1, 100, 1000, &d, &e) != 0) {
        printf("cannot connect: %s\n", e.msg);
        return 1;
    }
    wire_msg r;
    if (strcmp(mode, "garbage") == 0) {
        expect(xfer("hello, coordinator", 18, &r), &r, WIRE_CHALLENGE);
    } else if (strcmp(mode, "oversize") == 0) {
        size_t len = (8u << 20) + 64;
        uint8_t *big = calloc(1, len);
        big[0] = 'P', big[1] = 'W', big[2] = WIRE_VERSION, big[3] = WIRE_DATA;
        uint32_t bl = (uint32_t)(len - WIRE_HEADER_LEN);
        big[4] = bl >> 24, big[5] = bl >> 16, big[6] = bl >> 8, big[7] = bl;
        int rc = xfer(big, len, &r);
        free(big);
        expect(rc, &r, WIRE_ACK);
    } else if (strcmp(mode, "reply-type") == 0) {
        wire_msg m = {.type = WIRE_IDLE};
        expect(send_msg(&m, &r), &r, WIRE_CHALLENGE);
    } else if (strcmp(mode, "poll-first") == 0) {
        wire_msg m = {.type = WIRE_POLL};
        expect(send_msg(&m, &r), &r, WIRE_JOB);
    } else if (strcmp(mode, "bad-json") == 0) {
        const char *body = "{\"agent\":\"x\",\"version\":\"v\",\"key_id\":\"0000000000000000\","
                           "\"extra\":1}";
        uint8_t frame[256];
        size_t bl = strlen(body);
        frame[0] = 'P', frame[1] = 'W', frame[2] = WIRE_VERSION, frame[3] = WIRE_HELLO;
        frame[4] = 0, frame[5] = 0, frame[6] = 0, frame[7] = (uint8_t)bl;
        memcpy(frame + 8, body, bl);
        expect(xfer(frame, 8 + bl, &r), &r, WIRE_CHALLENGE);
    } else {
        if (agent == NULL || identity == NULL) {
            fprintf(stderr, "wire_peer: %s needs --agent and --identity\n", mode);
            return 2;
        }
        pgs_identity_sec sk;
        if (identity_load_secret(identity, &sk, &e) != 0) {
            printf("identity: %s\n", e.msg);
            return 1;
        }
        wire_msg h = {.type = WIRE_HELLO};
        snprintf(h.u.hello.agent, sizeof(h.u.hello.agent), "%s", agent);
        snprintf(h.u.hello.version, sizeof(h.u.hello.version), "wire_peer");
        key_id_hex(sk.id, h.u.hello.key_id);
        expect(send_msg(&h, &r), &r, WIRE_CHALLENGE);
        uint8_t nonce[WIRE_NONCE_LEN];
        memcpy(nonce, r.u.challenge.nonce, sizeof(nonce));
        if (strcmp(mode, "badsig") == 0)
            nonce[0] ^= 1;
        uint8_t am[WIRE_AUTH_MSG_MAX];
        size_t al = wire_auth_message(nonce, agent, sk.id, am);
        wire_db db = {.name = "appdb", .environment = "dev", .server_version = "15"};
        wire_msg a = {.type = WIRE_AUTH};
        identity_sign(&sk, am, al, a.u.auth.signature);
        a.u.auth.ndbs = 1;
        a.u.auth.dbs = &db;
        expect(send_msg(&a, &r), &r, WIRE_WELCOME);
        if (strcmp(mode, "data-flood") == 0) {
            uint8_t frame[WIRE_DATA_HDR_MAX + 16];
            size_t hl = wire_data_header(frame, "20260101T000000Z-00000000", 0, 16);
            memset(frame + hl, 0xAB, 16);
            if (xfer(frame, hl + 16, &r) != 0) {
                printf("dropped\n");
                return 0;
            }
            printf("reply %s %s\n", wire_type_name(r.type),
                   r.type == WIRE_ERROR ? r.u.error.code : "");
            return 0;
        }
        printf("welcome\n");
        fflush(stdout);
        if (hold > 0)
            nng_msleep(hold * 1000);
    }
    nng_close(g_sock);
    return 0;
}
