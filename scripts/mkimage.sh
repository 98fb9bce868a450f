#!/usr/bin/env bash
# mkimage.sh OUT.tar — build a tiny, deterministic busybox rootfs tarball.
#
# The rootfs holds /bin/busybox (Debian's busybox-static) plus one symlink per
# applet, a minimal /etc/passwd and /etc/group (root, app uid 1000, nobody),
# /tmp (1777), /root, /home/app and empty mount points. Every entry has a fixed
# mtime, numeric owner 0:0 (except /home/app, 1000:1000) and entries are
# sorted, so the same busybox binary always gives a byte-identical tarball.
set -euo pipefail

out=${1:?usage: mkimage.sh OUT.tar}
bb=${BUSYBOX:-/usr/bin/busybox}

if [[ ! -x $bb ]]; then
    echo "mkimage: $bb missing, installing busybox-static" >&2
    if [[ $(id -u) -ne 0 ]]; then
        echo "mkimage: need root to install busybox-static" >&2
        exit 1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q busybox-static >&2 ||
        { apt-get update -q >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q busybox-static >&2; }
fi
# The binary must be static: nothing else from the host goes into the image.
if command -v file >/dev/null && file -L "$bb" | grep -q 'dynamically linked'; then
    echo "mkimage: $bb is dynamically linked; install busybox-static" >&2
    exit 1
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
root=$work/rootfs
mkdir -p "$root"/{bin,etc,tmp,root,home/app,dev,proc,sys,var,run,usr/bin,usr/sbin,sbin}
install -m 0755 "$bb" "$root/bin/busybox"

# One relative symlink per applet, all in /bin.
"$bb" --list | LC_ALL=C sort -u | while read -r applet; do
    [[ -z $applet || $applet == busybox ]] && continue
    ln -sf busybox "$root/bin/$applet"
done

cat >"$root/etc/passwd" <<'PW'
root:x:0:0:root:/root:/bin/sh
app:x:1000:1000:app:/home/app:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
PW
cat >"$root/etc/group" <<'GR'
root:x:0:
app:x:1000:
nogroup:x:65534:
GR
chmod 0644 "$root/etc/passwd" "$root/etc/group"
chmod 0755 "$root" "$root"/{bin,etc,home,dev,proc,sys,var,run,usr,usr/bin,usr/sbin,sbin}
chmod 0700 "$root/root"
chmod 0755 "$root/home/app"
chmod 1777 "$root/tmp"

mtime=@946684800 # 2000-01-01T00:00:00Z
tmp_out=$work/out.tar
# Owners are stored numerically: everything 0:0 except /home/app (1000:1000).
# Setting them on the tree (we run as root) keeps a single, fully sorted tar.
if [[ $(id -u) -eq 0 ]]; then
    chown -R 0:0 "$root"
    chown 1000:1000 "$root/home/app"
    owner_opts=(--numeric-owner)
else
    echo "mkimage: not root, every entry will be owned by 0:0" >&2
    owner_opts=(--owner=0 --group=0 --numeric-owner)
fi
(
    cd "$root"
    tar --create --file="$tmp_out" --format=gnu \
        --sort=name --mtime="$mtime" "${owner_opts[@]}" \
        --no-acls --no-xattrs --no-selinux \
        .
)
mkdir -p "$(dirname "$out")"
mv "$tmp_out" "$out"
echo "mkimage: wrote $out ($(stat -c %s "$out") bytes, sha256 $(sha256sum "$out" | cut -c1-12))" >&2
