/*
 * realrcptto: see realrcptto.h.  Written from this project's
 * spec/realrcptto.md and spec/resolution.md (stages C, W, H4, U, G, L1-L3,
 * Q1-Q5).  C89, libc and POSIX only; every name outside this file starts
 * with realrcptto so that it links into qmail without clashes.
 */
/* pread() is POSIX.1-2008 (XSI before it): ask for it, so that the file
 * compiles on its own with -std=c89 as well as inside qmail's build. */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif
#include <sys/types.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "realrcptto.h"

#ifdef PATH_MAX
#define RRT_PATH_MAX PATH_MAX
#else
#define RRT_PATH_MAX 4096
#endif

#ifdef NAME_MAX
#define RRT_NAME_MAX NAME_MAX
#else
#define RRT_NAME_MAX 255
#endif

#define RRT_USERLEN 32 /* qmail-getpw's GETPW_USERLEN */

/* ------------------------------------------------------------------ */
/* byte buffers                                                        */

typedef struct {
  char *s;
  unsigned long len;
  unsigned long a;
} rrt_buf;

static int buf_ready(rrt_buf *b, unsigned long n)
{
  char *t;
  unsigned long na;
  if (n + 1 < n) return 0;
  if (b->s && n + 1 <= b->a) return 1;
  na = n + 1 + (n >> 3) + 32;
  if (na < n + 1) na = n + 1;
  t = (char *) realloc(b->s, na);
  if (!t) return 0;
  b->s = t;
  b->a = na;
  return 1;
}

/* append n bytes; the buffer always stays NUL-terminated past len */
static int buf_catb(rrt_buf *b, const char *s, unsigned long n)
{
  if (b->len + n < b->len) return 0;
  if (!buf_ready(b, b->len + n)) return 0;
  if (n) memcpy(b->s + b->len, s, n);
  b->len += n;
  b->s[b->len] = 0;
  return 1;
}

static int buf_cats(rrt_buf *b, const char *s)
{
  return buf_catb(b, s, (unsigned long) strlen(s));
}

static int buf_copyb(rrt_buf *b, const char *s, unsigned long n)
{
  b->len = 0;
  if (!buf_ready(b, 0)) return 0;
  b->s[0] = 0;
  return buf_catb(b, s, n);
}

static void buf_free(rrt_buf *b)
{
  if (b->s) free(b->s);
  b->s = 0;
  b->len = 0;
  b->a = 0;
}

/* the position of the last c in s[0..n), or n */
static unsigned long rchr(const char *s, unsigned long n, int c)
{
  unsigned long i = n;
  while (i > 0) {
    --i;
    if (s[i] == (char) c) return i;
  }
  return n;
}

static unsigned char fold(unsigned char c)
{
  if (c >= 'A' && c <= 'Z') return (unsigned char) (c + ('a' - 'A'));
  return c;
}

static void lowerb(char *s, unsigned long n)
{
  unsigned long i;
  for (i = 0; i < n; ++i) s[i] = (char) fold((unsigned char) s[i]);
}

static int diffb_fold(const char *a, const char *b, unsigned long n)
{
  unsigned long i;
  for (i = 0; i < n; ++i)
    if (fold((unsigned char) a[i]) != fold((unsigned char) b[i])) return 1;
  return 0;
}

/* qmail's error_temp() list (resolution.md G6) */
static int temp_errno(int e)
{
  if (e == EINTR || e == ENOMEM || e == ETXTBSY || e == EIO) return 1;
#ifdef ETIMEDOUT
  if (e == ETIMEDOUT) return 1;
#endif
#ifdef EWOULDBLOCK
  if (e == EWOULDBLOCK) return 1;
#endif
#ifdef EAGAIN
  if (e == EAGAIN) return 1;
#endif
#ifdef EDEADLK
  if (e == EDEADLK) return 1;
#endif
#ifdef EBUSY
  if (e == EBUSY) return 1;
#endif
#ifdef ENFILE
  if (e == ENFILE) return 1;
#endif
#ifdef EMFILE
  if (e == EMFILE) return 1;
#endif
#ifdef EFBIG
  if (e == EFBIG) return 1;
#endif
#ifdef ENOSPC
  if (e == ENOSPC) return 1;
#endif
#ifdef ENETDOWN
  if (e == ENETDOWN) return 1;
#endif
#ifdef ENETUNREACH
  if (e == ENETUNREACH) return 1;
#endif
#ifdef ENETRESET
  if (e == ENETRESET) return 1;
#endif
#ifdef ECONNABORTED
  if (e == ECONNABORTED) return 1;
#endif
#ifdef ECONNRESET
  if (e == ECONNRESET) return 1;
#endif
#ifdef ENOBUFS
  if (e == ENOBUFS) return 1;
#endif
#ifdef ETOOMANYREFS
  if (e == ETOOMANYREFS) return 1;
#endif
#ifdef ECONNREFUSED
  if (e == ECONNREFUSED) return 1;
#endif
#ifdef EHOSTDOWN
  if (e == EHOSTDOWN) return 1;
#endif
#ifdef EHOSTUNREACH
  if (e == EHOSTUNREACH) return 1;
#endif
#ifdef EPROCLIM
  if (e == EPROCLIM) return 1;
#endif
#ifdef EUSERS
  if (e == EUSERS) return 1;
#endif
#ifdef EDQUOT
  if (e == EDQUOT) return 1;
#endif
#ifdef ESTALE
  if (e == ESTALE) return 1;
#endif
#ifdef ENOLCK
  if (e == ENOLCK) return 1;
#endif
  return 0;
}

