// Package diskspace reads a filesystem's size and free space (statfs(2)):
// the agent's filesystem collector, the store's free-space guard and the
// metadata database's "disk full" message all ask it.
package diskspace

// Usage is what statfs(2) reports about one filesystem, in bytes.
type Usage struct {
	Size  uint64 // total size (f_blocks)
	Free  uint64 // free, root's reserve included (f_bfree)
	Avail uint64 // what an unprivileged writer may still use (f_bavail)
}
