/* qbranch-driver: oracle B of spec/differential.md.
 *
 * Runs the instruction loop of a branch-patched qmail-local on a .qmail
 * program, using the qbranch core (patches/c/qbranch.c) for every branch
 * decision, but without delivering anything: commands are not run, their
 * exit statuses are given on the command line.
 *
 * usage: qbranch-driver [-n] [-x] FILE [STATUS ...]
 *   -n      qmail-local -n: print only, run nothing (unconditional ? jumps)
 *   -x      the .qmail file has the x bit set (forward-only mode)
 *   FILE    the .qmail program (any bytes; must not be empty)
 *   STATUS  exit status of the 1st, 2nd, ... command line of FILE, counted
 *           in file order over every | line and every ? line that has a
 *           command, whether it runs or not; missing ones are 0.
 *
 * Output, one line per decision: "LINENO WHAT [ARGS]" where WHAT is blank,
 * comment, skip, target LABEL, list, ignore, mbox PATH, maildir PATH,
 * forward ADDR, program STATUS CMD (STATUS is "-" with -n), stop (a |
 * command exited 99), jump NEXT LABEL (NEXT = line number where processing
 * goes on, or "none" when the label is not found). Then, when the run
 * succeeds, "sent ADDR" for each forward sent at the end (not with -n) and
 * "did F+W+P"; last "exit CODE [MESSAGE]". Bytes outside 0x21..0x7e except
 * space, and backslash, are written as \xHH. Exit status 0, or 2 on usage
 * or I/O errors.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "qbranch.h"

/* file scope, so that an early exit leaves them reachable (not leaked) */
static char *buf = 0;
static int *statuses = 0;
static size_t *fwd = 0;
static size_t *fwdlen = 0;

static void put_bytes(const char *s, size_t n)
{
  size_t i;
  unsigned char c;
  for (i = 0; i < n; ++i) {
    c = (unsigned char) s[i];
    if (c == '\\' || c < 0x20 || c > 0x7e)
      printf("\\x%02x", (unsigned int) c);
    else
      putchar(c);
  }
}

static size_t cstrlen(const char *s, size_t n)
{
  size_t i = 0;
  while (i < n && s[i] != '\0') ++i;
  return i;
}

static void die_usage(void)
{
  fputs("usage: qbranch-driver [-n] [-x] FILE [STATUS ...]\n", stderr);
  exit(2);
}

static int finish(int code, const char *msg)
{
  printf("exit %d", code);
  if (msg) printf(" %s", msg);
  putchar('\n');
  return 0;
}

static int status_class(int st)
{
  switch (st) {
    case 0: return 0;
    case 99: return 99;
    case 100: case 64: case 65: case 70: case 76: case 77: case 78:
    case 112: return 100;
    default: return 111;
  }
}

