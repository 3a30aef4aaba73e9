package collect

import (
	"runtime"
	"time"

	"golang.org/x/sys/unix"
)

// mountWatch tells the filesystem collector when a mountinfo file may have
// changed, so it does not re-read it every tick: on a Kubernetes node the
// file can hold hundreds of mounts. The kernel flags a mount table change
// with POLLPRI on an open mountinfo (what util-linux and systemd use). Off
// procfs (test fixtures) or if the watch cannot be opened, every tick counts
// as a change. A re-read is forced every mountRefresh in case a kernel does
// not signal.
type mountWatch struct {
	fd       int // -1: no watch, always re-read
	lastRead time.Time
	cleanup  runtime.Cleanup
}

// mountRefresh bounds how long a parsed mount table is trusted without a
// change notification.
const mountRefresh = time.Minute

func newMountWatch(path string) *mountWatch {
	w := &mountWatch{fd: -1}
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return w
	}
	var st unix.Statfs_t
	if err := unix.Fstatfs(fd, &st); err != nil || st.Type != unix.PROC_SUPER_MAGIC {
		unix.Close(fd)
		return w
	}
	w.fd = fd
	// The collector has no Close; release the descriptor with the watch.
	w.cleanup = runtime.AddCleanup(w, func(fd int) { unix.Close(fd) }, fd)
	return w
}

// close releases the watch's descriptor.
func (w *mountWatch) close() {
	if w.fd >= 0 {
		w.cleanup.Stop()
		unix.Close(w.fd)
		w.fd = -1
	}
}

// changed reports whether the mount table must be read again; the caller
// reads it right after a true answer.
func (w *mountWatch) changed(now time.Time) bool {
	if w.fd < 0 || w.lastRead.IsZero() || now.Sub(w.lastRead) >= mountRefresh {
		w.lastRead = now
		return true
	}
	fds := [1]unix.PollFd{{Fd: int32(w.fd), Events: unix.POLLPRI}}
	n, err := unix.Poll(fds[:], 0)
	if err != nil || (n > 0 && fds[0].Revents&(unix.POLLPRI|unix.POLLERR) != 0) {
		w.lastRead = now
		return true
	}
	return false
}
