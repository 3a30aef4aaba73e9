package collect

import (
	"encoding/binary"
	"fmt"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// pidCounter counts the process directories of a proc root. Listing /proc
// costs the kernel a dentry per process (~1 µs each: 2.5 ms a tick on a
// host with 2,000 processes), so after one listing has shown that the
// root's link count is the processes plus its other directories ("." and
// ".." included) — procfs reports nlink as its fixed entries plus
// nr_processes(), a plain directory as its subdirectories — a tick costs
// one stat. The identity does not hold, and the listing stays, where the
// two disagree: in a child PID namespace (the kernel counts every process,
// the listing only the namespace's) or where getdents gives no types.
// Fixed entries can change (a module adding a /proc directory), so the
// identity is checked again every pidRecheck.
type pidCounter struct {
	path    string
	buf     []byte // getdents buffer, reused
	others  uint64 // non-process directories of the last listing
	ok      bool   // nlink - others counts the processes
	checked time.Time
}

// pidRecheck is how often pidCounter lists the directory again.
const pidRecheck = 5 * time.Minute

func (c *pidCounter) count(now time.Time) (int, error) {
	if c.ok && now.Sub(c.checked) < pidRecheck {
		var st unix.Stat_t
		if err := unix.Stat(c.path, &st); err == nil && st.Nlink >= c.others {
			return int(st.Nlink - c.others), nil
		}
		c.ok = false
	}
	fd, err := unix.Open(c.path, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return 0, fmt.Errorf("open %s: %w", c.path, err)
	}
	defer unix.Close(fd)
	var before, after unix.Stat_t
	if err := unix.Fstat(fd, &before); err != nil {
		return 0, fmt.Errorf("stat %s: %w", c.path, err)
	}
	if c.buf == nil {
		c.buf = make([]byte, 32<<10)
	}
	var pids, others uint64
	typed := true
	for {
		n, err := unix.Getdents(fd, c.buf)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return 0, fmt.Errorf("read dir %s: %w", c.path, err)
		}
		if n <= 0 {
			break
		}
		walkDirents(c.buf[:n], func(name []byte, typ byte) {
			switch {
			case typ == unix.DT_UNKNOWN:
				typed = false
				if isPID(name) {
					pids++
				}
			case typ != unix.DT_DIR:
			case isPID(name):
				pids++
			default:
				others++
			}
		})
	}
	// Processes that came or went during the listing spoil the check;
	// the next tick lists again.
	if err := unix.Fstat(fd, &after); err == nil && typed && before.Nlink == after.Nlink && after.Nlink == pids+others {
		c.others, c.ok, c.checked = others, true, now
	} else {
		c.ok = false
	}
	return int(pids), nil
}

// walkPIDDirents calls fn with the number of each entry of a getdents64
// buffer that is a directory (or of unknown type) named by a number that
// fits a pid.
func walkPIDDirents(b []byte, fn func(pid uint32)) {
	walkDirents(b, func(name []byte, typ byte) {
		if typ == unix.DT_DIR || typ == unix.DT_UNKNOWN {
			if isPID(name) {
				v, _ := parseUint(name)
				fn(uint32(v))
			}
		}
	})
}

// walkDirents calls fn with the name and type of each entry of a getdents64
// buffer, stopping at a malformed record.
func walkDirents(b []byte, fn func(name []byte, typ byte)) {
	var d unix.Dirent
	nameOff := int(unsafe.Offsetof(d.Name))
	for len(b) >= nameOff {
		reclen := int(binary.NativeEndian.Uint16(b[unsafe.Offsetof(d.Reclen):]))
		if reclen < nameOff || reclen > len(b) {
			return
		}
		typ := b[unsafe.Offsetof(d.Type)]
		name := b[nameOff:reclen]
		for i, c := range name {
			if c == 0 {
				name = name[:i]
				break
			}
		}
		fn(name, typ)
		b = b[reclen:]
	}
}
