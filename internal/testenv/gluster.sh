#!/usr/bin/env bash
# A single-node GlusterFS volume on this machine, mounted with the glusterfs
# FUSE client, for running sievefs over a distributed filesystem.
#
#   gluster.sh up STATE     start glusterd (unless one runs), make a volume
#                           with one brick in STATE/brick, mount it on
#                           STATE/mnt, print STATE/mnt
#   gluster.sh down STATE   unmount, stop and delete the volume, stop the
#                           glusterd it started (by pid)
#
# STATE is an empty directory the caller made (mktemp -d) and removes after
# down. Exit 77 with the reason on standard error where glusterd cannot run
# (not installed: Debian's glusterfs-server; no /dev/fuse; glusterd fails).
set -euo pipefail

skip() { echo "GlusterFS lower unavailable: $*" >&2; exit 77; }
g() { gluster --mode=script "$@"; }

up() {
	local state=$1 vol host i
	command -v glusterd >/dev/null || skip "no glusterd (Debian package glusterfs-server)"
	command -v glusterfs >/dev/null || skip "no glusterfs FUSE client"
	[ -c /dev/fuse ] || skip "no /dev/fuse"
	mkdir -p "$state/brick" "$state/mnt"
	if ! g volume list >/dev/null 2>&1; then
		glusterd -p "$state/glusterd.pid" --log-file="$state/glusterd.log" ||
			skip "glusterd did not start: $(tail -3 "$state/glusterd.log" 2>/dev/null)"
		for i in $(seq 100); do g volume list >/dev/null 2>&1 && break; sleep 0.1; done
		g volume list >/dev/null 2>&1 || skip "glusterd does not answer: $(tail -3 "$state/glusterd.log")"
	fi
	vol=sievefs$(basename "$state" | tr -cd 'A-Za-z0-9')
	echo "$vol" >"$state/volume"
	host=$(hostname)
	# force: the brick is on the root filesystem (and the host may resolve
	# to a loopback address), which gluster refuses without it.
	g volume create "$vol" "$host:$state/brick" force >"$state/create.log" 2>&1 ||
		{ cat "$state/create.log" >&2; down "$state"; skip "volume create failed"; }
	g volume start "$vol" >/dev/null || { down "$state"; skip "volume start failed"; }
	mount -t glusterfs "$host:/$vol" "$state/mnt" ||
		{ down "$state"; echo "mount of the volume failed" >&2; exit 1; }
	for i in $(seq 100); do
		grep -qF " $state/mnt fuse.glusterfs " /proc/self/mounts && { echo "$state/mnt"; return 0; }
		sleep 0.1
	done
	down "$state"
	echo "the volume did not mount" >&2
	exit 1
}

down() {
	local state=$1 vol pid
	if grep -qF " $state/mnt fuse.glusterfs " /proc/self/mounts; then
		umount "$state/mnt" 2>/dev/null || umount -l "$state/mnt"
	fi
	if [ -f "$state/volume" ]; then
		vol=$(cat "$state/volume")
		g volume stop "$vol" force >/dev/null 2>&1 || true
		g volume delete "$vol" >/dev/null 2>&1 || true
		rm -f "$state/volume"
	fi
	if [ -f "$state/glusterd.pid" ]; then
		pid=$(cat "$state/glusterd.pid")
		kill "$pid" 2>/dev/null || true
		for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
		rm -f "$state/glusterd.pid"
	fi
}

case "${1:-}" in
up) up "$2" ;;
down) down "$2" ;;
*) echo "usage: $0 up|down STATE" >&2; exit 2 ;;
esac
