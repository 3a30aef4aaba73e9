package diskspace

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// Stat reports the usage of the filesystem holding path.
func Stat(path string) (Usage, error) {
	var st unix.Statfs_t
	for {
		err := unix.Statfs(path, &st)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return Usage{}, fmt.Errorf("statfs %s: %w", path, err)
		}
		break
	}
	bs := uint64(st.Frsize) // the unit of the block counts; df uses it too
	if bs == 0 {
		bs = uint64(st.Bsize)
	}
	return Usage{Size: st.Blocks * bs, Free: st.Bfree * bs, Avail: st.Bavail * bs}, nil
}
