#!/bin/sh
# packager-ci.sh: the qmail packaging pipeline as one plain shell script,
# for packagers to copy into their own CI (any POSIX sh, Debian/Ubuntu).
#
#   fetch (cached) -> verify -> patch (emit .patch files) -> build as a
#   non-root user into a staging directory -> test with upstream sources
#   required -> collect the artifacts.
#
# Environment (all optional):
#   QMAIL_DISTFILES   where the release tarballs are kept between runs
#                     (cache this directory)   [target/distfiles]
#   QMAIL_CI_OUT      where the artifacts are collected  [target/ci]
#   QMAIL_PREFIX      the installation prefix compiled in  [/var/qmail]
#   QMAIL_CI_SEED     seed of the differential run  [1]
#   QMAIL_CI_INSTALL_DEPS=1  apt-get install the build/test dependencies
#
# Privileges: run it as an ordinary user. The build never needs root. The
# test step does: oracle G runs pristine qmail-lspawn, which switches to
# each test user's uid. It is run through `sudo -E` when the script is not
# root (passwordless sudo, as on GitHub's runners); without sudo it fails,
# because --require-upstream turns every skipped tier into a failure.
set -eu

cd "$(dirname "$0")/.."
top=$(pwd)
: "${QMAIL_DISTFILES:=$top/target/distfiles}"
: "${QMAIL_CI_OUT:=$top/target/ci}"
: "${QMAIL_PREFIX:=/var/qmail}"
: "${QMAIL_CI_SEED:=1}"
export QMAIL_DISTFILES

step() { printf '\n==> %s\n' "$*"; }

if [ "${QMAIL_CI_INSTALL_DEPS:-0}" = 1 ]; then
    step "installing build and test dependencies"
    sudo=""
    [ "$(id -u)" = 0 ] || sudo=sudo
    $sudo apt-get update -qq
    # gcc/make build qmail and the C cores, clang is the second compiler,
    # libnss-wrapper serves the test passwd files, util-linux has setpriv.
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
        --no-install-recommends build-essential clang make patch \
        libnss-wrapper util-linux ca-certificates
fi

rm -rf "$QMAIL_CI_OUT"
mkdir -p "$QMAIL_CI_OUT" "$QMAIL_DISTFILES"

step "fetch (only what is missing from $QMAIL_DISTFILES)"
cargo xtask fetch --distfiles "$QMAIL_DISTFILES"

step "verify sizes and digests"
cargo xtask verify --distfiles "$QMAIL_DISTFILES"

step "generate and apply the patches"
cargo xtask patch --distfiles "$QMAIL_DISTFILES" --offline --emit "$QMAIL_CI_OUT/patches"

step "build as $(id -un) (uid $(id -u)), staged under $QMAIL_CI_OUT/stage"
if [ "$(id -u)" = 0 ]; then
    echo "warning: running as root; the build is meant to show that root is not needed" >&2
fi
cargo xtask build --distfiles "$QMAIL_DISTFILES" --offline \
    --prefix "$QMAIL_PREFIX" --destdir "$QMAIL_CI_OUT/stage"

step "test, upstream tiers required"
status=0
if [ "$(id -u)" = 0 ]; then
    cargo xtask test --distfiles "$QMAIL_DISTFILES" --require-upstream \
        --seed "$QMAIL_CI_SEED" || status=$?
else
    sudo -E env "PATH=$PATH" "HOME=$HOME" \
        "CARGO_HOME=${CARGO_HOME:-$HOME/.cargo}" \
        "RUSTUP_HOME=${RUSTUP_HOME:-$HOME/.rustup}" \
        cargo xtask test --distfiles "$QMAIL_DISTFILES" --require-upstream \
        --seed "$QMAIL_CI_SEED" || status=$?
    # Give the files the test step wrote back to this user.
    sudo chown -R "$(id -u):$(id -g)" "$top/target" || true
fi

step "collecting artifacts in $QMAIL_CI_OUT"
mkdir -p "$QMAIL_CI_OUT/difftest"
for f in report.md report.json; do
    [ -f "target/difftest/$f" ] && cp "target/difftest/$f" "$QMAIL_CI_OUT/difftest/"
done
[ -d target/difftest/failures ] && cp -R target/difftest/failures "$QMAIL_CI_OUT/difftest/"
# The build's manifest (installed files, intended owners, modes, digests).
manifest="$QMAIL_CI_OUT/stage$QMAIL_PREFIX/share/qmail-toolkit/manifest.json"
[ -f "$manifest" ] && cp "$manifest" "$QMAIL_CI_OUT/manifest.json"
ls -l "$QMAIL_CI_OUT"
[ -f "$QMAIL_CI_OUT/difftest/report.md" ] && tail -n 1 "$QMAIL_CI_OUT/difftest/report.md"
exit "$status"
