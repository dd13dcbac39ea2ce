package sievefs_test

import (
	"fmt"
	"log"
	"log/slog"
	"os"

	"github.com/sievefs/sievefs"
	"github.com/sievefs/sievefs/filter"
	"github.com/sievefs/sievefs/filter/hide"
)

// Mount a view of /srv/data on /mnt/view that hides secrets/ from every
// user of the mount, serve it until it is unmounted, and report whether
// file data goes through the kernel's passthrough.
func ExampleMountView() {
	secrets, err := filter.ParsePattern("secrets/**")
	if err != nil {
		log.Fatal(err)
	}
	rules := []filter.Rule{{Filter: hide.New(filter.Patterns{secrets})}}
	m, err := sievefs.MountView("/srv/data", "/mnt/view", sievefs.Options{
		Rules:      rules,
		AllowOther: true, // other users may use it; the kernel checks their rights
		Logger:     slog.New(slog.NewTextHandler(os.Stderr, nil)),
	})
	if err != nil {
		log.Fatal(err) // errors wrap sievefs.ErrLower, ErrMountpointBusy, …
	}
	defer m.Unmount()
	st := m.Status()
	fmt.Println("passthrough:", st.Passthrough.Active, st.Passthrough.Reason)
	m.Wait()
}
