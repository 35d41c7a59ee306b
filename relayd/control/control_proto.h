/*
 * control_proto.h - the protocol of relayd's control socket, shared by
 * the daemon (control.c) and relayctl.
 *
 * Transport: a UNIX stream socket at `control_socket` (default
 * <queue_dir>/control), mode 0660, created by the daemon after it has
 * dropped privileges: owner and group are relayd's user and primary
 * group.  So root, the relayd user and members of its group may connect,
 * and nobody else (queue_dir itself is 0750 relayd:relayd).
 *
 * Framing: JSON lines (UTF-8, one object per line, ended by "\n").  The
 * client sends one request and reads one reply, then may send the next;
 * requests that arrive early wait their turn.  A request line is at most
 * CONTROL_LINE_MAX bytes; a longer one gets an error reply and the
 * connection is closed.  A connection idle for CONTROL_IDLE_MS is
 * closed, and at most CONTROL_CLIENTS_MAX are open at once: a new one
 * beyond that closes the one idle for longest (with no request running).
 *
 * Requests:
 *   {"verb": "hold"|"release"|"delete"|"requeue"|"flush"|"deliver",
 *    "ids": ["QUEUEID", ...]}        at most CONTROL_IDS_MAX ids
 *   {"verb": "status"}
 *   {"verb": "reload"}                 the same as SIGHUP
 * Replies:
 *   {"ok": true, "done": N, "missing": N, "failed": N,
 *    "errors": [{"id": "...", "error": "..."}]}       for the admin verbs,
 *        after the changes have committed ("done" counts the ids changed;
 *        "missing" those that are not in the queue (any more))
 *   {"ok": true, "pid": N, "version": "...", "uptime": S,
 *    "queue": {"messages": N}, "writer": {"batches": N, "ops": N},
 *    "control": {"clients": N}, "scheduler": {...}}  for status
 *   {"ok": true}                                      for reload
 *   {"ok": false, "error": "text"}    a request that could not be read or
 *        run; the connection stays open unless the line was too long.
 */
#ifndef RELAYD_CONTROL_PROTO_H
#define RELAYD_CONTROL_PROTO_H

#define CONTROL_LINE_MAX (64 * 1024)
#define CONTROL_IDS_MAX 1000
#define CONTROL_CLIENTS_MAX 64
#define CONTROL_IDLE_MS 60000
/* A reply is an object with at most CONTROL_ERRORS_MAX errors: well
 * under this, which bounds what a client reads. */
#define CONTROL_REPLY_MAX (1024 * 1024)

#endif
