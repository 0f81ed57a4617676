{{/*
Pod template shared by the processor and sync Deployments.
Call with: dict "root" $ "role" "processor"|"sync"
*/}}
{{- define "wazuh-misp.podTemplate" -}}
{{- $root := .root -}}
{{- $role := .role -}}
{{- $v := $root.Values -}}
{{- $s := $v.secrets -}}
{{- $dir := include "wazuh-misp.secretsDir" $root -}}
{{- $port := include "wazuh-misp.metricsPort" $root | int -}}
{{- $isSync := eq $role "sync" -}}
metadata:
  labels:
    {{- include "wazuh-misp.selectorLabels" $root | nindent 4 }}
    app.kubernetes.io/component: {{ $role }}
    app.kubernetes.io/version: {{ $root.Chart.AppVersion | quote }}
    {{- with (ternary $v.sync.podLabels $v.podLabels $isSync) }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  annotations:
    checksum/config: {{ include (print $root.Template.BasePath "/configmap.yaml") $root | sha256sum }}
    {{- with (ternary $v.sync.podAnnotations $v.podAnnotations $isSync) }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
spec:
  serviceAccountName: {{ include "wazuh-misp.serviceAccountName" $root }}
  automountServiceAccountToken: {{ $v.serviceAccount.automountServiceAccountToken }}
  enableServiceLinks: false
  terminationGracePeriodSeconds: {{ $v.terminationGracePeriodSeconds }}
  {{- with $v.imagePullSecrets }}
  imagePullSecrets:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $v.priorityClassName }}
  priorityClassName: {{ . }}
  {{- end }}
  securityContext:
    {{- toYaml $v.podSecurityContext | nindent 4 }}
  {{- with (ternary $v.sync.nodeSelector $v.nodeSelector $isSync) }}
  nodeSelector:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with (ternary $v.sync.tolerations $v.tolerations $isSync) }}
  tolerations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with (ternary $v.sync.affinity $v.affinity $isSync) }}
  affinity:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- if and (not $isSync) $v.topologySpreadConstraints }}
  topologySpreadConstraints:
    {{- toYaml $v.topologySpreadConstraints | nindent 4 }}
  {{- end }}
  containers:
    - name: wazuh-misp
      image: {{ include "wazuh-misp.image" $root | quote }}
      imagePullPolicy: {{ $v.image.pullPolicy }}
      args:
        - {{ ternary "sync" "run" $isSync }}
        - --config
        - /etc/wazuh-misp/config.toml
        {{- range $v.extraArgs }}
        - {{ . | quote }}
        {{- end }}
      ports:
        - name: http-metrics
          containerPort: {{ $port }}
          protocol: TCP
      env:
        - name: POD_NAME
          valueFrom:
            fieldRef:
              fieldPath: metadata.name
        - name: POD_NAMESPACE
          valueFrom:
            fieldRef:
              fieldPath: metadata.namespace
        {{- if and $s.mispApiKey.existingSecret (eq $s.mispApiKey.mode "env") }}
        - name: WAZUH_MISP__MISP__API_KEY
          valueFrom:
            secretKeyRef:
              name: {{ $s.mispApiKey.existingSecret }}
              key: {{ $s.mispApiKey.key }}
        {{- end }}
        {{- with $v.extraEnv }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
        {{- if $isSync }}
        {{- with $v.sync.extraEnv }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
        {{- end }}
      {{- with $v.extraEnvFrom }}
      envFrom:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- if $v.startupProbe.enabled }}
      startupProbe:
        httpGet:
          path: {{ $v.startupProbe.path }}
          port: http-metrics
        periodSeconds: {{ $v.startupProbe.periodSeconds }}
        timeoutSeconds: {{ $v.startupProbe.timeoutSeconds }}
        failureThreshold: {{ $v.startupProbe.failureThreshold }}
      {{- end }}
      {{- if $v.livenessProbe.enabled }}
      livenessProbe:
        httpGet:
          path: {{ $v.livenessProbe.path }}
          port: http-metrics
        initialDelaySeconds: {{ $v.livenessProbe.initialDelaySeconds }}
        periodSeconds: {{ $v.livenessProbe.periodSeconds }}
        timeoutSeconds: {{ $v.livenessProbe.timeoutSeconds }}
        failureThreshold: {{ $v.livenessProbe.failureThreshold }}
      {{- end }}
      {{- if $v.readinessProbe.enabled }}
      readinessProbe:
        httpGet:
          path: {{ $v.readinessProbe.path }}
          port: http-metrics
        initialDelaySeconds: {{ $v.readinessProbe.initialDelaySeconds }}
        periodSeconds: {{ $v.readinessProbe.periodSeconds }}
        timeoutSeconds: {{ $v.readinessProbe.timeoutSeconds }}
        failureThreshold: {{ $v.readinessProbe.failureThreshold }}
      {{- end }}
      resources:
        {{- toYaml (ternary $v.sync.resources $v.resources $isSync) | nindent 8 }}
      securityContext:
        {{- toYaml $v.securityContext | nindent 8 }}
      volumeMounts:
        - name: config
          mountPath: /etc/wazuh-misp
          readOnly: true
        - name: data
          mountPath: /var/lib/wazuh-misp
        - name: tmp
          mountPath: /tmp
        {{- if and $s.mispApiKey.existingSecret (eq $s.mispApiKey.mode "file") }}
        - name: misp-api-key
          mountPath: {{ $dir }}/misp
          readOnly: true
        {{- end }}
        {{- if $s.kafkaSaslPassword.existingSecret }}
        - name: kafka-sasl-password
          mountPath: {{ $dir }}/kafka
          readOnly: true
        {{- end }}
        {{- if $s.caBundle.existingSecret }}
        - name: ca-bundle
          mountPath: {{ $dir }}/ca
          readOnly: true
        {{- end }}
        {{- with $v.extraVolumeMounts }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
  volumes:
    - name: config
      configMap:
        name: {{ include "wazuh-misp.fullname" $root }}
        items:
          - key: {{ ternary "sync.toml" "config.toml" $isSync }}
            path: config.toml
    - name: data
      emptyDir:
        {{- with $v.dataVolume.medium }}
        medium: {{ . }}
        {{- end }}
        {{- with $v.dataVolume.sizeLimit }}
        sizeLimit: {{ . }}
        {{- end }}
    - name: tmp
      emptyDir:
        sizeLimit: 64Mi
    {{- if and $s.mispApiKey.existingSecret (eq $s.mispApiKey.mode "file") }}
    - name: misp-api-key
      secret:
        secretName: {{ $s.mispApiKey.existingSecret }}
        defaultMode: 0440
        items:
          - key: {{ $s.mispApiKey.key }}
            path: {{ $s.mispApiKey.key }}
    {{- end }}
    {{- if $s.kafkaSaslPassword.existingSecret }}
    - name: kafka-sasl-password
      secret:
        secretName: {{ $s.kafkaSaslPassword.existingSecret }}
        defaultMode: 0440
        items:
          - key: {{ $s.kafkaSaslPassword.key }}
            path: {{ $s.kafkaSaslPassword.key }}
    {{- end }}
    {{- if $s.caBundle.existingSecret }}
    - name: ca-bundle
      {{- if eq $s.caBundle.kind "ConfigMap" }}
      configMap:
        name: {{ $s.caBundle.existingSecret }}
      {{- else }}
      secret:
        secretName: {{ $s.caBundle.existingSecret }}
      {{- end }}
        defaultMode: 0444
        items:
          - key: {{ $s.caBundle.key }}
            path: {{ $s.caBundle.key }}
    {{- end }}
    {{- with $v.extraVolumes }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
{{- end -}}
