/*
 * fuzz-realrcptto: a libFuzzer harness for the realrcptto core
 * (patches/c/realrcptto.c): control files, users/cdb, passwd, a file tree
 * and addresses, all from the fuzz input.
 *
 * Build (cargo xtask fuzz does this):
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all
 *     -Dgetpwnam=rrt_fuzz_getpwnam -Ipatches/c
 *     tests/c/fuzz-realrcptto.c patches/c/realrcptto.c
 * The -D makes the core's getpwnam calls go to the passwd section of the
 * input (no nss_wrapper, no real /etc/passwd).
 *
 * Input format (every byte string is a valid input):
 *   byte 0      conf-break byte (auto_break[0])
 *   byte 1      flags: bits 0-4 control/me, envnoathost, locals,
 *               percenthack, virtualdomains exist; bit 5 users/cdb exists;
 *               bit 6 users/cdb is a directory; bit 7 QMAILRRTDENYALL=1
 *   then eight sections, each a 2-byte big-endian length and that many
 *   bytes (cut short at the end of the input): the five control files,
 *   the users/cdb image, the passwd text, the file tree;
 *   the rest: addresses, one per '\n'-ended line (at most 64), all in one
 *   transaction; then a second transaction judges the first address again
 *   and must come to the same verdict (users/cdb stays open between
 *   transactions; realrcptto_free at the end of each input closes it).
 *
 * passwd: lines NAME:PW:UID:GID:GECOS:DIR:SHELL (getpwnam returns the first
 * line whose NAME matches); a line "!NAME" makes getpwnam(NAME) fail with
 * ETXTBSY.
 * tree: lines "KIND MODE UID GID PATH" (KIND d, f, p or l, MODE octal; for
 * l, PATH is followed by a NUL and the link target). PATH is relative to
 * the scratch root; components "." and ".." and absolute paths are
 * refused, and nothing is created through a symbolic link.
 *
 * The harness makes one scratch directory ($TMPDIR/rrt-fuzz.XXXXXX,
 * removed at exit) at start-up, makes it the
 * working directory, and rebuilds the world in it only when the part of
 * the input before the addresses changes. Absolute names in the input
 * reach the scratch root as /proc/self/cwd (Linux): the corpus writer
 * (difftest corpus) puts scenario homes there, e.g.
 * /proc/self/cwd/home/joe. The qmail home is SCRATCH/qmail, the alias
 * user "alias", auto_patrn 002. With RRT_FUZZ_TRACE=1 in the environment
 * every verdict is printed on stdout ("VERDICT WHY: ADDRESS", VERDICT accept, reject,
 * tempfail-nomem, tempfail-cdb or tempfail-sys). Relative paths on the command line
 * (inputs, corpus directories, -artifact_prefix and a few other flags)
 * are made absolute before libFuzzer sees them, and crash files go to the
 * starting directory by default.
 */
#define _GNU_SOURCE
#include <sys/types.h>
#include <sys/stat.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pwd.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "realrcptto.h"

#define MAXADDRS 64

static char scratch[4096];
static char qhome[128];
static int isroot;
static int trace; /* RRT_FUZZ_TRACE=1: print each verdict on stdout */

/* the world part of the last input, to skip rebuilding an unchanged one */
static unsigned char *lastworld;
static size_t lastworldlen;
static int haveworld;

/* the passwd section of the current input */
static const char *pwtext;
static size_t pwlen;

static void fatal(const char *what)
{
  fprintf(stderr, "fuzz-realrcptto: %s: %s\n", what, strerror(errno));
  abort();
}

/* ------------------------------------------------------------------ */
/* getpwnam over the passwd section                                     */

static struct passwd pwent;
static char *pwbuf;
static size_t pwbufa;

struct passwd *rrt_fuzz_getpwnam(const char *name);

static unsigned long field_ulong(const char *s, size_t n)
{
  unsigned long u = 0;
  size_t i;
  for (i = 0; i < n && s[i] >= '0' && s[i] <= '9'; ++i)
    u = u * 10 + (unsigned long) (s[i] - '0');
  return u;
}

