// Package packaging holds the test of the sievefs package: packaging/build
// makes the .deb (by nFPM, from nfpm.yaml) and the tarball, and the test
// checks what they hold, then installs the .deb with dpkg in a scratch root
// (an overlay of the machine's root in a private mount namespace) and
// mounts through `mount -t fuse.sievefs` there. The package has no code of
// its own, only the test. Run it with
//
//	go test -count=1 ./packaging/
//
// as root with /dev/fuse, dpkg, fuse3 and overlayfs for the install; the
// checks of the archives need only Go, the module proxy and dpkg-deb.
package packaging
