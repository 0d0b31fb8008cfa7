/*
 * qmail-rcptcheck-realrcptto: the realrcptto check as an RCPTCHECK
 * program, for a qmail-smtpd that runs $RCPTCHECK once per recipient
 * (the smtpd-rcptcheck hook of notqmail, and hooks like it).
 *
 * In:   $RECIPIENT, the address as the client gave it ($SENDER is not
 *       used); the environment of qmail-smtpd (QMAILRRTDENYALL, PROTO,
 *       ${PROTO}REMOTEIP); the control files and users/cdb under
 *       auto_qmail; the system user database.
 * Out:  exit 0: accept; exit 100: no mailbox here by that name;
 *       exit 111: cannot tell now (the control files, users/cdb or the
 *       system user database cannot be read, out of memory, RECIPIENT
 *       not set), with one line on fd 2 naming the cause:
 *         qmail-rcptcheck-realrcptto: unable to read controls
 *       A rejected recipient is logged on fd 2 by the realrcptto core, as
 *       the patched qmail-smtpd logs it, "realrcptto PID REMOTEIP ADDR",
 *       PID being qmail-smtpd's (our parent's) process id.
 *       Nothing is ever written to fd 1: under qmail-smtpd that is the
 *       client's connection.
 *
 * Deny-all (QMAILRRTDENYALL=1): the patched qmail-smtpd accepts every
 * RCPT and refuses the whole message at DATA when one recipient would
 * have been rejected.  This program sees one recipient per process and
 * has no say at DATA, so it cannot refuse the message.  What it can still
 * do is what deny-all is for at RCPT: not reveal which addresses exist.
 * So in deny-all mode it accepts (exit 0) every recipient, and still logs
 * the line for each one it would have rejected; the message is queued
 * and qmail-local bounces it for those recipients.  Administrators who
 * need the message refused must use the realrcptto patch in qmail-smtpd.
 * (The core does exactly this: in deny-all mode realrcptto() logs and
 * returns RRT_ACCEPT.)
 *
 * Self-contained: libc, POSIX and realrcptto.c.  The four qmail
 * configuration values are declared here rather than through qmail's
 * auto_*.h headers, whose names differ between releases (notqmail
 * declares auto_usera in auto_users.h); they are linked from qmail's
 * auto_qmail.o, auto_break.o, auto_usera.o and auto_patrn.o.
 *
 * Compiled with -DRRT_LSPAWN_USERS (notqmail, whose qmail-lspawn looks
 * up qmailp, qmailq and nofiles when it starts), it also tells the core
 * those names (auto_userp.o, auto_userq.o, auto_groupn.o): when one is
 * missing every local delivery defers, and the program accepts.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "realrcptto.h"

extern char auto_qmail[];
extern char auto_break[];
extern char auto_usera[];
extern int auto_patrn;
#ifdef RRT_LSPAWN_USERS
extern char auto_userp[];
extern char auto_userq[];
extern char auto_groupn[];
#endif

#define EXIT_ACCEPT 0
#define EXIT_REJECT 100
#define EXIT_TEMP 111

static void err2(const char *s)
{
  unsigned long n = (unsigned long) strlen(s);
  long w;
  while (n > 0) {
    w = (long) write(2, s, n);
    if (w <= 0) return;
    s += w;
    n -= (unsigned long) w;
  }
}

/* qmail style: "PROGRAM: CAUSE", one line; then exit 111 */
static void temp(const char *cause)
{
  err2("qmail-rcptcheck-realrcptto: ");
  err2(cause);
  err2("\n");
  realrcptto_free();
  _exit(EXIT_TEMP);
}

/* the cause of a negative RRT_E* code, in qmail-smtpd's words */
static const char *cause(int r)
{
  switch (r) {
    case RRT_ENOMEM: return "out of memory";
    case RRT_ECONTROL: return "unable to read controls";
    case RRT_ECDB: return "unable to read cdb user database";
    case RRT_ESYS: return "unable to read system user database";
    default: return "unexpected answer from the realrcptto check";
  }
}

int main(void)
{
  const char *rcpt;
  int r;

  rcpt = getenv("RECIPIENT");
  if (!rcpt) temp("RECIPIENT not set");
  r = realrcptto_init(auto_qmail, *auto_break, auto_usera, auto_patrn);
  if (r != 0) temp(cause(r));
#ifdef RRT_LSPAWN_USERS
  r = realrcptto_lspawn_users(auto_userp, auto_userq, auto_groupn);
  if (r != 0) temp(cause(r));
#endif
  realrcptto_logpid((unsigned long) getppid());
  realrcptto_start();
  r = realrcptto(rcpt, (unsigned long) strlen(rcpt));
  if (r < 0) temp(cause(r));
  realrcptto_free();
  return (r == RRT_REJECT) ? EXIT_REJECT : EXIT_ACCEPT;
}
