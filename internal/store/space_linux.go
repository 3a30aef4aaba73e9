package store

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// statfs reports the space of the filesystem holding path with statfs(2).
func statfs(path string) (Space, error) {
	var st unix.Statfs_t
	for {
		err := unix.Statfs(path, &st)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return Space{}, fmt.Errorf("statfs %s: %w", path, err)
		}
		break
	}
	bs := uint64(st.Frsize) // the unit of the block counts; df uses it too
	if bs == 0 {
		bs = uint64(st.Bsize)
	}
	return Space{Avail: st.Bavail * bs, Total: st.Blocks * bs}, nil
}
