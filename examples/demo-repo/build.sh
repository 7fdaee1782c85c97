#!/bin/sh
# Builds the demo "application" into the directory given as $1.
set -eu
out="$1"
mkdir -p "$out"
cat > "$out/greet" <<'SCRIPT'
#!/bin/sh
echo "hello, ${1:-world}"
SCRIPT
chmod +x "$out/greet"
echo "built $out/greet"
