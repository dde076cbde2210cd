# Shared by scripts/dev and scripts/test: provisions Postgres and an S3 server
# on a Debian machine, and stops on exit only what it started.
# shellcheck shell=bash

PIDS=()
CLEANUP_DIRS=()
STARTED_PG=""
CLUSTERS=()

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

as_root() {
    if [[ $(id -u) -eq 0 ]]; then "$@"; else sudo "$@"; fi
}

# Runs a command as the postgres OS user (peer authentication on the socket).
as_postgres() {
    if [[ $(id -u) -eq 0 ]]; then
        (cd / && runuser -u postgres -- "$@")
    else
        (cd / && sudo -u postgres "$@")
    fi
}

port_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

free_port() {
    local p
    for p in $(shuf -i 20000-60999 -n 100); do
        if ! port_open 127.0.0.1 "$p"; then echo "$p"; return; fi
    done
    die "no free TCP port found"
}

# wait_for WHAT SECONDS COMMAND... : polls COMMAND until it succeeds.
wait_for() {
    local what=$1 seconds=$2 i
    shift 2
    for ((i = 0; i < seconds * 10; i++)); do
        if "$@"; then return 0; fi
        sleep 0.1
    done
    die "$what did not come up within ${seconds}s"
}

apt_install() {
    say "installing $* (apt-get)"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

# ensure_postgres DBNAME: makes DATABASE_URL answer. A DATABASE_URL already
# set is used as it is; otherwise PostgreSQL on 127.0.0.1:5432 is installed
# and started when needed, with a `darkroom` role owning DBNAME.
ensure_postgres() {
    local db=$1
    command -v psql >/dev/null && command -v pg_ctlcluster >/dev/null || apt_install postgresql
    if [[ -n "${DATABASE_URL:-}" ]]; then
        psql "$DATABASE_URL" -qtAc 'select 1' >/dev/null 2>&1 ||
            die "DATABASE_URL does not answer; unset it to let this script provision Postgres"
        return
    fi
    if ! pg_isready -q -h 127.0.0.1 -p 5432; then
        local ver
        ver=$(ls /etc/postgresql 2>/dev/null | sort -V | tail -n1)
        if [[ -z $ver ]]; then
            ver=$(ls /usr/lib/postgresql | sort -V | tail -n1)
            as_root pg_createcluster "$ver" main >/dev/null
        fi
        say "starting PostgreSQL $ver"
        as_root pg_ctlcluster --skip-systemctl-redirect "$ver" main start
        STARTED_PG=$ver
        wait_for "PostgreSQL" 30 pg_isready -q -h 127.0.0.1 -p 5432
    fi
    # createrole: a test gives workers a role of their own, as deployments do.
    if [[ $(as_postgres psql -qtAc "select 1 from pg_roles where rolname = 'darkroom'") != 1 ]]; then
        as_postgres psql -qc "create role darkroom login createdb createrole password 'darkroom'"
    elif [[ $(as_postgres psql -qtAc "select rolcreaterole from pg_roles where rolname = 'darkroom'") != t ]]; then
        as_postgres psql -qc "alter role darkroom createrole"
    fi
    if [[ $(as_postgres psql -qtAc "select 1 from pg_database where datname = '$db'") != 1 ]]; then
        as_postgres createdb -O darkroom "$db"
    fi
    export DATABASE_URL="postgres://darkroom:darkroom@127.0.0.1:5432/$db"
    psql "$DATABASE_URL" -qtAc 'select 1' >/dev/null || die "cannot log in to $DATABASE_URL"
}

# start_cluster [SETTING=VALUE...]: a private PostgreSQL cluster of the
# installed server (initdb, trust auth, no fsync: throw-away data) on a free
# port of 127.0.0.1, stopped and removed on exit. Sets CLUSTER_URL to it
# (database `postgres`, user `postgres`).
start_cluster() {
    local dir port bin setting opts=()
    # Its own folder, which the postgres user can reach whoever runs this.
    dir=$(mktemp -d -t darkroom-pg.XXXXXX)
    command -v pg_ctlcluster >/dev/null || apt_install postgresql
    bin=/usr/lib/postgresql/$(ls /usr/lib/postgresql | sort -V | tail -n1)/bin
    port=$(free_port)
    for setting in listen_addresses=127.0.0.1 "port=$port" fsync=off "unix_socket_directories=$dir" "$@"; do
        opts+=("-c $setting")
    done
    CLEANUP_DIRS+=("$dir")
    if [[ $(id -u) -eq 0 ]]; then chown postgres "$dir"; else chmod 777 "$dir"; fi
    as_postgres "$bin/initdb" --no-sync -A trust -U postgres -D "$dir/data" >/dev/null
    as_postgres "$bin/pg_ctl" -D "$dir/data" -l "$dir/log" -o "${opts[*]}" -w start >/dev/null ||
        die "the cluster in $dir did not start (log: $dir/log)"
    CLUSTERS+=("$bin/pg_ctl:$dir/data")
    CLUSTER_URL="postgres://postgres@127.0.0.1:$port/postgres"
}

S3S_FS_VERSION=0.14.1

# start_s3 DATA_DIR LOG: starts MinIO (when on PATH) or s3s-fs on a free port
# and exports the AWS_* variables pointing at it.
start_s3() {
    local dir=$1 log=$2 port
    mkdir -p "$dir"
    port=$(free_port)
    export AWS_ACCESS_KEY_ID=darkroom AWS_SECRET_ACCESS_KEY=darkroom-secret AWS_REGION=us-east-1
    export AWS_ENDPOINT_URL="http://127.0.0.1:$port"
    if command -v minio >/dev/null; then
        say "starting MinIO on 127.0.0.1:$port ($dir)"
        MINIO_ROOT_USER=$AWS_ACCESS_KEY_ID MINIO_ROOT_PASSWORD=$AWS_SECRET_ACCESS_KEY \
            minio server "$dir" --quiet --address "127.0.0.1:$port" \
            --console-address "127.0.0.1:$(free_port)" >"$log" 2>&1 &
    else
        if ! command -v s3s-fs >/dev/null || [[ $(s3s-fs --version) != *"$S3S_FS_VERSION"* ]]; then
            say "installing s3s-fs $S3S_FS_VERSION (cargo install, about 2 minutes, once)"
            cargo install --locked --quiet "s3s-fs@$S3S_FS_VERSION" --features binary
        fi
        say "starting s3s-fs on 127.0.0.1:$port ($dir)"
        s3s-fs --host 127.0.0.1 --port "$port" --access-key "$AWS_ACCESS_KEY_ID" \
            --secret-key "$AWS_SECRET_ACCESS_KEY" "$dir" >"$log" 2>&1 &
    fi
    PIDS+=($!)
    wait_for "the S3 server (log: $log)" 30 port_open 127.0.0.1 "$port"
}

# http_ok HOST PORT PATH: true when GET answers 200 (no curl on a bare Debian).
http_ok() {
    local status
    { exec 3<>"/dev/tcp/$1/$2"; } 2>/dev/null || return 1
    printf 'GET %s HTTP/1.0\r\nHost: %s\r\n\r\n' "$3" "$1" >&3
    read -r _ status _ <&3 || true
    exec 3>&-
    [[ $status == 200 ]]
}

cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    if [[ -n $STARTED_PG ]]; then
        say "stopping PostgreSQL $STARTED_PG (this script started it)"
        as_root pg_ctlcluster --skip-systemctl-redirect "$STARTED_PG" main stop || true
    fi
    local cluster
    for cluster in "${CLUSTERS[@]}"; do
        as_postgres "${cluster%%:*}" -D "${cluster#*:}" -m immediate stop >/dev/null 2>&1 || true
    done
    for dir in "${CLEANUP_DIRS[@]}"; do rm -rf "$dir"; done
}

