/*
 * checkpassword-stub: the checkpassword program of the SMTP AUTH session
 * tier (oracle S on a tree with the SMTP AUTH patch).  It speaks the
 * checkpassword interface qmail-smtpd's AUTH code uses:
 *
 *   checkpassword-stub prog args...
 *
 * reads "user\0password\0timestamp\0" (at most 512 bytes) from fd 3 and,
 * when user and password equal $CHECKPW_STUB_USER and
 * $CHECKPW_STUB_PASSWORD, execs prog with its args; otherwise it exits 1
 * (rejected).  Misuse (no prog, the variables unset, fd 3 unreadable or
 * the input without its two NUL terminators) exits 2; a failed exec 111.
 * No user database, no secrets: the test picks both values.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAXINPUT 512

static int read_all(int fd, char *buf, unsigned int max, unsigned int *len)
{
  unsigned int n = 0;
  long r;
  for (;;) {
    if (n == max) break;
    r = (long) read(fd, buf + n, max - n);
    if (r == -1) { if (errno == EINTR) continue; return -1; }
    if (r == 0) break;
    n += (unsigned int) r;
  }
  *len = n;
  return 0;
}

/* the end of the NUL-terminated field starting at pos, or -1 */
static long field_end(const char *buf, unsigned int len, unsigned int pos)
{
  while (pos < len) {
    if (!buf[pos]) return (long) pos;
    ++pos;
  }
  return -1;
}

int main(int argc, char **argv)
{
  static char buf[MAXINPUT];
  unsigned int len;
  long uend;
  long pend;
  const char *want_user = getenv("CHECKPW_STUB_USER");
  const char *want_pass = getenv("CHECKPW_STUB_PASSWORD");

  if (argc < 2 || !want_user || !want_pass) return 2;
  if (read_all(3, buf, sizeof buf, &len) == -1) return 2;
  close(3);
  uend = field_end(buf, len, 0);
  if (uend < 0) return 2;
  pend = field_end(buf, len, (unsigned int) uend + 1);
  if (pend < 0) return 2;
  if (strcmp(buf, want_user) != 0) return 1;
  if (strcmp(buf + uend + 1, want_pass) != 0) return 1;
  execvp(argv[1], argv + 1);
  return 111;
}
