/*
 * test_auth.c - credentials file, sender ownership map, AUTH throttle.
 */
#include <crypt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "auth.h"
#include "auth_throttle.h"
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

static void key_of(unsigned n, unsigned char k[16])
{
	memset(k, 0, 16);
	memcpy(k, &n, sizeof(n));
	k[15] = 0xee;
}

/* A full table evicts the oldest counting entries, never a blocked one:
 * a flood of other addresses must not unblock anybody. */
static void test_eviction(void)
{
	struct auth_throttle_policy p = auth_throttle_addr_policy;
	p.max_entries = 4;
	struct auth_throttle *t = auth_throttle_new(&p);
	unsigned char k1[16], x[16], k[16];
	key_of(1, k1);
	key_of(2, x);
	for (int i = 0; i < AUTH_FAIL_LIMIT; i++)
		auth_throttle_fail(t, k1, 1000);
	ok(auth_throttle_blocked(t, k1, 1000), "small table: k1 blocked");
	int bounded = 1;
	for (unsigned i = 0; i < 1000; i++) {
		key_of(100 + i, k);
		auth_throttle_fail(t, k, 1001 + i / 10);
		if (auth_throttle_size(t) > 4)
			bounded = 0;
	}
	ok(bounded, "1000 other addresses: the table stays at 4 entries");
	ok(auth_throttle_blocked(t, k1, 1100),
	   "k1 is still blocked after a flood of other addresses");
	ok(auth_throttle_known(t, k1, 1100), "k1 is still known");

	/* An address that keeps failing is tracked among the flood. */
	long r = 0;
	int n = 0;
	for (unsigned i = 0; i < 2 * AUTH_FAIL_LIMIT && r >= 0; i++) {
		r = auth_throttle_fail(t, x, 1200);
		n++;
		key_of(5000 + 2 * i, k);
		auth_throttle_fail(t, k, 1200);
		key_of(5001 + 2 * i, k);
		auth_throttle_fail(t, k, 1200);
	}
	is_int(n, AUTH_FAIL_LIMIT, "an address failing among others is blocked at its 10th failure");

	/* Fill every slot with blocked addresses: a new one cannot be
	 * tracked and is refused rather than let through. */
	for (unsigned j = 0; j < 2; j++) {
		key_of(9000 + j, k);
		for (int i = 0; i < AUTH_FAIL_LIMIT; i++)
			auth_throttle_fail(t, k, 1300);
	}
	key_of(9002, k);
	ok(auth_throttle_blocked(t, k1, 1300) && auth_throttle_blocked(t, x, 1300),
	   "four blocked entries fill the table");
	ok(auth_throttle_blocked(t, k, 1300),
	   "table full of blocked entries: an address it cannot track counts as blocked");
	is_int(auth_throttle_fail(t, k, 1300), -1,
	       "table full of blocked entries: a new failure is refused, not let through");
	is_int(auth_throttle_size(t), 4, "... and nothing blocked was evicted for it");
	ok(!auth_throttle_blocked(t, k1, 1000 + AUTH_BLOCK_TIME),
	   "k1's block ends on time");
	is_int(auth_throttle_fail(t, k, 1000 + AUTH_BLOCK_TIME + 1), 100,
	       "once a block has ended its slot is reused");
	key_of(9003, k);
	ok(!auth_throttle_blocked(t, k, 1000 + AUTH_BLOCK_TIME + 1),
	   "with room again, an untracked address is not blocked");
	auth_throttle_free(t);
}

/* Per user name, across addresses; blocked at most block_time per
 * block_spacing, so an attacker cannot lock a user out for good. */
static void test_user_throttle(void)
{
	struct auth_throttle *t = auth_throttle_new(&auth_throttle_user_policy);
	unsigned char alice[16], bob[16], alice2[16];
	auth_throttle_user_key("alice", alice);
	auth_throttle_user_key("bob", bob);
	auth_throttle_user_key("alice", alice2);
	ok(memcmp(alice, alice2, 16) == 0 && memcmp(alice, bob, 16) != 0,
	   "user keys: one per name");
	long r = 0;
	int n = 0;
	while (r >= 0 && n < 100) {
		r = auth_throttle_fail(t, alice, 10000);
		n++;
	}
	is_int(n, AUTH_USER_FAIL_LIMIT, "user name refused after AUTH_USER_FAIL_LIMIT failures");
	ok(auth_throttle_blocked(t, alice, 10000 + AUTH_USER_BLOCK_TIME - 1), "... for a while");
	ok(!auth_throttle_blocked(t, bob, 10000), "other user names unaffected");
	time_t t2 = 10000 + AUTH_USER_BLOCK_TIME;
	ok(!auth_throttle_blocked(t, alice, t2), "the block ends after AUTH_USER_BLOCK_TIME");
	int refused = 0;
	for (int i = 0; i < 3 * AUTH_USER_FAIL_LIMIT; i++)
		if (auth_throttle_fail(t, alice, t2 + 1) < 0)
			refused++;
	is_int(refused, 0, "cap: no new block before AUTH_USER_BLOCK_SPACING");
	is_int(auth_throttle_fail(t, alice, t2 + 2), auth_throttle_user_policy.max_ms,
	       "cap: failures are still delayed the most");
	ok(!auth_throttle_blocked(t, alice, t2 + 2), "cap: the user can still log in");
	time_t t3 = 10000 + AUTH_USER_BLOCK_SPACING;
	r = 0;
	n = 0;
	while (r >= 0 && n < 100) {
		r = auth_throttle_fail(t, alice, t3 + n / 10);
		n++;
	}
	ok(r < 0 && n <= AUTH_USER_FAIL_LIMIT,
	   "after the spacing a new block may start (%d failures)", n);
	auth_throttle_free(t);
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

	struct auth_throttle *t = auth_throttle_new(&auth_throttle_addr_policy);
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
	test_eviction();
	test_user_throttle();
	free(y);
	free(s512);
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd))
		diag("cleanup failed");
	return done_testing();
}
