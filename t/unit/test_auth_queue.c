/*
 * test_auth_queue.c - password checks on the thread pool: bounded in
 * flight and waiting, clients take turns, suspects do not delay a clean
 * client's login.  Real crypt hashes, a real libuv loop.
 */
#include <crypt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>
#include "auth.h"
#include "auth_queue.h"
#include "t/tap.h"

static char dir[] = "/tmp/relayd-test-authq.XXXXXX";
static struct auth_queue *q;
static unsigned max_seen;
static char order[64];
static size_t norder;

struct tag {
	char name;
	int ok;
};

static void done(void *arg, int ok)
{
	struct tag *t = arg;
	t->ok = ok;
	if (norder < sizeof(order) - 1)
		order[norder++] = t->name;
	unsigned inflight;
	size_t waiting;
	auth_queue_stats(q, &inflight, &waiting);
	if (inflight > max_seen)
		max_seen = inflight;
}

static void key_of(unsigned char k[16], unsigned char n)
{
	memset(k, 0, 16);
	k[0] = 0x20;
	k[15] = n;
}

static int submit(struct auth_db *db, unsigned char client, int suspect,
		  const char *pass, struct tag *t)
{
	unsigned char k[16];
	key_of(k, client);
	return auth_queue_check(q, db, k, suspect, "alice", pass, done, t);
}

static struct auth_db *load_db(void)
{
	struct crypt_data cd;
	memset(&cd, 0, sizeof(cd));
	/* Slow enough that checks overlap with submissions. */
	const char *h = crypt_r("secret", "$6$rounds=20000$abcdefgh", &cd);
	char path[300];
	snprintf(path, sizeof(path), "%s/passwd", dir);
	FILE *f = fopen(path, "w");
	if (!f || !h)
		return NULL;
	fprintf(f, "alice:%s\n", h);
	fclose(f);
	struct auth_db *db;
	char err[256];
	return auth_db_load(&db, path, NULL, err, sizeof(err)) ? NULL : db;
}

int main(void)
{
	if (!mkdtemp(dir))
		return 1;
	struct auth_db *db = load_db();
	ok(db != NULL, "loaded a sha512-crypt user");
	uv_loop_t *loop = uv_default_loop();

	/* One check in flight; a flood of 4 from suspect client 1, then a
	 * clean client 2 with the right password. */
	q = auth_queue_new(loop, 1, 16, 4);
	struct tag t[32];
	memset(t, 0, sizeof(t));
	int rc = 0;
	for (int i = 0; i < 5; i++) {
		t[i].name = 'f';
		rc |= submit(db, 1, 1, "wrong", &t[i]);
	}
	t[5].name = 'x';
	is_int(submit(db, 1, 1, "wrong", &t[5]), AUTH_QUEUE_BUSY,
	       "one in flight and 4 waiting: a client's next check is refused (max_per_client 4)");
	t[6].name = 'v';
	rc |= submit(db, 2, 0, "secret", &t[6]);
	is_int(rc, 0, "six checks queued");
	uv_run(loop, UV_RUN_DEFAULT);
	order[norder] = 0;
	ok(strchr(order, 'v') && strchr(order, 'v') - order <= 1,
	   "the clean client's login is checked first or second, not behind the flood (%s)", order);
	ok(t[6].ok, "... and succeeds");
	ok(!t[0].ok && !t[4].ok, "the flood's checks fail");
	is_int(max_seen, 1, "never more than one check in flight");

	/* Round robin among clean clients: client 3 has 6 waiting, client 4
	 * one; 4 does not wait for all of 3's. */
	norder = 0;
	max_seen = 0;
	auth_queue_free(q);
	q = auth_queue_new(loop, 1, 16, 8);
	for (int i = 0; i < 6; i++) {
		t[i].name = 'a';
		submit(db, 3, 0, "wrong", &t[i]);
	}
	t[6].name = 'b';
	submit(db, 4, 0, "wrong", &t[6]);
	uv_run(loop, UV_RUN_DEFAULT);
	order[norder] = 0;
	ok(strchr(order, 'b') && strchr(order, 'b') - order <= 2,
	   "clients take turns (%s)", order);

	/* Suspects still progress under a flow of clean clients. */
	norder = 0;
	auth_queue_free(q);
	q = auth_queue_new(loop, 1, 16, 8);
	for (int i = 0; i < 12; i++) {
		t[i].name = i == 2 ? 's' : 'c';
		submit(db, (unsigned char)(10 + i), i == 2, "wrong", &t[i]);
	}
	uv_run(loop, UV_RUN_DEFAULT);
	order[norder] = 0;
	ok(strchr(order, 's') && strchr(order, 's') - order <= 4 &&
	   strchr(order, 's') - order >= 2,
	   "a suspect gets a turn within the first 5 among 11 clean clients (%s)", order);

	/* The total bound. */
	auth_queue_free(q);
	q = auth_queue_new(loop, 1, 4, 8);
	int busy = 0, queued = 0;
	for (int i = 0; i < 10; i++) {
		t[i].name = 'z';
		rc = submit(db, (unsigned char)(100 + i), 0, "wrong", &t[i]);
		if (rc == AUTH_QUEUE_BUSY)
			busy++;
		else if (rc == 0)
			queued++;
	}
	is_int(queued, 5, "one in flight and max_waiting 4 queued");
	is_int(busy, 5, "the rest refused at once");
	uv_run(loop, UV_RUN_DEFAULT);
	auth_queue_free(q);
	auth_db_unref(db);
	uv_loop_close(loop);
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd))
		diag("cleanup failed");
	return done_testing();
}