/* ------------------------------------------------------------------ */
/* state                                                               */

struct rrt_map {
  rrt_buf data;           /* entries, each followed by NUL */
  unsigned long num;
  unsigned long maxlen;   /* longest key: longer lookups cannot match */
  unsigned long mask;
  long *first;
  long *next;
  const char **key;
  unsigned long *keylen;
  const char **val;       /* NUL-terminated; "" for plain lists */
  unsigned long *hash;
};

static rrt_buf home;       /* qmail home */
static rrt_buf usera;      /* alias user */
static rrt_buf envnoathost;
static rrt_buf remoteip;
static struct rrt_map locals;
static struct rrt_map percenthack;
static struct rrt_map vdoms;
static int brkchar = '-';
static int patrn = 002;
static int denyall = 0;
static int denyany = 0;
static const char *why = "no check yet";
static unsigned long mypid; /* getpid() at init: one system call less per denial */

/* realrcptto_lspawn_users: the qmail users and group qmail-lspawn looks
 * up when it starts (notqmail), and whether they were found in this
 * transaction: 0 not asked yet, 1 all found, 2 one missing. */
static rrt_buf lsp_userp;
static rrt_buf lsp_userq;
static rrt_buf lsp_groupn;
static int lsp_on = 0;
static int lsp_state = 0;

/* users/cdb, kept for the life of the process.  It is opened at the first
   look-up, mapped (the descriptor is then closed: nothing leaks into
   qmail-queue), or, when it cannot be mapped, kept open close-on-exec and
   read with pread.  The first look-up of each transaction stat()s the name
   and reopens it when the inode, size, mtime or ctime differ, so that a
   users/cdb that qmail-newu renames into place is seen from the next
   transaction on; within one transaction every RCPT sees the same
   version. */
static struct {
  int open;                /* a version is held (map or fd) */
  int checked;             /* the name was checked in this transaction */
  int absent;              /* users/cdb did not exist at that check */
  int fd;                  /* -1 when mapped */
  const char *map;         /* the mapping, 0 when read through fd */
  unsigned long size;      /* file size (a mapping covers all of it) */
  dev_t dev;
  ino_t ino;
  off_t stsize;
  time_t mtime;
  time_t ctime;
} ucdb = { 0, 0, 0, -1, 0, 0, 0, 0, 0, 0, 0 };

/* What stat() said about a name earlier in this transaction: the homes
   found usable ('H') and the .qmail candidates found or found absent
   ('P').  Outcomes that log a line (errors) are never kept, so the log
   stays one line per event.  A few entries, reused round-robin; cleared
   by realrcptto_start, so a file created or removed during a transaction
   counts from the next one, like a new users/cdb. */
#define RRT_STATCACHE 16
static struct {
  rrt_buf name;
  int kind;
  int result;
} scache[RRT_STATCACHE];
static unsigned int scache_n;
static unsigned int scache_next;

static int scache_find(int kind, const char *name, unsigned long len)
{
  unsigned int i;
  for (i = 0; i < scache_n; ++i)
    if (scache[i].kind == kind && scache[i].name.len == len
        && !memcmp(scache[i].name.s, name, len))
      return scache[i].result;
  return -1;
}

/* keep the outcome; when memory is short it is simply not kept */
static void scache_add(int kind, const char *name, unsigned long len, int result)
{
  unsigned int i = scache_next;
  if (!buf_copyb(&scache[i].name, name, len)) return;
  scache[i].kind = kind;
  scache[i].result = result;
  scache_next = (i + 1) % RRT_STATCACHE;
  if (scache_n < RRT_STATCACHE) ++scache_n;
}

static void scache_free(void)
{
  unsigned int i;
  for (i = 0; i < RRT_STATCACHE; ++i) buf_free(&scache[i].name);
  scache_n = 0;
  scache_next = 0;
}

/* scratch buffers, reused from call to call */
static rrt_buf tmp;
static rrt_buf addr;
static rrt_buf rw;
static rrt_buf lower;
static rrt_buf wild;
static rrt_buf rec;
static rrt_buf path;
static rrt_buf line;
static rrt_buf dir;
/* prefix hashes of the users/cdb lookup key: phash[i] = cdb hash of
   key[0..i), so that the longest-first wildcard walk stays linear */
static unsigned long *phash;
static unsigned long phash_n;

/* ------------------------------------------------------------------ */
/* logging                                                             */

static void put2(const char *s, unsigned long n)
{
  long w;
  while (n > 0) {
    w = (long) write(2, s, n);
    if (w <= 0) {
      if (w == -1 && errno == EINTR) continue;
      return;
    }
    s += w;
    n -= (unsigned long) w;
  }
}

/* one line on fd 2; newlines inside the fields become '_' */
static void logline(rrt_buf *b)
{
  unsigned long i;
  for (i = 0; i < b->len; ++i)
    if (b->s[i] == '\n') b->s[i] = '_';
  if (!buf_catb(b, "\n", 1)) return;
  put2(b->s, b->len);
}

static int fmt_ulong(char *s, unsigned long u)
{
  char t[40];
  int n = 0;
  int i;
  do {
    t[n++] = (char) ('0' + (u % 10));
    u /= 10;
  } while (u);
  for (i = 0; i < n; ++i) s[i] = t[n - 1 - i];
  return n;
}

