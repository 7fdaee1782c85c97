# The platform the cyclone image's Python dependencies are locked and fetched for: Debian
# bookworm's CPython 3.11 on x86_64, wheels only (no compiler in the image or its build).
# Sourced by lock.sh and build.sh.
# shellcheck disable=SC2034
WHEEL_TARGET=(--only-binary=:all: --implementation cp --python-version 3.11
  --abi cp311 --abi abi3 --abi none
  --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64
  --platform manylinux_2_28_x86_64 --platform any)
