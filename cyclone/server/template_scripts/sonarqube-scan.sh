set -u
RESULTS=/cyclone/results/__result__
fail() { echo "sonarqube scan: $*" >&2; echo "error:$*" >> "$RESULTS"; exit 1; }
server=${SONAR_URL%/}
[ -n "$server" ] || fail "the argument sonarURL is required"
[ -n "$SONAR_TOKEN" ] || fail "the argument sonarToken is required"
[ -n "$PROJECT_KEY" ] || fail "the argument projectKey is required"
command -v curl >/dev/null 2>&1 || fail "curl is not installed where this stage runs"
body=$(mktemp)
# The token goes to curl on its standard input, never on a command line.
api() {
  printf 'user = "%s:"\n' "$SONAR_TOKEN" | curl -sS -K - --max-time 30 -o "$body" -w '%{http_code}' "$server$1"
}
code=$(api /api/authentication/validate) || fail "cannot reach SonarQube at $server"
case $code in
  200) grep -q '"valid" *: *true' "$body" || fail "the token is not valid for SonarQube at $server" ;;
  401|403) fail "the token is not valid for SonarQube at $server" ;;
  *) fail "SonarQube at $server answered HTTP $code to /api/authentication/validate" ;;
esac
echo "token valid for $server"
if command -v sonar-scanner >/dev/null 2>&1; then
  set -- -Dsonar.host.url="$server" -Dsonar.projectKey="$PROJECT_KEY" \
    -Dsonar.projectName="${PROJECT_NAME:-$PROJECT_KEY}" -Dsonar.sources="$SOURCE_PATH" \
    -Dsonar.sourceEncoding="$ENCODING"
  [ -z "$LANGUAGE" ] || set -- "$@" -Dsonar.language="$LANGUAGE"
  SONAR_TOKEN=$SONAR_TOKEN sonar-scanner "$@" || fail "sonar-scanner failed"
  task=$(sed -n 's/^ceTaskId=//p' .scannerwork/report-task.txt 2>/dev/null)
  waited=0
  while [ -n "$task" ]; do
    code=$(api "/api/ce/task?id=$task") || fail "cannot reach SonarQube at $server"
    state=$(tr -d '\n' < "$body" | sed -n 's/.*"status" *: *"\([A-Z_]*\)".*/\1/p')
    case $state in
      SUCCESS) break ;;
      FAILED|CANCELED) fail "SonarQube's analysis task $task ended $state" ;;
    esac
    [ "$waited" -lt "$WAIT_SECONDS" ] || fail "SonarQube's analysis task $task still $state after ${WAIT_SECONDS}s"
    sleep 2
    waited=$((waited + 2))
  done
else
  echo "sonar-scanner is not installed here: reporting the quality gate of the last analysis"
fi
code=$(api "/api/qualitygates/project_status?projectKey=$PROJECT_KEY") \
  || fail "cannot reach SonarQube at $server"
case $code in
  200) ;;
  404) fail "SonarQube has no analysis of project $PROJECT_KEY" ;;
  *) fail "SonarQube at $server answered HTTP $code to /api/qualitygates/project_status" ;;
esac
gate=$(tr -d '\n' < "$body" | sed 's/"conditions" *: *\[[^]]*\]//; s/"periods" *: *\[[^]]*\]//' \
  | sed -n 's/.*"projectStatus" *: *{[^{}]*"status" *: *"\([A-Z_]*\)".*/\1/p')
[ -n "$gate" ] || fail "SonarQube's answer holds no quality gate status for $PROJECT_KEY"
echo "qualityGate:$gate" | tee -a "$RESULTS"
[ "$gate" != ERROR ] || [ "$FAIL_ON_ERROR" != true ] || fail "the quality gate of $PROJECT_KEY is ERROR"
