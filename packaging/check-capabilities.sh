#!/bin/bash
# Checks that the capabilities blocker.service grants are enough and that each one is needed:
# runs `blocker run` (with a stop page on port 80) in a throwaway network namespace, on a veth
# pair that exists only there, with a private BPF file system, under
# `setpriv --bounding-set` = the unit's CapabilityBoundingSet, then once more without each
# capability. Needs root; touches nothing outside the namespace and a temporary directory.
#
#   packaging/check-capabilities.sh [path/to/blocker]     (default target/release/blocker)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
blocker=$(realpath "${1:-$here/../target/release/blocker}")
unit=$here/systemd/blocker.service
[ "$(id -u)" = 0 ] || { echo "needs root (network namespace, XDP)" >&2; exit 1; }
[ -x "$blocker" ] || { echo "no blocker binary at $blocker (cargo build --release -p blocker-user)" >&2; exit 1; }

# CAP_BPF CAP_NET_ADMIN ... -> bpf net_admin ... (setpriv's spelling)
caps=$(sed -n 's/^CapabilityBoundingSet=//p' "$unit" | tr '[:upper:]' '[:lower:]' | sed 's/cap_//g')
ns=blocker-capcheck-$$
dir=$(mktemp -d)
# shellcheck disable=SC2317  # called by the trap
cleanup() { ip netns del "$ns" 2>/dev/null || true; rm -rf "$dir"; }
trap cleanup EXIT

ip netns add "$ns"
ip -n "$ns" link add cc0 type veth peer name cc1
ip -n "$ns" link set cc0 up
ip -n "$ns" link set cc1 up
printf '192.0.2.0/24\n2001:db8:bad::/48\nblocked.example\n' >"$dir/block.list"
cat >"$dir/blocker.toml" <<EOF
state_dir = "$dir/state"
control_socket = "$dir/run/control.sock"
[[list]]
name = "check"
source = "$dir/block.list"
signed = false
[http]
stop_page_url = "http://192.0.2.1"
[stop_page]
listen = ["192.0.2.1:80"]
freebind = true
[stop_page.list_body]
name = { ja = "check", en = "check" }
url = "https://list-body.example/"
[stop_page.appeal]
email = "appeal@isp.example"
url = "https://isp.example/appeal"
[stop_page.default_reason]
ja = "check"
en = "check"
EOF

# Runs blocker for two seconds with bounding set $1 (setpriv syntax); prints its output to
# $dir/out. Private mount namespace: the pins go to a BPF file system of its own.
try() {
    # shellcheck disable=SC2016  # expanded by the inner sh
    ip netns exec "$ns" unshare --mount --propagation private sh -c '
        mount -t bpf bpf /sys/fs/bpf &&
        exec setpriv --bounding-set "$1" --inh-caps -all -- "$2" run --iface cc0 \
            --config "$3/blocker.toml" --duration 2' sh "$1" "$blocker" "$dir" >"$dir/out" 2>&1
}

# shellcheck disable=SC2086  # $caps: one capability a word
set_all=-all$(printf ',+%s' $caps)
echo "unit's set: $caps"
if try "$set_all" && grep -q 'attached to cc0' "$dir/out"; then
    echo "ok: attaches and serves the stop page with exactly these capabilities"
else
    echo "FAILED with the unit's set:"; cat "$dir/out"; exit 1
fi
failed=0
for drop in $caps; do
    # shellcheck disable=SC2046,SC2086
    without=-all$(printf ',+%s' $(printf '%s\n' $caps | grep -vx "$drop"))
    if try "$without"; then
        echo "UNNEEDED? runs without $drop"; failed=1
    else
        echo "ok: needs $drop: $(grep -m1 -io 'error.*' "$dir/out" | cut -c1-110)"
    fi
done
exit $failed