static void log_stat(const char *p, int e)
{
  line.len = 0;
  if (!buf_cats(&line, "realrcptto: unable to stat ")) return;
  if (!buf_cats(&line, p)) return;
  if (!buf_cats(&line, ": ")) return;
  if (!buf_cats(&line, strerror(e))) return;
  logline(&line);
}

static void log_deny(const char *a, unsigned long n)
{
  char num[40];
  line.len = 0;
  if (!buf_cats(&line, "realrcptto ")) return;
  if (!buf_catb(&line, num, (unsigned long) fmt_ulong(num, mypid))) return;
  if (!buf_cats(&line, " ")) return;
  if (!buf_catb(&line, remoteip.s, remoteip.len)) return;
  if (!buf_cats(&line, " ")) return;
  if (!buf_catb(&line, a, n)) return;
  logline(&line);
}

/* ------------------------------------------------------------------ */
/* control files (resolution.md stage C)                              */

/* 1: read; 0: does not exist; -1: error */
static int readall(const char *fn, rrt_buf *out)
{
  int fd;
  long r;
  out->len = 0;
  if (!buf_ready(out, 0)) return -1;
  out->s[0] = 0;
  fd = open(fn, O_RDONLY | O_NONBLOCK);
  if (fd == -1) return (errno == ENOENT) ? 0 : -1;
  for (;;) {
    if (!buf_ready(out, out->len + 4096)) { close(fd); errno = ENOMEM; return -1; }
    r = (long) read(fd, out->s + out->len, 4096);
    if (r == -1) {
      if (errno == EINTR) continue;
      close(fd);
      return -1;
    }
    if (r == 0) break;
    out->len += (unsigned long) r;
  }
  close(fd);
  out->s[out->len] = 0;
  return 1;
}

static int ctlpath(const char *name)
{
  path.len = 0;
  if (!buf_catb(&path, home.s, home.len)) return 0;
  if (!buf_cats(&path, "/control/")) return 0;
  return buf_cats(&path, name);
}

static void stripws(const char *s, unsigned long *n)
{
  while (*n > 0 && (s[*n - 1] == ' ' || s[*n - 1] == '\t' || s[*n - 1] == '\n'))
    --*n;
}

/* control_readline: 1 (first line in out), 0 missing, -1 error, -2 nomem */
static int readline1(const char *name, rrt_buf *out)
{
  int r;
  unsigned long n;
  if (!ctlpath(name)) return -2;
  r = readall(path.s, &tmp);
  if (r != 1) return r;
  n = 0;
  while (n < tmp.len && tmp.s[n] != '\n') ++n;
  stripws(tmp.s, &n);
  if (!buf_copyb(out, tmp.s, n)) return -2;
  return 1;
}

/* control_readfile: entries NUL-separated into out */
static int readlist(const char *name, rrt_buf *out)
{
  int r;
  unsigned long pos;
  unsigned long end;
  unsigned long n;
  if (!ctlpath(name)) return -2;
  r = readall(path.s, &tmp);
  out->len = 0;
  if (!buf_ready(out, 0)) return -2;
  out->s[0] = 0;
  if (r != 1) return r;
  pos = 0;
  while (pos < tmp.len) {
    end = pos;
    while (end < tmp.len && tmp.s[end] != '\n') ++end;
    n = end - pos;
    stripws(tmp.s + pos, &n);
    if (n > 0 && tmp.s[pos] != 0 && tmp.s[pos] != '#') {
      if (!buf_catb(out, tmp.s + pos, n)) return -2;
      if (!buf_catb(out, "", 1)) return -2;
    }
    pos = end + 1;
  }
  return 1;
}

static unsigned long maphash(const char *s, unsigned long n)
{
  unsigned long h = 5381;
  unsigned long i;
  for (i = 0; i < n; ++i)
    h = (((h << 5) + h) ^ fold((unsigned char) s[i])) & 0xffffffffUL;
  return h;
}

static void map_free(struct rrt_map *m)
{
  buf_free(&m->data);
  if (m->first) free(m->first);
  if (m->next) free(m->next);
  if (m->key) free((void *) m->key);
  if (m->keylen) free(m->keylen);
  if (m->val) free((void *) m->val);
  if (m->hash) free(m->hash);
  memset(m, 0, sizeof *m);
}

/* build the hash index over m->data; flagcolon as in constmap_init */
static int map_index(struct rrt_map *m, int flagcolon)
{
  unsigned long i;
  unsigned long j;
  unsigned long k;
  unsigned long h;
  unsigned long cnt = 0;
  unsigned long pos = 0;
  for (j = 0; j < m->data.len; ++j) if (!m->data.s[j]) ++cnt;
  h = 64;
  while (h < cnt && h < 0x40000000UL) h += h;
  m->mask = h - 1;
  m->first = (long *) malloc(sizeof(long) * h);
  m->next = (long *) malloc(sizeof(long) * (cnt + 1));
  m->key = (const char **) malloc(sizeof(char *) * (cnt + 1));
  m->keylen = (unsigned long *) malloc(sizeof(unsigned long) * (cnt + 1));
  m->val = (const char **) malloc(sizeof(char *) * (cnt + 1));
  m->hash = (unsigned long *) malloc(sizeof(unsigned long) * (cnt + 1));
  if (!m->first || !m->next || !m->key || !m->keylen || !m->val || !m->hash) return 0;
  for (k = 0; k <= m->mask; ++k) m->first[k] = -1;
  i = 0;
  for (j = 0; j < m->data.len; ++j) {
    if (m->data.s[j]) continue;
    k = j - i;
    if (flagcolon) {
      for (k = i; k < j; ++k) if (m->data.s[k] == ':') break;
      if (k >= j) { i = j + 1; continue; }
      k -= i;
      m->val[pos] = m->data.s + i + k + 1;
    }
    else
      m->val[pos] = m->data.s + j;
    m->key[pos] = m->data.s + i;
    m->keylen[pos] = k;
    if (k > m->maxlen) m->maxlen = k;
    m->hash[pos] = maphash(m->data.s + i, k);
    m->next[pos] = m->first[m->hash[pos] & m->mask];
    m->first[m->hash[pos] & m->mask] = (long) pos;
    ++pos;
    i = j + 1;
  }
  m->num = pos;
  return 1;
}

