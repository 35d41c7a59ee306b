/*
 * service.h - telling whoever started relayd that it is up, or not.
 *
 * Without -F, relayd detaches, but the starting process waits until the
 * daemon has bound its ports, dropped privileges and opened its queue,
 * and exits 0, or 1 when the start failed (the reason is in the log): a
 * init script or a shell sees the failure in the exit status.
 *
 * Under systemd (Type=notify), READY=1 / STOPPING=1 / RELOADING=1 go to
 * $NOTIFY_SOCKET as the datagrams of sd_notify(3), written here (a
 * sendto on a Unix socket) rather than linking libsystemd for it.
 */
#ifndef RELAYD_SERVICE_H
#define RELAYD_SERVICE_H

/* Fork into the background; returns in the child only.  The parent
 * waits for service_started and exits with its verdict.  Before any
 * thread exists.  0, or -1 when the fork failed (errno). */
int service_detach(void);

/* The start is over: ok (the parent exits 0) or not (1).  Also tells
 * systemd READY=1 when ok.  Once; later calls do nothing. */
void service_started(int ok);

/* A state for systemd ("STOPPING=1", "RELOADING=1", "READY=1", or a
 * "STATUS=..." line); nothing without $NOTIFY_SOCKET. */
void service_notify(const char *state);

#endif
