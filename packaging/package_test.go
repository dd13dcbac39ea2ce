package packaging

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"debug/elf"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/sievefs/sievefs/internal/fusetest"
)

// testVersion is the version the test builds; the .deb spells it 0.0.0~test.
const testVersion = "0.0.0-test"

// debFiles is every entry of the .deb but the directories above them:
// the mode dpkg-deb -c shows, and a symlink's target.
var debFiles = map[string]string{
	"./usr/bin/sievefs":                            "-rwxr-xr-x",
	"./sbin/mount.fuse.sievefs":                    "l -> /usr/bin/sievefs",
	"./usr/share/man/man8/sievefs.8.gz":            "-rw-r--r--",
	"./usr/share/man/man8/mount.fuse.sievefs.8.gz": "l -> sievefs.8.gz",
	"./lib/systemd/system/sievefs@.service":        "-rw-r--r--",
	"./etc/sievefs/":                               "drwxr-xr-x",
}

// TestPackage builds the .deb and the tarball with packaging/build, checks
// what they hold, and installs the .deb in a scratch root and mounts
// through mount -t fuse.sievefs there.
func TestPackage(t *testing.T) {
	for _, tool := range []string{"bash", "dpkg-deb", "tar", "gzip"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed", tool)
		}
	}
	out := t.TempDir()
	build := exec.Command("./build", out)
	build.Env = append(os.Environ(), "VERSION="+testVersion)
	if b, err := build.CombinedOutput(); err != nil {
		t.Fatalf("packaging/build: %v\n%s", err, b)
	}
	// Go and Debian name amd64 and arm64 alike.
	deb := filepath.Join(out, "sievefs_0.0.0~test_"+runtime.GOARCH+".deb")
	tarball := filepath.Join(out, "sievefs-"+testVersion+"-linux-"+runtime.GOARCH+".tar.gz")
	root := t.TempDir()
	if b, err := exec.Command("dpkg-deb", "-x", deb, root).CombinedOutput(); err != nil {
		t.Fatalf("dpkg-deb -x: %v\n%s", err, b)
	}
	bin := fusetest.ReadFile(t, filepath.Join(root, "usr/bin/sievefs"))
	unit := fusetest.ReadFile(t, "../contrib/sievefs@.service")
	man := fusetest.ReadFile(t, "../man/sievefs.8")

	t.Run("deb", func(t *testing.T) {
		fields := run(t, "dpkg-deb", "-f", deb, "Package", "Version", "Architecture", "Depends")
		if want := "Package: sievefs\nVersion: 0.0.0~test\nArchitecture: " + runtime.GOARCH + "\nDepends: fuse3\n"; fields != want {
			t.Errorf("control fields:\n%swant\n%s", fields, want)
		}
		checkDebListing(t, run(t, "dpkg-deb", "-c", deb))

		checkStatic(t, filepath.Join(root, "usr/bin/sievefs"))
		if v := run(t, filepath.Join(root, "usr/bin/sievefs"), "--version"); !strings.HasPrefix(v, "sievefs "+testVersion+"\n") {
			t.Errorf("sievefs --version prints %q, want the version %s first", v, testVersion)
		}
		if got := gunzip(t, fusetest.ReadFile(t, filepath.Join(root, "usr/share/man/man8/sievefs.8.gz"))); !bytes.Equal(got, man) {
			t.Error("the packaged man page is not man/sievefs.8")
		}
		want := strings.ReplaceAll(string(unit), "/usr/local/bin/sievefs", "/usr/bin/sievefs")
		if !strings.Contains(want, "\nExecStart=/usr/bin/sievefs mount ") {
			t.Errorf("contrib/sievefs@.service does not start /usr/local/bin/sievefs, which the package moves to /usr/bin")
		}
		if got := string(fusetest.ReadFile(t, filepath.Join(root, "lib/systemd/system/sievefs@.service"))); got != want {
			t.Errorf("the packaged unit is not contrib/sievefs@.service with /usr/bin/sievefs:\n%s", got)
		}
	})

	t.Run("tarball", func(t *testing.T) {
		dir := "sievefs-" + testVersion + "-linux-" + runtime.GOARCH + "/"
		want := map[string][]byte{
			dir:                      nil,
			dir + "sievefs":          bin,
			dir + "sievefs.8":        man,
			dir + "sievefs@.service": unit,
			dir + "README.md":        fusetest.ReadFile(t, "../README.md"),
		}
		modes := map[string]int64{dir: 0o755, dir + "sievefs": 0o755}
		got := readTarball(t, tarball)
		for name, h := range got {
			data, ok := want[name]
			if !ok {
				t.Errorf("tarball has %s", name)
				continue
			}
			mode, ok := modes[name]
			if !ok {
				mode = 0o644
			}
			if h.Mode != mode || h.Uid != 0 || h.Gid != 0 {
				t.Errorf("%s: mode %o owner %d:%d, want %o 0:0", name, h.Mode, h.Uid, h.Gid, mode)
			}
			if !bytes.Equal(h.data, data) {
				t.Errorf("%s is not what it should hold (%d bytes, want %d)", name, len(h.data), len(data))
			}
		}
		for name := range want {
			if _, ok := got[name]; !ok {
				t.Errorf("tarball lacks %s", name)
			}
		}
	})

	t.Run("install", func(t *testing.T) { testInstall(t, deb) })
}

