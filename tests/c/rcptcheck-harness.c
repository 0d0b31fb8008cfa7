/*
 * rcptcheck-harness: runs an RCPTCHECK program once per address the way
 * notqmail's smtpd-rcptcheck hook in qmail-smtpd does: fork, put SENDER
 * and RECIPIENT (the address up to its first NUL, as qmail-smtpd's
 * addr.s) into the environment, execv the program, wait.  Part of the
 * differential test suite (oracle P).
 *
 * usage: rcptcheck-harness [-u] PROGRAM < netstrings "LEN:ADDR,"
 *   -u  leave RECIPIENT unset (to test the program's error path)
 *
 * Output (stdout): "pid PID\n" (this process: the program's parent, whose
 * pid its log lines must name), then per address
 *   STATUS SP ELEN ":" STDERR "," OLEN ":" STDOUT ",\n"
 * STATUS is "eN" (exit code N; 120: execv failed, as in the hook) or "sN"
 * (killed by signal N); STDERR and STDOUT are what the program wrote
 * there (under qmail-smtpd, stdout is the client's connection); "end\n".
 */
#include <sys/types.h>
#include <sys/wait.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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

/* the whole of fd as a netstring on stdout */
static void dump(int fd)
{
  char buf[4096];
  long end;
  long got = 0;
  end = (long) lseek(fd, 0, SEEK_END);
  if (end < 0 || lseek(fd, 0, SEEK_SET) == -1) die("lseek");
  fprintf(stdout, "%ld:", end);
  while (got < end) {
    long k = (long) read(fd, buf, sizeof buf);
    if (k <= 0) die("read capture");
    fwrite(buf, 1, (size_t) k, stdout);
    got += k;
  }
  fputc(',', stdout);
}

static int capture(void)
{
  FILE *f = tmpfile();
  if (!f) die("tmpfile");
  return fileno(f);
}

static void one(char *prog, const char *a, unsigned long n, int unset)
{
  char *argv[2];
  char *addr;
  int err = capture();
  int out = capture();
  int wstat;
  pid_t pid;

  addr = (char *) malloc(n + 1);
  if (!addr) die("nomem");
  memcpy(addr, a, n);
  addr[n] = 0;
  fflush(stdout);
  pid = fork();
  if (pid == -1) die("fork");
  if (pid == 0) {
    if (dup2(out, 1) == -1 || dup2(err, 2) == -1) _exit(120);
    if (setenv("SENDER", "sender@difftest.invalid", 1) == -1) _exit(120);
    if (!unset && setenv("RECIPIENT", addr, 1) == -1) _exit(120);
    argv[0] = prog;
    argv[1] = 0;
    execv(prog, argv);
    _exit(120);
  }
  free(addr);
  while (waitpid(pid, &wstat, 0) == -1)
    if (errno != EINTR) die("waitpid");
  if (WIFSIGNALED(wstat)) fprintf(stdout, "s%d ", WTERMSIG(wstat));
  else fprintf(stdout, "e%d ", WEXITSTATUS(wstat));
  dump(err);
  dump(out);
  fputc('\n', stdout);
  close(err);
  close(out);
}

int main(int argc, char **argv)
{
  int unset = 0;
  int i = 1;
  unsigned long pos = 0;

  if (i < argc && !strcmp(argv[i], "-u")) { unset = 1; ++i; }
  if (argc - i != 1) die("usage: rcptcheck-harness [-u] PROGRAM");
  fprintf(stdout, "pid %lu\n", (unsigned long) getpid());
  readin();
  while (pos < inlen) {
    unsigned long n = 0;
    while (pos < inlen && in[pos] >= '0' && in[pos] <= '9') {
      n = n * 10 + (unsigned long) (in[pos] - '0');
      ++pos;
    }
    if (pos >= inlen || in[pos] != ':') die("bad netstring");
    ++pos;
    if (n > inlen - pos || inlen - pos - n < 1 || in[pos + n] != ',') die("bad netstring");
    one(argv[i], in + pos, n, unset);
    pos += n + 1;
  }
  fputs("end\n", stdout);
  fflush(stdout);
  free(in);
  return 0;
}
