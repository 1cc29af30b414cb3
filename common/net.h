/*
 * nng endpoints with pgship's transport policy, shared by both daemons: tls+tcp:// by default,
 * the server's certificate and name always checked by the dialer, client certificates optionally
 * required by the listener, and plain tcp:// or ipc:// only where a config allows insecure transport.
 * Knows nothing of pgship's messages (proto/wire.h) or of either daemon.
 */
#ifndef PGSHIP_COMMON_NET_H
#define PGSHIP_COMMON_NET_H

#include <nng/nng.h>

#include "common/error.h"

typedef struct net_tls {
    const char *ca_file;     /* dialer: the CA that signed the server (required for TLS);
                              * listener: when set, client certificates from it are required */
    const char *cert_file;   /* our certificate (listener: required; dialer: optional) */
    const char *key_file;    /* its key; must not be readable by group or others */
    const char *server_name; /* dialer: the name the server's certificate must carry (DNS name) */
    int allow_insecure;      /* permit tcp:// and ipc:// */
} net_tls;

/* 1 for tls+tcp://, 0 for tcp:// or ipc:// when allow_insecure, else an error naming the rule. */
int net_url_check(const char *url, int allow_insecure, pgs_error *e);

/* Starts a listener on s. */
int net_listen(nng_socket s, const char *url, const net_tls *t, nng_listener *out, pgs_error *e);
/* Starts a dialer on s that reconnects with backoff (min_ms .. max_ms). With block set, the first
 * connection must succeed now (its error is returned); otherwise it is made in the background. */
int net_dial(nng_socket s, const char *url, const net_tls *t, int block, int min_ms, int max_ms,
             nng_dialer *out, pgs_error *e);

#endif
