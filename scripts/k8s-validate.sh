#!/usr/bin/env bash
# Static checks of the deployment files, offline:
#   - every Kubernetes manifest in deploy/kubernetes/ against the official
#     schemas (kubernetes-validate --strict: unknown fields are errors), for
#     the oldest and the newest Kubernetes version we support;
#   - kustomization.yaml lists exactly those manifests;
#   - checkov on the manifests and on every Dockerfile (a finding fails;
#     skips are inline, by check id, with their reason);
#   - deploy/swarm/stack.yml parses as a compose file (docker-compose config),
#     when docker-compose is installed.
# The tools come from deploy/requirements.txt, in a venv (scripts/deploy-venv.sh).
#
# Usage: scripts/k8s-validate.sh
# Environment: K8S_VERSIONS (default "1.29.0 1.37.0"), DEPLOY_VENV
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
# shellcheck source=scripts/deploy-venv.sh
. scripts/deploy-venv.sh
deploy_venv

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
K8S_VERSIONS=${K8S_VERSIONS:-1.29.0 1.37.0}
mapfile -t manifests < <(find deploy/kubernetes -name '*.yaml' ! -name kustomization.yaml | sort)
[ ${#manifests[@]} -gt 0 ] || { echo "FAIL k8s validate: no manifests in deploy/kubernetes" >&2; exit 1; }

for version in $K8S_VERSIONS; do
    log "kubernetes-validate --strict -k $version (${#manifests[@]} files)"
    "$DEPLOY_VENV/bin/kubernetes-validate" --strict --quiet -k "$version" "${manifests[@]}"
done

log "kustomization.yaml lists every manifest"
"$DEPLOY_VENV/bin/python" - "${manifests[@]}" <<'PY'
import os, sys, yaml
listed = yaml.safe_load(open("deploy/kubernetes/kustomization.yaml"))["resources"]
files = sorted(os.path.basename(p) for p in sys.argv[1:])
if sorted(listed) != files or len(set(listed)) != len(listed):
    sys.exit(f"kustomization.yaml resources {sorted(listed)} != manifests {files}")
PY

# --skip-download: no calls to the vendor's platform (none are reachable here).
log "checkov: Kubernetes manifests"
"$DEPLOY_VENV/bin/checkov" --skip-download --quiet --compact --framework kubernetes -d deploy/kubernetes
mapfile -t dockerfiles < <(git ls-files --cached --others --exclude-standard -- '*Dockerfile' | sort)
log "checkov: Dockerfiles (${dockerfiles[*]})"
"$DEPLOY_VENV/bin/checkov" --skip-download --quiet --compact --framework dockerfile \
    $(printf -- '-f %s ' "${dockerfiles[@]}")

if command -v docker-compose >/dev/null; then
    log "docker-compose config: deploy/swarm/stack.yml"
    CODECALL_SECRETS=check docker-compose -f deploy/swarm/stack.yml config -q
fi
printf '\033[1;32mPASS\033[0m k8s validate: %s manifests valid for Kubernetes %s, checkov clean on manifests and %s Dockerfiles\n' \
    "${#manifests[@]}" "$K8S_VERSIONS" "${#dockerfiles[@]}"
