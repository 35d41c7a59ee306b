/*
 * privs.c - the one-way trip from root to the relayd user (privs.h).
 */
#include <errno.h>
#include <limits.h>
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
	struct stat st;
	if (geteuid() != 0)
		return 0;
	if (lstat(dir, &st) == 0) {
		/* The owner's mode is the administrator's to choose; changing
		 * it as root once the directory is the user's would need
		 * CAP_FOWNER, which the unit does not grant. */
		if (st.st_uid == uid && st.st_gid == gid)
			return 0;
		if (chown(dir, uid, gid))
			goto fail;
		return 0;
	}
	if (errno != ENOENT)
		goto fail;
	/* 0750: members of the daemon's group read the queue (relayq).  The
	 * mode is set while root still owns it (the umask may have cut it),
	 * then the directory is given away. */
	if (mkdir(dir, 0750) || chmod(dir, 0750) || chown(dir, uid, gid))
		goto fail;
	return 0;
fail:
	snprintf(err, errlen, "%s: %s", dir, strerror(errno));
	return -1;
}

int privs_drop(const char *user, unsigned uid, unsigned gid, char *err,
	       size_t errlen)
{
	if (geteuid() != 0)
		return 0;
	/* The user's supplementary groups stay: a key that is 0640
	 * root:ssl-cert must still be readable when SIGHUP reloads it. */
	if (initgroups(user, gid) || setgid(gid) || setuid(uid)) {
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

/* "drwx------ root:root" for path, or "" when it cannot be stat'ed. */
static void describe(const char *path, char *out, size_t outlen)
{
	struct stat st;
	char pwbuf[1024], grbuf[1024], mode[11];
	struct passwd pw, *pwr = NULL;
	struct group gr, *grr = NULL;
	out[0] = 0;
	if (stat(path, &st))
		return;
	snprintf(mode, sizeof(mode), "%c%c%c%c%c%c%c%c%c%c",
		 S_ISDIR(st.st_mode) ? 'd' : '-',
		 st.st_mode & S_IRUSR ? 'r' : '-', st.st_mode & S_IWUSR ? 'w' : '-',
		 st.st_mode & S_IXUSR ? 'x' : '-', st.st_mode & S_IRGRP ? 'r' : '-',
		 st.st_mode & S_IWGRP ? 'w' : '-', st.st_mode & S_IXGRP ? 'x' : '-',
		 st.st_mode & S_IROTH ? 'r' : '-', st.st_mode & S_IWOTH ? 'w' : '-',
		 st.st_mode & S_IXOTH ? 'x' : '-');
	getpwuid_r(st.st_uid, &pw, pwbuf, sizeof(pwbuf), &pwr);
	getgrgid_r(st.st_gid, &gr, grbuf, sizeof(grbuf), &grr);
	char u[32], g[32];
	snprintf(u, sizeof(u), "%u", (unsigned)st.st_uid);
	snprintf(g, sizeof(g), "%u", (unsigned)st.st_gid);
	snprintf(out, outlen, " (%s %s:%s)", mode, pwr ? pwr->pw_name : u,
		 grr ? grr->gr_name : g);
}

static const char *mode_words(int mode)
{
	if ((mode & (R_OK | W_OK)) == (R_OK | W_OK))
		return "read and write";
	return mode & W_OK ? "write" : "read";
}

int privs_check_access(const char *path, int mode, const char *user,
		       char *err, size_t errlen)
{
	char prefix[PATH_MAX], how[128];
	size_t len = strlen(path);
	if (len == 0 || len >= sizeof(prefix)) {
		snprintf(err, errlen, "%s: path too long", path);
		return -1;
	}
	/* Each directory on the way needs search (x) permission; the
	 * first one refused is the one to fix. */
	for (size_t i = 1; i < len; i++) {
		if (path[i] != '/')
			continue;
		memcpy(prefix, path, i);
		prefix[i] = 0;
		if (access(prefix, X_OK) == 0)
			continue;
		int e = errno;
		describe(prefix, how, sizeof(how));
		if (e == EACCES)
			snprintf(err, errlen,
				 "user %s cannot search directory %s%s: it needs execute (x) permission there (e.g. chmod o+x %s), or use a path outside it",
				 user, prefix, how, prefix);
		else
			snprintf(err, errlen, "%s: %s", prefix, strerror(e));
		return -1;
	}
	if (access(path, mode) == 0)
		return 0;
	int e = errno;
	describe(path, how, sizeof(how));
	if (e == EACCES)
		snprintf(err, errlen,
			 "user %s cannot %s %s%s: give it %s permission (e.g. chgrp %s %s; chmod g+%s %s)",
			 user, mode_words(mode), path, how, mode_words(mode), user,
			 path, mode & W_OK ? "rwx" : "r", path);
	else
		snprintf(err, errlen, "%s: %s", path, strerror(e));
	return -1;
}

int privs_check_queue_owner(const char *dir, unsigned uid, const char *user,
			    char *err, size_t errlen)
{
	/* LMDB's files and the daemon lock: a tool run as root while the
	 * daemon was down leaves them root's, and opening them then fails
	 * with a bare EACCES. */
	static const char *const files[] = { "", "/data.mdb", "/lock.mdb", "/relayd.lock" };
	char path[PATH_MAX], how[128];
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		struct stat st;
		if (snprintf(path, sizeof(path), "%s%s", dir, files[i]) >= (int)sizeof(path)) {
			snprintf(err, errlen, "%s: path too long", dir);
			return -1;
		}
		if (lstat(path, &st)) {
			/* EACCES: not root; privs_check_access says why. */
			if (errno == ENOENT || errno == EACCES)
				continue;
			snprintf(err, errlen, "%s: %s", path, strerror(errno));
			return -1;
		}
		if (st.st_uid == uid && (i > 0 || S_ISDIR(st.st_mode)))
			continue;
		describe(path, how, sizeof(how));
		if (i == 0 && !S_ISDIR(st.st_mode))
			snprintf(err, errlen, "queue_dir %s%s is not a directory", dir, how);
		else
			snprintf(err, errlen,
				 "queue_dir %s: %s%s is not owned by user %s: if it is the queue, chown -R %s: %s; otherwise set queue_dir to a directory of relayd's own (relayd creates it when it does not exist)",
				 dir, path, how, user, user, dir);
		return -1;
	}
	return 0;
}