int main(int argc, char **argv)
{
  int flagdoit = 1;
  int flagforwardonly = 0;
  int a = 1;
  FILE *f;
  size_t len = 0;
  size_t cap = 0;
  size_t n;
  int nstatus;
  int nextcmd = 0;
  size_t i;
  size_t j;
  size_t k;
  size_t skipto = 0;
  size_t next;
  unsigned long lineno = 0;
  unsigned long count_file = 0, count_forward = 0, count_program = 0;
  size_t nfwd = 0;
  struct qbranch_line bl;
  int st;
  int found;

  while (a < argc && argv[a][0] == '-' && argv[a][1]) {
    if (!strcmp(argv[a], "-n")) flagdoit = 0;
    else if (!strcmp(argv[a], "-x")) flagforwardonly = 1;
    else die_usage();
    ++a;
  }
  if (a >= argc) die_usage();
  f = fopen(argv[a], "rb");
  if (!f) { perror(argv[a]); return 2; }
  for (;;) {
    if (len + 4096 + 1 > cap) {
      char *nb;
      cap = 2 * cap + 4096 + 1;
      nb = (char *) realloc(buf, cap);
      if (!nb) { fputs("out of memory\n", stderr); return 2; }
      buf = nb;
    }
    n = fread(buf + len, 1, 4096, f);
    len += n;
    if (n == 0) break;
  }
  if (ferror(f)) { perror(argv[a]); return 2; }
  fclose(f);
  ++a;
  if (len == 0) { fputs("empty program (qmail-local would use aliasempty)\n", stderr); return 2; }
  if (buf[len - 1] != '\n') buf[len++] = '\n';

  nstatus = argc - a;
  statuses = (int *) malloc(sizeof(int) * (size_t) (nstatus + 1));
  fwd = (size_t *) malloc(sizeof(size_t) * (len + 1));
  fwdlen = (size_t *) malloc(sizeof(size_t) * (len + 1));
  if (!statuses || !fwd || !fwdlen) { fputs("out of memory\n", stderr); return 2; }
  for (st = 0; st < nstatus; ++st) {
    char *end;
    long v = strtol(argv[a + st], &end, 10);
    if (*end || end == argv[a + st] || v < 0 || v > 255) die_usage();
    statuses[st] = (int) v;
  }

  i = 0;
  for (j = 0; j < len; ++j) {
    int stop = 0;
    int cmdstatus;
    if (buf[j] != '\n') continue;
    ++lineno;
    k = j;
    while (k > i && (buf[k - 1] == ' ' || buf[k - 1] == '\t')) --k;
    /* command lines are numbered whether they run or not */
    cmdstatus = 0;
    if (k > i && buf[i] == '|') {
      cmdstatus = nextcmd < nstatus ? statuses[nextcmd] : 0;
      ++nextcmd;
    } else if (qbranch_parse(buf + i, k - i, &bl) == QBRANCH_COND) {
      cmdstatus = nextcmd < nstatus ? statuses[nextcmd] : 0;
      ++nextcmd;
    }
    if (i < skipto) {
      printf("%lu skip\n", lineno);
      i = j + 1;
      continue;
    }
    switch (k > i ? buf[i] : 0) {
      case 0:
        if (i == 0)
          return finish(111, "Uh-oh: first line of .qmail file is blank. (#4.2.1)");
        printf("%lu blank\n", lineno);
        break;
      case '#':
        printf("%lu comment\n", lineno);
        break;
      case '.':
      case '/':
        ++count_file;
        if (flagforwardonly)
          return finish(111, "Uh-oh: .qmail has file delivery but has x bit set. (#4.7.0)");
        printf("%lu %s ", lineno, buf[k - 1] == '/' ? "maildir" : "mbox");
        put_bytes(buf + i, cstrlen(buf + i, k - i));
        putchar('\n');
        break;
      case '|':
        ++count_program;
        if (flagforwardonly)
          return finish(111, "Uh-oh: .qmail has prog delivery but has x bit set. (#4.7.0)");
        if (flagdoit) printf("%lu program %d ", lineno, cmdstatus);
        else printf("%lu program - ", lineno);
        put_bytes(buf + i + 1, cstrlen(buf + i + 1, k - i - 1));
        putchar('\n');
        if (flagdoit) {
          switch (status_class(cmdstatus)) {
            case 100: return finish(100, 0);
            case 111: return finish(111, 0);
            case 99: printf("%lu stop\n", lineno); stop = 1; break;
            default: break;
          }
        }
        break;
      case '?':
      case ':':
        switch (qbranch_parse(buf + i, k - i, &bl)) {
          case QBRANCH_TARGET:
            printf("%lu target ", lineno);
            put_bytes(buf + i + bl.label, bl.labellen);
            putchar('\n');
            break;
          case QBRANCH_COND:
            ++count_program;
            if (flagforwardonly)
              return finish(111, "Uh-oh: .qmail has prog delivery but has x bit set. (#4.7.0)");
            if (flagdoit) printf("%lu program %d ", lineno, cmdstatus);
            else printf("%lu program - ", lineno);
            put_bytes(buf + i + bl.cmd, bl.cmdlen);
            putchar('\n');
            if (!flagdoit) break;
            switch (status_class(cmdstatus)) {
              case 100: return finish(100, 0);
              case 111: return finish(111, 0);
              case 0: break;
              default: goto jump;
            }
            break;
          case QBRANCH_JUMP:
          jump:
            found = qbranch_find(buf, len, j + 1, buf + i + bl.label, bl.labellen, &next);
            if (found) {
              /* the line number of the line that starts at next */
              unsigned long m = lineno + 1;
              size_t p;
              for (p = j + 1; p < next; ++p) if (buf[p] == '\n') ++m;
              printf("%lu jump %lu ", lineno, m);
            } else
              printf("%lu jump none ", lineno);
            put_bytes(buf + i + bl.label, bl.labellen);
            putchar('\n');
            skipto = next;
            break;
          default:
            fputs("internal error: ? or : line not classified\n", stderr);
            return 2;
        }
        break;
      case '+':
        if (k - i == 5 && !memcmp(buf + i, "+list", 5)) {
          flagforwardonly = 1;
          printf("%lu list\n", lineno);
        } else
          printf("%lu ignore\n", lineno);
        break;
      case '&':
        ++i;
        /* fall through */
      default:
        ++count_forward;
        printf("%lu forward ", lineno);
        put_bytes(buf + i, cstrlen(buf + i, k - i));
        putchar('\n');
        if (flagdoit) { fwd[nfwd] = i; fwdlen[nfwd] = cstrlen(buf + i, k - i); ++nfwd; }
        break;
    }
    i = j + 1;
    if (stop) break;
  }
  for (n = 0; n < nfwd; ++n) {
    printf("sent ");
    put_bytes(buf + fwd[n], fwdlen[n]);
    putchar('\n');
  }
  printf("did %lu+%lu+%lu\n", count_file, count_forward, count_program);
  return finish(0, 0);
}
