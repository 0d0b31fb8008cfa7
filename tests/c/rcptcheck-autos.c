/*
 * rcptcheck-autos: stand-in definitions of qmail's auto_qmail, auto_break,
 * auto_usera and auto_patrn for qmail-rcptcheck-realrcptto built outside
 * the qmail tree (oracle P of the differential suite).  In qmail they are
 * compiled in (conf-qmail, conf-break, conf-users, conf-patrn); here every
 * world has its own qmail home and break, so a constructor takes them from
 * the environment before main runs:
 *   RRT_TEST_QMAIL  the qmail home          (default /var/qmail)
 *   RRT_TEST_BREAK  the break byte, decimal (default 45, '-')
 *   RRT_TEST_USERA  the alias user          (default alias)
 *   RRT_TEST_PATRN  auto_patrn, octal       (default 002)
 * and notqmail's auto_userp, auto_userq and auto_groupn (qmailp, qmailq,
 * nofiles), which the notqmail build of the program (rcptcheck-lspawn.c)
 * passes to the core.
 * Test code only: it is not part of the patch.
 */
#include <stdlib.h>
#include <string.h>

char auto_qmail[4096] = "/var/qmail";
char auto_break[2] = "-";
char auto_usera[256] = "alias";
int auto_patrn = 002;
char auto_userp[] = "qmailp";
char auto_userq[] = "qmailq";
char auto_groupn[] = "nofiles";

static void copy(char *to, unsigned long size, const char *from)
{
  if (!from || strlen(from) >= size) return;
  strcpy(to, from);
}

static void rrt_test_autos(void) __attribute__((constructor));
static void rrt_test_autos(void)
{
  const char *x;
  copy(auto_qmail, sizeof auto_qmail, getenv("RRT_TEST_QMAIL"));
  copy(auto_usera, sizeof auto_usera, getenv("RRT_TEST_USERA"));
  x = getenv("RRT_TEST_BREAK");
  if (x) auto_break[0] = (char) atoi(x);
  x = getenv("RRT_TEST_PATRN");
  if (x) auto_patrn = (int) strtol(x, 0, 8);
}
