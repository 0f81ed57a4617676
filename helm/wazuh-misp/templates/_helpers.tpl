{{/* vim: set filetype=mustache: */}}

{{- define "wazuh-misp.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "wazuh-misp.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* Name of the sync role's objects (<fullname>-sync, kept within 63 chars). */}}
{{- define "wazuh-misp.syncName" -}}
{{- printf "%s-sync" (include "wazuh-misp.fullname" . | trunc 58 | trimSuffix "-") -}}
{{- end -}}

{{- define "wazuh-misp.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "wazuh-misp.selectorLabels" -}}
app.kubernetes.io/name: {{ include "wazuh-misp.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "wazuh-misp.labels" -}}
helm.sh/chart: {{ include "wazuh-misp.chart" . }}
{{ include "wazuh-misp.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: wazuh-misp
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "wazuh-misp.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "wazuh-misp.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "wazuh-misp.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{/* Port of config.server.listen ("0.0.0.0:9108" -> 9108). */}}
{{- define "wazuh-misp.metricsPort" -}}
{{- $listen := toString .Values.config.server.listen -}}
{{- $port := regexFind "[0-9]+$" $listen -}}
{{- if not $port -}}
{{- fail (printf "config.server.listen must end in :PORT, got %q" $listen) -}}
{{- end -}}
{{- $port -}}
{{- end -}}

{{/* Mount points of referenced secrets (never inside the ConfigMap mount). */}}
{{- define "wazuh-misp.secretsDir" -}}/run/secrets/wazuh-misp{{- end -}}

{{/*
Validation of values combinations that JSON schema cannot express. Included by every
workload template so `helm template`/`helm lint` fail early with a clear message.
*/}}
{{- define "wazuh-misp.validate" -}}
{{- $c := .Values.config -}}
{{- if hasKey $c.misp "api_key" -}}
{{- fail "config.misp.api_key must not be set: secrets never go into the ConfigMap. Use secrets.mispApiKey.existingSecret." -}}
{{- end -}}
{{- if hasKey $c.kafka "sasl_password" -}}
{{- fail "config.kafka.sasl_password must not be set: secrets never go into the ConfigMap. Use secrets.kafkaSaslPassword.existingSecret." -}}
{{- end -}}
{{- range $k, $_ := ($c.kafka.librdkafka | default dict) -}}
{{- if has (lower $k) (list "sasl.password" "ssl.key.password" "ssl.keystore.password" "sasl.oauthbearer.client.secret") -}}
{{- fail (printf "config.kafka.librdkafka.%s must not be set: secrets never go into the ConfigMap. Use secrets.kafkaSaslPassword (or extraEnv with a secretKeyRef)." $k) -}}
{{- end -}}
{{- end -}}
{{- if and .Values.autoscaling.enabled .Values.keda.enabled -}}
{{- fail "autoscaling.enabled and keda.enabled are mutually exclusive (KEDA manages its own HPA)." -}}
{{- end -}}
{{- $parts := int .Values.inputPartitions -}}
{{- if gt $parts 0 -}}
{{- if gt (int .Values.replicaCount) $parts -}}
{{- fail (printf "replicaCount (%d) must be <= inputPartitions (%d): extra consumers in the group get no partitions." (int .Values.replicaCount) $parts) -}}
{{- end -}}
{{- if and .Values.autoscaling.enabled (gt (int .Values.autoscaling.maxReplicas) $parts) -}}
{{- fail (printf "autoscaling.maxReplicas (%d) must be <= inputPartitions (%d)." (int .Values.autoscaling.maxReplicas) $parts) -}}
{{- end -}}
{{- if and .Values.keda.enabled (gt (int .Values.keda.maxReplicaCount) $parts) -}}
{{- fail (printf "keda.maxReplicaCount (%d) must be <= inputPartitions (%d)." (int .Values.keda.maxReplicaCount) $parts) -}}
{{- end -}}
{{- end -}}
{{- if and .Values.autoscaling.enabled (gt (int .Values.autoscaling.minReplicas) (int .Values.autoscaling.maxReplicas)) -}}
{{- fail "autoscaling.minReplicas must be <= autoscaling.maxReplicas." -}}
{{- end -}}
{{- if and .Values.keda.enabled (gt (int .Values.keda.minReplicaCount) (int .Values.keda.maxReplicaCount)) -}}
{{- fail "keda.minReplicaCount must be <= keda.maxReplicaCount." -}}
{{- end -}}
{{- $drainMs := int64 (default 10000 $c.pipeline.drain_timeout_ms) -}}
{{- if le (mul (int64 .Values.terminationGracePeriodSeconds) 1000) $drainMs -}}
{{- fail (printf "terminationGracePeriodSeconds (%d s) must exceed config.pipeline.drain_timeout_ms (%d ms) so the pipeline can drain and commit on shutdown." (int64 .Values.terminationGracePeriodSeconds) $drainMs) -}}
{{- end -}}
{{- $_ := include "wazuh-misp.metricsPort" . -}}
{{- end -}}

{{/*
Effective config tree for a role ("processor" or "sync"): .Values.config plus the
keys the chart owns (secret file paths, intel.source for the scale-out topology).
*/}}
{{- define "wazuh-misp.effectiveConfig" -}}
{{- $root := .root -}}
{{- $role := .role -}}
{{- $cfg := deepCopy $root.Values.config -}}
{{- $s := $root.Values.secrets -}}
{{- $dir := include "wazuh-misp.secretsDir" $root -}}
{{- $intel := $cfg.intel | default dict -}}
{{- if eq $role "sync" -}}
{{- $_ := set $intel "source" "local" -}}
{{- else if $root.Values.sync.enabled -}}
{{- $_ := set $intel "source" "topic" -}}
{{- end -}}
{{- $_ := set $cfg "intel" $intel -}}
{{- $misp := $cfg.misp | default dict -}}
{{- if and $s.mispApiKey.existingSecret (eq $s.mispApiKey.mode "file") -}}
{{- $_ := set $misp "api_key_file" (printf "%s/misp/%s" $dir $s.mispApiKey.key) -}}
{{- end -}}
{{- if $s.caBundle.existingSecret -}}
{{- $_ := set $misp "ca_file" (printf "%s/ca/%s" $dir $s.caBundle.key) -}}
{{- end -}}
{{- $_ := set $cfg "misp" $misp -}}
{{- $kafka := $cfg.kafka | default dict -}}
{{- if $s.kafkaSaslPassword.existingSecret -}}
{{- $_ := set $kafka "sasl_password_file" (printf "%s/kafka/%s" $dir $s.kafkaSaslPassword.key) -}}
{{- end -}}
{{- /* librdkafka properties are strings (linger.ms: 5 -> "5", true -> "true"). */ -}}
{{- $rd := dict -}}
{{- range $k, $val := ($kafka.librdkafka | default dict) -}}
{{- if kindIs "float64" $val -}}
{{- $_ := set $rd $k (ternary (toString (int64 $val)) (toString $val) (eq $val (floor $val))) -}}
{{- else if not (kindIs "invalid" $val) -}}
{{- $_ := set $rd $k (toString $val) -}}
{{- end -}}
{{- end -}}
{{- if and $s.caBundle.existingSecret $s.caBundle.kafka -}}
{{- $_ := set $rd "ssl.ca.location" (printf "%s/ca/%s" $dir $s.caBundle.key) -}}
{{- end -}}
{{- $_ := set $kafka "librdkafka" $rd -}}
{{- $_ := set $cfg "kafka" $kafka -}}
{{- toJson $cfg -}}
{{- end -}}

{{/*
Minimal TOML encoder. Helm's toToml renders every number as a float (300 -> 300.0,
10000000 -> 1e+07), which a strict deserializer rejects for integer keys; this one
prints whole numbers as integers. nil and "" values are omitted (= unset).
*/}}
{{- define "wazuh-misp.toml.key" -}}
{{- if regexMatch "^[A-Za-z0-9_-]+$" . -}}{{ . }}{{- else -}}{{ toJson . }}{{- end -}}
{{- end -}}

{{- define "wazuh-misp.toml.value" -}}
{{- $v := . -}}
{{- if kindIs "string" $v -}}
{{- toJson $v -}}
{{- else if kindIs "bool" $v -}}
{{- ternary "true" "false" $v -}}
{{- else if or (kindIs "float64" $v) (kindIs "float32" $v) -}}
{{- if eq (float64 $v) (floor $v) -}}{{ int64 $v }}{{- else -}}{{ $v }}{{- end -}}
{{- else if or (kindIs "int" $v) (kindIs "int64" $v) (kindIs "int32" $v) (kindIs "uint64" $v) -}}
{{- $v -}}
{{- else if kindIs "slice" $v -}}
[{{- range $i, $e := $v -}}{{- if $i }}, {{ end -}}{{- include "wazuh-misp.toml.value" $e -}}{{- end -}}]
{{- else if kindIs "map" $v -}}
{ {{- $first := true -}}{{- range $k := keys $v | sortAlpha -}}{{- $e := index $v $k -}}{{- if not (or (kindIs "invalid" $e) (eq (toString $e) "")) -}}{{- if not $first }},{{ end }} {{ include "wazuh-misp.toml.key" $k }} = {{ include "wazuh-misp.toml.value" $e -}}{{- $first = false -}}{{- end -}}{{- end }} }
{{- else -}}
{{- fail (printf "cannot encode %v (%s) as TOML" $v (kindOf $v)) -}}
{{- end -}}
{{- end -}}

{{/* Renders a table: dict "path" (list of keys) "map" (the table). */}}
{{- define "wazuh-misp.toml.table" -}}
{{- $path := .path -}}
{{- $m := .map -}}
{{- if $path }}
[{{ range $i, $p := $path }}{{ if $i }}.{{ end }}{{ include "wazuh-misp.toml.key" $p }}{{ end }}]
{{- end }}
{{- range $k := keys $m | sortAlpha }}
{{- $v := index $m $k }}
{{- if not (or (kindIs "invalid" $v) (eq (toString $v) "") (and (kindIs "map" $v) (not (empty $v)))) }}
{{ include "wazuh-misp.toml.key" $k }} = {{ include "wazuh-misp.toml.value" $v }}
{{- end }}
{{- end }}
{{- range $k := keys $m | sortAlpha }}
{{- $v := index $m $k }}
{{- if and (kindIs "map" $v) (not (empty $v)) }}
{{ include "wazuh-misp.toml.table" (dict "path" (append $path $k) "map" $v) }}
{{- end }}
{{- end }}
{{- end -}}

{{- define "wazuh-misp.toml" -}}
{{- $cfg := fromJson (include "wazuh-misp.effectiveConfig" .) -}}
# Rendered by the wazuh-misp Helm chart ({{ .root.Chart.Version }}) for the {{ .role }} role.
# Every key can be overridden with WAZUH_MISP__SECTION__KEY environment variables.
{{- include "wazuh-misp.toml.table" (dict "path" (list) "map" $cfg) }}
{{ end -}}
