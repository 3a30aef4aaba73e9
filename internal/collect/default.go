package collect

// NewDefault returns a Set of the core collectors every Linux agent runs
// (SPEC §3), in a fixed order.
func NewDefault(opts Options) *Set {
	return NewSet(opts,
		NewCPU(opts),
		NewLoad(opts),
		NewMemory(opts),
		NewFilesystem(opts),
		NewDisk(opts),
		NewNetwork(opts),
		NewProcesses(opts),
		NewUptime(opts),
	)
}
