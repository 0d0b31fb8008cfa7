/*
 * bench-cdb-lookup: what one users/cdb look-up costs when it is made the
 * way qmail-lspawn makes it for every local delivery: open users/cdb,
 * cdb_seek the "" record and read the wildcard characters, cdb_seek the
 * exact key "!LOCAL\0" and read its record, close.  cdb_seek is qmail's own
 * (lseek and read per step): this file is linked with cdb.a and open.a of
 * a pristine netqmail build.  Part of `cargo xtask bench rcpt`.
 *
 * usage: bench-cdb-lookup LOCAL COUNT   (in the qmail home)
 * Makes one untimed look-up, then COUNT timed ones, and prints
 *   "COUNT NANOSECONDS\n" (CPU time of this process)
 * Exit 111 with a message on stderr when users/cdb cannot be read or LOCAL
 * has no exact record (the benchmark would measure something else).
 */
#include <sys/types.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "uint32.h"

/* qmail's functions (old-style definitions in cdb_seek.c and
   open_read.c), declared here with prototypes */
extern int cdb_seek(int fd, char *key, unsigned int len, uint32 *dlen);
extern int cdb_bread(int fd, char *buf, int len);
extern int open_read(char *fn);

static char key[512];
static unsigned int keylen;
static char buf[4096];

static void die(const char *m)
{
  fprintf(stderr, "bench-cdb-lookup: %s\n", m);
  exit(111);
}

/* one look-up as qmail-lspawn's nughde_get makes it for an exact hit */
static void lookup(void)
{
  uint32 dlen;
  int fd = open_read("users/cdb");
  if (fd == -1) die("cannot open users/cdb");
  if (cdb_seek(fd, "", 0, &dlen) != 1) die("users/cdb has no \"\" record");
  if (dlen > sizeof buf) die("wildcard record too long");
  if (cdb_bread(fd, buf, (int) dlen) == -1) die("cannot read users/cdb");
  if (cdb_seek(fd, key, keylen, &dlen) != 1) die("no exact record for LOCAL");
  if (dlen > sizeof buf) die("record too long");
  if (cdb_bread(fd, buf, (int) dlen) == -1) die("cannot read users/cdb");
  close(fd);
}

int main(int argc, char **argv)
{
  struct timespec t0;
  struct timespec t1;
  unsigned long count;
  unsigned long i;
  size_t n;
  double ns;

  if (argc != 3) die("usage: bench-cdb-lookup LOCAL COUNT");
  n = strlen(argv[1]);
  if (n + 2 > sizeof key) die("LOCAL too long");
  key[0] = '!';
  for (i = 0; i < n; ++i) {
    char c = argv[1][i];
    key[i + 1] = (char) ((c >= 'A' && c <= 'Z') ? c + ('a' - 'A') : c);
  }
  key[n + 1] = 0;
  keylen = (unsigned int) (n + 2);
  count = strtoul(argv[2], 0, 10);
  lookup();
  if (clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t0) == -1) die("clock_gettime");
  for (i = 0; i < count; ++i) lookup();
  if (clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t1) == -1) die("clock_gettime");
  ns = (double) (t1.tv_sec - t0.tv_sec) * 1e9 + (double) (t1.tv_nsec - t0.tv_nsec);
  printf("%lu %.0f\n", count, ns);
  return 0;
}
