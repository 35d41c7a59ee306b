/*
 * queue_env.c - look at a queue's LMDB environment from outside, for
 * t/integration/queue_faults.py.
 *
 *   queue_env flags DIR
 *	Open the queue the way relayd does (queue_open, writable, default
 *	flags) and print the environment's flags as names, one line:
 *	"flags NOTLS ..." - the test fails on NOSYNC, NOMETASYNC, MAPASYNC.
 *   queue_env hold DIR
 *	Open the environment read-only with bare LMDB calls, begin a read
 *	transaction, print "holding PID" and wait to be killed: a tool killed
 *	in the middle of a read.
 *   queue_env readers DIR
 *	Print the pid of every used reader slot, one per line, without
 *	clearing stale ones (bare LMDB calls: queue_open would clear them).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "queue_int.h"

static const struct { unsigned flag; const char *name; } names[] = {
	{ MDB_FIXEDMAP, "FIXEDMAP" }, { MDB_NOSUBDIR, "NOSUBDIR" },
	{ MDB_NOSYNC, "NOSYNC" }, { MDB_RDONLY, "RDONLY" },
	{ MDB_NOMETASYNC, "NOMETASYNC" }, { MDB_WRITEMAP, "WRITEMAP" },
	{ MDB_MAPASYNC, "MAPASYNC" }, { MDB_NOTLS, "NOTLS" },
	{ MDB_NOLOCK, "NOLOCK" }, { MDB_NORDAHEAD, "NORDAHEAD" },
	{ MDB_NOMEMINIT, "NOMEMINIT" },
};

static int print_flags(const char *dir)
{
	struct queue *q;
	int rc = queue_open(&q, dir, 0, 0);
	if (rc) {
		fprintf(stderr, "queue_open %s: %s\n", dir, queue_strerror(rc));
		return 1;
	}
	unsigned f = 0;
	mdb_env_get_flags(q->env, &f);
	printf("flags");
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (f & names[i].flag)
			printf(" %s", names[i].name);
	printf("\n");
	queue_close(q);
	return 0;
}

static MDB_env *raw_open(const char *dir)
{
	MDB_env *env;
	if (mdb_env_create(&env) || mdb_env_set_maxdbs(env, 8) ||
	    mdb_env_set_maxreaders(env, 256) ||
	    mdb_env_open(env, dir, MDB_RDONLY | MDB_NOTLS, 0600)) {
		fprintf(stderr, "cannot open %s\n", dir);
		exit(1);
	}
	return env;
}

static int hold(const char *dir)
{
	MDB_env *env = raw_open(dir);
	MDB_txn *txn;
	if (mdb_txn_begin(env, NULL, MDB_RDONLY, &txn)) {
		fprintf(stderr, "cannot begin a read transaction\n");
		return 1;
	}
	printf("holding %ld\n", (long)getpid());
	fflush(stdout);
	for (int i = 0; i < 600; i++)
		sleep(1);
	return 0;
}

/* mdb_reader_list's lines are "pid thread txnid" after a header. */
static int reader_line(const char *msg, void *ctx)
{
	long pid;
	if (sscanf(msg, " %ld", &pid) == 1)
		printf("%ld\n", pid);
	return 0;
}

static int readers(const char *dir)
{
	MDB_env *env = raw_open(dir);
	mdb_reader_list(env, reader_line, NULL);
	mdb_env_close(env);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: queue_env flags|hold|readers DIR\n");
		return 2;
	}
	if (!strcmp(argv[1], "flags"))
		return print_flags(argv[2]);
	if (!strcmp(argv[1], "hold"))
		return hold(argv[2]);
	if (!strcmp(argv[1], "readers"))
		return readers(argv[2]);
	fprintf(stderr, "unknown command %s\n", argv[1]);
	return 2;
}
