package systest

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/sievefs/sievefs/internal/fusetest"
)

func init() {
	fusetest.Helper("hold", holdHelper)
}

// holdHelper is a greedy caller: as UID:GID it opens the files f0…fN-1
// and the directories d0…dM-1 of DIR (listing each) and keeps them open. It
// prints "files K ERR dirs K ERR" (how many opened, and the first error's
// errno name or "ok"), then holds everything until its standard input is
// closed.
func holdHelper(args []string) error {
	if len(args) != 5 {
		return fmt.Errorf("want UID GID DIR NFILES NDIRS, got %q", args)
	}
	n := make([]int, 5)
	for i, a := range []string{args[0], args[1], args[3], args[4]} {
		v, err := strconv.Atoi(a)
		if err != nil {
			return err
		}
		n[i] = v
	}
	if err := dropTo(n[0], n[1]); err != nil {
		return err
	}
	var held []*os.File
	openAll := func(prefix string, count int, list bool) (int, string) {
		for i := range count {
			f, err := os.Open(filepath.Join(args[2], prefix+strconv.Itoa(i)))
			if err == nil && list {
				_, err = f.Readdirnames(-1)
			}
			if err != nil {
				return i, fusetest.ErrnoName(err)
			}
			held = append(held, f)
		}
		return count, "ok"
	}
	fk, ferr := openAll("f", n[2], false)
	dk, derr := openAll("d", n[3], true)
	fmt.Printf("files %d %s dirs %d %s\n", fk, ferr, dk, derr)
	bufio.NewReader(os.Stdin).ReadString('\n')
	for _, f := range held {
		f.Close()
	}
	return nil
}

// dropTo makes the process uid:gid (real, effective and saved), without
// supplementary groups.
func dropTo(uid, gid int) error {
	if err := syscall.Setgroups(nil); err != nil {
		return err
	}
	if err := syscall.Setgid(gid); err != nil {
		return err
	}
	return syscall.Setuid(uid)
}

// TestAttackDescriptorExhaustion (class 8): one unprivileged caller holding
// more daemon-served opens and open directories than the daemon has
// descriptors gets EMFILE for its own opens, while the daemon stays within
// its budget and another user's opens and listings keep working.
func TestAttackDescriptorExhaustion(t *testing.T) {
	low := fusetest.NewLower(t)
	const files, dirs = 300, 300
	for i := range files {
		fusetest.WriteFile(t, filepath.Join(low, "f"+strconv.Itoa(i)), []byte("x"))
	}
	for i := range dirs {
		fusetest.LayTree(t, low, fmt.Sprintf("d%d/a", i))
	}
	mnt := filepath.Join(t.TempDir(), "mnt")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	fusetest.OpenUp(t, mnt)
	// A budget of 1000 descriptors: 82 held opens per user (see
	// sievefs status), 46 directory descriptors.
	d := fusetest.StartMount(t, low, mnt, "--passthrough", "off", "--max-fds", "1000", "-o", "allow_other")
	defer d.Stop(t)

	cmd := exec.Command(os.Args[0], "1000", "1000", mnt, strconv.Itoa(files), strconv.Itoa(dirs))
	cmd.Env = append(os.Environ(), fusetest.HelperEnv+"=hold")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		stdin.Close()
		cmd.Wait()
	}()
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("greedy caller: %v", err)
	}
	var fk, dk int
	var ferr, derr string
	if _, err := fmt.Sscanf(line, "files %d %s dirs %d %s", &fk, &ferr, &dk, &derr); err != nil {
		t.Fatalf("greedy caller said %q: %v", line, err)
	}
	t.Logf("greedy caller: %s", strings.TrimSpace(line))
	if ferr != "EMFILE" || fk >= files {
		t.Errorf("greedy caller opened %d of %d files (%s), want EMFILE before the end", fk, files, ferr)
	}
	if derr != "ok" || dk != dirs {
		t.Errorf("greedy caller opened and listed %d of %d directories (%s), want all: directory descriptors are reopened", dk, dirs, derr)
	}
	// The daemon is within its budget.
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", d.Cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) > 1000 {
		t.Errorf("the daemon holds %d descriptors, over its budget of 1000", len(ents))
	}
	// Another user still opens, reads and lists.
	var otherErr error
	fusetest.AsCaller(t, 1001, 1001, func() {
		for i := range 20 {
			b, err := os.ReadFile(filepath.Join(mnt, "f"+strconv.Itoa(i)))
			if err != nil || string(b) != "x" {
				otherErr = fmt.Errorf("read f%d: %q %v", i, b, err)
				return
			}
			if _, err := os.ReadDir(filepath.Join(mnt, "d"+strconv.Itoa(i))); err != nil {
				otherErr = err
				return
			}
		}
	})
	fusetest.WantErr(t, "another user's opens while one user holds its share", otherErr, 0)
	status, err := exec.Command(fusetest.Binary(t), "status", mnt).CombinedOutput()
	if err != nil {
		t.Fatalf("sievefs status: %v\n%s", err, status)
	}
	if !strings.Contains(string(status), "per user") || strings.Contains(string(status), " 0 refused") {
		t.Errorf("status does not show the refused opens:\n%s", status)
	}
}
