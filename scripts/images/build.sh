#!/usr/bin/env bash
# Build every image Cyclone's own pods use, offline, from Debian packages, as OCI archives in
# dist/images/ (no registry, no container daemon): see scripts/images/README.md.
#
#   bash scripts/images/build.sh [IMAGE...]     (default: all of them)
#
# Every layer and archive is cached under $CYCLONE_IMAGES_CACHE (~/.cache/cyclone/images) by a
# hash of its inputs; an unchanged input re-uses its archive at once. SOURCE_DATE_EPOCH fixes
# every timestamp, so two builds of the same inputs give the same digests.
set -euo pipefail
shopt -s inherit_errexit
umask 022

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
HERE="${REPO}/scripts/images"
OUT="${CYCLONE_IMAGES_OUT:-${REPO}/dist/images}"
CACHE="${CYCLONE_IMAGES_CACHE:-${HOME}/.cache/cyclone/images}"
SUITE="${CYCLONE_IMAGES_SUITE:-bookworm}"
export SOURCE_DATE_EPOCH="${SOURCE_DATE_EPOCH:-1747699200}"
HOST_PYTHON="${HOST_PYTHON:-python3}"
PIP="${CYCLONE_IMAGES_PIP:-${REPO}/.venv/bin/python -m pip}"
ALL_IMAGES=(toolbox pause resolver-git resolver-svn resolver-image resolver-http cyclone)
RESOLVER_PACKAGES="ca-certificates,curl,git,subversion,skopeo"
# usr-is-merged: so that cyclone-rootfs.sh can purge usrmerge and the perl it brings.
CYCLONE_PACKAGES="ca-certificates,python3,usr-is-merged"
CYCLONE_UID=10001
CYCLONE_LOCK="${HERE}/requirements.lock"
# Docker's HEALTHCHECK as the image config's Healthcheck (durations in ns): podman and docker
# run it; the kubelet does not (the chart's probes ask the same endpoints).
CYCLONE_HEALTHCHECK='{"Test":["CMD","cyclone","healthcheck"],"Interval":30000000000,"Timeout":5000000000,"StartPeriod":10000000000,"Retries":3}'
# shellcheck source=scripts/images/wheel-target.sh
source "${HERE}/wheel-target.sh"