/* the value of the last entry with this key (case-insensitive), or 0 */
static const char *map_find(const struct rrt_map *m, const char *s, unsigned long n)
{
  unsigned long h;
  long pos;
  if (!m->first || !m->num || n > m->maxlen) return 0;
  h = maphash(s, n);
  pos = m->first[h & m->mask];
  while (pos != -1) {
    if (m->hash[pos] == h && m->keylen[pos] == n && !diffb_fold(m->key[pos], s, n))
      return m->val[pos];
    pos = m->next[pos];
  }
  return 0;
}

static void ucdb_drop(void)
{
  if (ucdb.map && ucdb.size) munmap((void *) ucdb.map, (size_t) ucdb.size);
  if (ucdb.fd != -1) close(ucdb.fd);
  ucdb.map = 0;
  ucdb.fd = -1;
  ucdb.open = 0;
  ucdb.size = 0;
}

void realrcptto_free(void)
{
  scache_free();
  ucdb_drop();
  ucdb.checked = 0;
  ucdb.absent = 0;
  map_free(&locals);
  map_free(&percenthack);
  map_free(&vdoms);
  buf_free(&home); buf_free(&usera); buf_free(&envnoathost);
  buf_free(&remoteip); buf_free(&tmp); buf_free(&addr); buf_free(&rw);
  buf_free(&lower); buf_free(&wild); buf_free(&rec); buf_free(&path);
  buf_free(&line); buf_free(&dir);
  buf_free(&lsp_userp); buf_free(&lsp_userq); buf_free(&lsp_groupn);
  lsp_on = 0;
  lsp_state = 0;
  if (phash) free(phash);
  phash = 0;
  phash_n = 0;
}

static int initerr(int r)
{
  return (r == -2) ? RRT_ENOMEM : RRT_ECONTROL;
}

int realrcptto_init(const char *qmailhome, int brk, const char *alias, int mode)
{
  rrt_buf me;
  int meok;
  int r;
  const char *x;

  realrcptto_free();
  me.s = 0; me.len = 0; me.a = 0;
  brkchar = brk;
  patrn = mode;
  denyany = 0;
  why = "no check yet";
  if (!buf_cats(&home, qmailhome)) return RRT_ENOMEM;
  if (!buf_cats(&usera, alias)) return RRT_ENOMEM;

  r = readline1("me", &me);
  if (r < 0) { buf_free(&me); return initerr(r); }
  meok = (r == 1);

  r = readline1("envnoathost", &envnoathost);
  if (r < 0) { buf_free(&me); return initerr(r); }
  if (r == 0) {
    if (meok) r = buf_copyb(&envnoathost, me.s, me.len);
    else r = buf_copyb(&envnoathost, "envnoathost", 11);
    if (!r) { buf_free(&me); return RRT_ENOMEM; }
  }

  r = readlist("locals", &locals.data);
  if (r < 0) { buf_free(&me); return initerr(r); }
  if (r == 0) {
    if (!meok) { buf_free(&me); return RRT_ECONTROL; }
    if (!buf_catb(&locals.data, me.s, me.len) || !buf_catb(&locals.data, "", 1)) {
      buf_free(&me);
      return RRT_ENOMEM;
    }
  }
  buf_free(&me);

  r = readlist("percenthack", &percenthack.data);
  if (r < 0) return initerr(r);
  r = readlist("virtualdomains", &vdoms.data);
  if (r < 0) return initerr(r);

  if (!map_index(&locals, 0)) return RRT_ENOMEM;
  if (!map_index(&percenthack, 0)) return RRT_ENOMEM;
  if (!map_index(&vdoms, 1)) return RRT_ENOMEM;

  mypid = (unsigned long) getpid();
  x = getenv("QMAILRRTDENYALL");
  denyall = (x && x[0] == '1' && x[1] == 0);

  x = getenv("PROTO");
  tmp.len = 0;
  if (x) {
    if (!buf_cats(&tmp, x) || !buf_cats(&tmp, "REMOTEIP")) return RRT_ENOMEM;
    x = getenv(tmp.s);
  }
  if (!buf_cats(&remoteip, x ? x : "unknown")) return RRT_ENOMEM;
  return 0;
}

int realrcptto_lspawn_users(const char *userp, const char *userq, const char *groupn)
{
  lsp_userp.len = 0; lsp_userq.len = 0; lsp_groupn.len = 0;
  if (!buf_catb(&lsp_userp, userp, (unsigned long) strlen(userp) + 1)) return RRT_ENOMEM;
  if (!buf_catb(&lsp_userq, userq, (unsigned long) strlen(userq) + 1)) return RRT_ENOMEM;
  if (!buf_catb(&lsp_groupn, groupn, (unsigned long) strlen(groupn) + 1)) return RRT_ENOMEM;
  lsp_on = 1;
  lsp_state = 0;
  return 0;
}