struct passwd *rrt_fuzz_getpwnam(const char *name)
{
  size_t pos = 0;
  size_t nlen = strlen(name);
  while (pos < pwlen) {
    const char *l = pwtext + pos;
    size_t end = pos;
    size_t n;
    size_t f[8];
    int nf = 0;
    size_t i;
    while (end < pwlen && pwtext[end] != '\n') ++end;
    n = end - pos;
    pos = end + 1;
    if (n > 0 && l[0] == '!') {
      if (n - 1 == nlen && !memcmp(l + 1, name, nlen)) {
        errno = ETXTBSY;
        return 0;
      }
      continue;
    }
    /* field starts f[0..6], f[7] = end + 1 */
    f[nf++] = 0;
    for (i = 0; i < n && nf < 7; ++i)
      if (l[i] == ':') f[nf++] = i + 1;
    if (nf < 7) continue;
    f[7] = n + 1;
    if (f[1] - 1 != nlen || memcmp(l, name, nlen)) continue;
    if (pwbufa < n + 8) {
      char *t = (char *) realloc(pwbuf, n + 8);
      if (!t) { errno = ENOMEM; return 0; }
      pwbuf = t;
      pwbufa = n + 8;
    }
    memcpy(pwbuf, l, n);
    pwbuf[n] = 0;
    for (i = 1; i < 7; ++i) pwbuf[f[i] - 1] = 0;
    /* a NUL inside a field ends it, as it would for getpwnam's callers */
    pwent.pw_name = pwbuf + f[0];
    pwent.pw_passwd = pwbuf + f[1];
    pwent.pw_uid = (uid_t) field_ulong(l + f[2], f[3] - 1 - f[2]);
    pwent.pw_gid = (gid_t) field_ulong(l + f[3], f[4] - 1 - f[3]);
    pwent.pw_gecos = pwbuf + f[4];
    pwent.pw_dir = pwbuf + f[5];
    pwent.pw_shell = pwbuf + f[6];
    return &pwent;
  }
  return 0;
}

/* ------------------------------------------------------------------ */
/* the world                                                            */

static int rm_one(const char *p, const struct stat *st, int type, struct FTW *ftw)
{
  (void) st;
  if (ftw->level == 0) return 0;
  if (type == FTW_DP || type == FTW_D) return rmdir(p) == -1 ? 1 : 0;
  return unlink(p) == -1 ? 1 : 0;
}

/* remove everything in the working directory; 0 or -1 */
static int clear_world(void)
{
  return nftw(".", rm_one, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT) == 0 ? 0 : -1;
}

/* write n bytes to the new file name (relative to the cwd) */
static void put_file(const char *name, const unsigned char *s, size_t n)
{
  int fd = open(name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0644);
  if (fd == -1) fatal(name);
  while (n > 0) {
    ssize_t w = write(fd, s, n);
    if (w <= 0) fatal(name);
    s += w;
    n -= (size_t) w;
  }
  if (close(fd) == -1) fatal(name);
}

/* set owner and mode through an fd that names the object itself */
static void own(int fd, unsigned mode, unsigned long uid, unsigned long gid, int isdir)
{
  if (isroot) (void) fchown(fd, (uid_t) uid, (gid_t) gid);
  if (!isroot && isdir) mode |= 0700; /* so that clear_world can remove it */
  (void) fchmod(fd, (mode_t) (mode & 07777));
}

