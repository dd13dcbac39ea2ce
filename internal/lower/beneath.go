package lower

import "golang.org/x/sys/unix"

// IsDirBeneath reports whether rel, a "/"-separated path relative to the
// directory root, names a directory beneath root. It follows no symlink,
// in rel or at its end (openat2 with RESOLVE_BENEATH and
// RESOLVE_NO_SYMLINKS): the view never follows one either.
func IsDirBeneath(root, rel string) bool {
	dir, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return false
	}
	defer unix.Close(dir)
	fd, err := unix.Openat2(dir, rel, &unix.OpenHow{
		Flags:   unix.O_PATH | unix.O_DIRECTORY | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS,
	})
	if err != nil {
		return false
	}
	unix.Close(fd)
	return true
}