/* Would qmail-lspawn start?  Its getpwnam/getpwnam/getgrnam, once per
 * transaction; any failure (not found or an error) stops it. */
static int lspawn_starts(void)
{
  if (!lsp_on) return 1;
  if (!lsp_state) {
    lsp_state = 2;
    if (getpwnam(lsp_userp.s) && getpwnam(lsp_userq.s) && getgrnam(lsp_groupn.s))
      lsp_state = 1;
  }
  return lsp_state == 1;
}

void realrcptto_start(void)
{
  denyany = 0;
  lsp_state = 0;
  ucdb.checked = 0;
  scache_n = 0;
  scache_next = 0;
}

int realrcptto_deny(void)
{
  return denyall && denyany;
}

void realrcptto_logpid(unsigned long pid)
{
  mypid = pid;
}

const char *realrcptto_why(void)
{
  return why;
}

/* ------------------------------------------------------------------ */
/* stage W: rewrite (qmail-send.c rewrite); 1 local (in rw), 0 remote  */

static int rewrite(const char *a, unsigned long n)
{
  unsigned long i;
  unsigned long j;
  unsigned long at;
  const char *x;

  if (!buf_copyb(&addr, a, n)) return -1;
  i = rchr(addr.s, addr.len, '@');
  if (i == addr.len) {
    if (!buf_catb(&addr, "@", 1)) return -1;
    if (!buf_catb(&addr, envnoathost.s, envnoathost.len)) return -1;
  }
  while (map_find(&percenthack, addr.s + i + 1, addr.len - i - 1)) {
    j = rchr(addr.s, i, '%');
    if (j == i) break;
    addr.len = i;
    addr.s[addr.len] = 0;
    i = j;
    addr.s[i] = '@';
  }
  at = rchr(addr.s, addr.len, '@');
  if (map_find(&locals, addr.s + at + 1, addr.len - at - 1)) {
    if (!buf_copyb(&rw, addr.s, addr.len)) return -1;
    return 1;
  }
  for (i = 0; i <= addr.len; ++i)
    if (!i || (i == at + 1) || (i == addr.len) || ((i > at) && (addr.s[i] == '.'))) {
      x = map_find(&vdoms, addr.s + i, addr.len - i);
      if (x) {
        if (!*x) return 0;
        if (!buf_copyb(&rw, x, (unsigned long) strlen(x))) return -1;
        if (!buf_catb(&rw, "-", 1)) return -1;
        if (!buf_catb(&rw, addr.s, addr.len)) return -1;
        return 1;
      }
    }
  return 0;
}

/* ------------------------------------------------------------------ */
/* cdb (qmail's cdb_seek over a plain fd)                              */

static unsigned long unpack(const unsigned char *b)
{
  return ((unsigned long) b[0]) | ((unsigned long) b[1] << 8)
    | ((unsigned long) b[2] << 16) | ((unsigned long) b[3] << 24);
}

/* read n bytes at offset pos of users/cdb: from the mapping, or with
   pread; past the end of the file is EIO either way (qmail's cdb_bread
   hits EOF) */
static int bread(unsigned long pos, char *b, unsigned long n)
{
  long r;
  if (ucdb.map || ucdb.fd == -1) {
    if (pos > ucdb.size || n > ucdb.size - pos) { errno = EIO; return -1; }
    if (n) memcpy(b, ucdb.map + pos, n);
    return 0;
  }
  while (n > 0) {
    r = (long) pread(ucdb.fd, b, n, (off_t) pos);
    if (r == -1) { if (errno == EINTR) continue; return -1; }
    if (r == 0) { errno = EIO; return -1; }
    b += r;
    pos += (unsigned long) r;
    n -= (unsigned long) r;
  }
  return 0;
}

static unsigned long cdbhash_add(unsigned long h, unsigned char c)
{
  h = (h + (h << 5)) & 0xffffffffUL;
  return h ^ c;
}


/* 1 found (data length in *dlen, data offset in *dpos), 0 not, -1
   error; h is cdbhash(key, len); the same walk as qmail's cdb_seek */
static int cdbseek(const char *key, unsigned long len, unsigned long h,
                   unsigned long *dlen, unsigned long *dpos)
{
  unsigned char pb[8];
  char kb[64];
  unsigned long pos, lenhash, h2, loop, poskd, done, m, k;
  int same;

  if (bread(8 * (h & 255), (char *) pb, 8) == -1) return -1;
  pos = unpack(pb);
  lenhash = unpack(pb + 4);
  if (!lenhash) return 0;
  h2 = (h >> 8) % lenhash;
  for (loop = 0; loop < lenhash; ++loop) {
    if (bread((pos + 8 * h2) & 0xffffffffUL, (char *) pb, 8) == -1) return -1;
    poskd = unpack(pb + 4);
    if (!poskd) return 0;
    if (unpack(pb) == h) {
      if (bread(poskd, (char *) pb, 8) == -1) return -1;
      if (unpack(pb) == len) {
        same = 1;
        done = 0;
        while (done < len) {
          m = len - done;
          if (m > sizeof kb) m = sizeof kb;
          if (bread(poskd + 8 + done, kb, m) == -1) return -1;
          for (k = 0; k < m; ++k) if (kb[k] != key[done + k]) same = 0;
          done += m;
          if (!same) break;
        }
        if (same) {
          *dlen = unpack(pb + 4);
          *dpos = poskd + 8 + len;
          return 1;
        }
      }
    }
    if (++h2 == lenhash) h2 = 0;
  }
  return 0;
}

