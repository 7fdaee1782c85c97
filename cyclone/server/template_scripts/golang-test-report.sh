set -u
RESULTS=/cyclone/results/__result__
fail() { echo "golang test report: $*" >&2; echo "error:$*" >> "$RESULTS"; exit 1; }
command -v go >/dev/null 2>&1 || fail "go is not installed where this stage runs"
mkdir -p "$REPORT_DIR" || fail "cannot create the report directory $REPORT_DIR"
status=0
# shellcheck disable=SC2086  # FLAGS and PACKAGES are word lists
go test -json -covermode="$COVER_MODE" -coverprofile="$REPORT_DIR/coverage.out" $FLAGS $PACKAGES \
  > "$REPORT_DIR/report.json" || status=$?
sed -n 's/^{.*"Action":"output".*"Output":"\(.*\)"}$/\1/p' "$REPORT_DIR/report.json" \
  | sed 's/\\n$//; s/\\t/	/g; s/\\"/"/g'
count() { grep -c "\"Action\":\"$1\",\"Package\":\"[^\"]*\",\"Test\":" "$REPORT_DIR/report.json"; }
passed=$(count pass) failed=$(count fail) skipped=$(count skip)
{
  echo "tests:$((passed + failed + skipped))"
  echo "passed:$passed"
  echo "failed:$failed"
  echo "skipped:$skipped"
  if [ -s "$REPORT_DIR/coverage.out" ]; then
    go tool cover -func="$REPORT_DIR/coverage.out" | awk '/^total:/ { sub("%", "", $NF); print "coverage:" $NF }'
  fi
} | tee -a "$RESULTS"
[ "$status" = 0 ] || [ "$failed" != 0 ] || fail "go test failed before running the tests (exit $status)"
exit "$status"
