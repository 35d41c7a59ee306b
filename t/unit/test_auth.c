/*
 * test_auth.c - credentials file, sender ownership map, AUTH throttle.
 */
#include <crypt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "auth.h"
#include "t/tap.h"

static char dir[] = "/tmp/relayd-test-auth.XXXXXX";

static const char *write_file(const char *name, const char *text)
{
	static char path[4][300];
	static int k;
	char *p = path[k++ % 4];
	snprintf(p, 300, "%s/%s", dir, name);
	FILE *f = fopen(p, "w");
	fputs(text, f);
	fclose(f);
	return p;
}

static char *hash(const char *prefix, const char *pw)
{
	struct crypt_data cd;
	memset(&cd, 0, sizeof(cd));
	char salt[CRYPT_GENSALT_OUTPUT_SIZE];
	if (!crypt_gensalt_rn(prefix, 0, NULL, 0, salt, sizeof(salt)))
		return NULL;
	const char *h = crypt_r(pw, salt, &cd);
	return h ? strdup(h) : NULL;
}

int main(void)
{
	if (!mkdtemp(dir))
		return 1;
	char *y = hash("$y$", "secret"), *s512 = hash("$6$", "other");
	ok(y && s512, "made yescrypt and sha512-crypt hashes");
	char users[1024];
	snprintf(users, sizeof(users), "# users\nalice:%s\n\nbob : %s\n", y, s512);
	const char *uf = write_file("passwd", users);
	const char *mf = write_file("map",
				    "alice: alice@example.org, @sales.example\n"
				    "carol: carol@example.org\n");
	struct auth_db *db;
	char err[512];
	is_int(auth_db_load(&db, uf, mf, err, sizeof(err)), 0, "load users and map");
	is_int(auth_db_users(db), 2, "two users");
	ok(auth_check(db, "alice", "secret"), "yescrypt: right password");
	ok(!auth_check(db, "alice", "Secret"), "yescrypt: wrong password");
	ok(auth_check(db, "bob", "other"), "sha512-crypt: right password");
	ok(!auth_check(db, "bob", ""), "empty password refused");
	ok(!auth_check(db, "mallory", "secret"), "unknown user refused");
	ok(!auth_check(db, "alice\n", "secret"), "user name must match exactly");

	ok(auth_sender_allowed(db, "alice", "alice@example.org"), "mapped address");
	ok(auth_sender_allowed(db, "alice", "ALICE@example.ORG"), "case-insensitive");
	ok(auth_sender_allowed(db, "alice", "anyone@sales.example"), "mapped domain");
	ok(!auth_sender_allowed(db, "alice", "anyone@sub.sales.example"), "subdomain is not the domain");
	ok(!auth_sender_allowed(db, "alice", "bob@example.org"), "unmapped address refused");
	ok(!auth_sender_allowed(db, "bob", "bob@example.org"), "user absent from the map may not send");
	ok(auth_sender_allowed(db, "bob", ""), "null sender always allowed");
	ok(auth_db_has_sender_map(db), "map reported");
	auth_db_unref(db);

	is_int(auth_db_load(&db, uf, NULL, err, sizeof(err)), 0, "load without map");
	ok(auth_sender_allowed(db, "bob", "anything@example.net"), "no map: any sender");
	ok(!auth_db_has_sender_map(db), "no map reported");
	auth_db_unref(db);

	const char *bad = write_file("bad", "alice:$y$x\nalice:plaintext\n");
	is_int(auth_db_load(&db, bad, NULL, err, sizeof(err)), -1, "plain-text password refused");
	ok(strstr(err, "bad:2:") != NULL, "error names FILE:LINE (%s)", err);
	const char *unk = write_file("unk", "bob:$9$notamethod$abc\n");
	is_int(auth_db_load(&db, unk, NULL, err, sizeof(err)), -1,
	       "hash method libcrypt does not know: refused at load");
	ok(strstr(err, "unk:1:") != NULL, "... naming FILE:LINE (%s)", err);
	const char *dup = write_file("dup", "a:$6$x$y\na:$6$x$z\n");
	is_int(auth_db_load(&db, dup, NULL, err, sizeof(err)), -1, "duplicate user refused");
	ok(strstr(err, "dup:2: duplicate") != NULL, "duplicate named (%s)", err);
	is_int(auth_db_load(&db, "/nonexistent/passwd", NULL, err, sizeof(err)), -1,
	       "missing file refused");
	const char *badmap = write_file("badmap", "alice alice@example.org\n");
	is_int(auth_db_load(&db, uf, badmap, err, sizeof(err)), -1, "map line without colon");

	struct auth_throttle *t = auth_throttle_new();
	unsigned char k1[16] = { 1 }, k2[16] = { 2 };
	long last = 0;
	int grows = 1;
	for (int i = 1; i < AUTH_FAIL_LIMIT; i++) {
		long ms = auth_throttle_fail(t, k1, 1000);
		if (ms <= last && ms != 2000)
			grows = 0;
		last = ms;
	}
	ok(grows && last > 0, "delay grows with failures (last %ld ms)", last);
	ok(!auth_throttle_blocked(t, k1, 1000), "not blocked below the limit");
	is_int(auth_throttle_fail(t, k1, 1000), -1, "limit reached: refused");
	ok(auth_throttle_blocked(t, k1, 1001), "blocked afterwards");
	ok(!auth_throttle_blocked(t, k2, 1001), "other addresses unaffected");
	ok(!auth_throttle_blocked(t, k1, 1000 + AUTH_BLOCK_TIME + 1), "block expires");
	auth_throttle_fail(t, k2, 5000);
	is_int(auth_throttle_fail(t, k2, 5000), 200, "failures add up per address");
	is_int(auth_throttle_fail(t, k2, 5000 + AUTH_FAIL_WINDOW + 1), 100,
	       "failures expire after the window");
	auth_throttle_free(t);
	free(y);
	free(s512);
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd))
		diag("cleanup failed");
	return done_testing();
}