/* create one tree node; paths that are unsafe or fail are skipped */
static void make_node(char kind, unsigned mode, unsigned long uid, unsigned long gid,
                      char *path, const char *target)
{
  int dfd;
  char *comp = path;
  char *slash;
  int fd;

  if (!*path || *path == '/') return;
  dfd = open(".", O_RDONLY | O_DIRECTORY);
  if (dfd == -1) fatal("open .");
  for (;;) {
    slash = strchr(comp, '/');
    if (slash) *slash = 0;
    if (!strcmp(comp, ".") || !strcmp(comp, "..")) break;
    if (!slash) {
      if (!*comp) break;
      switch (kind) {
        case 'd':
          if (mkdirat(dfd, comp, 0755) == -1 && errno != EEXIST) break;
          fd = openat(dfd, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
          if (fd != -1) { own(fd, mode, uid, gid, 1); close(fd); }
          break;
        case 'f':
          fd = openat(dfd, comp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0644);
          if (fd != -1) { own(fd, mode, uid, gid, 0); close(fd); }
          break;
        case 'p':
          if (mkfifoat(dfd, comp, 0644) == -1) break;
          fd = openat(dfd, comp, O_RDONLY | O_NONBLOCK | O_NOFOLLOW);
          if (fd != -1) { own(fd, mode, uid, gid, 0); close(fd); }
          break;
        case 'l':
          if (symlinkat(target, dfd, comp) == -1) break;
          if (isroot) (void) fchownat(dfd, comp, (uid_t) uid, (gid_t) gid, AT_SYMLINK_NOFOLLOW);
          break;
        default:
          break;
      }
      break;
    }
    if (*comp) {
      /* a parent: a real directory, made if missing */
      if (mkdirat(dfd, comp, 0755) == -1 && errno != EEXIST) break;
      fd = openat(dfd, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
      if (fd == -1) break;
      close(dfd);
      dfd = fd;
    }
    comp = slash + 1;
  }
  close(dfd);
}

static void make_tree(const unsigned char *s, size_t n)
{
  size_t pos = 0;
  char *line = (char *) malloc(n + 1);
  if (!line) fatal("malloc");
  while (pos < n) {
    size_t end = pos;
    size_t k;
    char *p;
    char *q;
    char kind;
    unsigned long mode, uid, gid;
    const char *target = "";
    while (end < n && s[end] != '\n') ++end;
    memcpy(line, s + pos, end - pos);
    line[end - pos] = 0;
    k = end - pos;
    pos = end + 1;
    if (k < 2 || line[1] != ' ') continue;
    kind = line[0];
    p = line + 2;
    mode = strtoul(p, &q, 8);
    if (q == p || *q != ' ') continue;
    p = q + 1;
    uid = strtoul(p, &q, 10);
    if (q == p || *q != ' ') continue;
    p = q + 1;
    gid = strtoul(p, &q, 10);
    if (q == p || *q != ' ') continue;
    p = q + 1;
    /* for symlinks the target follows the path after a NUL */
    if (kind == 'l') {
      size_t plen = strlen(p);
      if ((size_t) (p - line) + plen >= k) continue;
      target = p + plen + 1;
    }
    make_node(kind, (unsigned) mode, uid, gid, p, target);
  }
  free(line);
}

static const char *const ctlnames[5] = {
  "qmail/control/me", "qmail/control/envnoathost", "qmail/control/locals",
  "qmail/control/percenthack", "qmail/control/virtualdomains"
};

struct section { const unsigned char *s; size_t n; };

static void build_world(int flags, const struct section *sec)
{
  int i;
  if (clear_world() == -1) fatal("cannot empty the scratch directory");
  if (mkdir("qmail", 0755) == -1 || mkdir("qmail/control", 0755) == -1
      || mkdir("qmail/users", 0755) == -1 || mkdir("home", 0755) == -1)
    fatal("mkdir");
  for (i = 0; i < 5; ++i)
    if (flags & (1 << i)) put_file(ctlnames[i], sec[i].s, sec[i].n);
  if (flags & 0x40) {
    if (mkdir("qmail/users/cdb", 0755) == -1) fatal("mkdir cdb");
  } else if (flags & 0x20)
    put_file("qmail/users/cdb", sec[5].s, sec[5].n);
  make_tree(sec[7].s, sec[7].n);
}

/* at exit: empty the scratch directory and remove it */
static void remove_scratch(void)
{
  if (clear_world() == -1) return;
  if (chdir("/") == -1) return;
  (void) rmdir(scratch);
}

/* NAME made absolute against dir (a fresh string), or NAME itself */
static char *absolute(const char *dir, char *name)
{
  char *t;
  if (name[0] == '/') return name;
  t = (char *) malloc(strlen(dir) + strlen(name) + 2);
  if (!t) fatal("malloc");
  strcpy(t, dir);
  strcat(t, "/");
  strcat(t, name);
  return t;
}

static char **newargv; /* kept reachable, for LeakSanitizer */

/* The harness runs in its scratch directory, so libFuzzer's relative
   paths (inputs, corpus dirs, artifacts) are made absolute first, and
   crash files go to the directory it was started in unless
   -artifact_prefix says otherwise. */
static void absolute_args(int *argc, char ***argv)
{
  static const char *const flags[4] = {
    "-artifact_prefix=", "-exact_artifact_path=", "-dict=", "-merge_control_file="
  };
  char cwd[4096];
  int i;
  int k;
  int prefix = 0;
  if (!getcwd(cwd, sizeof cwd)) fatal("getcwd");
  newargv = (char **) calloc((size_t) *argc + 2, sizeof(char *));
  if (!newargv) fatal("calloc");
  for (i = 0; i < *argc; ++i) {
    char *a = (*argv)[i];
    newargv[i] = a;
    if (i == 0) continue;
    if (a[0] != '-') { newargv[i] = absolute(cwd, a); continue; }
    for (k = 0; k < 4; ++k) {
      size_t n = strlen(flags[k]);
      if (!strncmp(a, flags[k], n)) {
        char *v = absolute(cwd, a + n);
        char *t = (char *) malloc(n + strlen(v) + 1);
        if (!t) fatal("malloc");
        strcpy(t, flags[k]);
        strcat(t, v);
        newargv[i] = t;
        if (k == 0) prefix = 1;
      }
    }
  }
  if (!prefix) {
    char *t = (char *) malloc(strlen(cwd) + 20);
    if (!t) fatal("malloc");
    strcpy(t, "-artifact_prefix=");
    strcat(t, cwd);
    strcat(t, "/");
    newargv[(*argc)++] = t;
  }
  newargv[*argc] = 0;
  *argv = newargv;
}

int LLVMFuzzerInitialize(int *argc, char ***argv);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
  const char *base = getenv("TMPDIR");
  absolute_args(argc, argv);
  if (!base || !*base) base = "/tmp";
  if (strlen(base) + 20 > sizeof scratch) { errno = ENAMETOOLONG; fatal(base); }
  strcpy(scratch, base);
  strcat(scratch, "/rrt-fuzz.XXXXXX");
  if (!mkdtemp(scratch)) fatal("mkdtemp");
  if (atexit(remove_scratch) != 0) fatal("atexit");
  if (chmod(scratch, 0755) == -1) fatal("chmod");
  if (chdir(scratch) == -1) fatal("chdir");
  isroot = geteuid() == 0;
  trace = getenv("RRT_FUZZ_TRACE") && !strcmp(getenv("RRT_FUZZ_TRACE"), "1");
  /* the same directory, named as the input names it */
  strcpy(qhome, "/proc/self/cwd/qmail");
  unsetenv("PROTO");
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  struct section sec[8];
  size_t pos;
  int i;
  int flags;
  int brk;
  int r;
  int naddr = 0;
  int first = 0;
  size_t firstpos = 0;
  size_t firstend = 0;

  if (size < 2) return 0;
  brk = data[0];
  flags = data[1];
  pos = 2;
  for (i = 0; i < 8; ++i) {
    size_t n = 0;
    if (pos + 2 <= size) {
      n = ((size_t) data[pos] << 8) | data[pos + 1];
      pos += 2;
    } else
      pos = size;
    if (n > size - pos) n = size - pos;
    sec[i].s = data + pos;
    sec[i].n = n;
    pos += n;
  }
  pwtext = (const char *) sec[6].s;
  pwlen = sec[6].n;

  if (!haveworld || lastworldlen != pos || memcmp(lastworld, data, pos)) {
    unsigned char *t = (unsigned char *) realloc(lastworld, pos ? pos : 1);
    if (!t) fatal("realloc");
    lastworld = t;
    memcpy(lastworld, data, pos);
    lastworldlen = pos;
    haveworld = 1;
    build_world(flags, sec);
  }

  if (flags & 0x80) setenv("QMAILRRTDENYALL", "1", 1);
  else unsetenv("QMAILRRTDENYALL");
  r = realrcptto_init(qhome, brk, "alias", 002);
  if (r != 0) {
    if (r != RRT_ENOMEM && r != RRT_ECONTROL) abort();
    if (trace) printf("init %s\n", r == RRT_ENOMEM ? "tempfail-nomem" : "tempfail-control");
    realrcptto_free();
    return 0;
  }
  realrcptto_start();
  while (pos < size && naddr < MAXADDRS) {
    size_t end = pos;
    char *copy;
    const char *why;
    while (end < size && data[end] != '\n') ++end;
    /* an exact-size copy, so that ASan sees any read past the end */
    copy = (char *) malloc(end - pos ? end - pos : 1);
    if (!copy) fatal("malloc");
    memcpy(copy, data + pos, end - pos);
    r = realrcptto(copy, (unsigned long) (end - pos));
    free(copy);
    if (r != RRT_ACCEPT && r != RRT_REJECT && r != RRT_ENOMEM && r != RRT_ECDB
        && r != RRT_ESYS)
      abort();
    if (flags & 0x80) {
      if (r == RRT_REJECT) abort(); /* deny-all never rejects */
    } else if (realrcptto_deny())
      abort();
    why = realrcptto_why();
    if (!why || !*why) abort();
    if (trace) {
      printf("%s %s: ", r == RRT_ACCEPT ? "accept" : r == RRT_REJECT ? "reject"
             : r == RRT_ENOMEM ? "tempfail-nomem" : r == RRT_ECDB ? "tempfail-cdb"
             : "tempfail-sys", why);
      fwrite(data + pos, 1, end - pos, stdout);
      putchar('\n');
      fflush(stdout);
    }
    if (!naddr) { first = r; firstpos = pos; firstend = end; }
    ++naddr;
    pos = end + 1;
  }
  /* a second transaction in the same process (users/cdb stays mapped, its
     name is checked again) must judge the first address the same way */
  if (naddr) {
    char *copy = (char *) malloc(firstend - firstpos ? firstend - firstpos : 1);
    if (!copy) fatal("malloc");
    memcpy(copy, data + firstpos, firstend - firstpos);
    realrcptto_start();
    r = realrcptto(copy, (unsigned long) (firstend - firstpos));
    free(copy);
    if (r != first) abort();
  }
  realrcptto_free();
  return 0;
}
