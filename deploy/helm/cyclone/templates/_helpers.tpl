{{/*
The labels of every object: the standard app.kubernetes.io/* set and helm.sh/chart.
Call with (dict "context" $ "component" "engine").
*/}}
{{- define "cyclone.labels" -}}
{{ include "cyclone.selectorLabels" . }}
app.kubernetes.io/version: {{ .context.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .context.Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .context.Chart.Name .context.Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The labels a Deployment selects its pods by, and a Service or policy its pods: stable
across upgrades (never the version or the chart).
*/}}
{{- define "cyclone.selectorLabels" -}}
app.kubernetes.io/name: cyclone
app.kubernetes.io/instance: {{ .context.Release.Name }}
{{- if .component }}
app.kubernetes.io/component: {{ .component }}
{{- end }}
{{- end }}

{{- define "cyclone.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end }}

{{- define "cyclone.serverURL" -}}
http://{{ .Release.Name }}-server.{{ .Release.Namespace }}.svc:{{ .Values.server.port }}
{{- end }}

{{/* The engine's configuration file (the ConfigMap's engine.yaml). */}}
{{- define "cyclone.engineConfig" -}}
callback_base_url: {{ include "cyclone.serverURL" . }}
system_namespace: {{ .Release.Namespace }}
pod_pending_timeout_seconds: {{ .Values.engine.podPendingTimeoutSeconds }}
gc_delay_seconds: {{ .Values.engine.gcDelaySeconds }}
gc_image: {{ .Values.settings.gcImage }}
{{- end }}

{{- define "cyclone.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 10001
runAsGroup: 10001
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{- define "cyclone.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities:
  drop: ["ALL"]
{{- end }}

{{- define "cyclone.imagePullSecrets" -}}
imagePullSecrets:
{{- range .Values.imagePullSecrets }}
  - name: {{ . }}
{{- end }}
{{- end }}

{{/* The data claim of the server: an existing one, or the chart's. */}}
{{- define "cyclone.dataClaim" -}}
{{ .Values.persistence.existingClaim | default (printf "%s-server-data" .Release.Name) }}
{{- end }}

{{/* policy/v1 (Kubernetes 1.21 and later), else policy/v1beta1 (same fields). */}}
{{- define "cyclone.pdbAPIVersion" -}}
{{- if or (.Capabilities.APIVersions.Has "policy/v1/PodDisruptionBudget") (not (.Capabilities.APIVersions.Has "policy/v1beta1/PodDisruptionBudget")) -}}
policy/v1
{{- else -}}
policy/v1beta1
{{- end -}}
{{- end }}
