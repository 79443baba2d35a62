{{/* Names ---------------------------------------------------------------------------- */}}

{{- define "ferry.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "ferry.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "ferry.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "ferry.selectorLabels" -}}
app.kubernetes.io/name: {{ include "ferry.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "ferry.labels" -}}
helm.sh/chart: {{ include "ferry.chart" . }}
{{ include "ferry.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: ferry
{{- end }}

{{- define "ferry.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "ferry.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "ferry.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag }}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository $tag }}
{{- end }}
{{- end }}

{{- define "ferry.clusterwide" -}}
{{- if not .Values.watchNamespaces }}true{{- end }}
{{- end }}

{{/* Checks that JSON Schema cannot express in a readable way. */}}
{{- define "ferry.validate" -}}
{{- if and (gt (int .Values.replicaCount) 1) (not .Values.peering.name) }}
{{- fail "replicaCount > 1 needs peering.name: standalone replicas would handle every resource twice" }}
{{- end }}
{{- end }}

{{/*
RBAC. Exactly what the operator does, rule by rule; tests/integration/test_rbac.py removes
each verb in turn on a real API server and shows what breaks.

Rules in every watched namespace (or cluster-wide in a ClusterRole).
*/}}
{{- define "ferry.rules.namespaced" -}}
# kopf lists and watches every Ferry kind (the handlers, the per-resource daemons and the
# index of what each Cluster references); patch adds and removes the finalizer
# ferry.dev/finalizer and the ferry.dev/* progress annotations.
- apiGroups: ["ferry.dev"]
  resources: ["clusters", "snapshots", "backfills"]
  verbs: ["list", "watch", "patch"]
# Snapshots and Backfills read the Clusters they reference; a Backfill re-reads itself.
- apiGroups: ["ferry.dev"]
  resources: ["clusters", "backfills"]
  verbs: ["get"]
# Status (phase, conditions, figures) is written as merge patches of the status
# subresource.
- apiGroups: ["ferry.dev"]
  resources: ["clusters/status", "snapshots/status", "backfills/status"]
  verbs: ["patch"]
# Credentials referenced by Clusters and Snapshots: read with get; listed and watched so
# that a created or rotated Secret re-checks its Clusters at once.
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["get", "list", "watch"]
# CA bundles referenced by Clusters (tls.caConfigMapRef): the same, for ConfigMaps.
- apiGroups: [""]
  resources: ["configmaps"]
  verbs: ["get", "list", "watch"]
# Events on transitions (kopf posts new core/v1 Events and never updates them).
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create"]
{{- if .Values.podsExecutor.enabled }}
# Backfill executor `pods`: one Deployment of `ferry worker` per Backfill, created (or
# patched when it exists) with spec.workers as replicas, and deleted with the Backfill.
- apiGroups: ["apps"]
  resources: ["deployments"]
  verbs: ["create", "patch", "delete"]
{{- end }}
{{- if and .Values.peering.name (not (include "ferry.clusterwide" .)) }}
# kopf peering (namespaced mode): keep-alives in the KopfPeering object of each namespace.
- apiGroups: ["kopf.dev"]
  resources: ["kopfpeerings"]
  verbs: ["list", "watch", "patch"]
{{- end }}
{{- end }}

{{/* What a `ferry worker` pod (Backfill executor `pods`) reads: its Backfill, the two
Clusters and their Secrets/ConfigMaps. Read-only: the operator writes status. */}}
{{- define "ferry.rules.worker" -}}
- apiGroups: ["ferry.dev"]
  resources: ["backfills", "clusters"]
  verbs: ["get"]
- apiGroups: [""]
  resources: ["secrets", "configmaps"]
  verbs: ["get"]
{{- end }}

{{- define "ferry.workerNamespaces" -}}
{{- if include "ferry.clusterwide" . }}
{{- toJson .Values.podsExecutor.namespaces }}
{{- else }}
{{- toJson .Values.watchNamespaces }}
{{- end }}
{{- end }}

{{- define "ferry.workerImage" -}}
{{- with .Values.podsExecutor.image }}
{{- . }}
{{- else }}
{{- include "ferry.image" . }}
{{- end }}
{{- end }}

{{/* Cluster-scoped rules: in the ClusterRole (all namespaces) or a small one of their own. */}}
{{- define "ferry.rules.cluster" -}}
{{- if .Values.rbac.watchCRDs }}
# kopf re-scans the resources it serves when a CustomResourceDefinition appears or
# changes while it runs (e.g. CRDs applied after the operator, a new served version).
- apiGroups: ["apiextensions.k8s.io"]
  resources: ["customresourcedefinitions"]
  verbs: ["list", "watch"]
{{- end }}
{{- if not (include "ferry.clusterwide" .) }}
# Namespaced mode: kopf lists and watches namespaces to match its namespace list before
# it serves anything; when forbidden it retries for about a minute, then falls back.
- apiGroups: [""]
  resources: ["namespaces"]
  verbs: ["list", "watch"]
{{- end }}
{{- if and .Values.peering.name (include "ferry.clusterwide" .) }}
# kopf peering (all namespaces): keep-alives in the ClusterKopfPeering object.
- apiGroups: ["kopf.dev"]
  resources: ["clusterkopfpeerings"]
  verbs: ["list", "watch", "patch"]
{{- end }}
{{- end }}

{{/* What every worker pod takes from the chart (settings.WORKER_TEMPLATE_KEYS): the
ConfigMap the operator reads at start and merges into each worker Deployment. */}}
{{- define "ferry.workerTemplate" -}}
{{- $w := .Values.podsExecutor }}
{{- $env := $w.env }}
{{- with (include "ferry.kubernetesServiceEnv" . | fromYamlArray) }}
{{- $env = concat $w.env . }}
{{- end }}
{{- toYaml (dict
  "imagePullPolicy" (default .Values.image.pullPolicy $w.imagePullPolicy)
  "imagePullSecrets" (default .Values.imagePullSecrets $w.imagePullSecrets)
  "resources" $w.resources
  "nodeSelector" $w.nodeSelector
  "tolerations" $w.tolerations
  "affinity" $w.affinity
  "podSecurityContext" $w.podSecurityContext
  "securityContext" $w.securityContext
  "volumes" $w.volumes
  "volumeMounts" $w.volumeMounts
  "env" $env
  "hostNetwork" $w.hostNetwork) }}
{{- end }}

{{/* KUBERNETES_SERVICE_HOST/PORT from kubernetesService (a YAML list; empty without a
host): the operator's and the workers' in-cluster config then reach the API server there
instead of at the kubelet's injected Service address. */}}
{{- define "ferry.kubernetesServiceEnv" -}}
{{- with .Values.kubernetesService.host }}
- name: KUBERNETES_SERVICE_HOST
  value: {{ . | quote }}
- name: KUBERNETES_SERVICE_PORT
  value: {{ $.Values.kubernetesService.port | toString | quote }}
{{- else }}
[]
{{- end }}
{{- end }}

{{/* Where the operator's container finds that template. */}}
{{- define "ferry.workerTemplateDir" -}}/etc/ferry/worker{{- end }}
