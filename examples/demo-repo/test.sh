#!/bin/sh
# Tests the built application in $1; prints key:value results.
set -u
bin="$1/greet"
passed=0
failed=0
check() {
  if [ "$("$bin" "$1")" = "$2" ]; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
}
check world "hello, world"
check cyclone "hello, cyclone"
check "" "hello, world"
echo "passed:$passed"
echo "failed:$failed"
[ "$failed" -eq 0 ]