/* read the n data bytes at pos of a cdb of size bytes; a record that
   runs past the end of the file is trouble (qmail's cdb_bread would hit
   EOF: QLX_CDB), found before anything is allocated for it, so that a
   corrupt length cannot make us allocate gigabytes */
static int cdbread(unsigned long pos, rrt_buf *b, unsigned long n)
{
  b->len = 0;
  if (pos > ucdb.size || n > ucdb.size - pos) { errno = EIO; return -1; }
  if (!buf_ready(b, n)) return -2;
  if (bread(pos, b->s, n) == -1) return -1;
  b->len = n;
  b->s[n] = 0;
  return 0;
}

/* ------------------------------------------------------------------ */
/* stages L1-L3 and Q: the .qmail search as qmail-local would do it    */

#define PROBE_ABSENT 0
#define PROBE_FOUND 1
#define PROBE_UNKNOWN 2

/* stat the name in path; the part from relstart on is what qmail-local
   would use, relative to the home directory */
static int probe(unsigned long relstart)
{
  struct stat st;
  unsigned long k;
  int e;
  if (path.len - relstart + 1 > RRT_PATH_MAX) return PROBE_ABSENT; /* qmail-local: ENAMETOOLONG */
  if (path.len + 1 > RRT_PATH_MAX) {
    /* only our absolute name is too long; qmail-local's relative name
       fails for sure only if its first component is too long */
    for (k = relstart; k < path.len; ++k) if (path.s[k] == '/') break;
    if (k - relstart > RRT_NAME_MAX) return PROBE_ABSENT;
    log_stat(path.s, ENAMETOOLONG);
    return PROBE_UNKNOWN;
  }
  e = scache_find('P', path.s, path.len);
  if (e != -1) return e;
  if (stat(path.s, &st) == -1) {
    e = errno;
    if (e == EACCES || e == EPERM || temp_errno(e)) {
      log_stat(path.s, e);
      return PROBE_UNKNOWN;
    }
    e = PROBE_ABSENT;
  }
  else
    e = S_ISREG(st.st_mode) ? PROBE_FOUND : PROBE_ABSENT;
  scache_add('P', path.s, path.len, e);
  return e;
}

static int qmail_path(const char *h, const char *dash, const char *sext,
                      unsigned long n, int deflt, unsigned long *relstart)
{
  path.len = 0;
  if (!buf_cats(&path, h)) return 0;
  if (!buf_catb(&path, "/", 1)) return 0;
  *relstart = path.len;
  if (!buf_cats(&path, ".qmail")) return 0;
  if (!buf_cats(&path, dash)) return 0;
  if (!buf_catb(&path, sext, n)) return 0;
  if (deflt) if (!buf_cats(&path, "default")) return 0;
  return 1;
}

/* the verdict for a delivery to (home, dash, ext) */
static int local_check(const char *h, const char *dash, const char *ext, unsigned long extlen)
{
  struct stat st;
  unsigned long i;
  unsigned long rs;
  int r;

  if (!*dash) { why = "default delivery (empty dash)"; return RRT_ACCEPT; }
  if (h[0] != '/') { why = "relative home directory (qmail-local usage error)"; return RRT_ACCEPT; }
  if (scache_find('H', h, (unsigned long) strlen(h)) != 1) {
    if (stat(h, &st) == -1) {
      log_stat(h, errno);
      why = "home directory cannot be stat()ed (qmail-local defers)";
      return RRT_ACCEPT;
    }
    if (!S_ISDIR(st.st_mode)) { why = "home is not a directory (qmail-local defers)"; return RRT_ACCEPT; }
    if (st.st_mode & patrn) { why = "home directory is writable (qmail-local defers)"; return RRT_ACCEPT; }
    if (st.st_mode & 01000) { why = "home directory is sticky (qmail-local defers)"; return RRT_ACCEPT; }
    scache_add('H', h, (unsigned long) strlen(h), 1);
  }

  /* safeext in wild (scratch) */
  if (!buf_copyb(&wild, ext, extlen)) return RRT_ENOMEM;
  lowerb(wild.s, wild.len);
  for (i = 0; i < wild.len; ++i) if (wild.s[i] == '.') wild.s[i] = ':';

  if (!qmail_path(h, dash, wild.s, wild.len, 0, &rs)) return RRT_ENOMEM;
  r = probe(rs);
  if (r == PROBE_FOUND) { why = "found .qmail file"; return RRT_ACCEPT; }
  if (r == PROBE_UNKNOWN) { why = "cannot stat a .qmail candidate"; return RRT_ACCEPT; }

  i = wild.len;
  for (;;) {
    if (!i || wild.s[i - 1] == '-') {
      if (6 + strlen(dash) + i + 7 + 1 <= RRT_PATH_MAX) {
        if (!qmail_path(h, dash, wild.s, i, 1, &rs)) return RRT_ENOMEM;
        r = probe(rs);
        if (r == PROBE_FOUND) { why = "found .qmail default file"; return RRT_ACCEPT; }
        if (r == PROBE_UNKNOWN) { why = "cannot stat a .qmail candidate"; return RRT_ACCEPT; }
      }
    }
    if (!i) break;
    --i;
  }
  why = "no mailbox (no .qmail file)";
  return RRT_REJECT;
}

