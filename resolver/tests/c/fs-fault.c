/*
 * LD_PRELOAD shim for resolver/tests/cli.rs: stat(2) of the one path in
 * $FAULT_STAT_PATH, and open(2) of the one path in $FAULT_OPEN_PATH, fail
 * with the errno in $FAULT_ERRNO (a number); every other call goes to the
 * C library. It stands in for a home directory on an NFS server that does
 * not answer (EIO, ESTALE), which a test cannot otherwise produce.
 *
 *   cc -Wall -Wextra -shared -fPIC -o fs-fault.so fs-fault.c -ldl
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static int faulty(const char *which, const char *path)
{
  const char *p = getenv(which);
  const char *e = getenv("FAULT_ERRNO");
  if (!p || !e || !path || strcmp(p, path) != 0) return 0;
  errno = atoi(e);
  return 1;
}

int stat(const char *path, struct stat *st)
{
  static int (*real)(const char *, struct stat *);
  if (faulty("FAULT_STAT_PATH", path)) return -1;
  if (!real) *(void **)&real = dlsym(RTLD_NEXT, "stat");
  if (!real) { errno = ENOSYS; return -1; }
  return real(path, st);
}

int stat64(const char *path, struct stat64 *st)
{
  static int (*real)(const char *, struct stat64 *);
  if (faulty("FAULT_STAT_PATH", path)) return -1;
  if (!real) *(void **)&real = dlsym(RTLD_NEXT, "stat64");
  if (!real) { errno = ENOSYS; return -1; }
  return real(path, st);
}

/* the mode argument is there only when a file may be created */
static mode_t mode_of(int flags, va_list ap)
{
  if (flags & (O_CREAT | O_TMPFILE)) return (mode_t) va_arg(ap, int);
  return 0;
}

/* open(2) or open64(2), the C library's `sym`, unless the path is faulty */
static int open_as(const char *sym, int (**real)(const char *, int, ...),
                   const char *path, int flags, mode_t mode)
{
  if (faulty("FAULT_OPEN_PATH", path)) return -1;
  if (!*real) *(void **)real = dlsym(RTLD_NEXT, sym);
  if (!*real) { errno = ENOSYS; return -1; }
  return (*real)(path, flags, mode);
}

int open(const char *path, int flags, ...)
{
  static int (*real)(const char *, int, ...);
  va_list ap;
  mode_t mode;
  va_start(ap, flags);
  mode = mode_of(flags, ap);
  va_end(ap);
  return open_as("open", &real, path, flags, mode);
}

int open64(const char *path, int flags, ...)
{
  static int (*real)(const char *, int, ...);
  va_list ap;
  mode_t mode;
  va_start(ap, flags);
  mode = mode_of(flags, ap);
  va_end(ap);
  return open_as("open64", &real, path, flags, mode);
}
