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
/* Make dir, when it does not exist, mode 0750 and owned by uid:gid; give an
 * existing one (privs_check_queue_owner has seen it is uid's) to gid when
 * its group differs, and leave its mode alone.  Only when running as root;
 * needs CAP_CHOWN, never CAP_FOWNER.  0 or -1 (err). */
int privs_own_dir(const char *dir, unsigned uid, unsigned gid, char *err,
		  size_t errlen);
/* initgroups/setgid/setuid to user (uid:gid, keeping user's supplementary
 * groups) and verify that root cannot be regained.  A no-op when not
 * running as root.  0 or -1 (err). */
int privs_drop(const char *user, unsigned uid, unsigned gid, char *err,
	       size_t errlen);
/* Can the current user (after the drop: `user`, named in the message)
 * reach path with access(2) mode (R_OK, W_OK, X_OK)?  0, or -1 with err
 * naming the path or the directory on the way that refuses, its mode and
 * owner, the user, and the permission it needs. */
int privs_check_access(const char *path, int mode, const char *user,
		       char *err, size_t errlen);
/* Does queue_dir belong to uid (`user` in the message)?  0 when it does,
 * or when it does not exist yet (relayd makes it); -1 with err naming
 * the directory or the queue file inside it (LMDB's, the daemon lock)
 * that belongs to someone
 * else, its owner, and the chown that fixes it.  relayd never takes over
 * a directory that is someone else's: queue_dir pointing at the wrong
 * place must not change that place's owner. */
int privs_check_queue_owner(const char *dir, unsigned uid, const char *user,
			    char *err, size_t errlen);

#endif