// checkDebListing checks dpkg-deb -c's listing: debFiles, the directories
// above them and nothing else, all root's.
func checkDebListing(t *testing.T, listing string) {
	t.Helper()
	seen := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(listing), "\n") {
		f := strings.Fields(line)
		if len(f) < 6 {
			t.Errorf("dpkg-deb -c line %q", line)
			continue
		}
		mode, owner, name := f[0], f[1], f[5]
		if owner != "root/root" {
			t.Errorf("%s is owned by %s", name, owner)
		}
		got := mode
		if mode[0] == 'l' {
			got = "l " + strings.Join(f[6:], " ")
		}
		want, ok := debFiles[name]
		switch {
		case ok && got != want:
			t.Errorf("%s: %s, want %s", name, got, want)
		case !ok && (mode[0] != 'd' || !above(name)):
			t.Errorf("the package holds %s (%s)", name, got)
		}
		seen[name] = true
	}
	for name := range debFiles {
		if !seen[name] {
			t.Errorf("the package lacks %s", name)
		}
	}
}

// above reports whether dir ("./usr/") is a directory above an entry of
// debFiles.
func above(dir string) bool {
	for name := range debFiles {
		if strings.HasPrefix(name, dir) && name != dir {
			return true
		}
	}
	return false
}

// checkStatic fails unless the ELF file is linked statically: no program
// interpreter and no shared libraries.
func checkStatic(t *testing.T, file string) {
	t.Helper()
	f, err := elf.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Errorf("%s has a program interpreter: not static", file)
		}
	}
	if libs, err := f.ImportedLibraries(); err != nil || len(libs) > 0 {
		t.Errorf("%s needs shared libraries %v (%v): not static", file, libs, err)
	}
}

// tarEntry is an entry of a tarball with its contents.
type tarEntry struct {
	*tar.Header
	data []byte
}

// readTarball reads a .tar.gz into its entries by name.
func readTarball(t *testing.T, file string) map[string]tarEntry {
	t.Helper()
	tr := tar.NewReader(bytes.NewReader(gunzip(t, fusetest.ReadFile(t, file))))
	entries := map[string]tarEntry{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return entries
		}
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatalf("%s: %s: %v", file, h.Name, err)
		}
		if h.Typeflag == tar.TypeDir {
			data = nil
		}
		entries[h.Name] = tarEntry{h, data}
	}
}

// installScript installs the .deb $DEB in a scratch root and mounts through
// mount -t fuse.sievefs there. It runs as the first process of new mount
// and PID namespaces: its mounts are private, and when it exits the kernel
// kills whatever it started (the daemon) and the namespace with its mounts
// is gone, also if a step fails. The scratch root is an overlay of the
// machine's root with its upper layer on a tmpfs, so dpkg changes nothing
// of the machine.
const installScript = `
set -eu
# This namespace starts with copies of the machine's mounts. A FUSE daemon
# learns of its unmount only when every copy is gone: drop those copies now.
awk '$3 ~ /^fuse/ { print $2 }' /proc/self/mounts | while read -r m; do
	umount -l "$(printf '%b' "$m")" 2>/dev/null || true
done
mount -t tmpfs -o mode=0755 scratch "$SCRATCH"
R=$SCRATCH/root
mkdir "$SCRATCH/upper" "$SCRATCH/work" "$R"
mount -t overlay overlay -o "lowerdir=/,upperdir=$SCRATCH/upper,workdir=$SCRATCH/work" "$R"
mount -t proc proc "$R/proc"
mount --rbind /dev "$R/dev"
mount --rbind /sys "$R/sys"
mount -t tmpfs tmpfs "$R/run"
mount -t tmpfs tmpfs "$R/tmp"
mkdir -p "$R/srv/data" "$R/mnt/view"
mount --bind "$DATA" "$R/srv/data"
cp "$DEB" "$R/tmp/sievefs.deb"
in_root() { chroot "$R" "$@"; }

in_root dpkg -i /tmp/sievefs.deb
echo "installed: $(in_root dpkg-query -W -f '${Status} ${Version}' sievefs)"
printf 'rules:\n  - hide: [secret]\n' >"$R/etc/sievefs/view.yaml"
in_root mount -t fuse.sievefs /srv/data /mnt/view -o policy=/etc/sievefs/view.yaml
echo "mounted: $(in_root findmnt -n -o FSTYPE,SOURCE /mnt/view)"
echo "list: $(in_root ls -A /mnt/view | paste -sd,)"
echo "read: $(in_root cat /mnt/view/hello.txt)"
in_root sievefs status /mnt/view | sed 's/^/status: /'
in_root sievefs umount /mnt/view
if in_root findmnt /mnt/view >/dev/null; then echo "still mounted"; else echo "unmounted"; fi

if in_root sh -c 'command -v systemd-analyze' >/dev/null; then
	printf 'SIEVEFS_LOWER=/srv/data\nSIEVEFS_OPTIONS=\n' >"$R/etc/sievefs/mnt-view.env"
	cp "$R/lib/systemd/system/sievefs@.service" "$R/tmp/sievefs@mnt-view.service"
	in_root systemd-analyze verify --man=no /tmp/sievefs@mnt-view.service
	echo "unit: verified"
	rm "$R/etc/sievefs/mnt-view.env"
else
	echo "unit: no systemd-analyze"
fi

rm "$R/etc/sievefs/view.yaml"
in_root dpkg --purge sievefs
for f in /usr/bin/sievefs /sbin/mount.fuse.sievefs /usr/share/man/man8/sievefs.8.gz /lib/systemd/system/sievefs@.service; do
	if [ -e "$R$f" ] || [ -L "$R$f" ]; then echo "left after purge: $f"; fi
done
echo "purged"
`