/* ------------------------------------------------------------------ */
/* stage U: users/cdb (qmail-lspawn.c nughde_get)                      */

static int same_file(const struct stat *st)
{
  return st->st_dev == ucdb.dev && st->st_ino == ucdb.ino && st->st_size == ucdb.stsize
    && st->st_mtime == ucdb.mtime && st->st_ctime == ucdb.ctime;
}

/* hold the users/cdb that the open fd refers to (fd is consumed) */
static int ucdb_hold(int fd)
{
  struct stat st;
  void *m;
  int flags;
  if (fstat(fd, &st) == -1) { close(fd); return RRT_ECDB; }
  ucdb.dev = st.st_dev;
  ucdb.ino = st.st_ino;
  ucdb.stsize = st.st_size;
  ucdb.mtime = st.st_mtime;
  ucdb.ctime = st.st_ctime;
  ucdb.size = (unsigned long) st.st_size;
  if (st.st_size < 0) ucdb.size = 0;
  else if ((off_t) ucdb.size != st.st_size) ucdb.size = (unsigned long) -1;
  ucdb.open = 1;
  if (S_ISREG(st.st_mode) && ucdb.size == 0) { close(fd); return 1; } /* every read: EIO */
  if (S_ISREG(st.st_mode) && ucdb.size != (unsigned long) -1
      && (unsigned long) (size_t) ucdb.size == ucdb.size) {
    m = mmap(0, (size_t) ucdb.size, PROT_READ, MAP_SHARED, fd, 0);
    if (m != MAP_FAILED) {
      close(fd);
      ucdb.map = (const char *) m;
      return 1;
    }
  }
  /* not mapped (not a regular file, too big, mmap refused): read with
     pread, as before; close-on-exec, so that qmail-queue does not get it */
  flags = fcntl(fd, F_GETFD);
  if (flags != -1) (void) fcntl(fd, F_SETFD, flags | FD_CLOEXEC);
  ucdb.fd = fd;
  return 1;
}

/* make ucdb current for this transaction: 1 held, 0 no users/cdb, RRT_E* */
static int ucdb_ready(void)
{
  struct stat st;
  int fd;
  if (ucdb.checked) return ucdb.absent ? 0 : 1;
  path.len = 0;
  if (!buf_catb(&path, home.s, home.len)) return RRT_ENOMEM;
  if (!buf_cats(&path, "/users/cdb")) return RRT_ENOMEM;
  if (stat(path.s, &st) == -1) {
    if (errno != ENOENT) return RRT_ECDB;
    ucdb_drop();
    ucdb.absent = 1;
    ucdb.checked = 1;
    return 0;
  }
  if (!ucdb.open || !same_file(&st)) {
    ucdb_drop();
    fd = open(path.s, O_RDONLY | O_NONBLOCK);
    if (fd == -1) {
      if (errno != ENOENT) return RRT_ECDB;
      ucdb.absent = 1;
      ucdb.checked = 1;
      return 0;
    }
    fd = ucdb_hold(fd);
    if (fd != 1) return fd;
  }
  ucdb.absent = 0;
  ucdb.checked = 1;
  return 1;
}

/* 1: found (record in rec), 0: not found or no users/cdb, <0: RRT_E* */
static int cdb_lookup(const char *local, unsigned long n)
{
  int r;
  int flagwild;
  unsigned long dlen;
  unsigned long dpos;
  unsigned long i;
  unsigned long k;

  r = ucdb_ready();
  if (r != 1) return r;
  if (!buf_copyb(&lower, "!", 1) || !buf_catb(&lower, local, n) || !buf_catb(&lower, "", 1))
    return RRT_ENOMEM;
  lowerb(lower.s, lower.len);

  if (lower.len + 1 > phash_n) {
    unsigned long *t;
    if (lower.len + 1 < lower.len || lower.len + 1 > ((unsigned long) -1) / sizeof(unsigned long))
      return RRT_ENOMEM;
    t = (unsigned long *) realloc(phash, (lower.len + 1) * sizeof(unsigned long));
    if (!t) return RRT_ENOMEM;
    phash = t;
    phash_n = lower.len + 1;
  }
  phash[0] = 5381;
  for (i = 0; i < lower.len; ++i) phash[i + 1] = cdbhash_add(phash[i], (unsigned char) lower.s[i]);

  r = cdbseek("", 0, 5381, &dlen, &dpos);
  if (r != 1) return RRT_ECDB;
  r = cdbread(dpos, &wild, dlen);
  if (r == -2) return RRT_ENOMEM;
  if (r == -1) return RRT_ECDB;

  i = lower.len;
  flagwild = 0;
  do {
    int probeit = !flagwild || i == 1;
    if (!probeit)
      for (k = 0; k < wild.len; ++k)
        if (wild.s[k] == lower.s[i - 1]) { probeit = 1; break; }
    if (probeit) {
      r = cdbseek(lower.s, i, phash[i], &dlen, &dpos);
      if (r == -1) return RRT_ECDB;
      if (r == 1) {
        r = cdbread(dpos, &rec, dlen);
        if (r == -2) return RRT_ENOMEM;
        if (r == -1) return RRT_ECDB;
        if (flagwild)
          if (!buf_catb(&rec, local + i - 1, n - (i - 1))) return RRT_ENOMEM;
        if (!buf_catb(&rec, "", 1)) return RRT_ENOMEM;
        return 1;
      }
    }
    --i;
    flagwild = 1;
  } while (i);
  return 0;
}

