#!/usr/bin/env bash
# Idempotent set-up for a fresh Debian 12 machine (run as root):
# Debian packages for the lab (FRR and GoBGP too, never as system services), a virtualenv in .venv with the project,
# and a running Open vSwitch (userspace datapath; no kernel module needed).
# A second run only checks stamps and OVS, and takes seconds.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
VENV=$ROOT/.venv
STAMP_DIR=$VENV/.stamps

APT_PACKAGES=(
    openvswitch-switch openvswitch-common python3-openvswitch
    mininet iperf3 iputils-ping ethtool tcpdump iproute2 procps
    python3-venv python3-dev socat wireguard-go wireguard-tools
    gobgpd frr golang-github-osrg-gobgp-dev
)

log() { echo "bootstrap: $*"; }

if [[ $(id -u) -ne 0 ]]; then
    echo "bootstrap: must run as root (Mininet and Open vSwitch need it)" >&2
    exit 1
fi

missing=()
for p in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
    log "installing Debian packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# FRR and GoBGP are started by the labs and tests themselves (own namespaces, own
# sockets, own configs); a system service would hold port 179 and /var/run/frr.
for unit in frr gobgpd; do
    if command -v systemctl >/dev/null && systemctl list-unit-files "$unit.service" >/dev/null 2>&1; then
        systemctl disable --now "$unit.service" >/dev/null 2>&1 || true
    fi
done

# The venv is built from Debian's interpreter so that Mininet and the
# python3-openvswitch library (system site packages) are importable.
if [[ ! -x $VENV/bin/python ]] || ! "$VENV/bin/python" -c 'import mininet' 2>/dev/null; then
    log "creating $VENV from /usr/bin/python3"
    rm -rf "$VENV"
    /usr/bin/python3 -m venv --system-site-packages "$VENV"
fi
mkdir -p "$STAMP_DIR"
hash=$(cat pyproject.toml | sha256sum | cut -c1-16)
if [[ ! -f $STAMP_DIR/pip-$hash ]]; then
    log "installing the project into $VENV"
    "$VENV/bin/pip" install -q --upgrade pip
    "$VENV/bin/pip" install -q -e ".[test]"
    rm -f "$STAMP_DIR"/pip-*
    touch "$STAMP_DIR/pip-$hash"
fi

# Open vSwitch: start ovsdb-server and ovs-vswitchd if they are not running.
if ! ovs-vsctl --timeout=5 show >/dev/null 2>&1; then
    log "starting Open vSwitch"
    /usr/share/openvswitch/scripts/ovs-ctl start --system-id=random --no-mlockall >/dev/null 2>&1 || true
    ovs-vsctl --timeout=10 show >/dev/null
fi
log "ready ($(ovs-vsctl --version | head -1), $("$VENV/bin/python" --version))"
