#!/bin/sh
# Image resolver: `push` pushes REGISTRY/REPOSITORY:TAG with skopeo, podman or docker,
# whichever is installed (in that order). The image comes from $WORKSPACE/data/image.tar
# (a docker archive) when present, else from the local image store of podman/docker.
#   USER / PASSWORD: registry credentials. SOURCE_IMAGE: local image name to push
#   (default REPOSITORY:TAG). INSECURE=true: the registry speaks plain HTTP or has a
#   certificate that does not verify (skopeo and podman; docker takes this only from its
#   daemon's insecure-registries setting).
set -eu

WORKSPACE="${WORKSPACE:-/workspace}"
ARCHIVE="$WORKSPACE/data/image.tar"

fail() { echo "image resolver: $*" >&2; exit 1; }

target() {
  [ -n "${REPOSITORY:-}" ] || fail "REPOSITORY is required"
  ref="${REPOSITORY}:${TAG:-latest}"
  [ -z "${REGISTRY:-}" ] || ref="${REGISTRY%/}/$ref"
  printf '%s' "$ref"
}

push() {
  ref=$(target)
  source_image="${SOURCE_IMAGE:-${REPOSITORY}:${TAG:-latest}}"
  if command -v skopeo >/dev/null 2>&1; then
    set -- copy
    [ -z "${USER:-}" ] || set -- "$@" --dest-creds "$USER:${PASSWORD:-}"
    [ "${INSECURE:-}" != true ] || set -- "$@" --dest-tls-verify=false
    if [ -f "$ARCHIVE" ]; then src="docker-archive:$ARCHIVE"
    else src="containers-storage:$source_image"; fi
    skopeo "$@" "$src" "docker://$ref" || fail "skopeo could not push $ref"
  elif command -v podman >/dev/null 2>&1 || command -v docker >/dev/null 2>&1; then
    tool=podman
    command -v podman >/dev/null 2>&1 || tool=docker
    tls=""
    [ "$tool" != podman ] || [ "${INSECURE:-}" != true ] || tls=--tls-verify=false
    if [ -n "${USER:-}" ]; then
      printf '%s' "${PASSWORD:-}" | "$tool" login $tls -u "$USER" --password-stdin \
        "${REGISTRY:-docker.io}" >/dev/null || fail "$tool login to ${REGISTRY:-docker.io} failed"
    fi
    if [ -f "$ARCHIVE" ]; then
      loaded=$("$tool" load -i "$ARCHIVE" | sed -n 's/^Loaded image[^:]*: *//p' | tail -n 1)
      [ -z "$loaded" ] || source_image="$loaded"
    fi
    [ "$source_image" = "$ref" ] || "$tool" tag "$source_image" "$ref" \
      || fail "$tool could not tag $source_image as $ref"
    "$tool" push $tls "$ref" || fail "$tool could not push $ref"
  else
    fail "no image tool found: install one of skopeo, podman or docker to push $ref"
  fi
  echo "pushed $ref"
}

case "${1:-}" in
  push) push ;;
  pull) fail "pull is not supported for Image resources" ;;
  *) fail "usage: $0 push" ;;
esac
