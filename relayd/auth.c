/*
 * auth.c - credentials, sender ownership and password checks (auth.h).
 */
#include <crypt.h>
#include <ctype.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <openssl/crypto.h>
#include "auth.h"

#define LINE_MAX_LEN 4096

struct auth_user {
	char *name;
	char *hash;
	char **senders;          /* sender_login_map entries, or NULL */
	size_t nsenders;
	int in_map;
};

struct auth_db {
	atomic_int refs;
	struct auth_user *users;
	size_t n;
	int have_map;
	/* Map entries for users not in the passwd file are kept too, so a
	 * later passwd change needs no map reload. */
	struct auth_user *extra;
	size_t nextra;
};

static void user_free(struct auth_user *u)
{
	free(u->name);
	free(u->hash);
	for (size_t i = 0; i < u->nsenders; i++)
		free(u->senders[i]);
	free(u->senders);
}

void auth_db_ref(struct auth_db *db)
{
	if (db)
		atomic_fetch_add(&db->refs, 1);
}

void auth_db_unref(struct auth_db *db)
{
	if (!db || atomic_fetch_sub(&db->refs, 1) != 1)
		return;
	for (size_t i = 0; i < db->n; i++)
		user_free(&db->users[i]);
	for (size_t i = 0; i < db->nextra; i++)
		user_free(&db->extra[i]);
	free(db->users);
	free(db->extra);
	free(db);
}

size_t auth_db_users(const struct auth_db *db)
{
	return db->n;
}

int auth_db_has_sender_map(const struct auth_db *db)
{
	return db->have_map;
}

static char *trim(char *s)
{
	while (isspace((unsigned char)*s))
		s++;
	size_t n = strlen(s);
	while (n && isspace((unsigned char)s[n - 1]))
		s[--n] = 0;
	return s;
}

/* Read lines of path; fn returns 0 or -1 (with err set).  Comments (#)
 * and blank lines skipped. */
static int each_line(const char *path, int (*fn)(struct auth_db *, char *, const char *, int, char *, size_t),
		     struct auth_db *db, char *err, size_t errlen)
{
	FILE *f = fopen(path, "r");
	if (!f) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	char line[LINE_MAX_LEN];
	int lineno = 0, rc = 0;
	while (!rc && fgets(line, sizeof(line), f)) {
		lineno++;
		size_t n = strlen(line);
		if (n == sizeof(line) - 1 && line[n - 1] != '\n') {
			snprintf(err, errlen, "%s:%d: line too long", path, lineno);
			rc = -1;
			break;
		}
		char *t = trim(line);
		if (!*t || *t == '#')
			continue;
		rc = fn(db, t, path, lineno, err, errlen);
	}
	fclose(f);
	return rc;
}

static struct auth_user *find(struct auth_user *v, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(v[i].name, name) == 0)
			return &v[i];
	return NULL;
}

static int users_line(struct auth_db *db, char *line, const char *path,
		      int lineno, char *err, size_t errlen)
{
	char *colon = strchr(line, ':');
	if (!colon || colon == line || !colon[1]) {
		snprintf(err, errlen, "%s:%d: expected user:hash", path, lineno);
		return -1;
	}
	*colon = 0;
	char *name = trim(line), *hash = trim(colon + 1);
	/* A hash crypt_r cannot use would fail every login silently.
	 * crypt_checksalt only parses: loading costs no hashing, so a
	 * SIGHUP reload does not stall the loop. */
	if (hash[0] != '$' || strchr(hash, ':') || strchr(hash, ' ') ||
	    crypt_checksalt(hash) != CRYPT_SALT_OK) {
		snprintf(err, errlen, "%s:%d: %s: not a crypt(3) hash (make one with mkpasswd)",
			 path, lineno, name);
		return -1;
	}
	if (find(db->users, db->n, name)) {
		snprintf(err, errlen, "%s:%d: duplicate user %s", path, lineno, name);
		return -1;
	}
	struct auth_user *nu = realloc(db->users, (db->n + 1) * sizeof(*nu));
	if (!nu)
		goto oom;
	db->users = nu;
	memset(&nu[db->n], 0, sizeof(*nu));
	nu[db->n].name = strdup(name);
	nu[db->n].hash = strdup(hash);
	db->n++;
	if (!nu[db->n - 1].name || !nu[db->n - 1].hash)
		goto oom;
	return 0;
oom:
	snprintf(err, errlen, "%s:%d: out of memory", path, lineno);
	return -1;
}

