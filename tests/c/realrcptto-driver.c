/*
 * realrcptto-driver: runs the realrcptto C core on addresses and prints
 * one verdict per address.  Part of the differential test suite (oracle C).
 *
 * usage: realrcptto-driver [-z] [-1] [-L] [-p PATRN] [-m SRC DST] [-M K SRC DST] QMAILHOME BREAK ALIAS
 *   BREAK  the conf-break byte as a decimal number (45 for '-')
 *   PATRN  the auto_patrn mode bits, octal (default 002)
 *   -z     addresses on stdin are netstrings "LEN:BYTES," (any byte value,
 *          including NUL and newline); default: one address per line
 *   -1     all addresses form one transaction (realrcptto_start is called
 *          once); default: each address is its own transaction
 *   -L     qmail-lspawn looks up qmailp, qmailq and nofiles when it starts
 *          (notqmail): realrcptto_lspawn_users after init
 *   -m     after realrcptto_init, rename SRC to DST (to show that control
 *          files are read once, at init)
 *   -M K SRC DST  rename SRC to DST after the K-th address (to show when a
 *          users/cdb that qmail-newu renames into place is seen)
 *
 * Output (stdout):
 *   "init ok\n", or "init nomem\n" / "init control\n" and nothing else;
 *   then per address:
 *     VERDICT SP DENY SP WLEN ":" WHY "," LLEN ":" LOG ",\n"
 *   VERDICT is accept, reject, nomem, control, cdb or sys; DENY is
 *   realrcptto_deny() after the call (0/1); WHY is realrcptto_why(); LOG is
 *   everything the core wrote to fd 2 during the call;
 *   finally "end\n".
 */
#include <sys/types.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "realrcptto.h"

static void die(const char *m)
{
  fprintf(stdout, "fatal %s\n", m);
  fflush(stdout);
  exit(111);
}

static char *in;
static unsigned long inlen;

static void readin(void)
{
  unsigned long a = 65536;
  long r;
  in = (char *) malloc(a);
  if (!in) die("nomem");
  inlen = 0;
  for (;;) {
    if (inlen == a) {
      char *t;
      a *= 2;
      t = (char *) realloc(in, a);
      if (!t) die("nomem");
      in = t;
    }
    r = (long) read(0, in + inlen, a - inlen);
    if (r == -1) { if (errno == EINTR) continue; die("read"); }
    if (r == 0) break;
    inlen += (unsigned long) r;
  }
}

static void putns(const char *s, unsigned long n)
{
  fprintf(stdout, "%lu:", n);
  if (n) fwrite(s, 1, n, stdout);
  fputc(',', stdout);
}

static int logfd;

static void one(const char *a, unsigned long n, int each)
{
  int r;
  const char *v;
  const char *w;
  long end;
  char *buf;
  char *copy;

  if (lseek(2, 0, SEEK_SET) == -1) die("lseek");
  if (ftruncate(2, 0) == -1) die("ftruncate");
  if (each) realrcptto_start();
  /* an exact-size copy, so that a sanitizer sees any read past the end */
  copy = (char *) malloc(n);
  if (!copy && n) die("nomem");
  if (n) memcpy(copy, a, n);
  r = realrcptto(copy ? copy : "", n);
  free(copy);
  switch (r) {
    case RRT_ACCEPT: v = "accept"; break;
    case RRT_REJECT: v = "reject"; break;
    case RRT_ENOMEM: v = "nomem"; break;
    case RRT_ECONTROL: v = "control"; break;
    case RRT_ECDB: v = "cdb"; break;
    case RRT_ESYS: v = "sys"; break;
    default: v = "unknown"; break;
  }
  w = realrcptto_why();
  fprintf(stdout, "%s %d ", v, realrcptto_deny());
  putns(w, (unsigned long) strlen(w));
  end = (long) lseek(2, 0, SEEK_CUR);
  if (end < 0) die("lseek");
  buf = (char *) malloc((size_t) end + 1);
  if (!buf) die("nomem");
  if (lseek(logfd, 0, SEEK_SET) == -1) die("lseek");
  {
    long got = 0;
    while (got < end) {
      long k = (long) read(logfd, buf + got, (size_t) (end - got));
      if (k <= 0) die("read log");
      got += k;
    }
  }
  putns(buf, (unsigned long) end);
  free(buf);
  fputc('\n', stdout);
}

int main(int argc, char **argv)
{
  int netstrings = 0;
  int each = 1;
  int patrn = 2;
  int i = 1;
  int r;
  FILE *tf;
  unsigned long pos;
  const char *mvsrc = 0;
  const char *mvdst = 0;
  unsigned long mvafter = 0;
  const char *mv2src = 0;
  const char *mv2dst = 0;
  unsigned long count = 0;
  int lspawn = 0;

  while (i < argc && argv[i][0] == '-') {
    if (!strcmp(argv[i], "-z")) netstrings = 1;
    else if (!strcmp(argv[i], "-1")) each = 0;
    else if (!strcmp(argv[i], "-L")) lspawn = 1;
    else if (!strcmp(argv[i], "-p") && i + 1 < argc) patrn = (int) strtol(argv[++i], 0, 8);
    else if (!strcmp(argv[i], "-m") && i + 2 < argc) { mvsrc = argv[i + 1]; mvdst = argv[i + 2]; i += 2; }
    else if (!strcmp(argv[i], "-M") && i + 3 < argc) {
      mvafter = strtoul(argv[i + 1], 0, 10);
      mv2src = argv[i + 2];
      mv2dst = argv[i + 3];
      i += 3;
    }
    else die("usage");
    ++i;
  }
  if (argc - i != 3) die("usage: realrcptto-driver [-z] [-1] [-L] [-p PATRN] QMAILHOME BREAK ALIAS");

  tf = tmpfile();
  if (!tf) die("tmpfile");
  logfd = fileno(tf);
  if (dup2(logfd, 2) == -1) die("dup2");

  r = realrcptto_init(argv[i], atoi(argv[i + 1]), argv[i + 2], patrn);
  if (r == RRT_ENOMEM) { fputs("init nomem\n", stdout); return 0; }
  if (r == RRT_ECONTROL) { fputs("init control\n", stdout); return 0; }
  if (r != 0) die("init");
  if (lspawn && realrcptto_lspawn_users("qmailp", "qmailq", "nofiles") != 0) {
    fputs("init nomem\n", stdout);
    return 0;
  }
  if (mvsrc && rename(mvsrc, mvdst) == -1) die("rename");
  fputs("init ok\n", stdout);
  if (!each) realrcptto_start();

  readin();
  pos = 0;
  while (pos < inlen) {
    if (netstrings) {
      unsigned long n = 0;
      while (pos < inlen && in[pos] >= '0' && in[pos] <= '9') {
        n = n * 10 + (unsigned long) (in[pos] - '0');
        ++pos;
      }
      if (pos >= inlen || in[pos] != ':') die("bad netstring");
      ++pos;
      if (n > inlen - pos || inlen - pos - n < 1 || in[pos + n] != ',') die("bad netstring");
      one(in + pos, n, each);
      pos += n + 1;
      if (mv2src && ++count == mvafter && rename(mv2src, mv2dst) == -1) die("rename");
    }
    else {
      unsigned long e = pos;
      while (e < inlen && in[e] != '\n') ++e;
      one(in + pos, e - pos, each);
      pos = e + 1;
      if (mv2src && ++count == mvafter && rename(mv2src, mv2dst) == -1) die("rename");
    }
  }
  fputs("end\n", stdout);
  fflush(stdout);
  realrcptto_free();
  free(in);
  fclose(tf);
  return 0;
}
