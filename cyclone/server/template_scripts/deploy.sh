set -u
RESULTS=/cyclone/results/__result__
fail() { echo "deploy: $*" >&2; echo "error:$*" >> "$RESULTS"; exit 1; }
command -v kubectl >/dev/null 2>&1 || fail "kubectl is not installed where this stage runs"
[ -n "$NAMESPACE" ] || fail "the argument namespace is required"
config=$(mktemp)
if [ -n "$KUBECONFIG_DATA" ]; then
  printf '%s\n' "$KUBECONFIG_DATA" > "$config"
else
  [ -n "$SERVER" ] && [ -n "$TOKEN" ] || fail "give the argument kubeconfig, or server and token"
  if [ -n "$CA_DATA" ]; then tls="certificate-authority-data: $CA_DATA"
  elif [ "$INSECURE" = true ]; then tls="insecure-skip-tls-verify: true"
  else tls=""; fi
  cat > "$config" <<CONFIG
apiVersion: v1
kind: Config
clusters:
- name: target
  cluster:
    server: $SERVER
    $tls
users:
- name: target
  user:
    token: $TOKEN
contexts:
- name: target
  context:
    cluster: target
    user: target
current-context: target
CONFIG
fi
export KUBECONFIG="$config"
if [ -n "$MANIFEST" ]; then
  printf '%s\n' "$MANIFEST" | kubectl apply -n "$NAMESPACE" -f - || fail "kubectl apply failed"
fi
if [ -n "$IMAGES" ]; then
  [ -n "$DEPLOYMENT" ] || fail "the argument deployment is required to set images"
  # shellcheck disable=SC2086  # IMAGES is a list of container=image
  kubectl set image -n "$NAMESPACE" "deployment/$DEPLOYMENT" $IMAGES \
    || fail "kubectl could not set the images of deployment $NAMESPACE/$DEPLOYMENT"
fi
[ -n "$DEPLOYMENT" ] || exit 0
waited=0
while :; do
  read -r generation observed revision <<STATE
$(kubectl get -n "$NAMESPACE" "deployment/$DEPLOYMENT" -o jsonpath='{.metadata.generation} {.status.observedGeneration} {.metadata.annotations.deployment\.kubernetes\.io/revision}')
STATE
  [ -n "$generation" ] || fail "cannot read deployment $NAMESPACE/$DEPLOYMENT"
  [ "${observed:-0}" -lt "$generation" ] || [ -z "${revision:-}" ] || break
  [ "$waited" -lt "$TIMEOUT" ] || fail "deployment $NAMESPACE/$DEPLOYMENT not observed within ${TIMEOUT}s"
  sleep 1
  waited=$((waited + 1))
done
if [ "$WAIT_ROLLOUT" = true ]; then
  kubectl rollout status -n "$NAMESPACE" "deployment/$DEPLOYMENT" --timeout="${TIMEOUT}s" \
    || fail "deployment $NAMESPACE/$DEPLOYMENT did not roll out within ${TIMEOUT}s"
fi
echo "deployment:$NAMESPACE/$DEPLOYMENT" >> "$RESULTS"
echo "revision:$revision" | tee -a "$RESULTS"