VERSION="$(sed -nE 's/^__version__ = "([^"]+)"/\1/p' "${REPO}/cyclone/__init__.py" | head -n1)"
[[ -n "${VERSION}" ]] || { echo "[images] ERROR: no __version__ in cyclone/__init__.py" >&2; exit 1; }

log() { printf '[images] %s\n' "$*" >&2; }
fail() { printf '[images] ERROR: %s\n' "$*" >&2; exit 1; }
now_ms() { date +%s%3N; }
human() { numfmt --to=iec --suffix=B --format='%.1f' "$1"; }
hash_of() { sha256sum | cut -c1-16; }
oci() { "${HOST_PYTHON}" "${HERE}/oci.py" "$@"; }

for tool in "${HOST_PYTHON}" sha256sum numfmt; do
  command -v "${tool%% *}" >/dev/null || fail "${tool} not found"
done

TMP="$(mktemp -d /tmp/cyclone-images.XXXXXX)"
trap 'rm -rf "${TMP}"' EXIT
mkdir -p "${OUT}" "${CACHE}/layers" "${CACHE}/archives"

# What every layer key includes: the packer and the reproducibility knobs.
COMMON_KEY="$(cat "${HERE}/oci.py"; echo "epoch=${SOURCE_DATE_EPOCH} suite=${SUITE}")"

apt_sources() {
  { cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources \
      2>/dev/null || true; } | grep -v '^#' || true
}

# debian_rootfs PACKAGES OUT.tar [HOOK...]: a minbase rootfs of SUITE from the machine's own apt
# sources, without docs, man pages or locales. The image's own apt sources are Debian's public
# mirrors: the machine's (an internal mirror, credentials in a URI) never leave it.
debian_rootfs() {
  local packages=$1 out=$2; shift 2
  command -v mmdebstrap >/dev/null || fail "mmdebstrap not found (make images-deps)"
  local hooks=()
  for hook in "$@"; do hooks+=(--customize-hook="${hook}"); done
  apt_sources | SUITE="${SUITE}" mmdebstrap --quiet --variant=minbase --include="${packages}" --format=tar \
    --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
    --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/info/*' \
    --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-exclude=/usr/share/lintian/*' \
    --customize-hook='rm -rf "$1"/var/cache/apt/* "$1"/var/lib/apt/lists/* "$1"/var/log/* "$1"/var/cache/ldconfig/aux-cache' \
    --customize-hook='rm -f "$1"/etc/apt/sources.list "$1"/etc/apt/sources.list.d/* && printf "Types: deb\nURIs: http://deb.debian.org/debian\nSuites: %s %s-updates\nComponents: main\n\nTypes: deb\nURIs: http://deb.debian.org/debian-security\nSuites: %s-security\nComponents: main\n" "$SUITE" "$SUITE" "$SUITE" > "$1"/etc/apt/sources.list.d/debian.sources' \
    "${hooks[@]}" "${SUITE}" "${out}" - >&2
}

# prune DIR NAME KEY SUFFIX: drop NAME's cached files of other keys (one version is kept).
prune() {
  local dir=$1 name=$2 key=$3 suffix=$4 file
  for file in "${dir}/${name}"-????????????????"${suffix}"*; do
    [[ -e "${file}" && "${file}" != "${dir}/${name}-${key}${suffix}"* ]] && rm -f "${file}"
  done
  return 0
}

# cached_layer NAME KEY BUILDER: the cached layer blob path for KEY, building it with
# `BUILDER OUT.tar.gz` when missing.
cached_layer() {
  local name=$1 key=$2 builder=$3
  local blob="${CACHE}/layers/${name}-${key}.tar.gz"
  if [[ ! -s "${blob}" || ! -s "${blob}.json" ]]; then
    "${builder}" "${blob}.tmp" >&2
    mv "${blob}.tmp.json" "${blob}.json"
    mv "${blob}.tmp" "${blob}"
    prune "${CACHE}/layers" "${name}" "${key}" .tar.gz
  fi
  printf '%s' "${blob}"
}

build_busybox_layer() {  # OUT KIND: toolbox (every applet) or pause (sh and sleep)
  local out=$1 kind=$2 root="${TMP}/busybox-${2}"
  command -v busybox >/dev/null || fail "busybox not found (make images-deps)"
  local busybox; busybox="$(command -v busybox)"
  grep -q 'not a dynamic' < <(ldd "${busybox}" 2>&1) || fail "${busybox} is not static (busybox-static)"
  rm -rf "${root}"; mkdir -p "${root}"/{bin,dev,proc,sys,etc,tmp,root}
  chmod 1777 "${root}/tmp"; chmod 700 "${root}/root"
  cp "${busybox}" "${root}/bin/busybox"; chmod 755 "${root}/bin/busybox"
  if [[ "${kind}" == pause ]]; then
    ln -s busybox "${root}/bin/sh"; ln -s busybox "${root}/bin/sleep"
  else
    local applet
    mkdir -p "${root}"/{sbin,usr/bin,usr/sbin}
    while read -r applet; do
      [[ "${applet}" == bin/busybox || -e "${root}/${applet}" ]] && continue
      ln -s /bin/busybox "${root}/${applet}"
    done < <("${busybox}" --list-full)
    printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' \
      > "${root}/etc/passwd"
    printf 'root:x:0:\nnogroup:x:65534:\n' > "${root}/etc/group"
  fi
  oci layer "${root}" "${out}" >/dev/null
}
toolbox_layer() { build_busybox_layer "$1" toolbox; }
pause_layer() { build_busybox_layer "$1" pause; }

resolver_base_layer() {
  debian_rootfs "${RESOLVER_PACKAGES}" "${TMP}/resolver-base.tar" 'mkdir -p "$1"/workspace'
  oci layer "${TMP}/resolver-base.tar" "$1" >/dev/null
}

resolver_script_layer() {  # OUT: /entrypoint.sh = the package's resolver script, byte for byte
  local root="${TMP}/entry-${RESOLVER_TYPE}"
  rm -rf "${root}"; mkdir -p "${root}"
  cp "${REPO}/cyclone/resolvers/${RESOLVER_TYPE}.sh" "${root}/entrypoint.sh"
  chmod 755 "${root}/entrypoint.sh"
  oci layer "${root}" "$1" >/dev/null
}

cyclone_sources_hash() {
  (cd "${REPO}" && git ls-files -z -- cyclone pyproject.toml README.md 2>/dev/null \
    | xargs -0 sha256sum 2>/dev/null; git status --porcelain -- cyclone pyproject.toml 2>/dev/null \
    | awk '{print $2}' | xargs -r sha256sum 2>/dev/null) | sha256sum | cut -c1-16
}

quiet_pip() {  # pip, without its notes about index locations that are not there
  ${PIP} "$@" 2>&1 | { grep -v '^WARNING: Location' || true; } >&2
}

CYCLONE_SITE=/usr/local/lib/python3.11/dist-packages

# The cyclone image's lower layer: Debian python3, the dependencies of requirements.lock
# (fetched with their hashes checked) byte-compiled, and the user; it changes only with the
# lock, the package list or cyclone-rootfs.sh.
cyclone_base_layer() {
  local wheels="${TMP}/wheels"
  mkdir -p "${wheels}"
  quiet_pip download -q --require-hashes "${WHEEL_TARGET[@]}" --dest "${wheels}" -r "${CYCLONE_LOCK}"
  export CYCLONE_WHEELS="${wheels}" CYCLONE_LOCK CYCLONE_SITE CYCLONE_UID PIP
  debian_rootfs "${CYCLONE_PACKAGES}" "${TMP}/cyclone-base.tar" "${HERE}/cyclone-rootfs.sh"
  oci layer "${TMP}/cyclone-base.tar" "$1" >/dev/null
}

# Imports every native module of the dependencies (they were stripped).
IMPORT_NATIVE_MODULES='
import importlib, pathlib, sys
site = pathlib.Path(sys.argv[1])
for library in sorted(site.rglob("*.so")):
    parts = library.relative_to(site).parts
    if not parts[0].endswith(".libs"):
        importlib.import_module(".".join((*parts[:-1], parts[-1].split(".")[0])))
'

# in_cyclone_image ROOT COMMAND...: COMMAND as uid 10001 in the unpacked image ROOT.
in_cyclone_image() {
  local root=$1; shift
  chroot --userspec="${CYCLONE_UID}:${CYCLONE_UID}" "${root}" /usr/bin/env -i \
    PATH=/usr/local/bin:/usr/bin:/bin HOME=/var/lib/cyclone PYTHONDONTWRITEBYTECODE=1 "$@"
}

# The upper layer: the project's wheel, byte-compiled, and the `cyclone` command
# (cyclone-command); checked in the two layers unpacked, as uid 10001: `cyclone --help` runs
# (its time is logged) and `cyclone healthcheck` reports a closed port.
cyclone_app_layer() {
  local app="${TMP}/cyclone-app" check="${TMP}/cyclone-check"
  mkdir -p "${TMP}/src" "${TMP}/wheel" "${app}${CYCLONE_SITE}" "${app}/usr/local/bin"
  (cd "${REPO}" && git ls-files -z --cached --others --exclude-standard -- cyclone pyproject.toml README.md \
    | xargs -0 cp --parents -t "${TMP}/src")
  quiet_pip wheel -q --no-deps --wheel-dir "${TMP}/wheel" "${TMP}/src"
  quiet_pip install -q --no-deps --no-compile --no-index --target "${app}${CYCLONE_SITE}" "${TMP}/wheel"/*.whl
  rm -rf "${app}${CYCLONE_SITE}"/bin "${app}${CYCLONE_SITE}"/*.dist-info/direct_url.json \
    "${app}${CYCLONE_SITE}"/*.dist-info/RECORD "${app}${CYCLONE_SITE}"/*.dist-info/INSTALLER
  install -m 755 "${HERE}/cyclone-command" "${app}/usr/local/bin/cyclone"
  mkdir -p "${check}"
  tar -xzf "${CYCLONE_BASE_LAYER}" -C "${check}"
  cp -a "${app}/." "${check}/"
  chroot "${check}" python3 -m compileall -q -j 1 --invalidation-mode unchecked-hash \
    "${CYCLONE_SITE}/cyclone" >&2
  rm -rf "${app}${CYCLONE_SITE}/cyclone"
  cp -a "${check}${CYCLONE_SITE}/cyclone" "${app}${CYCLONE_SITE}/"
  local started; started=$(now_ms)
  in_cyclone_image "${check}" cyclone --help >/dev/null || fail "cyclone --help fails in the cyclone image"
  log "$(printf 'cyclone --help in the image: %.2fs' "$(( $(now_ms) - started ))e-3")"
  in_cyclone_image "${check}" python3 -c "${IMPORT_NATIVE_MODULES}" "${CYCLONE_SITE}" \
    || fail "a native module of the cyclone image does not load"
  local health
  health="$(in_cyclone_image "${check}" cyclone healthcheck --url http://127.0.0.1:9/ --timeout 1 2>&1)" \
    && fail "cyclone healthcheck passes against a closed port"
  [[ "${health}" == "unhealthy: http://127.0.0.1:9/: connection refused" ]] \
    || fail "cyclone healthcheck in the cyclone image: ${health}"
  rm -rf "${check}"
  oci layer "${app}" "$1" >/dev/null
}

# image NAME LAYER... -- OCI-ARGS...: the archive of NAME (cached by its layers and config) copied
# to OUT, and one progress line.
INDEX_LINES=()
image() {
  local name=$1 started=$2; shift 2
  local layers=() args=()
  while [[ $# -gt 0 && "$1" != -- ]]; do layers+=("$1"); shift; done
  shift
  args=("$@")
  local ref="docker.io/cyclone/${name}:${VERSION}"
  local key; key="$({ cat "${layers[@]/%/.json}"; printf '%s\n' "${ref}" "${args[@]}"; echo "${COMMON_KEY}"; } | hash_of)"
  local archive="${CACHE}/archives/${name}-${key}.oci.tar" state=cached
  if [[ ! -s "${archive}" || ! -s "${archive}.json" ]]; then
    oci image "${archive}.part" --ref "${ref}" "${args[@]}" "${layers[@]}" > "${archive}.json"
    mv "${archive}.part" "${archive}"
    prune "${CACHE}/archives" "${name}" "${key}" .oci.tar
    state=built
  fi
  if ! cmp -s "${archive}" "${OUT}/${name}.oci.tar"; then
    cp "${archive}" "${OUT}/${name}.oci.tar.tmp" && mv "${OUT}/${name}.oci.tar.tmp" "${OUT}/${name}.oci.tar"
  fi
  local size digest unpacked
  size=$(stat -c %s "${archive}")
  read -r digest unpacked < <("${HOST_PYTHON}" -c 'import json, sys
meta = json.load(open(sys.argv[1]))
print(meta["digest"], meta["unpacked_size"])' "${archive}.json")
  log "$(printf '%-15s %-6s %9s %9s unpacked %6.1fs  %s' "${name}" "${state}" "$(human "${size}")" \
    "$(human "${unpacked}")" "$(( $(now_ms) - started ))e-3" "${ref}")"
  INDEX_LINES+=("${name}	${ref}	${name}.oci.tar	${digest}	${size}	${unpacked}")
}

build_one() {
  local name=$1 started; started=$(now_ms)
  local key layer base
  case "${name}" in
    toolbox|pause)
      key="$({ echo "${name}"; sha256sum < "$(command -v busybox || echo /dev/null)"; declare -f build_busybox_layer; echo "${COMMON_KEY}"; } | hash_of)"
      layer="$(cached_layer "${name}" "${key}" "${name}_layer")"
      if [[ "${name}" == pause ]]; then
        image pause "${started}" "${layer}" -- --cmd '["/bin/sleep","infinity"]'
      else
        image toolbox "${started}" "${layer}" -- --cmd '["sh"]'
      fi ;;
    resolver-*)
      RESOLVER_TYPE="${name#resolver-}"
      [[ -f "${REPO}/cyclone/resolvers/${RESOLVER_TYPE}.sh" ]] || fail "no resolver script for ${name}"
      key="$({ echo "${RESOLVER_PACKAGES}"; declare -f debian_rootfs resolver_base_layer; apt_sources; echo "${COMMON_KEY}"; } | hash_of)"
      base="$(cached_layer resolver-base "${key}" resolver_base_layer)"
      key="$({ sha256sum < "${REPO}/cyclone/resolvers/${RESOLVER_TYPE}.sh"; declare -f resolver_script_layer; echo "${COMMON_KEY}"; } | hash_of)"
      layer="$(cached_layer "${name}-entrypoint" "${key}" resolver_script_layer)"
      image "${name}" "${started}" "${base}" "${layer}" -- --entrypoint '["/entrypoint.sh"]' \
        --cmd '["pull"]' --workdir /workspace ;;
    cyclone)
      key="$({ echo "${CYCLONE_PACKAGES}"; cat "${CYCLONE_LOCK}" "${HERE}/wheel-target.sh" "${HERE}/cyclone-rootfs.sh"; declare -f debian_rootfs cyclone_base_layer; apt_sources; command -v strip || true; echo "${COMMON_KEY}"; } | hash_of)"
      base="$(cached_layer cyclone-base "${key}" cyclone_base_layer)"
      export CYCLONE_BASE_LAYER="${base}"
      key="$({ echo "${key}"; cyclone_sources_hash; cat "${HERE}/cyclone-command"; echo "${IMPORT_NATIVE_MODULES}"; declare -f cyclone_app_layer in_cyclone_image; } | hash_of)"
      layer="$(cached_layer cyclone-app "${key}" cyclone_app_layer)"
      image cyclone "${started}" "${base}" "${layer}" -- --entrypoint '["cyclone"]' --cmd '["--help"]' \
        --user "${CYCLONE_UID}:${CYCLONE_UID}" --workdir /var/lib/cyclone \
        --healthcheck "${CYCLONE_HEALTHCHECK}" \
        --env PYTHONUNBUFFERED=1 --env PYTHONDONTWRITEBYTECODE=1 --env HOME=/var/lib/cyclone ;;
    *) fail "unknown image ${name} (one of: ${ALL_IMAGES[*]})" ;;
  esac
}

write_index() {
  printf '%s\n' "${INDEX_LINES[@]}" | "${HOST_PYTHON}" -c '
import json, sys
index, out = {}, sys.argv[1]
try:
    index = {i["name"]: i for i in json.load(open(out))["images"]}
except (OSError, ValueError, KeyError, TypeError):
    pass
for line in sys.stdin:
    if line.strip():
        n, r, a, d, s, u = line.rstrip("\n").split("\t")
        index[n] = {"name": n, "reference": r, "archive": a, "digest": d, "size": int(s),
                    "unpacked_size": int(u)}
json.dump({"images": [index[n] for n in sorted(index)]}, sys.stdout, indent=2)
print()' "${OUT}/index.json" > "${OUT}/index.json.tmp"
  mv "${OUT}/index.json.tmp" "${OUT}/index.json"
}

total_started=$(now_ms)
selected=("$@")
[[ ${#selected[@]} -gt 0 ]] || selected=("${ALL_IMAGES[@]}")
for name in "${selected[@]}"; do build_one "${name}"; done
write_index
log "$(printf 'done in %.1fs: %s' "$(( $(now_ms) - total_started ))e-3" "${OUT}")"
