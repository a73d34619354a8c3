#!/bin/bash
# Builds the container image of deploy/Dockerfile without a daemon, with Debian's buildah
# (apt-get install buildah), and checks that it runs.
#
# usage: scripts/image-build.sh [--local-base] [--tag TAG] [--smoke URL]
#   --local-base  first make debian:bookworm and debian:bookworm-slim locally with debootstrap
#                 from Debian's archive, for machines that reach Debian's packages but no
#                 container registry (the -slim one is then the same minbase system, larger
#                 than the real slim image); needs debootstrap, about 2 minutes
#   --tag TAG     the image name (default ringfetch:VERSION, VERSION from the header)
#   --smoke URL   also run `ringfetch fetch URL` in a container of the image, with the host's
#                 network and seccomp unconfined (default profiles refuse io_uring)
# The build itself takes about 3.5 minutes on 2 cores (wolfSSL from source in it). Images go
# to buildah's vfs storage (STORAGE_DRIVER=overlay to change), which needs no kernel support.
set -euo pipefail

root=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)
version=$(sed -n 's/^#define RINGFETCH_VERSION_\(MAJOR\|MINOR\|PATCH\)  *\([0-9]*\)$/\2/p' \
    "$root/include/ringfetch.h" | paste -sd.)
tag=ringfetch:$version local_base=0 smoke=
usage() {
    sed -n '/^# usage:/,/^set -e/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//' >&2
    exit 2
}
while [ $# -gt 0 ]; do
    case $1 in
        --local-base) local_base=1; shift ;;
        --tag) tag=$2; shift 2 ;;
        --smoke) smoke=$2; shift 2 ;;
        -h|--help) usage ;;
        *) echo "image-build: unknown option $1" >&2; usage ;;
    esac
done
command -v buildah >/dev/null || { echo "image-build: needs buildah (apt-get install buildah)" >&2; exit 1; }
b=(buildah --storage-driver "${STORAGE_DRIVER:-vfs}")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

if [ $local_base = 1 ]; then
    command -v debootstrap >/dev/null || { echo "image-build: needs debootstrap" >&2; exit 1; }
    echo "image-build: debian:bookworm from Debian's archive with debootstrap" >&2
    debootstrap --variant=minbase bookworm "$work/rootfs" http://deb.debian.org/debian >"$work/debootstrap.log" 2>&1 ||
        { tail -n 20 "$work/debootstrap.log" >&2; exit 1; }
    ctr=$("${b[@]}" from scratch)
    mnt=$("${b[@]}" mount "$ctr")
    cp -a "$work/rootfs/." "$mnt/"
    "${b[@]}" umount "$ctr" >/dev/null
    "${b[@]}" config --cmd /bin/bash "$ctr"
    "${b[@]}" commit -q "$ctr" docker.io/library/debian:bookworm >/dev/null
    "${b[@]}" tag docker.io/library/debian:bookworm docker.io/library/debian:bookworm-slim
    "${b[@]}" rm "$ctr" >/dev/null
    rm -rf "$work/rootfs"
fi

# The context as the Dockerfile's ignore file has it (buildah reads it with --ignorefile).
pull=()
[ $local_base = 1 ] && pull=(--pull=never)
"${b[@]}" bud "${pull[@]}" --isolation chroot --network host -f "$root/deploy/Dockerfile" \
    --ignorefile "$root/deploy/Dockerfile.dockerignore" -t "$tag" "$root"

ctr=$("${b[@]}" from --security-opt seccomp=unconfined "$tag")
trap '"${b[@]}" rm "$ctr" >/dev/null; rm -rf "$work"' EXIT
"${b[@]}" run --isolation chroot --network host "$ctr" -- ringfetch --version
if [ -n "$smoke" ]; then
    "${b[@]}" run --isolation chroot --network host "$ctr" -- ringfetch fetch "$smoke"
fi
echo "image-build: $tag built" >&2
