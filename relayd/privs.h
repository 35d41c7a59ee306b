/*
 * privs.h - dropping root: after the listeners are bound and the keys and
 * password file are read, relayd becomes `user` for good.
 */
#ifndef RELAYD_PRIVS_H
#define RELAYD_PRIVS_H

#include <stddef.h>

/* Resolve user; fill uid/gid.  0, or -1 with err set (no such user, or the
 * user is root). */
int privs_lookup(const char *user, unsigned *uid, unsigned *gid, char *err,
		 size_t errlen);
/* Make dir (and its parents' last component) owned by uid:gid, mode 0700.
 * Only when running as root.  0 or -1 (err). */
int privs_own_dir(const char *dir, unsigned uid, unsigned gid, char *err,
		  size_t errlen);
/* setgroups/setgid/setuid to uid:gid and verify that root cannot be
 * regained.  A no-op when not running as root.  0 or -1 (err). */
int privs_drop(unsigned uid, unsigned gid, char *err, size_t errlen);

#endif
