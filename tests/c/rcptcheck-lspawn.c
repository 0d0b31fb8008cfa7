/*
 * rcptcheck-lspawn: qmail-rcptcheck-realrcptto as notqmail's rcptcheck
 * patch compiles it (-DRRT_LSPAWN_USERS: qmail-lspawn looks up qmailp,
 * qmailq and nofiles when it starts), for oracle P of a notqmail-1.09
 * run.  The stand-in names are in rcptcheck-autos.c.  Test code only.
 */
#define RRT_LSPAWN_USERS 1
#include "../../patches/c/qmail-rcptcheck-realrcptto.c"
