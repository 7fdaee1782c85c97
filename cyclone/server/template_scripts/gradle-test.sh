set -u
RESULTS=/cyclone/results/__result__
status=0
sh -ec "$CMD" || status=$?
summarize_junit "$REPORT_DIR"
exit "$status"
