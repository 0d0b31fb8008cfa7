/*
 * LD_PRELOAD shim for resolver/tests/cli.rs: stat(2) of the one path in
 * $STAT_FAULT_PATH fails with the errno in $STAT_FAULT_ERRNO (a number);
 * every other call goes to the C library. It stands in for a home
 * directory on an NFS server that does not answer (EIO, ESTALE), which a
 * test cannot otherwise produce.
 *
 *   cc -Wall -Wextra -shared -fPIC -o stat-fault.so stat-fault.c -ldl
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static int faulty(const char *path)
{
  const char *p = getenv("STAT_FAULT_PATH");
  const char *e = getenv("STAT_FAULT_ERRNO");
  if (!p || !e || !path || strcmp(p, path) != 0) return 0;
  errno = atoi(e);
  return 1;
}

int stat(const char *path, struct stat *st)
{
  static int (*real)(const char *, struct stat *);
  if (faulty(path)) return -1;
  if (!real) *(void **)&real = dlsym(RTLD_NEXT, "stat");
  if (!real) { errno = ENOSYS; return -1; }
  return real(path, st);
}

int stat64(const char *path, struct stat64 *st)
{
  static int (*real)(const char *, struct stat64 *);
  if (faulty(path)) return -1;
  if (!real) *(void **)&real = dlsym(RTLD_NEXT, "stat64");
  if (!real) { errno = ENOSYS; return -1; }
  return real(path, st);
}
