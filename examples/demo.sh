#!/usr/bin/env bash
# Runs sievefs for real on an example tree: builds the binary, makes a lower
# directory with a few files and a 64 MiB file, mounts a view of it with the
# policy of examples/view.yaml (hide, readonly, remap, audit), shows each rule
# acting, uses the view, reads the big file through passthrough, and unmounts
# with SIGTERM as systemd would. Everything lives in one temporary directory,
# removed at the end; nothing is left mounted, also when a step fails.
#
#   sudo bash examples/demo.sh      (from the repository root, or anywhere)
#
# Needs root (for the mount and for passthrough), /dev/fuse and Go (found on
# PATH or in /usr/local/go/bin).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

say() { printf '\n== %s\n' "$*"; }
die() { printf 'demo: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "run as root (sudo bash examples/demo.sh): mounting FUSE needs it"
[ -c /dev/fuse ] || die "/dev/fuse is missing: load the fuse module (modprobe fuse)"
command -v go >/dev/null || export PATH="/usr/local/go/bin:$PATH"
command -v go >/dev/null || die "go not found on PATH nor in /usr/local/go/bin"

work=$(mktemp -d "${TMPDIR:-/tmp}/sievefs-demo.XXXXXX")
work=$(realpath "$work")
BIN="$work/bin/sievefs"
LOWER="$work/lower"
MNT="$work/mnt"
LOG="$work/sievefs.log"
POLICY="$work/view.yaml"
AUDIT="$work/audit.jsonl"
pid=""

# fstype_at prints the filesystem type mounted at $1, if any.
fstype_at() {
	awk -v m="$1" '$5 == m { for (i = 7; i <= NF; i++) if ($i == "-") { t = $(i + 1) } } END { if (t != "") print t }' /proc/self/mountinfo
}
mounted() { [ -n "$(fstype_at "$MNT")" ]; }

cleanup() {
	local rc=$?
	set +e
	if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
		kill -TERM "$pid"
		for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
		kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
		wait "$pid" 2>/dev/null
	fi
	if mounted; then
		umount "$MNT" 2>/dev/null || umount -l "$MNT"
	fi
	if [ "$rc" -ne 0 ] && [ -s "$LOG" ]; then
		echo "demo: failed; the daemon's log:" >&2
		sed 's/^/  /' "$LOG" >&2
	fi
	if mounted; then
		echo "demo: $MNT is still mounted; not removing $work" >&2
	else
		rm -rf --one-file-system "$work"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

say "build ./cmd/sievefs"
mkdir -p "$work/bin"
# Stamping the version from git fails when root runs in a checkout another
# user owns (git's safe.directory); build without the stamp then.
go build -o "$BIN" ./cmd/sievefs 2>/dev/null || go build -buildvcs=false -o "$BIN" ./cmd/sievefs
"$BIN" --version
echo "kernel $(uname -r)"

say "example lower tree in $LOWER"
mkdir -p "$LOWER/docs/notes" "$LOWER/src" "$LOWER/data" "$LOWER/secrets" "$LOWER/system/etc" "$LOWER/shared" "$MNT"
printf 'Hello from the lower tree.\n' >"$LOWER/hello.txt"
printf '# Notes\nsievefs shows this file as it is in the lower tree.\n' >"$LOWER/docs/notes/readme.md"
printf 'package main\n\nfunc main() {}\n' >"$LOWER/src/main.go"
printf 'API_TOKEN=not-for-the-view\n' >"$LOWER/src/.env"
printf 'the private key\n' >"$LOWER/secrets/api-key"
printf 'setting = 1\n' >"$LOWER/system/etc/app.conf"
printf 'quarterly numbers\n' >"$LOWER/shared/report.txt"
chmod 0600 "$LOWER/shared/report.txt"
ln -s ../hello.txt "$LOWER/docs/hello-link"
dd if=/dev/urandom of="$LOWER/data/big.bin" bs=1M count=64 status=none
find "$LOWER" | sort
ls -ln "$LOWER/shared"

say "the policy: examples/view.yaml, its audit log in $AUDIT"
sed "s|/var/log/sievefs/view-audit.jsonl|$AUDIT|" examples/view.yaml >"$POLICY"
grep -v '^ *#' "$POLICY" | grep -v '^$'
echo "\$ sievefs check $POLICY"
"$BIN" check "$POLICY"

say "sievefs mount --policy $POLICY $LOWER $MNT &"
"$BIN" mount --policy "$POLICY" "$LOWER" "$MNT" 2>"$LOG" &
pid=$!
for _ in $(seq 100); do
	mounted && break
	kill -0 "$pid" 2>/dev/null || { wait "$pid" && rc=0 || rc=$?; die "sievefs exited with status $rc before mounting"; }
	sleep 0.1
done
mounted || die "no mount at $MNT after 10 s"
echo "mounted (fstype $(fstype_at "$MNT"), daemon pid $pid)"
[ "$(fstype_at "$MNT")" = fuse.sievefs ] || die "unexpected filesystem type at $MNT"
sed 's/^/  log: /' "$LOG"
logged=$(wc -l <"$LOG")

say "ls -la $MNT (and below): secrets/ and src/.env are hidden"
ls -la "$MNT"
ls -la "$MNT/docs" "$MNT/data" "$MNT/src"
[ ! -e "$MNT/secrets" ] && [ ! -e "$MNT/src/.env" ] || die "a hidden path is visible"
if out=$(cat "$MNT/secrets/api-key" 2>&1); then die "read a hidden file: $out"; fi
echo "$out"

say "system/ is read-only in the view"
cat "$MNT/system/etc/app.conf"
if out=$(echo changed 2>&1 | tee -a "$MNT/system/etc/app.conf" 2>&1 >/dev/null); then die "wrote to a read-only file"; fi
echo "$out"
if out=$(touch "$MNT/system/new.conf" 2>&1); then die "created a file in a read-only directory"; fi
echo "$out"

say "shared/ is presented owned by 1000:1000, files 0640 (the lower file: root 0600)"
ls -ln "$MNT/shared"
owner=$(stat -c '%u:%g %a' "$MNT/shared/report.txt")
[ "$owner" = "1000:1000 640" ] || die "shared/report.txt shows $owner, want 1000:1000 640"

say "cat $MNT/hello.txt; cat $MNT/docs/hello-link (a symlink)"
cat "$MNT/hello.txt"
cat "$MNT/docs/hello-link"

say "write $MNT/docs/notes/new.txt through the mount; it lands in the lower tree"
printf 'Written through sievefs at %s.\n' "$(date -u +%FT%TZ)" >"$MNT/docs/notes/new.txt"
echo "lower: $(cat "$LOWER/docs/notes/new.txt")"
ls -l "$LOWER/docs/notes/new.txt"

say "read the 64 MiB file with dd (page cache warm on both sides)"
echo "through sievefs:"
dd if="$MNT/data/big.bin" of=/dev/null bs=1M 2>&1 | tail -n 1
echo "the lower file directly:"
dd if="$LOWER/data/big.bin" of=/dev/null bs=1M 2>&1 | tail -n 1
a=$(sha256sum <"$MNT/data/big.bin")
b=$(sha256sum <"$LOWER/data/big.bin")
[ "$a" = "$b" ] || die "the file read through the mount differs from the lower file"
echo "sha256 through the mount matches the lower file: ${a%% *}"

say "the audit log: operations under docs/, one JSON line each"
mv "$MNT/docs/notes/new.txt" "$MNT/docs/notes/renamed.txt"
rm "$MNT/docs/notes/renamed.txt"
[ -s "$AUDIT" ] || die "nothing in the audit log"
sed 's/^/  /' "$AUDIT"
grep -q '"op":"rename","path":"docs/notes/new.txt","new_path":"docs/notes/renamed.txt"' "$AUDIT" || die "the rename is not in the audit log"

say "sievefs status $MNT: the policy and each rule's decisions"
"$BIN" status "$MNT"

say "grep $MNT /proc/self/mountinfo"
grep -F " $MNT " /proc/self/mountinfo

say "unmount: kill -TERM $pid (the daemon unmounts and exits)"
kill -TERM "$pid"
rc=0
wait "$pid" || rc=$?
pid=""
[ "$rc" -eq 0 ] || die "sievefs exited with status $rc"
tail -n +"$((logged + 1))" "$LOG" | sed 's/^/  log: /'
if mounted; then die "$MNT is still mounted"; fi
echo "daemon exited with status 0; nothing is mounted at $MNT"
say "done"
