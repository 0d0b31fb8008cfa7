/*
 * realrcptto: reject, during SMTP and QMTP, the recipients whose local
 * delivery is certain to end in "Sorry, no mailbox here by that name.
 * (#5.1.1)".  Self-contained: needs only libc and POSIX.
 *
 * Error handling: every entry point that can fail returns a negative
 * RRT_E* code instead of calling back into the program.  The hooks in
 * qmail-smtpd and qmail-qmtpd map these codes to their replies:
 *   RRT_ENOMEM   -> 421 out of memory (#4.3.0)
 *   RRT_ECONTROL -> 421 unable to read controls (#4.3.0)
 *   RRT_ECDB     -> 421 unable to read cdb user database (#4.3.0)
 *   RRT_ESYS     -> 421 unable to read system user database (#4.3.0)
 * (qmail-qmtpd: exit 111 for all of them.)
 */
#ifndef REALRCPTTO_H
#define REALRCPTTO_H

#define RRT_REJECT 0
#define RRT_ACCEPT 1
#define RRT_ENOMEM (-1)
#define RRT_ECONTROL (-2)
#define RRT_ECDB (-3)
#define RRT_ESYS (-4)

/*
 * Read the control files (control/me, envnoathost, locals, percenthack,
 * virtualdomains, relative to qmailhome) and the environment
 * (QMAILRRTDENYALL, PROTO, ${PROTO}REMOTEIP) once.  brk is qmail's
 * conf-break byte (auto_break[0]), usera the alias user (auto_usera),
 * patrn the mode bits that make a home directory unusable (auto_patrn).
 * Returns 0, RRT_ENOMEM or RRT_ECONTROL.  May be called again; the old
 * state is freed first.
 */
extern int realrcptto_init(const char *qmailhome, int brk,
                           const char *usera, int patrn);

/*
 * For a qmail whose qmail-lspawn looks its users up when it starts
 * (notqmail: getpwnam(userp), getpwnam(userq), getgrnam(groupn), the
 * names of auto_userp, auto_userq, auto_groupn) and exits 111 when one is
 * missing, so that every local delivery defers: ask the same, once per
 * transaction, before judging a local recipient, and accept every local
 * recipient when one is missing.  Call it after realrcptto_init (which
 * forgets it).  Returns 0 or RRT_ENOMEM.
 */
extern int realrcptto_lspawn_users(const char *userp, const char *userq,
                                   const char *groupn);

/*
 * Start a transaction (SMTP MAIL, QMTP message): forget earlier denials
 * and what stat() said about homes and .qmail files; the next users/cdb
 * look-up checks whether users/cdb was replaced (qmail-newu renames a new
 * one into place) and, if so, opens the new one.  users/cdb stays open
 * (mapped, its descriptor closed; or, when it cannot be mapped, open
 * close-on-exec) from its first look-up until realrcptto_free.
 */
extern void realrcptto_start(void);

/*
 * Judge one recipient: addr is len bytes (not NUL-terminated; bytes after
 * a NUL are ignored, as qmail-queue would never see them).  Returns
 * RRT_ACCEPT, RRT_REJECT (after logging "realrcptto PID REMOTEIP ADDR" on
 * fd 2), or a negative RRT_E* code.  In deny-all mode a would-be
 * rejection is recorded and RRT_ACCEPT is returned.
 */
extern int realrcptto(const char *addr, unsigned long len);

/* Deny-all mode is on and this transaction has a rejected recipient. */
extern int realrcptto_deny(void);

/* A short static description of why the last call decided as it did. */
extern const char *realrcptto_why(void);

/*
 * Name pid instead of this process in the "realrcptto PID REMOTEIP ADDR"
 * lines (default: getpid() at realrcptto_init; call it after init).  The
 * RCPTCHECK program qmail-rcptcheck-realrcptto passes getppid(), so that
 * the line names qmail-smtpd, as the patched qmail-smtpd's own line does.
 */
extern void realrcptto_logpid(unsigned long pid);

/* Free everything realrcptto_init allocated and close users/cdb. */
extern void realrcptto_free(void);

#endif
