//go:build !linux

package collect

import "time"

// mountWatch is a no-op off Linux: every tick re-reads mountinfo.
type mountWatch struct{}

func newMountWatch(string) *mountWatch { return &mountWatch{} }

func (*mountWatch) changed(time.Time) bool { return true }

func (*mountWatch) close() {}
