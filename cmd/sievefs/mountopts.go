package main

// The -o words of sievefs mount: those of mount(8) and fstab, and those
// people type for FUSE filesystems (libfuse's). docs/usage.md lists them.

import (
	"flag"
	"fmt"
	"os/user"
	"strconv"
	"strings"

	"github.com/sievefs/sievefs"
	"github.com/sievefs/sievefs/filter"
	"github.com/sievefs/sievefs/filter/remap"
)

// applyMountOptions applies -o options: the words of mountWords and
// valueWords, those of ignoredWords and refusedWords, and any mount flag
// written as name[=value] (with _ or -). A word that restricts the mount
// is applied or refused, never dropped. An error names the one word at
// fault, not the list.
func applyMountOptions(f *flag.FlagSet, cfg *mountConfig, list string) error {
	for _, o := range strings.Split(list, ",") {
		name, value, hasValue := strings.Cut(strings.TrimSpace(o), "=")
		if name == "" {
			continue
		}
		if reason, ok := refusedWords[name]; ok {
			return fmt.Errorf("mount option %q refused: %s", name, reason)
		}
		if name == "user" && hasValue {
			continue // user=NAME: mount(8) records who mounted the view
		}
		if apply, ok := mountWords[name]; ok {
			if hasValue {
				return fmt.Errorf("mount option %q takes no value", name)
			}
			apply(&cfg.opts)
			continue
		}
		if apply, ok := valueWords[name]; ok {
			if value == "" {
				return fmt.Errorf("mount option %q needs a value (%s=…)", name, name)
			}
			if err := apply(cfg, value); err != nil {
				return fmt.Errorf("mount option %q: %w", name+"="+value, err)
			}
			continue
		}
		if ignoredWords[name] || strings.HasPrefix(name, "x-") || strings.HasPrefix(name, "X-") {
			continue
		}
		flagName := strings.ReplaceAll(name, "_", "-")
		fl := f.Lookup(flagName)
		if fl == nil || flagName == "o" {
			return fmt.Errorf("unknown mount option %q", name)
		}
		if !hasValue {
			if bf, ok := fl.Value.(interface{ IsBoolFlag() bool }); ok && bf.IsBoolFlag() {
				value = "true"
			} else {
				return fmt.Errorf("mount option %q needs a value", name)
			}
		}
		if err := f.Set(flagName, value); err != nil {
			return fmt.Errorf("mount option %q: %w", name+"="+value, err)
		}
	}
	return nil
}

// mountWords are the -o words that set mount options, each as mount(8)
// means it, or as libfuse does for its own words; a later word overrides
// an earlier one. suid and dev need a daemon running as root: MountView
// refuses them otherwise.
var mountWords = map[string]func(o *sievefs.Options){
	"ro":                  func(o *sievefs.Options) { o.ReadOnly = true },
	"rw":                  func(o *sievefs.Options) { o.ReadOnly = false },
	"noexec":              func(o *sievefs.Options) { o.NoExec = true },
	"exec":                func(o *sievefs.Options) { o.NoExec = false },
	"nosuid":              func(o *sievefs.Options) { o.Suid = false },
	"suid":                func(o *sievefs.Options) { o.Suid = true },
	"nodev":               func(o *sievefs.Options) { o.Dev = false },
	"dev":                 func(o *sievefs.Options) { o.Dev = true },
	"noatime":             func(o *sievefs.Options) { o.Atime = sievefs.AtimeNever },
	"relatime":            func(o *sievefs.Options) { o.Atime = sievefs.AtimeRelative },
	"strictatime":         func(o *sievefs.Options) { o.Atime = sievefs.AtimeStrict },
	"atime":               func(o *sievefs.Options) { o.Atime = sievefs.AtimeDefault },
	"nostrictatime":       func(o *sievefs.Options) { o.Atime = sievefs.AtimeDefault },
	"nodiratime":          func(o *sievefs.Options) { o.NoDirAtime = true },
	"diratime":            func(o *sievefs.Options) { o.NoDirAtime = false },
	"nosymfollow":         func(o *sievefs.Options) { o.NoSymFollow = true },
	"symfollow":           func(o *sievefs.Options) { o.NoSymFollow = false },
	"allow_other":         func(o *sievefs.Options) { o.AllowOther = true },
	"default_permissions": func(o *sievefs.Options) { o.DefaultPermissions = true },
	// fstab's user and users let ordinary users mount; as mount(8) says,
	// they imply noexec,nosuid,nodev unless later words say otherwise
	// (for an fstab "user,exec", mount(8) passes exec after user). owner
	// and group imply nosuid,nodev.
	"user":  secureWords,
	"users": secureWords,
	"owner": func(o *sievefs.Options) { o.Suid, o.Dev = false, false },
	"group": func(o *sievefs.Options) { o.Suid, o.Dev = false, false },
	// libfuse's page cache words, as the --cache mode closest to each:
	// kernel_cache keeps file data cached (and here names and attributes
	// too, for a day), for a lower tree changed only through the mount;
	// auto_cache drops it when the lower file's mtime or size changes.
	"kernel_cache": func(o *sievefs.Options) { o.Cache = sievefs.CacheAlways },
	"auto_cache":   func(o *sievefs.Options) { o.Cache = sievefs.CacheAuto },
}

// secureWords is what fstab's user and users imply: noexec,nosuid,nodev.
func secureWords(o *sievefs.Options) { o.NoExec, o.Suid, o.Dev = true, false, false }

