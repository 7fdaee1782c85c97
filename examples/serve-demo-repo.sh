#!/bin/sh
# Makes the demo repository (examples/demo-repo) under a directory and serves it read-only
# with git daemon on 127.0.0.1:9418, for ci-pipeline.yaml. Stages run in a sandbox that sees
# neither this machine's /tmp nor its home directories, so they clone over the network.
set -eu
base="${1:-/tmp/cyclone-git}"
port="${PORT:-9418}"
here=$(cd "$(dirname "$0")" && pwd)
sh "$here/make-demo-repo.sh" "$base/cyclone-demo-repo" >/dev/null
echo "serving git://127.0.0.1:$port/cyclone-demo-repo (Ctrl-C stops)"
exec git daemon --reuseaddr --export-all --base-path="$base" --listen=127.0.0.1 \
  --port="$port" "$base"