# ensure_build_tools: what the worker's C libraries build with. libjpeg-turbo
# (turbojpeg-sys, from its bundled source): cmake, and nasm for its SIMD code.
# libheif (libheif-sys, from its embedded source): cmake, a C++ compiler,
# pkg-config, and Debian's HEVC and AV1 codecs it links: libde265 (HEVC
# decoding), dav1d (AV1 decoding) and libaom (AV1 encoding).
ensure_build_tools() {
    local need=() tool pc
    for tool in cmake nasm pkg-config g++; do
        command -v "$tool" >/dev/null || need+=("$tool")
    done
    for pc in libde265:libde265-dev aom:libaom-dev dav1d:libdav1d-dev; do
        pkg-config --exists "${pc%%:*}" 2>/dev/null || need+=("${pc#*:}")
    done
    [[ ${#need[@]} -eq 0 ]] || apt_install "${need[@]}"
}

# check_disk_space DIR GIB: says how much room DIR's disk has, and warns
# when it is under GIB. A disk that fills while linking fails far from its
# cause (ld dies of "signal 7 [Bus error]" writing a mapped output file).
check_disk_space() {
    mkdir -p "$1"
    local free
    free=$(df -P -BG "$1" | awk 'NR == 2 { sub("G", "", $4); print $4 }')
    say "$free GiB free for $1 (a full run needs about $2 GiB)"
    ((free >= $2)) || printf 'warning: %s has %s GiB free; the build may run out of disk\n' "$1" "$free" >&2
}

ensure_rust_components() {
    rustup component list --installed 2>/dev/null | grep -q '^rustfmt' || rustup component add rustfmt
    rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy
}

# ensure_browser: Debian's Chromium and the browser test's npm packages
# (playwright-core drives the installed Chromium; it downloads no browser.
# axe-core checks the page's accessibility).
ensure_browser() {
    command -v chromium >/dev/null || apt_install chromium
    command -v npm >/dev/null || apt_install nodejs npm
    local modules=web/tests/browser/node_modules
    if [[ ! -d $modules/playwright-core || ! -d $modules/axe-core ]]; then
        say "installing the browser test's npm packages (npm ci)"
        (cd web/tests/browser && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --silent)
    fi
}

# ensure_sqs_clients: two Python environments under target/py/ for the SQS
# endpoint's boto3 suite (queue/tests/sqs_boto3/): a current boto3 (AWS JSON
# 1.0) and the last one that speaks the query protocol. Kept between runs;
# remade when a requirements file changes.
ensure_sqs_clients() {
    local protocol
    for protocol in json query; do
        ensure_venv "target/py/sqs-$protocol" "queue/tests/sqs_boto3/requirements-$protocol.txt" \
            "boto3 for the SQS suite ($protocol protocol)"
    done
}

# ensure_venv DIR REQUIREMENTS WHAT: a Python environment at DIR with
# REQUIREMENTS installed, kept between runs and remade when that file
# changes or DIR moved (a venv's scripts name its absolute path, so a
# target/ restored elsewhere holds broken ones); WHAT says what is being
# installed.
ensure_venv() {
    local dir=$1 want=$2 stamp
    command -v python3 >/dev/null || apt_install python3 python3-venv
    stamp=$(cat "$want"; echo "# made at $(pwd -P)/$dir")
    if [[ "$stamp" != "$(cat "$dir/requirements.txt" 2>/dev/null)" ]]; then
        say "installing $3"
        rm -rf "$dir"
        python3 -m venv "$dir" || { apt_install python3-venv && python3 -m venv "$dir"; }
        "$dir/bin/pip" install --quiet --disable-pip-version-check -r "$want"
        printf '%s\n' "$stamp" > "$dir/requirements.txt"
    fi
}

# ensure_kubernetes_tools: what scripts/test-kubernetes runs. kubectl (its
# built-in kustomize renders the overlays), a Python environment
# target/py/kubernetes with kubernetes-validate, checkov and pytest (pinned
# in deploy/kubernetes/tests/requirements.txt; remade when that file
# changes), and KEDA's generated validators, the npm package
# @kubernetes-models/keda (pinned by deploy/kubernetes/tests/keda's
# package-lock.json; reinstalled when it changes).
ensure_kubernetes_tools() {
    if ! command -v kubectl >/dev/null; then
        as_root apt-get update -qq
        if apt-cache show kubectl >/dev/null 2>&1; then apt_install kubectl; else apt_install kubernetes-client; fi
    fi
    # The overlays use kustomize components (kustomize 4+, kubectl 1.21+);
    # Debian 12's own kubernetes-client is 1.20.
    local kustomize
    kustomize=$(kubectl version --client 2>/dev/null | sed -n 's/^Kustomize Version: v\([0-9]*\).*/\1/p')
    [[ ${kustomize:-0} -ge 4 ]] ||
        die "kubectl's kustomize is older than v4 (kubectl version --client); install kubectl 1.21+ (Kubernetes' or Google Cloud's apt repository)"
    ensure_venv target/py/kubernetes deploy/kubernetes/tests/requirements.txt \
        "the Kubernetes manifests' test tools (kubernetes-validate, checkov, pytest)"
    command -v npm >/dev/null || apt_install nodejs npm
    local keda=deploy/kubernetes/tests/keda
    if ! cmp -s "$keda/package-lock.json" "$keda/node_modules/.darkroom-lock.json" 2>/dev/null; then
        say "installing KEDA's validators (npm ci @kubernetes-models/keda)"
        (cd "$keda" && npm ci --no-audit --no-fund --silent)
        cp "$keda/package-lock.json" "$keda/node_modules/.darkroom-lock.json"
    fi
}
