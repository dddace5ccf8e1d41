{{/* Names are cut at 63 characters, the DNS label limit Kubernetes enforces. */}}
{{- define "strata.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "strata.fullname" -}}
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

{{/* Component names leave room for the suffixes ReplicaSets and pods add. */}}
{{- define "strata.componentName" -}}
{{- printf "%s-%s" (include "strata.fullname" .root | trunc 45 | trimSuffix "-") .component -}}
{{- end -}}

{{- define "strata.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "strata.selectorLabels" -}}
app.kubernetes.io/name: {{ include "strata.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "strata.labels" -}}
helm.sh/chart: {{ include "strata.chart" .root }}
{{ include "strata.selectorLabels" . }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/part-of: strata
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
{{- end -}}

{{/* Labels for objects that belong to the release rather than one component. */}}
{{- define "strata.commonLabels" -}}
helm.sh/chart: {{ include "strata.chart" . }}
app.kubernetes.io/name: {{ include "strata.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/part-of: strata
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "strata.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{- define "strata.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "strata.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "strata.etcdName" -}}
{{- include "strata.componentName" (dict "root" . "component" "etcd") -}}
{{- end -}}

{{- define "strata.etcdHeadless" -}}
{{- printf "%s-headless" (include "strata.etcdName" .) -}}
{{- end -}}

{{/* The metadata store URL: meta.url, else every member of the bundled etcd. */}}
{{- define "strata.metaUrl" -}}
{{- if .Values.meta.url -}}
{{- .Values.meta.url -}}
{{- else if .Values.etcd.enabled -}}
{{- $name := include "strata.etcdName" . -}}
{{- $domain := printf "%s.%s.svc.%s" (include "strata.etcdHeadless" .) .Release.Namespace .Values.clusterDomain -}}
{{- $members := list -}}
{{- range $i := until (int .Values.etcd.replicaCount) -}}
{{- $members = append $members (printf "%s-%d.%s:%d" $name $i $domain (int $.Values.etcd.clientPort)) -}}
{{- end -}}
{{- printf "etcd://%s" (join "," $members) -}}
{{- else -}}
{{- fail "Strata needs etcd: set meta.url to your etcd (etcd://host:2379[,...]) or etcd.enabled=true" -}}
{{- end -}}
{{- end -}}

{{/* Storage nodes: storage.nodes plus the S3 shorthand. */}}
{{- define "strata.storageNodes" -}}
{{- $nodes := list -}}
{{- range .Values.storage.nodes -}}
{{- $nodes = append $nodes . -}}
{{- end -}}
{{- with .Values.storage.s3 -}}
{{- if .bucket -}}
{{- $path := .bucket -}}
{{- if .prefix -}}
{{- $path = printf "%s/%s" .bucket (trimAll "/" .prefix) -}}
{{- end -}}
{{- $query := list -}}
{{- if .endpoint -}}
{{- $query = append $query (printf "endpoint=%s" .endpoint) -}}
{{- end -}}
{{- if .region -}}
{{- $query = append $query (printf "region=%s" .region) -}}
{{- end -}}
{{- if .virtual_hosted -}}
{{- $query = append $query "virtual_hosted=true" -}}
{{- end -}}
{{- $url := printf "s3://%s" $path -}}
{{- if $query -}}
{{- $url = printf "%s?%s" $url (join "&" $query) -}}
{{- end -}}
{{- $nodes = append $nodes $url -}}
{{- end -}}
{{- end -}}
{{- if not $nodes -}}
{{- fail "Strata needs storage: set storage.s3.bucket or list storage.nodes" -}}
{{- end -}}
{{- if lt (len $nodes) (int .Values.storage.replicas) -}}
{{- fail (printf "storage.replicas is %d but only %d storage node(s) are configured" (int .Values.storage.replicas) (len $nodes)) -}}
{{- end -}}
{{- include "strata.toml" $nodes -}}
{{- end -}}

{{/*
A string or list of strings as TOML: a JSON string is a valid TOML basic string. Go's JSON
escapes <, > and & for HTML's sake; TOML does not need that and people read this file.
*/}}
{{- define "strata.toml" -}}
{{- toJson . | replace "\\u0026" "&" | replace "\\u003c" "<" | replace "\\u003e" ">" -}}
{{- end -}}

{{- define "strata.credentialsSecret" -}}
{{- if .Values.storage.credentials.existingSecret -}}
{{- .Values.storage.credentials.existingSecret -}}
{{- else if .Values.storage.credentials.accessKeyId -}}
{{- printf "%s-storage" (include "strata.fullname" .) -}}
{{- end -}}
{{- end -}}

{{/* Environment every Strata server shares: log filter and S3 credentials. */}}
{{- define "strata.commonEnv" -}}
- name: STRATA_LOG
  value: {{ .Values.logLevel | quote }}
{{- if not .Values.zone }}
{{- /* The node's zone, on pods where Kubernetes copies it from the node (PodTopologyLabels
admission: beta in 1.35, alpha in 1.33). Missing, the variable is empty and Strata runs
without a zone. */}}
- name: STRATA_ZONE
  valueFrom:
    fieldRef:
      fieldPath: metadata.labels['topology.kubernetes.io/zone']
{{- end }}
{{- $secret := include "strata.credentialsSecret" . }}
{{- if $secret }}
- name: AWS_ACCESS_KEY_ID
  valueFrom:
    secretKeyRef:
      name: {{ $secret }}
      key: {{ .Values.storage.credentials.accessKeyIdKey }}
- name: AWS_SECRET_ACCESS_KEY
  valueFrom:
    secretKeyRef:
      name: {{ $secret }}
      key: {{ .Values.storage.credentials.secretAccessKeyKey }}
{{- end }}
{{- end -}}

{{/* Restarts pods when the rendered configuration (or the chart-made Secret) changes. */}}
{{- define "strata.configChecksums" -}}
checksum/config: {{ include (print .Template.BasePath "/configmap.yaml") . | sha256sum }}
{{- if and .Values.storage.credentials.accessKeyId (not .Values.storage.credentials.existingSecret) }}
checksum/storage-secret: {{ include (print .Template.BasePath "/secret.yaml") . | sha256sum }}
{{- end }}
{{- end -}}

{{/* affinity, or a pod anti-affinity preset spreading one component over nodes. */}}
{{- define "strata.affinity" -}}
{{- $values := .values -}}
{{- if $values.affinity -}}
{{- toYaml $values.affinity -}}
{{- else if eq $values.podAntiAffinity "soft" -}}
podAntiAffinity:
  preferredDuringSchedulingIgnoredDuringExecution:
    - weight: 100
      podAffinityTerm:
        topologyKey: kubernetes.io/hostname
        labelSelector:
          matchLabels:
            {{- include "strata.selectorLabels" . | nindent 12 }}
{{- else if eq $values.podAntiAffinity "hard" -}}
podAntiAffinity:
  requiredDuringSchedulingIgnoredDuringExecution:
    - topologyKey: kubernetes.io/hostname
      labelSelector:
        matchLabels:
          {{- include "strata.selectorLabels" . | nindent 10 }}
{{- end -}}
{{- end -}}

{{/* Scheduling fields shared by every workload. Expects dict root, component, values. */}}
{{- define "strata.scheduling" -}}
{{- $affinity := include "strata.affinity" . -}}
{{- if $affinity }}
affinity:
  {{- $affinity | nindent 2 }}
{{- end }}
{{- with .values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .values.topologySpreadConstraints }}
topologySpreadConstraints:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/* A PodDisruptionBudget from a component's podDisruptionBudget values. */}}
{{- define "strata.pdb" -}}
{{- $pdb := .values.podDisruptionBudget -}}
{{- if $pdb.enabled }}
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: {{ include "strata.componentName" . }}
  namespace: {{ .root.Release.Namespace }}
  labels:
    {{- include "strata.labels" . | nindent 4 }}
spec:
  {{- if hasKey $pdb "minAvailable" }}
  minAvailable: {{ $pdb.minAvailable }}
  {{- else }}
  maxUnavailable: {{ $pdb.maxUnavailable | default 1 }}
  {{- end }}
  selector:
    matchLabels:
      {{- include "strata.selectorLabels" . | nindent 6 }}
{{- end }}
{{- end -}}

{{/* A HorizontalPodAutoscaler for a Deployment from a component's autoscaling values. */}}
{{- define "strata.hpa" -}}
{{- $hpa := .values.autoscaling -}}
{{- if $hpa.enabled }}
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: {{ include "strata.componentName" . }}
  namespace: {{ .root.Release.Namespace }}
  labels:
    {{- include "strata.labels" . | nindent 4 }}
spec:
  scaleTargetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: {{ include "strata.componentName" . }}
  minReplicas: {{ $hpa.minReplicas }}
  maxReplicas: {{ $hpa.maxReplicas }}
  metrics:
    {{- with $hpa.targetCPUUtilizationPercentage }}
    - type: Resource
      resource:
        name: cpu
        target:
          type: Utilization
          averageUtilization: {{ . }}
    {{- end }}
    {{- with $hpa.targetMemoryUtilizationPercentage }}
    - type: Resource
      resource:
        name: memory
        target:
          type: Utilization
          averageUtilization: {{ . }}
    {{- end }}
  {{- with $hpa.behavior }}
  behavior:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end }}
{{- end -}}

{{/* A ServiceMonitor scraping /metrics on one component's Service port. */}}
{{- define "strata.serviceMonitor" -}}
{{- $sm := .root.Values.metrics.serviceMonitor -}}
{{- if $sm.enabled }}
apiVersion: monitoring.coreos.com/v1
kind: ServiceMonitor
metadata:
  name: {{ include "strata.componentName" . }}
  namespace: {{ .root.Release.Namespace }}
  labels:
    {{- include "strata.labels" . | nindent 4 }}
    {{- with $sm.labels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
spec:
  selector:
    matchLabels:
      {{- include "strata.selectorLabels" . | nindent 6 }}
      strata.io/service: {{ .service }}
  namespaceSelector:
    matchNames:
      - {{ .root.Release.Namespace }}
  endpoints:
    - port: {{ .port }}
      path: /metrics
      interval: {{ $sm.interval }}
      {{- with $sm.scrapeTimeout }}
      scrapeTimeout: {{ . }}
      {{- end }}
{{- end }}
{{- end -}}

{{/* Refuses TLS values that would start pods that cannot serve or cannot be probed. */}}
{{- define "strata.tlsChecks" -}}
{{- if and (ne .Values.tls.client_auth "none") (not .Values.tls.secretName) -}}
{{- fail "tls.client_auth asks for client certificates, but TLS is off: set tls.secretName to a Secret with tls.crt, tls.key and ca.crt" -}}
{{- end -}}
{{- if and .Values.tls.http (not .Values.tls.secretName) -}}
{{- fail "tls.http serves the health endpoints over TLS, but TLS is off: set tls.secretName" -}}
{{- end -}}
{{- if and .Values.tls.http (eq .Values.tls.client_auth "required") -}}
{{- fail "tls.http with tls.client_auth required leaves kubelet's probes without a client certificate: set tls.http false (the health endpoints carry no data) or client_auth optional" -}}
{{- end -}}
{{- if and (has "PLAIN" .Values.proxy.kafka.sasl_mechanisms) (not .Values.tls.secretName) -}}
{{- fail "proxy.kafka.sasl_mechanisms offers PLAIN, which sends passwords as they are: set tls.secretName too, or offer SCRAM only" -}}
{{- end -}}
{{- if and .Values.security.authenticate (not .Values.tls.secretName) -}}
{{- fail "security.authenticate needs TLS (tokens must not travel in the clear, and brokers know the cluster by its certificate): set tls.secretName" -}}
{{- end -}}
{{- if and .Values.security.authenticate (eq .Values.tls.client_auth "none") -}}
{{- fail "security.authenticate needs client certificates requested: set tls.client_auth optional (tokens or certificates) or required" -}}
{{- end -}}
{{- if and .Values.security.authenticate (not .Values.security.cluster_principals) -}}
{{- fail "security.authenticate needs security.cluster_principals: the principal tls.secretName's certificate names (User:<CN>, or User:<SAN> with tls.principal san), which brokers admit" -}}
{{- end -}}
{{- if and .Values.meta.tls.secretName (not .Values.meta.url) -}}
{{- fail "meta.tls is for your own etcd over TLS (set meta.url); the bundled etcd serves plaintext inside the cluster" -}}
{{- end -}}
{{- end -}}

{{/* Read-only mounts of the TLS Secrets, for a Strata container's volumeMounts. */}}
{{- define "strata.tlsMounts" -}}
{{- if .Values.tls.secretName }}
- name: tls
  mountPath: /etc/strata/tls
  readOnly: true
{{- end }}
{{- if .Values.meta.tls.secretName }}
- name: etcd-tls
  mountPath: /etc/strata/etcd
  readOnly: true
{{- end }}
{{- end -}}

{{/* The TLS Secrets as volumes, for a Strata pod's volumes. */}}
{{- define "strata.tlsVolumes" -}}
{{- if .Values.tls.secretName }}
- name: tls
  secret:
    secretName: {{ .Values.tls.secretName }}
{{- end }}
{{- if .Values.meta.tls.secretName }}
- name: etcd-tls
  secret:
    secretName: {{ .Values.meta.tls.secretName }}
{{- end }}
{{- end -}}

{{/* The scheme of the brokers' and proxies' health endpoints. */}}
{{- define "strata.healthScheme" -}}
{{- if and .Values.tls.secretName .Values.tls.http }}HTTPS{{ else }}HTTP{{ end -}}
{{- end -}}
