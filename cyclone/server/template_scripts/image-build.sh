set -u
RESULTS=/cyclone/results/__result__
fail() { echo "image build: $*" >&2; echo "error:$*" >> "$RESULTS"; exit 1; }
[ -n "$REPOSITORY" ] || fail "the argument repository is required"
ref="$REPOSITORY:${TAG:-latest}"
[ -z "$REGISTRY" ] || ref="${REGISTRY%/}/$ref"
builder=""
for tool in buildah podman docker; do
  if command -v "$tool" >/dev/null 2>&1 && "$tool" info >/dev/null 2>&1; then
    builder=$tool
    break
  fi
done
[ -n "$builder" ] || fail "image build needs buildah, podman or docker; none is usable here"
echo "building $ref with $builder"
tls=""
[ "$builder" = docker ] || [ "$INSECURE" != true ] || tls=--tls-verify=false
case $builder in
  buildah) buildah bud $tls -f "$DOCKERFILE" -t "$ref" "$CONTEXT" ;;
  *) "$builder" build -f "$DOCKERFILE" -t "$ref" "$CONTEXT" ;;
esac || fail "$builder could not build $DOCKERFILE"
if [ -n "$REGISTRY_USER" ]; then
  printf '%s' "$REGISTRY_PASSWORD" | "$builder" login $tls -u "$REGISTRY_USER" --password-stdin \
    "${REGISTRY:-docker.io}" >/dev/null || fail "$builder login to ${REGISTRY:-docker.io} failed"
fi
digest=""
if [ "$builder" = docker ]; then
  log=$(mktemp)
  docker push "$ref" | tee "$log" || fail "docker could not push $ref"
  digest=$(sed -n 's/.*digest: \(sha256:[0-9a-f]*\).*/\1/p' "$log" | tail -n 1)
else
  file=$(mktemp)
  "$builder" push $tls --digestfile "$file" "$ref" || fail "$builder could not push $ref"
  digest=$(cat "$file")
fi
echo "image:$ref" >> "$RESULTS"
[ -z "$digest" ] || echo "digest:$digest" >> "$RESULTS"
echo "pushed $ref${digest:+@$digest}"