// testInstall installs the .deb in a scratch root, mounts a view with a
// policy in /etc/sievefs through mount -t fuse.sievefs, uses it, asks the
// packaged sievefs for its status, unmounts it and purges the package.
func testInstall(t *testing.T, deb string) {
	fusetest.RequireFuse(t)
	for _, tool := range []string{"dpkg", "dpkg-query", "chroot"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed", tool)
		}
	}
	if fss, err := os.ReadFile("/proc/filesystems"); err != nil || !regexp.MustCompile(`\toverlay\n`).Match(fss) {
		t.Skip("no overlayfs for the scratch root")
	}
	if st, _ := exec.Command("dpkg-query", "-W", "-f", "${Status}", "fuse3").Output(); string(st) != "install ok installed" {
		t.Skip("the package depends on fuse3, which is not installed (apt-get install fuse3)")
	}
	data, scratch := t.TempDir(), t.TempDir()
	fusetest.WriteFile(t, filepath.Join(data, "hello.txt"), []byte("hello through the package"))
	if err := os.Mkdir(filepath.Join(data, "secret"), 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("bash", "-c", installScript)
	cmd.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C",
		"DEB=" + deb, "DATA=" + data, "SCRATCH=" + scratch}
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Unshareflags: syscall.CLONE_NEWNS, // and / made private, by os/exec
		Cloneflags:   syscall.CLONE_NEWPID,
		Pdeathsig:    syscall.SIGKILL,
	}
	b, err := cmd.CombinedOutput()
	out := string(b)
	t.Logf("install script:\n%s", out)
	if err != nil {
		t.Fatalf("install script: %v", err)
	}
	lines := strings.Split(out, "\n")
	for _, want := range []string{
		"installed: install ok installed 0.0.0~test",
		"mounted: fuse.sievefs /srv/data",
		"list: hello.txt",
		"read: hello through the package",
		"unmounted",
		"purged",
	} {
		if !slices.Contains(lines, want) {
			t.Errorf("output lacks the line %q", want)
		}
	}
	for _, want := range []string{
		`(?m)^status: /mnt/view: running \(pid [0-9]+\)$`,
		`(?m)^status:\s+policy\s+/etc/sievefs/view\.yaml$`,
		`(?m)^status:\s+rule 1:hide\s+drop=[1-9]`,
	} {
		if !regexp.MustCompile(want).MatchString(out) {
			t.Errorf("sievefs status printed no line matching %s", want)
		}
	}
	if strings.Contains(out, "left after purge") {
		t.Error("dpkg --purge left files of the package")
	}
	if strings.Contains(out, "unit: no systemd-analyze") {
		t.Log("the installed unit was not verified: no systemd-analyze")
	} else if !strings.Contains(out, "unit: verified") {
		t.Error("the installed unit was not verified")
	}
}

// run runs a command and returns its standard output.
func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).Output()
	if err != nil {
		t.Fatalf("%s %s: %v", path.Base(name), strings.Join(args, " "), err)
	}
	return string(out)
}

// gunzip decompresses gzip data or fails the test.
func gunzip(t *testing.T, data []byte) []byte {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	out, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	return out
}
