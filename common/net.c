/* nng listeners and dialers with pgship's TLS policy (see net.h). */
#include "common/net.h"

#include <errno.h>
#include <fcntl.h>
#include <nng/supplemental/tls/tls.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/fsutil.h"

#define PEM_MAX (256 << 10)

int net_url_check(const char *url, int allow_insecure, pgs_error *e)
{
    if (strncmp(url, "tls+tcp://", 10) == 0)
        return 1;
    if (strncmp(url, "tcp://", 6) == 0 || strncmp(url, "ipc://", 6) == 0) {
        if (!allow_insecure)
            return pgs_fail(e, PGS_EINVAL,
                            "%s is not encrypted: use tls+tcp://, or set allow_insecure_transport "
                            "= true to accept it",
                            url);
        return 0;
    }
    return pgs_fail(e, PGS_EINVAL, "%s: the transport must be tls+tcp://, tcp:// or ipc://", url);
}

/* Reads a PEM file of at most PEM_MAX bytes into a NUL-terminated buffer (caller frees with
 * sodium_free-safe wiping via free after memzero). A key file must be private to its owner. */
static char *read_pem(const char *path, int secret, pgs_error *e)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        pgs_fail(e, PGS_EIO, "%s: %s", path, strerror(errno));
        return NULL;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        pgs_fail(e, PGS_EINVAL, "%s: not a regular file", path);
        return NULL;
    }
    if (secret && (st.st_mode & 077) != 0) {
        close(fd);
        pgs_fail(e, PGS_EINVAL, "%s: key file is accessible by group or others (mode %04o); chmod 600 it",
                 path, (unsigned)(st.st_mode & 07777));
        return NULL;
    }
    char *buf = malloc(PEM_MAX + 1);
    ssize_t n = buf ? fs_read_full(fd, buf, PEM_MAX + 1) : -1;
    close(fd);
    if (n < 0 || n > PEM_MAX) {
        free(buf);
        pgs_fail(e, PGS_EINVAL, "%s: unreadable or larger than %d bytes", path, PEM_MAX);
        return NULL;
    }
    buf[n] = '\0';
    return buf;
}

static void free_pem(char *p)
{
    if (p != NULL) {
        sodium_memzero(p, strlen(p));
        free(p);
    }
}

/* A TLS configuration for one endpoint. */
static int tls_config(nng_tls_mode mode, const net_tls *t, nng_tls_config **out, pgs_error *e)
{
    nng_tls_config *cfg = NULL;
    char *cert = NULL, *key = NULL;
    int rv, rc = 0;
    if ((rv = nng_tls_config_alloc(&cfg, mode)) != 0)
        return pgs_fail(e, PGS_EIO, "TLS: %s", nng_strerror(rv));
    if (t->cert_file != NULL || t->key_file != NULL) {
        if (t->cert_file == NULL || t->key_file == NULL) {
            rc = pgs_fail(e, PGS_EINVAL, "TLS: a certificate needs its key and the other way round");
            goto out;
        }
        if ((cert = read_pem(t->cert_file, 0, e)) == NULL || (key = read_pem(t->key_file, 1, e)) == NULL) {
            rc = e ? e->code : PGS_EIO;
            goto out;
        }
        if ((rv = nng_tls_config_own_cert(cfg, cert, key, NULL)) != 0) {
            rc = pgs_fail(e, PGS_EINVAL, "TLS: %s and %s: %s", t->cert_file, t->key_file,
                          nng_strerror(rv));
            goto out;
        }
    } else if (mode == NNG_TLS_MODE_SERVER) {
        rc = pgs_fail(e, PGS_EINVAL, "TLS: a listener needs tls_cert and tls_key");
        goto out;
    }
    if (mode == NNG_TLS_MODE_CLIENT) {
        /* nng 1.5 checks the server's name only when told which name to expect. */
        if (t->ca_file == NULL || t->server_name == NULL || t->server_name[0] == '\0') {
            rc = pgs_fail(e, PGS_EINVAL,
                          "TLS: dialing needs tls_ca and tls_server_name to check the server");
            goto out;
        }
        if ((rv = nng_tls_config_server_name(cfg, t->server_name)) != 0 ||
            (rv = nng_tls_config_ca_file(cfg, t->ca_file)) != 0 ||
            (rv = nng_tls_config_auth_mode(cfg, NNG_TLS_AUTH_MODE_REQUIRED)) != 0) {
            rc = pgs_fail(e, PGS_EINVAL, "TLS: %s: %s", t->ca_file, nng_strerror(rv));
            goto out;
        }
    } else if (t->ca_file != NULL) {
        if ((rv = nng_tls_config_ca_file(cfg, t->ca_file)) != 0 ||
            (rv = nng_tls_config_auth_mode(cfg, NNG_TLS_AUTH_MODE_REQUIRED)) != 0) {
            rc = pgs_fail(e, PGS_EINVAL, "TLS: %s: %s", t->ca_file, nng_strerror(rv));
            goto out;
        }
    } else {
        nng_tls_config_auth_mode(cfg, NNG_TLS_AUTH_MODE_NONE);
    }
out:
    free_pem(cert);
    free_pem(key);
    if (rc != 0) {
        nng_tls_config_free(cfg);
        return rc;
    }
    *out = cfg;
    return 0;
}

