/*
 * qmail-queue-stub: stands in for bin/qmail-queue in the S/Q test tiers.
 * Like the real one it reads the message from fd 0 and then the envelope
 * from fd 1 (F sender NUL, T recipient NUL ..., NUL).  It queues nothing:
 * it appends one line to ./qq-stub.log (the qmail home, which is the cwd
 * qmail_open gives it) and exits like qmail-queue would:
 *   "queued BYTES Fsender Trcpt1 Trcpt2 ..."  exit 0   (complete envelope)
 *   "aborted BYTES"                           exit 54  (envelope cut short,
 *                                              e.g. after qmail_fail)
 */
#include <sys/types.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char *slurp(int fd, unsigned long *len)
{
  unsigned long a = 4096;
  unsigned long n = 0;
  long r;
  char *b = (char *) malloc(a);
  if (!b) _exit(51);
  for (;;) {
    if (n == a) {
      char *t;
      a *= 2;
      t = (char *) realloc(b, a);
      if (!t) _exit(51);
      b = t;
    }
    r = (long) read(fd, b + n, a - n);
    if (r == -1) { if (errno == EINTR) continue; _exit(54); }
    if (r == 0) break;
    n += (unsigned long) r;
  }
  *len = n;
  return b;
}

static void fmtnum(char *s, unsigned long u)
{
  char t[32];
  int n = 0;
  int i;
  do { t[n++] = (char) ('0' + u % 10); u /= 10; } while (u);
  for (i = 0; i < n; ++i) s[i] = t[n - 1 - i];
  s[n] = 0;
}

int main(void)
{
  unsigned long mlen;
  unsigned long elen;
  unsigned long i;
  unsigned long pos;
  char *msg;
  char *env;
  char num[32];
  int ok;
  int fd;

  msg = slurp(0, &mlen);
  env = slurp(1, &elen);

  /* well-formed: F...\0 (T...\0)* \0 and nothing after */
  ok = 0;
  if (elen >= 2 && env[0] == 'F') {
    pos = 0;
    while (pos < elen && env[pos]) ++pos;
    ++pos;
    for (;;) {
      if (pos >= elen) break;
      if (env[pos] == 0) { ok = (pos + 1 == elen); break; }
      if (env[pos] != 'T') break;
      while (pos < elen && env[pos]) ++pos;
      ++pos;
    }
  }

  fd = open("qq-stub.log", O_WRONLY | O_APPEND | O_CREAT, 0644);
  if (fd == -1) _exit(61);
  fmtnum(num, mlen);
  if (ok) {
    for (i = 0; i + 1 < elen; ++i) if (!env[i]) env[i] = ' ';
    if (write(fd, "queued ", 7) != 7) _exit(53);
    if (write(fd, num, strlen(num)) < 0) _exit(53);
    if (write(fd, " ", 1) != 1) _exit(53);
    if (write(fd, env, elen - 2) < 0) _exit(53);
    if (write(fd, "\n", 1) != 1) _exit(53);
  }
  else {
    if (write(fd, "aborted ", 8) != 8) _exit(53);
    if (write(fd, num, strlen(num)) < 0) _exit(53);
    if (write(fd, "\n", 1) != 1) _exit(53);
  }
  close(fd);
  free(msg);
  free(env);
  return ok ? 0 : 54;
}
