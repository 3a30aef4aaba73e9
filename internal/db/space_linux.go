package db

import "golang.org/x/sys/unix"

// freeBytes reports the bytes an unprivileged writer may still use on the
// filesystem holding dir; ok is false when statfs fails.
func freeBytes(dir string) (free uint64, ok bool) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return 0, false
	}
	bs := uint64(st.Frsize)
	if bs == 0 {
		bs = uint64(st.Bsize)
	}
	return st.Bavail * bs, true
}