static unsigned long scan_ulong(const char *s)
{
  unsigned long u = 0;
  while (*s >= '0' && *s <= '9') {
    u = u * 10 + (unsigned long) (*s - '0');
    ++s;
  }
  return u;
}

/* the six NUL-terminated fields of rec; 0 if there are fewer */
static int fields(const char *f[6])
{
  unsigned long pos = 0;
  unsigned long k;
  int i;
  for (i = 0; i < 6; ++i) {
    f[i] = rec.s + pos;
    for (k = pos; k < rec.len; ++k) if (!rec.s[k]) break;
    if (k >= rec.len) return 0;
    pos = k + 1;
  }
  return 1;
}

/* ------------------------------------------------------------------ */
/* stage G: passwd (qmail-getpw.c userext)                             */

/* the name qmail-getpw's stat() would see: it runs in the qmail home, so
   a relative pw_dir is relative to it; an empty pw_dir stays empty (stat
   fails with ENOENT and the candidate is skipped, G4), it is never
   replaced by the qmail home itself */
static int join_home(const char *d)
{
  dir.len = 0;
  if (!buf_ready(&dir, 0)) return 0;
  dir.s[0] = 0;
  if (d[0] && d[0] != '/') {
    if (!buf_catb(&dir, home.s, home.len)) return 0;
    if (!buf_catb(&dir, "/", 1)) return 0;
  }
  return buf_cats(&dir, d);
}

static int getpw_check(const char *local, unsigned long n)
{
  char username[RRT_USERLEN];
  struct passwd *pw;
  struct stat st;
  unsigned long e;
  int err;

  e = n;
  for (;;) {
    if (e < RRT_USERLEN && (e == n || local[e] == (char) brkchar)) {
      memcpy(username, local, e);
      username[e] = 0;
      lowerb(username, e);
      errno = 0;
      pw = getpwnam(username);
      if (errno == ETXTBSY) { why = "getpwnam: ETXTBSY"; return RRT_ESYS; }
      if (pw && pw->pw_uid) {
        uid_t uid = pw->pw_uid;
        if (!join_home(pw->pw_dir)) return RRT_ENOMEM;
        if (stat(dir.s, &st) == 0) {
          if (st.st_uid == uid) {
            if (e == n) { why = "passwd user, no extension (default delivery)"; return RRT_ACCEPT; }
            if (!buf_copyb(&rec, pw->pw_dir, (unsigned long) strlen(pw->pw_dir))) return RRT_ENOMEM;
            return local_check(rec.s, "-", local + e + 1, n - e - 1);
          }
        }
        else {
          err = errno;
          if (temp_errno(err)) { log_stat(dir.s, err); why = "temporary error on a passwd home"; return RRT_ESYS; }
          if (err == EACCES || err == EPERM) {
            log_stat(dir.s, err);
            why = "cannot stat a passwd home directory (permission)";
            return RRT_ACCEPT;
          }
        }
      }
    }
    if (!e) break;
    --e;
  }

  pw = getpwnam(usera.s);
  if (!pw) { why = "alias user missing (qmail defers)"; return RRT_ACCEPT; }
  if (!pw->pw_uid) { why = "alias user is root (qmail defers)"; return RRT_ACCEPT; }
  if (!buf_copyb(&rec, pw->pw_dir, (unsigned long) strlen(pw->pw_dir))) return RRT_ENOMEM;
  return local_check(rec.s, "-", local, n);
}

/* ------------------------------------------------------------------ */

static int check(const char *a, unsigned long n)
{
  unsigned long at;
  unsigned long u;
  const char *f[6];
  int r;

  r = rewrite(a, n);
  if (r == -1) return RRT_ENOMEM;
  if (r == 0) { why = "remote"; return RRT_ACCEPT; }
  at = rchr(rw.s, rw.len, '@');
  if (!at) { why = "empty local part (trash)"; return RRT_ACCEPT; }
  if (!lspawn_starts()) {
    why = "qmail-lspawn cannot start: a qmail user or group is missing (qmail defers)";
    return RRT_ACCEPT;
  }

  r = cdb_lookup(rw.s, at);
  if (r < 0) { why = "users/cdb trouble"; return r; }
  if (r == 1) {
    if (!fields(f)) { why = "users/cdb record has too few fields"; return RRT_ACCEPT; }
    u = scan_ulong(f[1]) & 0xffffffffUL;
    if (!u) { why = "users/cdb uid is root (qmail defers)"; return RRT_ACCEPT; }
    if (u == 0xffffffffUL || (scan_ulong(f[2]) & 0xffffffffUL) == 0xffffffffUL) {
      why = "users/cdb uid or gid unusable (qmail defers)";
      return RRT_ACCEPT;
    }
    return local_check(f[3], f[4], f[5], (unsigned long) strlen(f[5]));
  }
  return getpw_check(rw.s, at);
}

int realrcptto(const char *a, unsigned long n)
{
  unsigned long i;
  int r;

  if (denyall && denyany) { why = "deny-all: transaction already denied"; return RRT_ACCEPT; }
  for (i = 0; i < n; ++i) if (!a[i]) break;
  n = i;
  r = check(a, n);
  if (r != RRT_REJECT) return r;
  log_deny(a, n);
  denyany = 1;
  return denyall ? RRT_ACCEPT : RRT_REJECT;
}
