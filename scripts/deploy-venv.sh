# Sourced by scripts/swarm-test.sh and scripts/k8s-validate.sh: a Python venv
# with the pinned tools of deploy/requirements.txt (kubernetes-validate,
# checkov, websockets), created on first use and refreshed when the
# requirements change. DEPLOY_VENV picks its place (default target/deploy-venv,
# gitignored).
#
#   . scripts/deploy-venv.sh && deploy_venv && "$DEPLOY_VENV/bin/python" ...
deploy_venv() {
    local root requirements stamp
    root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
    requirements=$root/deploy/requirements.txt
    DEPLOY_VENV=${DEPLOY_VENV:-$root/target/deploy-venv}
    export DEPLOY_VENV
    stamp=$DEPLOY_VENV/.requirements.sha256
    if [ -x "$DEPLOY_VENV/bin/python" ] && [ -f "$stamp" ] \
        && [ "$(cat "$stamp")" = "$(sha256sum "$requirements" | cut -d' ' -f1)" ]; then
        return 0
    fi
    printf '\033[1m==> %s\033[0m\n' "python venv $DEPLOY_VENV (deploy/requirements.txt)" >&2
    if ! python3 -m venv "$DEPLOY_VENV" 2>/dev/null; then
        # Debian's python3 ships venv separately.
        as_root_cmd=(); [ "$(id -u)" = 0 ] || as_root_cmd=(sudo)
        DEBIAN_FRONTEND=noninteractive "${as_root_cmd[@]}" apt-get install -y -qq python3-venv >/dev/null
        python3 -m venv "$DEPLOY_VENV"
    fi
    "$DEPLOY_VENV/bin/pip" install -q --disable-pip-version-check -r "$requirements" \
        || { echo "error: installing deploy/requirements.txt into $DEPLOY_VENV failed" >&2; return 1; }
    sha256sum "$requirements" | cut -d' ' -f1 > "$stamp"
}
