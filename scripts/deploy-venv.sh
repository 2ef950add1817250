# Sourced by scripts/swarm-test.sh, scripts/k8s-validate.sh and
# scripts/openapi-fuzz.sh: Python venvs of pinned tools, created on first use
# and refreshed when their requirements file changes. Both live under target/
# (gitignored).
#
#   . scripts/deploy-venv.sh && deploy_venv && "$DEPLOY_VENV/bin/python" ...

# pinned_venv DIR REQUIREMENTS: a venv at DIR with REQUIREMENTS installed
# (nothing to do when the stamp in DIR says that file is already installed).
pinned_venv() {
    local venv=$1 requirements=$2 stamp
    stamp=$venv/.requirements.sha256
    if [ -x "$venv/bin/python" ] && [ -f "$stamp" ] \
        && [ "$(cat "$stamp")" = "$(sha256sum "$requirements" | cut -d' ' -f1)" ]; then
        return 0
    fi
    printf '\033[1m==> %s\033[0m\n' "python venv $venv ($requirements)" >&2
    if ! python3 -m venv "$venv" 2>/dev/null; then
        # Debian's python3 ships venv separately.
        as_root_cmd=(); [ "$(id -u)" = 0 ] || as_root_cmd=(sudo)
        DEBIAN_FRONTEND=noninteractive "${as_root_cmd[@]}" apt-get install -y -qq python3-venv >/dev/null
        python3 -m venv "$venv"
    fi
    "$venv/bin/pip" install -q --disable-pip-version-check -r "$requirements" \
        || { echo "error: installing $requirements into $venv failed" >&2; return 1; }
    sha256sum "$requirements" | cut -d' ' -f1 > "$stamp"
}

# The tools of deploy/requirements.txt (kubernetes-validate, checkov,
# websockets) in DEPLOY_VENV (default target/deploy-venv).
deploy_venv() {
    local root
    root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
    DEPLOY_VENV=${DEPLOY_VENV:-$root/target/deploy-venv}
    export DEPLOY_VENV
    pinned_venv "$DEPLOY_VENV" "$root/deploy/requirements.txt"
}
