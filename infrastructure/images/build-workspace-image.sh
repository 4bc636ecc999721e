#!/bin/sh
# Build Berth's base workspace image without any registry: a Debian minbase rootfs with git, bash,
# ca-certificates and openssh-client made by debootstrap, then `docker import`.
#
# Usage: build-workspace-image.sh [TAG]            (default berth/workspace:bookworm)
# Env:   DOCKER_HOST selects the engine (run it once per server, or `docker save | docker load`),
#        MIRROR a Debian mirror for debootstrap, SUITE (default bookworm).
# Needs: root, debootstrap, docker CLI. Takes 1.5-3 minutes; the image is about 170 MB.
set -eu
tag=${1:-berth/workspace:bookworm}
suite=${SUITE:-bookworm}
work=$(mktemp -d /tmp/berth-image.XXXXXX)
trap 'rm -rf "$work"' EXIT
root="$work/rootfs"

debootstrap --variant=minbase --include=git,ca-certificates,openssh-client "$suite" "$root" ${MIRROR:+"$MIRROR"}
chroot "$root" apt-get clean
rm -rf "$root"/var/lib/apt/lists/* "$root"/usr/share/doc/* "$root"/usr/share/man/* \
       "$root"/usr/share/locale/* "$root"/usr/share/info/* "$root"/var/log/*.log
# The unprivileged user workspaces run as (uid/gid 1000, matching BERTH_WORKSPACE_UID).
chroot "$root" groupadd --gid 1000 dev
chroot "$root" useradd --uid 1000 --gid 1000 --home-dir /workspace --no-create-home --shell /bin/bash dev
mkdir -p "$root/workspace"

# An imported image has no config: CMD, WORKDIR and ENV come from --change.
tar --numeric-owner -C "$root" -c . | docker import \
    --change 'CMD ["/bin/bash"]' --change 'WORKDIR /workspace' --change 'ENV LANG=C.UTF-8' \
    --change 'LABEL berth.image=1' - "$tag"
docker image inspect "$tag" --format '{{.Id}} {{.Size}}'
