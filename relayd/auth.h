/*
 * auth.h - SMTP AUTH credentials (auth_users_file: "user:crypt-hash"
 * lines), sender ownership (sender_login_map: "user: addr, @domain"
 * lines), and password checks.  The brute-force throttle is in
 * auth_throttle.h.
 *
 * Password hashes are checked with crypt_r on libuv's thread pool
 * (auth_queue.h): a yescrypt check takes tens of milliseconds, far too
 * long for the loop.
 * An unknown user is checked against a dummy hash of the same kind, so
 * replies and timing do not tell which users exist.
 *
 * struct auth_db is reference counted: SIGHUP loads a new one and swaps
 * it in; checks in flight keep the old one alive.
 */
#ifndef RELAYD_AUTH_H
#define RELAYD_AUTH_H

#include <stddef.h>

struct auth_db;

/* Load users (required) and the sender map (NULL or "": none).  0, or -1
 * with "FILE:LINE: problem" in err. */
int auth_db_load(struct auth_db **out, const char *users_file,
		 const char *sender_map_file, char *err, size_t errlen);
void auth_db_ref(struct auth_db *db);
void auth_db_unref(struct auth_db *db);
size_t auth_db_users(const struct auth_db *db);
int auth_db_has_sender_map(const struct auth_db *db);

/* The check itself, slow (a hash): the daemon runs it on the thread pool
 * through auth_queue.h.  Thread-safe.  1 ok, 0 not. */
int auth_check(const struct auth_db *db, const char *user, const char *pass);

/* May `user` send as `sender` per the map?  1 yes, 0 no.  The null
 * sender is always allowed (bounces).  Without a map: 1. */
int auth_sender_allowed(const struct auth_db *db, const char *user,
			const char *sender);

#endif
