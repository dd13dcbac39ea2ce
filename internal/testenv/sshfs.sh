#!/usr/bin/env bash
# An sshfs mount of a local directory, for running sievefs over a FUSE lower
# without file handles. No sshd and no network: sshfs runs in passive mode
# (-o passive), talking SFTP over a pipe to OpenSSH's sftp-server.
# noforget: sshfs numbers inodes by its own node IDs, which change once the
# kernel forgets a node; sievefs (and anything that compares st_ino) needs
# them stable.
#
#   sshfs.sh up STATE     make STATE/src, mount it on STATE/mnt, print STATE/mnt
#   sshfs.sh down STATE   unmount, end the processes it started (by pid)
#
# STATE is an empty directory the caller made (mktemp -d) and removes after
# down. Exit 77 with the reason on standard error where it cannot run (no
# sshfs, no sftp-server, no /dev/fuse).
set -euo pipefail

skip() { echo "sshfs lower unavailable: $*" >&2; exit 77; }

sftp_server() {
	local p
	for p in /usr/lib/openssh/sftp-server /usr/libexec/openssh/sftp-server /usr/lib/ssh/sftp-server; do
		[ -x "$p" ] && { echo "$p"; return; }
	done
	return 1
}

up() {
	local state=$1 server
	command -v sshfs >/dev/null || skip "no sshfs (Debian package sshfs)"
	server=$(sftp_server) || skip "no sftp-server (Debian package openssh-sftp-server)"
	[ -c /dev/fuse ] || skip "no /dev/fuse"
	mkdir -p "$state/src" "$state/mnt"
	mkfifo "$state/pipe"
	# sftp-server reads the pipe and answers on sshfs's standard input;
	# sshfs (foreground) sends its requests into the pipe.
	"$server" <"$state/pipe" 2>>"$state/sshfs.log" | sshfs -f -o passive,noforget,allow_other,default_permissions \
		":$state/src" "$state/mnt" >"$state/pipe" 2>"$state/sshfs.log" &
	echo $! >"$state/pid"
	local i
	for i in $(seq 100); do
		if grep -qF " $state/mnt fuse.sshfs " /proc/self/mounts; then
			echo "$state/mnt"
			return 0
		fi
		kill -0 "$(cat "$state/pid")" 2>/dev/null || break
		sleep 0.1
	done
	cat "$state/sshfs.log" >&2
	down "$state"
	echo "sshfs did not mount" >&2
	exit 1
}

down() {
	local state=$1
	if grep -qF " $state/mnt fuse.sshfs " /proc/self/mounts; then
		fusermount3 -u "$state/mnt" 2>/dev/null || umount -l "$state/mnt"
	fi
	if [ -f "$state/pid" ]; then
		# The pipeline's last process is sshfs, which exits once unmounted;
		# sftp-server follows when its input closes.
		local pid
		pid=$(cat "$state/pid")
		for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
		kill "$pid" 2>/dev/null || true
		rm -f "$state/pid"
	fi
	rm -f "$state/pipe"
}

case "${1:-}" in
up) up "$2" ;;
down) down "$2" ;;
*) echo "usage: $0 up|down STATE" >&2; exit 2 ;;
esac
