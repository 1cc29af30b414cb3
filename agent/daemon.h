/*
 * The agent daemon (`pgship-agent -c FILE`): dials the coordinator, proves its identity, long-polls
 * for jobs and runs them (docs/wire-protocol.md is the contract):
 *
 *   backup    the database is dumped and its archive streamed as DATA frames, then END
 *   restore   the source archive is pulled with FETCH requests and restored by restore_run
 *             (agent/restore.h) into a temporary database swapped in for the target; STEP tells
 *             the coordinator each step, REPORT the outcome
 *   sanitize  the same into a scratch temporary database, sanitized, then dumped again to the
 *             job's recipients and streamed as DATA/END like a backup; then REPORT
 *   verify    the source archive pulled as for a restore and checked to its verified end
 *             (restore_verify), kept nowhere; with restore_test, restored into the job's scratch
 *             database (restore_run), its rows counted, then dropped; REPORT says what was checked
 *
 * It runs in the foreground until SIGTERM, SIGINT or SIGHUP. Nothing that goes wrong with the
 * coordinator or a database ends it: a refused handshake, a lost or silent connection and a
 * malformed reply are logged, the connection is dropped and a new one is made after a backoff;
 * a failed job is reported to the coordinator (FAIL or REPORT) and the agent polls again. Only a
 * stop request ends the loop, and an in-flight job is then cancelled (pg_dump or pg_restore
 * killed, the spool and any temporary database removed) and reported as failed ("agent
 * stopping") if the connection allows within AGENT_STOP_GRACE_MS. At start, before connecting,
 * the temporary databases of restores that died with an earlier run are dropped.
 */
#ifndef PGSHIP_AGENT_DAEMON_H
#define PGSHIP_AGENT_DAEMON_H

#include "agent/config.h"
#include "common/error.h"

/* How long the agent waits for each reply before it declares the connection dead. */
#define AGENT_HANDSHAKE_TIMEOUT_MS 30000       /* CHALLENGE, WELCOME */
#define AGENT_POLL_SLACK_MS 15000              /* IDLE or JOB: heartbeat_ms + this */
#define AGENT_ACK_TIMEOUT_MS (5 * 60 * 1000)   /* ACK of each DATA frame */
#define AGENT_END_TIMEOUT_MS (10 * 60 * 1000)  /* RESULT of END: the coordinator commits */
#define AGENT_FAIL_TIMEOUT_MS 30000            /* RESULT of FAIL */
#define AGENT_FETCH_TIMEOUT_MS (5 * 60 * 1000) /* PIECE or EOF of each FETCH */
#define AGENT_STEP_TIMEOUT_MS 30000            /* ACK of STEP */
#define AGENT_REPORT_TIMEOUT_MS 60000          /* RESULT of REPORT: the catalog records it */
#define AGENT_STOP_GRACE_MS 2000               /* to report FAIL "agent stopping" */
/* The dialer's own reconnect backoff while no connection is up. */
#define AGENT_DIAL_MIN_MS 100
#define AGENT_DIAL_MAX_MS 10000
/* The pause before a new connection after one ended: doubles while handshakes keep failing,
 * back to the minimum once one succeeds. */
#define AGENT_RETRY_MIN_MS 1000
#define AGENT_RETRY_MAX_MS 60000
/* connect_timeout for reading each database's server_version before a handshake. */
#define AGENT_PROBE_TIMEOUT_S 5

/* Checks what the loader does not about the wire (at most 256 databases), so that a config
 * that passes can always be announced. */
int agent_daemon_check(const agent_config *cfg, pgs_error *e);

/*
 * Runs the daemon until a stop is requested. The caller must have called sig_guard_start()
 * first, before any nng thread exists, so that every thread inherits the blocked signals.
 * Returns 0 after a requested stop, or an error (in e) when it cannot start at all: the socket
 * cannot be opened, or the transport settings are refused at the first dial.
 */
int agent_daemon_run(const agent_config *cfg, pgs_error *e);

#endif