static int map_line(struct auth_db *db, char *line, const char *path,
		    int lineno, char *err, size_t errlen)
{
	char *colon = strchr(line, ':');
	if (!colon || colon == line) {
		snprintf(err, errlen, "%s:%d: expected \"user: address, @domain\"", path, lineno);
		return -1;
	}
	*colon = 0;
	char *name = trim(line);
	struct auth_user *u = find(db->users, db->n, name);
	if (!u)
		u = find(db->extra, db->nextra, name);
	if (!u) {
		struct auth_user *ne = realloc(db->extra, (db->nextra + 1) * sizeof(*ne));
		if (!ne)
			goto oom;
		db->extra = ne;
		u = &ne[db->nextra++];
		memset(u, 0, sizeof(*u));
		if (!(u->name = strdup(name)))
			goto oom;
	}
	u->in_map = 1;
	char *save, *tok = strtok_r(colon + 1, ", \t", &save);
	for (; tok; tok = strtok_r(NULL, ", \t", &save)) {
		if (!strchr(tok, '@')) {
			snprintf(err, errlen, "%s:%d: %s: expected address or @domain", path,
				 lineno, tok);
			return -1;
		}
		char **ns = realloc(u->senders, (u->nsenders + 1) * sizeof(*ns));
		if (!ns)
			goto oom;
		u->senders = ns;
		if (!(ns[u->nsenders] = strdup(tok)))
			goto oom;
		u->nsenders++;
	}
	return 0;
oom:
	snprintf(err, errlen, "%s:%d: out of memory", path, lineno);
	return -1;
}

int auth_db_load(struct auth_db **out, const char *users_file,
		 const char *sender_map_file, char *err, size_t errlen)
{
	struct auth_db *db = calloc(1, sizeof(*db));
	*out = NULL;
	if (!db) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	atomic_init(&db->refs, 1);
	if (each_line(users_file, users_line, db, err, errlen))
		goto fail;
	if (sender_map_file && *sender_map_file) {
		db->have_map = 1;
		if (each_line(sender_map_file, map_line, db, err, errlen))
			goto fail;
	}
	*out = db;
	return 0;
fail:
	auth_db_unref(db);
	return -1;
}

int auth_check(const struct auth_db *db, const char *user, const char *pass)
{
	const struct auth_user *u = find(db->users, db->n, user);
	/* An unknown user is hashed against a real user's setting (same
	 * method, same cost) and then refused: no timing tells users
	 * apart. */
	const char *hash = u ? u->hash : db->n ? db->users[0].hash : NULL;
	if (!hash)
		return 0;
	struct crypt_data *cd = calloc(1, sizeof(*cd));
	if (!cd)
		return 0;
	const char *h = crypt_r(pass, hash, cd);
	size_t hl = strlen(hash);
	int ok = h && strlen(h) == hl && CRYPTO_memcmp(h, hash, hl) == 0 && u != NULL;
	OPENSSL_cleanse(cd, sizeof(*cd));
	free(cd);
	return ok;
}

int auth_sender_allowed(const struct auth_db *db, const char *user,
			const char *sender)
{
	if (!db->have_map || !*sender)
		return 1;
	const struct auth_user *u = find(db->users, db->n, user);
	if (!u || !u->in_map)
		u = find(db->extra, db->nextra, user);
	if (!u || !u->in_map)
		return 0;
	const char *at = strrchr(sender, '@');
	for (size_t i = 0; i < u->nsenders; i++) {
		const char *e = u->senders[i];
		if (e[0] == '@' ? at && strcasecmp(at + 1, e + 1) == 0
				: strcasecmp(sender, e) == 0)
			return 1;
	}
	return 0;
}