int net_listen(nng_socket s, const char *url, const net_tls *t, nng_listener *out, pgs_error *e)
{
    int tls = net_url_check(url, t->allow_insecure, e);
    if (tls < 0)
        return tls;
    nng_listener l;
    int rv = nng_listener_create(&l, s, url);
    if (rv != 0)
        return pgs_fail(e, PGS_EINVAL, "listen on %s: %s", url, nng_strerror(rv));
    if (tls) {
        nng_tls_config *cfg = NULL;
        int rc = tls_config(NNG_TLS_MODE_SERVER, t, &cfg, e);
        if (rc != 0) {
            nng_listener_close(l);
            return rc;
        }
        rv = nng_listener_set_ptr(l, NNG_OPT_TLS_CONFIG, cfg);
        nng_tls_config_free(cfg); /* the listener holds its own reference */
        if (rv != 0) {
            nng_listener_close(l);
            return pgs_fail(e, PGS_EIO, "listen on %s: %s", url, nng_strerror(rv));
        }
    }
    if ((rv = nng_listener_start(l, 0)) != 0) {
        nng_listener_close(l);
        return pgs_fail(e, PGS_EIO, "listen on %s: %s", url, nng_strerror(rv));
    }
    *out = l;
    return 0;
}

int net_dial(nng_socket s, const char *url, const net_tls *t, int block, int min_ms, int max_ms,
             nng_dialer *out, pgs_error *e)
{
    int tls = net_url_check(url, t->allow_insecure, e);
    if (tls < 0)
        return tls;
    nng_dialer d;
    int rv = nng_dialer_create(&d, s, url);
    if (rv != 0)
        return pgs_fail(e, PGS_EINVAL, "dial %s: %s", url, nng_strerror(rv));
    nng_dialer_set_ms(d, NNG_OPT_RECONNMINT, min_ms);
    nng_dialer_set_ms(d, NNG_OPT_RECONNMAXT, max_ms);
    if (tls) {
        nng_tls_config *cfg = NULL;
        int rc = tls_config(NNG_TLS_MODE_CLIENT, t, &cfg, e);
        if (rc != 0) {
            nng_dialer_close(d);
            return rc;
        }
        rv = nng_dialer_set_ptr(d, NNG_OPT_TLS_CONFIG, cfg);
        nng_tls_config_free(cfg);
        if (rv != 0) {
            nng_dialer_close(d);
            return pgs_fail(e, PGS_EIO, "dial %s: %s", url, nng_strerror(rv));
        }
    }
    if ((rv = nng_dialer_start(d, block ? 0 : NNG_FLAG_NONBLOCK)) != 0) {
        nng_dialer_close(d);
        return pgs_fail(e, rv == NNG_EPEERAUTH || rv == NNG_ECRYPTO ? PGS_EAUTH : PGS_EIO,
                        "dial %s: %s", url, nng_strerror(rv));
    }
    *out = d;
    return 0;
}
