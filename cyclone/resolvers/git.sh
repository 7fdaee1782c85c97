#!/bin/sh
# Git resolver: `pull` clones SCM_URL[/SCM_REPO] at SCM_REVISION into $WORKSPACE/data.
#   SCM_REVISION: a branch, tag or commit; "src:dst" checks out dst and merges src into it.
#   SCM_AUTH: a token; sent as HTTP basic auth (user SCM_USER, default oauth2).
# Writes LastCommitID to the termination log (and the results file when mounted).
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

fail() { echo "git resolver: $*" >&2; exit 1; }

repo_url() {
  url="${SCM_URL:-}"
  [ -n "$url" ] || fail "SCM_URL is required"
  if [ -n "${SCM_REPO:-}" ]; then
    url="${url%/}/${SCM_REPO#/}"
  fi
  printf '%s' "$url"
}

write_result() {
  echo "$1:$2"
  if [ -w "$TERMINATION_LOG" ] && [ ! -d "$TERMINATION_LOG" ]; then
    printf '%s:%s\n' "$1" "$2" >> "$TERMINATION_LOG"
  fi
  dir=$(dirname "$RESULTS_FILE")
  if [ -d "$dir" ] && [ -w "$dir" ]; then
    printf '%s:%s\n' "$1" "$2" >> "$RESULTS_FILE"
  fi
}

pull() {
  command -v git >/dev/null 2>&1 || fail "git is not installed"
  url=$(repo_url)
  set -- -c advice.detachedHead=false -c user.name=cyclone -c user.email=cyclone@localhost
  if [ -n "${SCM_AUTH:-}" ]; then
    basic=$(printf '%s:%s' "${SCM_USER:-oauth2}" "$SCM_AUTH" | base64 | tr -d '\n')
    set -- "$@" -c "http.extraHeader=Authorization: Basic $basic"
  fi
  mkdir -p "$WORKSPACE"
  if [ ! -d "$DATA/.git" ]; then
    empty_data
    git "$@" clone -q --no-checkout "$url" "$DATA" || fail "cannot clone $url"
  else
    git "$@" -C "$DATA" fetch -q --tags origin || fail "cannot fetch $url"
  fi
  revision="${SCM_REVISION:-}"
  case "$revision" in
    *:*)
      src="${revision%%:*}"
      dst="${revision#*:}"
      checkout "$dst" "$@"
      git "$@" -C "$DATA" fetch -q origin "$src" || fail "cannot fetch $src"
      git "$@" -C "$DATA" merge -q --no-edit FETCH_HEAD || fail "cannot merge $src into $dst"
      ;;
    "")
      git "$@" -C "$DATA" checkout -q "$(git -C "$DATA" rev-parse origin/HEAD 2>/dev/null \
        || git -C "$DATA" rev-parse HEAD)" || fail "cannot check out the default branch"
      ;;
    *)
      checkout "$revision" "$@"
      ;;
  esac
  write_result LastCommitID "$(git -C "$DATA" rev-parse HEAD)"
}

checkout() {
  rev="$1"; shift
  if git -C "$DATA" rev-parse -q --verify "origin/$rev^{commit}" >/dev/null; then
    git "$@" -C "$DATA" checkout -q -B "$rev" "origin/$rev" || fail "cannot check out $rev"
  elif git -C "$DATA" rev-parse -q --verify "$rev^{commit}" >/dev/null; then
    git "$@" -C "$DATA" checkout -q "$rev" || fail "cannot check out $rev"
  else
    git "$@" -C "$DATA" fetch -q origin "$rev" || fail "no revision $rev in $(repo_url)"
    git "$@" -C "$DATA" checkout -q FETCH_HEAD || fail "cannot check out $rev"
  fi
}

case "${1:-}" in
  pull) pull ;;
  push) fail "push is not supported for Git resources" ;;
  *) fail "usage: $0 pull" ;;
esac
