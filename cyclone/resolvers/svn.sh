#!/bin/sh
# Svn resolver: `pull` checks out SCM_URL[/SCM_REPO] at SCM_REVISION into $WORKSPACE/data.
#   SCM_USER / SCM_AUTH: credentials (SCM_AUTH is the password or token).
set -eu

WORKSPACE="${WORKSPACE:-/workspace}"
DATA="$WORKSPACE/data"
RESULTS_FILE="${RESULTS_FILE:-/cyclone/results/__result__}"
TERMINATION_LOG="${TERMINATION_LOG:-/dev/termination-log}"

# $DATA may be a mount point: empty it rather than remove it.
empty_data() {
  mkdir -p "$DATA"
  rm -rf "$DATA"/* "$DATA"/.[!.]* "$DATA"/..?* 2>/dev/null || true
}

fail() { echo "svn resolver: $*" >&2; exit 1; }

pull() {
  command -v svn >/dev/null 2>&1 || fail "svn is not installed"
  url="${SCM_URL:-}"
  [ -n "$url" ] || fail "SCM_URL is required"
  [ -z "${SCM_REPO:-}" ] || url="${url%/}/${SCM_REPO#/}"
  set -- --non-interactive --trust-server-cert-failures=unknown-ca,cn-mismatch,expired
  [ -z "${SCM_USER:-}" ] || set -- "$@" --username "$SCM_USER"
  [ -z "${SCM_AUTH:-}" ] || set -- "$@" --password "$SCM_AUTH" --no-auth-cache
  [ -z "${SCM_REVISION:-}" ] || set -- "$@" --revision "$SCM_REVISION"
  mkdir -p "$WORKSPACE"
  if [ -d "$DATA/.svn" ]; then
    svn update -q "$@" "$DATA" || fail "cannot update $url"
  else
    empty_data
    svn checkout -q "$@" "$url" "$DATA" || fail "cannot check out $url"
  fi
  revision=$(svn info --show-item revision "$DATA")
  echo "LastCommitID:$revision"
  if [ -w "$TERMINATION_LOG" ] && [ ! -d "$TERMINATION_LOG" ]; then
    printf 'LastCommitID:%s\n' "$revision" >> "$TERMINATION_LOG"
  fi
  if [ -d "$(dirname "$RESULTS_FILE")" ]; then
    printf 'LastCommitID:%s\n' "$revision" >> "$RESULTS_FILE"
  fi
}

case "${1:-}" in
  pull) pull ;;
  push) fail "push is not supported for Svn resources" ;;
  *) fail "usage: $0 pull" ;;
esac
