#!/usr/bin/env bash
# Build kube-apiserver, kube-controller-manager, kube-scheduler, the kubelet and kube-proxy (v1.20.2) from
# Debian bookworm's `kubernetes` source package, offline, with a private Go 1.19 toolchain;
# take etcd from Debian's etcd-server package and kubectl from kubernetes-client. Nothing is installed system-wide: apt runs with a
# private configuration and every package is unpacked under $CACHE_DIR.
#
# Output: $CACHE_DIR/bin/{kube-apiserver,kube-controller-manager,kube-scheduler,kubelet,kube-proxy,etcd,
# kubectl}. Idempotent: when all of them exist, it exits at once; otherwise it builds only
# the missing ones.
set -euo pipefail

CACHE_DIR="${CYCLONE_K8S_CACHE:-${HOME}/.cache/cyclone/k8s}"
BIN_DIR="${CACHE_DIR}/bin"
WORK_DIR="${CACHE_DIR}/work"
APT_DIR="${WORK_DIR}/apt"
ROOT_DIR="${WORK_DIR}/root"
SRC_DIR="${WORK_DIR}/src"
BINARIES=(kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy etcd kubectl)
BUILT=(kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy)
DEBS=(golang-1.19-go golang-1.19-src golang-github-modern-go-reflect2-dev rsync libpopt0
      etcd-server kubernetes-client)
KUBE_VERSION="v1.20.2"

log() { printf '[control-plane] %s\n' "$*" >&2; }
fail() { printf '[control-plane] ERROR: %s\n' "$*" >&2; exit 1; }
trap 'fail "build failed at line ${LINENO} (see output above); work dir kept at ${WORK_DIR}"' ERR

have_all() {
  local b
  for b in "${BINARIES[@]}"; do [[ -x "${BIN_DIR}/${b}" ]] || return 1; done
}

if have_all; then
  log "binaries present in ${BIN_DIR}"
  exit 0
fi

command -v apt-get >/dev/null || fail "apt-get not found: a Debian (bookworm) machine is needed"
command -v dpkg >/dev/null || fail "dpkg not found"
for tool in tar make bash; do
  command -v "${tool}" >/dev/null || fail "${tool} not found"
done

started=$(date +%s)
mkdir -p "${BIN_DIR}" "${APT_DIR}"/{sources.list.d,lists/partial,cache/archives/partial} \
  "${ROOT_DIR}" "${SRC_DIR}"

write_sources() {
  local out="${APT_DIR}/sources.list.d"
  rm -f "${out}"/*
  if [[ -f /etc/apt/sources.list.d/debian.sources ]]; then
    sed -E 's/^Types:.*/Types: deb deb-src/' /etc/apt/sources.list.d/debian.sources \
      > "${out}/debian.sources"
  elif [[ -f /etc/apt/sources.list ]] && grep -qE '^deb ' /etc/apt/sources.list; then
    grep -E '^deb ' /etc/apt/sources.list > "${out}/debian.list"
    sed -E 's/^deb /deb-src /' "${out}/debian.list" >> "${out}/debian.list"
  else
    fail "no Debian apt source found in /etc/apt to derive a deb-src entry from"
  fi
}

APT_OPTS=(
  -o "Dir::Etc::SourceList=/dev/null"
  -o "Dir::Etc::SourceParts=${APT_DIR}/sources.list.d"
  -o "Dir::State::Lists=${APT_DIR}/lists"
  -o "Dir::Cache=${APT_DIR}/cache"
  -o "Debug::NoLocking=1"
  -o "APT::Sandbox::User=root"
)

log "private apt configuration under ${APT_DIR}"
write_sources
log "apt-get update (private lists)"
apt-get "${APT_OPTS[@]}" update -qq >/dev/null || fail "apt-get update failed (is apt reachable?)"

cd "${WORK_DIR}"
if ! ls "${WORK_DIR}"/kubernetes_*.dsc >/dev/null 2>&1; then
  log "downloading the kubernetes source package"
  apt-get "${APT_OPTS[@]}" source --download-only -qq kubernetes >/dev/null \
    || fail "apt-get source kubernetes failed"
fi
log "downloading ${DEBS[*]}"
mkdir -p "${WORK_DIR}/debs"
(cd "${WORK_DIR}/debs" && apt-get "${APT_OPTS[@]}" download -qq "${DEBS[@]}" >/dev/null) \
  || fail "apt-get download failed"
