/*
 * auth_throttle.h - the AUTH brute-force throttle: failures counted per
 * key, replies delayed as they grow, the key refused for a while past a
 * limit.  Two tables use it: one keyed by client (an IPv4 address or an
 * IPv6 /64, smtp_server_addr_key) and one keyed by user name
 * (auth_throttle_user_key), against credential stuffing from many
 * addresses.
 *
 * Memory is bounded (policy.max_entries).  When the table is full the
 * entry whose last failure is oldest is evicted, but never a blocked one:
 * blocked entries stay until their block ends, so a flood of other keys
 * cannot unblock anyone.  When every entry is blocked, a key that is not
 * tracked counts as blocked, and a failure that cannot be tracked is
 * refused like one past the limit (fail closed).
 *
 * A user name may be blocked at most block_time out of every
 * block_spacing seconds: an attacker who keeps failing as a real user
 * can then lock them out for a while, never for good.  Between blocks
 * the name's failures are still delayed, and every address still counts
 * against its own limit.
 *
 * Used on the loop thread only.
 */
#ifndef RELAYD_AUTH_THROTTLE_H
#define RELAYD_AUTH_THROTTLE_H

#include <stddef.h>
#include <time.h>

struct auth_throttle_policy {
	unsigned fail_limit;     /* failures before the block */
	time_t window;           /* seconds a failure is remembered after the last */
	time_t block_time;       /* seconds of refusal */
	time_t block_spacing;    /* from one block's start to the next's (0: none) */
	long step_ms, max_ms;    /* reply delay per failure, and its cap */
	size_t max_entries;      /* table bound */
};

/* Per client: 10 failures in 10 minutes block it for 10 minutes. */
#define AUTH_FAIL_LIMIT 10
#define AUTH_FAIL_WINDOW 600
#define AUTH_BLOCK_TIME 600
extern const struct auth_throttle_policy auth_throttle_addr_policy;

/* Per user name: 30 failures from any addresses within 15 minutes block
 * the name for 15 minutes, at most once an hour. */
#define AUTH_USER_FAIL_LIMIT 30
#define AUTH_USER_FAIL_WINDOW 900
#define AUTH_USER_BLOCK_TIME 900
#define AUTH_USER_BLOCK_SPACING 3600
extern const struct auth_throttle_policy auth_throttle_user_policy;

struct auth_throttle;

/* The policy is copied.  NULL on ENOMEM. */
struct auth_throttle *auth_throttle_new(const struct auth_throttle_policy *p);
void auth_throttle_free(struct auth_throttle *t);

/* Record a failure of key; returns the delay in ms before the reply, or
 * -1 when the key is now refused (or could not be tracked). */
long auth_throttle_fail(struct auth_throttle *t, const unsigned char key[16],
			time_t now);
/* 1 while the key is refused, or is not tracked while the table is full
 * of blocked entries. */
int auth_throttle_blocked(struct auth_throttle *t, const unsigned char key[16],
			  time_t now);
/* 1 when the key has failures on record (suspect: its checks wait). */
int auth_throttle_known(struct auth_throttle *t, const unsigned char key[16],
			time_t now);
/* Entries held now (tests). */
size_t auth_throttle_size(const struct auth_throttle *t);

/* The key of a user name: the first 16 bytes of its SHA-256. */
void auth_throttle_user_key(const char *user, unsigned char key[16]);

/* A success does not forget failures: with one valid account an
 * attacker could otherwise guess at every other without limit.  Failures
 * expire `window` seconds after the last one. */

#endif