// valueWords are libfuse's -o words that take a value (name=value).
var valueWords = map[string]func(cfg *mountConfig, value string) error{
	"fsname":  func(cfg *mountConfig, v string) error { cfg.opts.FsName = v; return nil },
	"subtype": func(cfg *mountConfig, v string) error { cfg.opts.Subtype = v; return nil },
	"uid": func(cfg *mountConfig, v string) (err error) {
		cfg.present.uid, err = parseID(v, func(name string) (string, error) {
			u, err := user.Lookup(name)
			if err != nil {
				return "", err
			}
			return u.Uid, nil
		})
		return err
	},
	"gid": func(cfg *mountConfig, v string) (err error) {
		cfg.present.gid, err = parseID(v, func(name string) (string, error) {
			g, err := user.LookupGroup(name)
			if err != nil {
				return "", err
			}
			return g.Gid, nil
		})
		return err
	},
	"umask": func(cfg *mountConfig, v string) error {
		m, err := strconv.ParseUint(v, 8, 32)
		if err != nil || m > 0o777 {
			return fmt.Errorf("want an octal mask such as 022, at most 0777")
		}
		mode := 0o777 &^ uint32(m)
		cfg.present.mode = &mode
		return nil
	},
}

// parseID parses a user or group ID, or looks a name up.
func parseID(s string, lookup func(name string) (string, error)) (*uint32, error) {
	if _, err := strconv.ParseUint(s, 10, 32); err != nil {
		if s, err = lookup(s); err != nil {
			return nil, err
		}
	}
	id, err := strconv.ParseUint(s, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("want a number or a name: %w", err)
	}
	v := uint32(id)
	return &v, nil
}

// presentation is what the uid=, gid= and umask= words present for the
// whole view; nil fields are left as the lower tree has them.
type presentation struct {
	uid, gid *uint32
	mode     *uint32 // the permission bits of files and directories: 0777 less the umask
}

// rules returns the rule that presents p, after the policy's rules (which
// then take precedence on the paths they remap), or nil when p presents
// nothing.
func (p presentation) rules() []filter.Rule {
	if p.uid == nil && p.gid == nil && p.mode == nil {
		return nil
	}
	return []filter.Rule{{Name: "options:remap", Filter: remap.New(remap.Config{
		Whole: true, Uid: p.uid, Gid: p.gid, FileMode: p.mode, DirMode: p.mode})}}
}

// ignoredWords are -o words that concern mount(8), systemd or the mount
// table rather than the mount, or that ask for what sievefs does anyway;
// they are accepted and change nothing. user=NAME is how mount(8) records
// who mounted (see applyMountOptions); defaults means sievefs's defaults
// (rw,exec,nosuid,nodev). Of libfuse's: hard_remove (a removed file is
// removed from the lower tree at once, and its open files stay usable),
// use_ino and readdir_ino (the view shows the lower inode numbers), intr (a
// request that waits, a blocking flock, ends when the caller is
// interrupted), nonempty (a view may be mounted on a directory that is not
// empty), async_read and big_writes (reads are asynchronous, writes up to
// 1 MiB).
var ignoredWords = map[string]bool{
	"defaults": true, "auto": true, "noauto": true, "nofail": true, "_netdev": true,
	"nouser": true, "nousers": true, "noowner": true, "nogroup": true, "comment": true,
	"async": true, "nolazytime": true, "nomand": true,
	"hard_remove": true, "use_ino": true, "readdir_ino": true, "intr": true, "nonempty": true,
	"async_read": true, "big_writes": true,
}

// Reasons shared by several refused words.
const (
	cacheReason = "the kernel's cache timeouts follow the cache mode: use cache=auto, watch, always or never (see Caching in docs/operations.md)"
	setReason   = "sievefs sets it itself when it mounts"
	blockReason = "it is for FUSE filesystems on a block device (fuseblk); a view shows the lower files' block sizes"
	nfsReason   = "it keeps paths so that a FUSE mount can be exported over NFS; a view gives out no file handles and cannot be exported"
)

// refusedWords are -o words sievefs refuses rather than accept without
// doing what they ask, with the reason.
var refusedWords = map[string]string{
	"sync":       "the view would not make directory changes synchronous; mount the lower filesystem sync, which makes every change through the view synchronous",
	"dirsync":    "the view would not make directory changes synchronous; mount the lower filesystem dirsync, which does",
	"mand":       "Linux no longer supports mandatory locks",
	"lazytime":   "the kernel keeps no timestamps of its own for FUSE files, so none would be written lazily; mount the lower filesystem lazytime",
	"norelatime": "it would not turn relatime off, the kernel's default; use strictatime",
	"remount":    "the options of a mounted view cannot change; unmount it and mount it again",
	"allow_root": "sievefs has no allow_root; use allow_other",
	// libfuse's
	"entry_timeout":    cacheReason,
	"negative_timeout": cacheReason,
	"attr_timeout":     cacheReason,
	"ac_attr_timeout":  cacheReason,
	"direct_io":        "files served through passthrough use the lower file's page cache; cache=never serves the daemon's own files with direct I/O",
	"writeback_cache":  "writes go to the lower file when they are made; a writeback cache would hold them in the view's page cache",
	"max_read":         "sievefs sizes its requests itself (up to 1 MiB), and reads of passthrough files never reach it",
	"max_readahead":    "sievefs sets the readahead of the files it serves itself; passthrough files have the lower file's",
	"blksize":          blockReason,
	"blkdev":           blockReason,
	"noforget":         nfsReason,
	"remember":         nfsReason,
	"auto_unmount":     "a view whose daemon died stays mounted, answering ENOTCONN, until sievefs umount removes it or sievefs mount --recover replaces it",
	"modules":          "libfuse's modules (subdir, iconv) are not sievefs's; a policy's hide and rename rules shape the view",
	"fd":               setReason,
	"rootmode":         setReason,
	"user_id":          setReason,
	"group_id":         setReason,
}
