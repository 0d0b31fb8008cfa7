/*
 * rrt-errno-shim: an LD_PRELOAD library for the realrcptto tests and the
 * differential suite that injects the errors a test cannot provoke for
 * real:
 *   getpwnam(NAME) and getpwnam_r(NAME, ...) fail with ETXTBSY when NAME
 *   equals $RRT_SHIM_TXTBSY (the C core calls getpwnam, the Rust resolver
 *   getpwnam_r);
 *   stat(PATH) and stat64(PATH) fail with EIO when
 *   - $RRT_SHIM_EIO is set: PATH equals it exactly;
 *   - otherwise: PATH contains "/EIO-" or "/eio-" (a component whose name
 *     starts with EIO-, in either case).
 * glibc >= 2.33 exports stat and stat64 as real functions, which gcc-built
 * C and Rust's libc::stat call directly.
 * Everything else goes to the next definition (nss_wrapper, libc).
 * Build: cc -shared -fPIC -o rrt-errno-shim.so rrt-errno-shim.c -ldl
 */
#define _GNU_SOURCE
#define _LARGEFILE64_SOURCE
#include <sys/types.h>
#include <sys/stat.h>
#include <dlfcn.h>
#include <errno.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>

typedef struct passwd *(*getpwnam_fn)(const char *);
typedef int (*getpwnam_r_fn)(const char *, struct passwd *, char *, size_t,
                             struct passwd **);
typedef int (*stat_fn)(const char *, struct stat *);
typedef int (*stat64_fn)(const char *, struct stat64 *);

static int txtbsy(const char *name)
{
  const char *t = getenv("RRT_SHIM_TXTBSY");
  return t && name && !strcmp(t, name);
}

static int eio(const char *path)
{
  const char *e = getenv("RRT_SHIM_EIO");
  if (!path) return 0;
  if (e) return !strcmp(e, path);
  return strstr(path, "/EIO-") || strstr(path, "/eio-");
}

struct passwd *getpwnam(const char *name)
{
  getpwnam_fn real;
  if (txtbsy(name)) { errno = ETXTBSY; return 0; }
  *(void **) (&real) = dlsym(RTLD_NEXT, "getpwnam");
  if (!real) { errno = ENOSYS; return 0; }
  return real(name);
}

int getpwnam_r(const char *name, struct passwd *pw, char *buf, size_t len,
               struct passwd **result)
{
  getpwnam_r_fn real;
  if (txtbsy(name)) {
    *result = 0;
    errno = ETXTBSY;
    return ETXTBSY;
  }
  *(void **) (&real) = dlsym(RTLD_NEXT, "getpwnam_r");
  if (!real) { *result = 0; return ENOSYS; }
  return real(name, pw, buf, len, result);
}

int stat(const char *path, struct stat *st)
{
  stat_fn real;
  if (eio(path)) { errno = EIO; return -1; }
  *(void **) (&real) = dlsym(RTLD_NEXT, "stat");
  if (!real) { errno = ENOSYS; return -1; }
  return real(path, st);
}

int stat64(const char *path, struct stat64 *st)
{
  stat64_fn real;
  if (eio(path)) { errno = EIO; return -1; }
  *(void **) (&real) = dlsym(RTLD_NEXT, "stat64");
  if (!real) { errno = ENOSYS; return -1; }
  return real(path, st);
}
