/*
 * rrt-errno-shim: an LD_PRELOAD library for the realrcptto tests that
 * injects the errors a test cannot provoke for real:
 *   getpwnam(NAME) fails with ETXTBSY when NAME equals $RRT_SHIM_TXTBSY;
 *   stat(PATH) fails with EIO when PATH contains "/EIO-" or "/eio-" (a
 *   component whose name starts with EIO-, in either case).
 * Everything else goes to the next definition (nss_wrapper, libc).
 * Build: cc -shared -fPIC -o rrt-errno-shim.so rrt-errno-shim.c -ldl
 */
#define _GNU_SOURCE
#include <sys/types.h>
#include <sys/stat.h>
#include <dlfcn.h>
#include <errno.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>

typedef struct passwd *(*getpwnam_fn)(const char *);
typedef int (*stat_fn)(const char *, struct stat *);

struct passwd *getpwnam(const char *name)
{
  const char *t = getenv("RRT_SHIM_TXTBSY");
  getpwnam_fn real;
  if (t && !strcmp(t, name)) { errno = ETXTBSY; return 0; }
  *(void **) (&real) = dlsym(RTLD_NEXT, "getpwnam");
  if (!real) { errno = ENOSYS; return 0; }
  return real(name);
}

int stat(const char *path, struct stat *st)
{
  stat_fn real;
  if (strstr(path, "/EIO-") || strstr(path, "/eio-")) { errno = EIO; return -1; }
  *(void **) (&real) = dlsym(RTLD_NEXT, "stat");
  if (!real) { errno = ENOSYS; return -1; }
  return real(path, st);
}
