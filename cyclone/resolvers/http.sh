#!/bin/sh
# Http resolver: `push` POSTs a gzip tarball of $WORKSPACE/data to URL (the server's
# artifact endpoint); `pull` downloads URL and unpacks it (a tarball) or saves it as-is.
# Temporary files go to $TMPDIR (default /tmp): the container's root may be read-only.
#   URL: required. TOKEN: sent as a bearer token. ARTIFACT: the artifact name (default
#   data.tar.gz), sent as the X-Artifact-Name header and query parameter `name`.
set -eu

WORKSPACE="${WORKSPACE:-/workspace}"
DATA="$WORKSPACE/data"

fail() { echo "http resolver: $*" >&2; exit 1; }

need() { command -v "$1" >/dev/null 2>&1 || fail "$1 is not installed"; }

push() {
  need curl; need tar
  [ -n "${URL:-}" ] || fail "URL is required"
  [ -d "$DATA" ] || fail "nothing to push: $DATA does not exist"
  name="${ARTIFACT:-data.tar.gz}"
  case "$URL" in *\?*) target="$URL&name=$name" ;; *) target="$URL?name=$name" ;; esac
  archive="$(mktemp "${TMPDIR:-/tmp}/cyclone-http-push.XXXXXX")"
  tar -czf "$archive" -C "$DATA" . || { rm -f "$archive"; fail "cannot pack $DATA"; }
  set -- -fsS -X POST --data-binary "@$archive" -H "Content-Type: application/gzip" \
    -H "X-Artifact-Name: $name"
  [ -z "${TOKEN:-}" ] || set -- "$@" -H "Authorization: Bearer $TOKEN"
  curl "$@" "$target" >/dev/null || { rm -f "$archive"; fail "POST $URL failed"; }
  rm -f "$archive"
  echo "pushed $name to $URL"
}

pull() {
  need curl
  [ -n "${URL:-}" ] || fail "URL is required"
  mkdir -p "$DATA"
  set -- -fsSL
  [ -z "${TOKEN:-}" ] || set -- "$@" -H "Authorization: Bearer $TOKEN"
  tmp="$(mktemp "${TMPDIR:-/tmp}/cyclone-http-pull.XXXXXX")"
  curl "$@" -o "$tmp" "$URL" || { rm -f "$tmp"; fail "GET $URL failed"; }
  if tar -tzf "$tmp" >/dev/null 2>&1; then
    tar -xzf "$tmp" -C "$DATA"
    rm -f "$tmp"
  else
    mv "$tmp" "$DATA/$(basename "${URL%%\?*}")"
  fi
}

case "${1:-}" in
  pull) pull ;;
  push) push ;;
  *) fail "usage: $0 pull|push" ;;
esac
