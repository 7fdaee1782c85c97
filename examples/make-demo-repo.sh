#!/bin/sh
# Creates a git repository from examples/demo-repo at the path given (for ci-pipeline.yaml).
set -eu
target="${1:?usage: make-demo-repo.sh <path>}"
here=$(cd "$(dirname "$0")" && pwd)
rm -rf "$target"
mkdir -p "$target"
cp -R "$here/demo-repo/." "$target/"
cd "$target"
git init -q -b main .
git add .
git -c user.name=cyclone -c user.email=cyclone@localhost commit -q -m "demo application"
echo "$target"
