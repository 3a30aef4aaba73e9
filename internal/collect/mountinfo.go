package collect

import (
	"bytes"
	"fmt"
	"strings"
)

// mount is one line of /proc/<pid>/mountinfo.
type mount struct {
	devID      string // "major:minor", identifies the filesystem across bind mounts
	mountpoint string
	fstype     string
	device     string // mount source, e.g. /dev/sda1
}

// parseMountinfo parses a mountinfo file
// ("27 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw,discard").
func parseMountinfo(b []byte, dst []mount) ([]mount, error) {
	for len(b) > 0 {
		var line []byte
		line, b = nextLine(b)
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		var f [6][]byte // id, parent, major:minor, root, mountpoint, options
		rest := line
		for i := range f {
			f[i], rest = nextField(rest)
		}
		if len(f[5]) == 0 {
			return dst, fmt.Errorf("mountinfo line %q: %w", line, errSyntax)
		}
		// Optional fields (shared:1, master:2) end at a lone "-".
		var sep []byte
		for {
			sep, rest = nextField(rest)
			if len(sep) == 0 || string(sep) == "-" {
				break
			}
		}
		fstype, rest := nextField(rest)
		source, _ := nextField(rest)
		if string(sep) != "-" || len(fstype) == 0 {
			return dst, fmt.Errorf("mountinfo line %q: %w", line, errSyntax)
		}
		dst = append(dst, mount{
			devID:      string(f[2]),
			mountpoint: unescapeMountinfo(f[4]),
			fstype:     string(fstype),
			device:     unescapeMountinfo(source),
		})
	}
	return dst, nil
}

// unescapeMountinfo undoes the kernel's octal escapes of space, tab,
// newline and backslash ("\040").
func unescapeMountinfo(b []byte) string {
	if bytes.IndexByte(b, '\\') < 0 {
		return string(b)
	}
	var sb strings.Builder
	sb.Grow(len(b))
	for i := 0; i < len(b); i++ {
		if b[i] == '\\' && i+3 < len(b) && isOctal(b[i+1]) && isOctal(b[i+2]) && isOctal(b[i+3]) {
			sb.WriteByte((b[i+1]-'0')<<6 | (b[i+2]-'0')<<3 | (b[i+3] - '0'))
			i += 3
			continue
		}
		sb.WriteByte(b[i])
	}
	return sb.String()
}

func isOctal(c byte) bool { return c >= '0' && c <= '7' }

// ignoredFSTypes are pseudo and virtual filesystems: node_exporter's default
// exclude plus tmpfs, ramfs, efivarfs and FUSE helpers that report no real
// storage.
var ignoredFSTypes = map[string]bool{
	"autofs": true, "binfmt_misc": true, "bpf": true, "cgroup": true, "cgroup2": true,
	"configfs": true, "debugfs": true, "devfs": true, "devpts": true, "devtmpfs": true,
	"efivarfs": true, "erofs": true, "fusectl": true, "fuse.gvfsd-fuse": true,
	"fuse.lxcfs": true, "fuse.portal": true, "fuse.snapfuse": true, "hugetlbfs": true,
	"iso9660": true, "mqueue": true, "nfsd": true, "nsfs": true, "overlay": true,
	"proc": true, "procfs": true, "pstore": true, "ramfs": true, "rpc_pipefs": true,
	"securityfs": true, "selinuxfs": true, "squashfs": true, "sysfs": true,
	"tmpfs": true, "tracefs": true,
}

// ignoredMountTrees are mountpoints left out with everything below them.
var ignoredMountTrees = []string{"/dev", "/proc", "/sys"}

// ignoredMountParents are mountpoints whose descendants (not themselves) are
// left out: per-container and per-service mounts.
var ignoredMountParents = []string{
	"/run/credentials/", "/var/lib/docker/", "/var/lib/containers/",
	"/var/lib/kubelet/", "/snap/",
}

// realFilesystem reports whether a mount holds real storage worth a
// filesystem_* series.
func realFilesystem(m mount) bool {
	if ignoredFSTypes[m.fstype] || strings.HasPrefix(m.fstype, "cgroup") {
		return false
	}
	for _, p := range ignoredMountTrees {
		if m.mountpoint == p || strings.HasPrefix(m.mountpoint, p+"/") {
			return false
		}
	}
	for _, p := range ignoredMountParents {
		if strings.HasPrefix(m.mountpoint, p) {
			return false
		}
	}
	return true
}

// realFilesystems filters mounts to real filesystems, one per device: of
// several bind mounts of one filesystem the shortest mountpoint is kept
// (the first of equal length).
func realFilesystems(all []mount) []mount {
	var out []mount
	index := make(map[string]int, len(all))
	for _, m := range all {
		if !realFilesystem(m) {
			continue
		}
		if i, ok := index[m.devID]; ok {
			if len(m.mountpoint) < len(out[i].mountpoint) {
				out[i] = m
			}
			continue
		}
		index[m.devID] = len(out)
		out = append(out, m)
	}
	return out
}
