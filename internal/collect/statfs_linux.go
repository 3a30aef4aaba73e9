package collect

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// statfs reports a filesystem's usage with statfs(2), in bytes.
func statfs(path string) (FSUsage, error) {
	var st unix.Statfs_t
	for {
		err := unix.Statfs(path, &st)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return FSUsage{}, fmt.Errorf("statfs %s: %w", path, err)
		}
		break
	}
	bs := uint64(st.Frsize) // the unit of the block counts; df uses it too
	if bs == 0 {
		bs = uint64(st.Bsize)
	}
	return FSUsage{Size: st.Blocks * bs, Free: st.Bfree * bs, Avail: st.Bavail * bs}, nil
}