for deb in "${WORK_DIR}"/debs/*.deb; do
  dpkg -x "${deb}" "${ROOT_DIR}"
done

GOROOT="${ROOT_DIR}/usr/lib/go-1.19"
[[ -x "${GOROOT}/bin/go" ]] || fail "go 1.19 not found at ${GOROOT} after unpacking"
[[ -x "${ROOT_DIR}/usr/bin/etcd" ]] || fail "etcd not found after unpacking etcd-server"
export PATH="${ROOT_DIR}/usr/bin:${GOROOT}/bin:${PATH}"
export LD_LIBRARY_PATH="${ROOT_DIR}/usr/lib/x86_64-linux-gnu:${ROOT_DIR}/usr/lib:${ROOT_DIR}/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:${LD_LIBRARY_PATH}}"
rsync --version >/dev/null || fail "the unpacked rsync does not run"

KUBE_SRC="${SRC_DIR}/kubernetes"
if [[ ! -f "${KUBE_SRC}/.cyclone-prepared" ]]; then
  log "unpacking the kubernetes source tree"
  rm -rf "${KUBE_SRC}"
  mkdir -p "${KUBE_SRC}"
  orig=$(ls "${WORK_DIR}"/kubernetes_*.orig.tar.* | head -n1)
  [[ -n "${orig}" ]] || fail "no kubernetes orig tarball downloaded"
  tar -xf "${orig}" -C "${KUBE_SRC}" --strip-components=1
  [[ -d "${KUBE_SRC}/vendor" ]] || fail "the kubernetes source has no vendor/ directory"

  log "replacing vendored modern-go/reflect2 with Debian's 1.0.2 (Go >= 1.18 fix)"
  reflect2_src="${ROOT_DIR}/usr/share/gocode/src/github.com/modern-go/reflect2"
  reflect2_dst="${KUBE_SRC}/vendor/github.com/modern-go/reflect2"
  [[ -d "${reflect2_src}" ]] || fail "reflect2 sources not found at ${reflect2_src}"
  rm -f "${reflect2_dst}"/*.go "${reflect2_dst}"/*.s
  cp "${reflect2_src}"/*.go "${reflect2_dst}/"
  cp "${reflect2_src}"/*.s "${reflect2_dst}/" 2>/dev/null || true
  rm -f "${reflect2_dst}"/*_test.go
  touch "${KUBE_SRC}/.cyclone-prepared"
fi

missing=()
for b in "${BUILT[@]}"; do [[ -x "${BIN_DIR}/${b}" ]] || missing+=("${b}"); done
if (( ${#missing[@]} )); then
  log "building ${missing[*]} (a few minutes)"
  export GOROOT GOFLAGS="-mod=vendor" GOPROXY=off GO111MODULE=on CGO_ENABLED=0
  export GOCACHE="${WORK_DIR}/gocache" GOPATH="${WORK_DIR}/gopath"
  export KUBE_GIT_VERSION="${KUBE_VERSION}" KUBE_GIT_MAJOR=1 KUBE_GIT_MINOR=20
  export KUBE_GIT_COMMIT=faecb196815e248d3ecfb03c680a4507229c2a56 KUBE_GIT_TREE_STATE=clean
  export SOURCE_DATE_EPOCH=1610582400
  (cd "${KUBE_SRC}" && make WHAT="${missing[*]/#/cmd/}" GOLDFLAGS="-s -w") || fail "make failed"
  out="${KUBE_SRC}/_output/local/bin/linux/amd64"
  [[ -d "${out}" ]] || out=$(dirname "$(find "${KUBE_SRC}/_output" -type f -name "${missing[0]}" | head -n1)")
  for b in "${missing[@]}"; do
    [[ -x "${out}/${b}" ]] || fail "${b} was not produced"
    install -m 0755 "${out}/${b}" "${BIN_DIR}/${b}"
  done
fi
install -m 0755 "${ROOT_DIR}/usr/bin/etcd" "${BIN_DIR}/etcd"
[[ -x "${ROOT_DIR}/usr/bin/kubectl" ]] || fail "kubectl not found after unpacking kubernetes-client"
install -m 0755 "${ROOT_DIR}/usr/bin/kubectl" "${BIN_DIR}/kubectl"
"${BIN_DIR}/kube-apiserver" --version >&2

log "removing the build tree (keeping ${BIN_DIR})"
trap - ERR
rm -rf "${WORK_DIR}"
log "done in $(( $(date +%s) - started ))s: ${BIN_DIR}"
