# Sums the JUnit XML reports in $REPORT_DIR into stage outputs: tests, passed, failed
# (failures and errors), skipped. Sourced after the test command ran.
summarize_junit() {
  if ! ls "$1"/*.xml >/dev/null 2>&1; then
    echo "no JUnit XML report in $1: no test figures"
    return 0
  fi
  awk '
    function attr(name) {
      if (match($0, name "=\"[0-9]+\"")) return substr($0, RSTART + length(name) + 2, RLENGTH - length(name) - 3) + 0
      return 0
    }
    /<testsuite[ >]/ { t += attr("tests"); f += attr("failures") + attr("errors"); s += attr("skipped") }
    END { printf "tests:%d\npassed:%d\nfailed:%d\nskipped:%d\n", t, t - f - s, f, s }
  ' "$1"/*.xml | tee -a "$RESULTS"
}
