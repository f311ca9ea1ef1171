#!/usr/bin/env bash
# A new user on a fresh Debian 12: a clean clone of this repository, then the README's two
# commands (`make demo`, `make test`) and nothing else, each timed. The machine is a minimal
# Debian 12 tree made by debootstrap (no bwrap, no ripgrep, no chromium, no compiler, no node;
# git, make and python3 only), entered with pivot_root rather than chroot so that bubblewrap's
# user namespaces work inside it. Needs root, debootstrap and the network to Debian's and the
# package registries; takes about an hour on 2 cores. The times go to ROOT/root/fresh-times.txt,
# the logs to ROOT/root/{demo,test}.log.
#
#   sudo scripts/fresh-machine.sh [ROOT (default /srv/budgetpass-fresh)] [COMMIT (default HEAD)]
set -euo pipefail
root=${1:-/srv/budgetpass-fresh}
commit=${2:-HEAD}
repo=$(cd "$(dirname "$0")/.." && pwd)
[ "$(id -u)" = 0 ] || { echo "fresh-machine.sh: run as root (debootstrap, mounts)" >&2; exit 2; }
command -v debootstrap >/dev/null || { echo "fresh-machine.sh: apt-get install debootstrap" >&2; exit 2; }
[ ! -e "$root" ] || { echo "fresh-machine.sh: $root exists; remove it first" >&2; exit 2; }

debootstrap --variant=minbase bookworm "$root" http://deb.debian.org/debian >/dev/null
mount --bind "$root" "$root"
mount -t proc proc "$root/proc"
mount --rbind /sys "$root/sys"
mount --rbind /dev "$root/dev"
cp /etc/resolv.conf "$root/etc/resolv.conf"
# A network that inspects TLS hands out its own CA: the fresh machine trusts it as this one does.
# (minbase has no ca-certificates yet, so the folder is made first; its package, installed below,
# then adds these to the tree's bundle.)
mkdir -p "$root/usr/local/share/ca-certificates"
cp /usr/local/share/ca-certificates/*.crt "$root/usr/local/share/ca-certificates/" 2>/dev/null || true
# The package sources pip is configured with here (local wheel folders such as the CPU torch that
# PyPI lacks), as a machine of this kind is provisioned: the same pip configuration, read-only.
for conf in /etc/pip.conf /etc/xdg/pip /root/.config/pip; do
  [ -e "$conf" ] && mkdir -p "$root$(dirname "$conf")" && cp -r "$conf" "$root$(dirname "$conf")/"
done
for folder in /opt/wheels /opt/pypi /opt/pypi-more; do
  [ -d "$folder" ] && mkdir -p "$root$folder" && mount --bind -o ro "$folder" "$root$folder"
done
chroot "$root" /bin/bash -c "apt-get update -q >/dev/null && apt-get install -y -q git make \
  python3 ca-certificates >/dev/null && update-ca-certificates >/dev/null"
git clone -q "$repo" "$root/root/budgetpass"
git -C "$root/root/budgetpass" checkout -q "$commit"
cat > "$root/root/run.sh" <<'EOF'
#!/bin/bash
cd /root/budgetpass
for target in demo test; do
  start=$(date +%s); make $target > /root/$target.log 2>&1; rc=$?
  echo "make $target rc=$rc seconds=$(( $(date +%s) - start ))" >> /root/fresh-times.txt
  [ $rc = 0 ] || exit $rc
done
EOF
chmod +x "$root/root/run.sh"
ca=/etc/ssl/certs/ca-certificates.crt
env -i HOME=/root PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  LANG=C.UTF-8 TERM=dumb SSL_CERT_FILE=$ca PIP_CERT=$ca NODE_EXTRA_CA_CERTS=$ca \
  REQUESTS_CA_BUNDLE=$ca CURL_CA_BUNDLE=$ca GIT_SSL_CAINFO=$ca \
  unshare --mount --fork /bin/bash -c "
    set -e; mount --make-rprivate /; cd '$root'; mkdir -p .oldroot; pivot_root . .oldroot; cd /
    exec /usr/sbin/chroot / /bin/bash -c 'umount -l /.oldroot; /root/run.sh'" && rc=0 || rc=$?
cat "$root/root/fresh-times.txt"
exit $rc
