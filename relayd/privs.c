/*
 * privs.c - the one-way trip from root to the relayd user (privs.h).
 */
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "privs.h"

int privs_lookup(const char *user, unsigned *uid, unsigned *gid, char *err,
		 size_t errlen)
{
	struct passwd pw, *res = NULL;
	char buf[4096];
	int rc = getpwnam_r(user, &pw, buf, sizeof(buf), &res);
	if (rc || !res) {
		snprintf(err, errlen, "user %s: %s", user,
			 rc ? strerror(rc) : "no such user (create it: useradd --system relayd)");
		return -1;
	}
	if (pw.pw_uid == 0) {
		snprintf(err, errlen, "user %s is root: relayd will not run as root", user);
		return -1;
	}
	*uid = pw.pw_uid;
	*gid = pw.pw_gid;
	return 0;
}

int privs_own_dir(const char *dir, unsigned uid, unsigned gid, char *err,
		  size_t errlen)
{
	if (geteuid() != 0)
		return 0;
	/* 0750: members of the daemon's group read the queue (relayq). */
	if (mkdir(dir, 0750) && errno != EEXIST) {
		snprintf(err, errlen, "%s: %s", dir, strerror(errno));
		return -1;
	}
	if (chown(dir, uid, gid) || chmod(dir, 0750)) {
		snprintf(err, errlen, "%s: %s", dir, strerror(errno));
		return -1;
	}
	return 0;
}

int privs_drop(unsigned uid, unsigned gid, char *err, size_t errlen)
{
	if (geteuid() != 0)
		return 0;
	if (setgroups(0, NULL) || setgid(gid) || setuid(uid)) {
		snprintf(err, errlen, "cannot drop privileges: %s", strerror(errno));
		return -1;
	}
	/* Verified, not assumed: a setuid that left a saved root uid would
	 * let this succeed. */
	if (setuid(0) == 0 || geteuid() == 0 || getuid() == 0) {
		snprintf(err, errlen, "privileges could be regained; refusing to run");
		return -1;
	}
	return 0;
}
