package store

import (
	"syscall"

	"github.com/VictoriaMetrics/VictoriaMetrics/lib/cgroup"
)

// hostMemory returns the memory the process may use, in bytes, as the VM
// engine sees it (the host's RAM, or its cgroup's limit when lower); 0
// when unknown.
func hostMemory() int64 {
	var si syscall.Sysinfo_t
	if err := syscall.Sysinfo(&si); err != nil {
		return 0
	}
	total := int64(si.Totalram) * int64(si.Unit)
	if l := cgroup.GetMemoryLimit(); l > 0 && l < total {
		total = l
	}
	return total
}
