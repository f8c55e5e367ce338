{{- define "streamlines.fullname" -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "streamlines.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "streamlines.selector" -}}
app.kubernetes.io/name: {{ .root.Chart.Name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .role }}
{{- end -}}

{{- define "streamlines.secretName" -}}
{{- if .Values.secrets.existingSecret -}}{{ .Values.secrets.existingSecret }}{{- else -}}{{ include "streamlines.fullname" . }}{{- end -}}
{{- end -}}

{{/* The container of one role: args, config, secrets, probes. Called with (dict "root" $ "role" "serve"). */}}
{{- define "streamlines.container" -}}
- name: {{ .role }}
  image: "{{ .root.Values.image.repository }}:{{ .root.Values.image.tag }}"
  imagePullPolicy: {{ .root.Values.image.pullPolicy }}
  args:
    - {{ .role }}
    - --config
    - /etc/streamlines/config.yaml
    - --data-dir
    - /data
    - --host
    - 0.0.0.0
    - --port
    - "8080"
  ports:
    - name: http
      containerPort: 8080
  env:
    {{- range $name, $value := .root.Values.env }}
    - name: {{ $name }}
      value: {{ $value | quote }}
    {{- end }}
    {{- include "streamlines.lakeEnv" .root | nindent 4 }}
  envFrom:
    - secretRef:
        name: {{ include "streamlines.secretName" .root }}
        optional: true
  livenessProbe:
    httpGet: { path: /health, port: http }
    periodSeconds: 10
    failureThreshold: 6
  readinessProbe:
    httpGet: { path: /ready, port: http }
    periodSeconds: 5
    failureThreshold: 3
  resources:
    {{- toYaml (index .root.Values .role).resources | nindent 4 }}
  securityContext:
    {{- toYaml .root.Values.containerSecurityContext | nindent 4 }}
  volumeMounts:
    - name: config
      mountPath: /etc/streamlines
      readOnly: true
    - name: data
      mountPath: /data
    - name: tmp
      mountPath: /tmp
    {{- if and .root.Values.archive.enabled (eq .role "serve") }}
    - name: lake
      mountPath: /lake
      readOnly: true
    {{- end }}
{{- end -}}

{{/* Where the lake is (the archive's volume), or the lake off when there is no archive. */}}
{{- define "streamlines.lakeEnv" -}}
{{- if .Values.archive.enabled -}}
- name: STREAMLINES_LAKE__PATH
  value: /lake
{{- else -}}
- name: STREAMLINES_LAKE__ENABLED
  value: "false"
{{- end -}}
{{- end -}}

{{- define "streamlines.lakeClaim" -}}
{{- .Values.archive.existingClaim | default (printf "%s-lake" (include "streamlines.fullname" .)) -}}
{{- end -}}

{{- define "streamlines.podSpec" -}}
securityContext:
  {{- toYaml .root.Values.podSecurityContext | nindent 2 }}
containers:
  {{- include "streamlines.container" . | nindent 2 }}
volumes:
  - name: config
    configMap:
      name: {{ include "streamlines.fullname" .root }}
  - name: tmp
    emptyDir: {}
  {{- if ne .role "ingest" }}
  - name: data
    emptyDir: {}
  {{- end }}
  {{- if and .root.Values.archive.enabled (eq .role "serve") }}
  - name: lake
    persistentVolumeClaim:
      claimName: {{ include "streamlines.lakeClaim" .root }}
  {{- end }}
{{- end -}}
