#!/usr/bin/env bash
# mmdebstrap customize hook of the cyclone image's lower layer (build.sh), ROOT = the rootfs:
# installs the locked Python dependencies byte-compiled, drops what neither Cyclone nor
# Debian's package tools need at run time, and adds the cyclone user.
#
#   cyclone-rootfs.sh ROOT     env: PIP, CYCLONE_WHEELS, CYCLONE_LOCK, CYCLONE_SITE, CYCLONE_UID
set -euo pipefail
shopt -s inherit_errexit

root=$1
site="${root}${CYCLONE_SITE}"

mkdir -p "${site}"
${PIP} install -q --no-deps --no-compile --no-index --find-links "${CYCLONE_WHEELS}" \
  --require-hashes --target "${site}" -r "${CYCLONE_LOCK}" 2>&1 \
  | { grep -v '^WARNING: Location' || true; } >&2
rm -rf "${site}"/bin "${site}"/*.dist-info/direct_url.json "${site}"/*.dist-info/RECORD \
  "${site}"/*.dist-info/INSTALLER
find "${site}" -mindepth 2 -maxdepth 2 -type d \( -name tests -o -name test \) -prune \
  -exec rm -rf {} +
# Wheels ship their native modules with symbols (uvloop's 13 MB are 1.6 MB without).
if command -v strip >/dev/null; then
  find "${site}" -type f \( -name '*.so' -o -name '*.so.*' \) -exec strip --strip-unneeded {} +
else
  echo "[images] strip not found (binutils): native modules keep their symbols" >&2
fi

# mmdebstrap merges /usr with usrmerge, which brings perl (50 MB unpacked) into an image that
# never runs it: purged, usr-is-merged (in the package list) now answering for it;
# perl-base (essential, used by debconf) stays.
mapfile -t perl < <(chroot "${root}" dpkg-query -W -f '${Package}\n' \
  | grep -E '^(usrmerge|perl|libperl[0-9.]+|perl-modules-[0-9.]+|lib[a-z0-9-]+-perl)$' || true)
if [[ ${#perl[@]} -gt 0 ]]; then
  chroot "${root}" dpkg --purge "${perl[@]}" >/dev/null
fi

# glibc's iconv modules (Python has its own codecs) and CPython's own test suite.
rm -rf "${root}"/usr/lib/x86_64-linux-gnu/gconv "${root}"/usr/lib/python3.*/test

# Byte-code for every dependency, valid whatever the files' times (the layer clamps them),
# so the CLI starts in half the time; PYTHONDONTWRITEBYTECODE keeps the image read-only.
chroot "${root}" python3 -m compileall -q -j 1 --invalidation-mode unchecked-hash \
  "${CYCLONE_SITE}" >&2

echo "cyclone:x:${CYCLONE_UID}:${CYCLONE_UID}:cyclone:/var/lib/cyclone:/usr/sbin/nologin" \
  >> "${root}/etc/passwd"
echo "cyclone:x:${CYCLONE_UID}:" >> "${root}/etc/group"
mkdir -p "${root}/var/lib/cyclone"
chown "${CYCLONE_UID}:${CYCLONE_UID}" "${root}/var/lib/cyclone"

rm -rf "${root}"/var/log/* "${root}"/var/cache/debconf/*-old "${root}"/var/lib/dpkg/*-old \
  "${root}"/var/cache/ldconfig/aux-cache
