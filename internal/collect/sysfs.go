package collect

import (
	"bytes"
	"os"
	"strconv"
	"strings"

	"github.com/sysmonstm/sysmonstm/internal/metric"
)

// readSysString returns the trimmed content of a small sysfs file, "" when
// it cannot be read.
func readSysString(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// parseSysInt parses a sysfs integer ("45000\n").
func parseSysInt(b []byte) (int64, bool) {
	v, err := strconv.ParseInt(string(bytes.TrimSpace(b)), 10, 64)
	return v, err == nil
}

// sysValue is one sysfs file a collector re-reads every tick into a reused
// buffer, with the labels of the series it feeds.
type sysValue struct {
	file   *procFile
	labels metric.Labels // sorted, shared by every sample of this file
}

// readInt reads the file as an integer; false when it cannot be read or
// parsed (sensors return EIO or ENODATA while unavailable).
func (v *sysValue) readInt() (int64, bool) { return readSysInt(v.file) }

// readSysInt reads a sysfs file holding one decimal integer into f's
// buffer; false when it cannot be read or parsed.
func readSysInt(f *procFile) (int64, bool) {
	if f.buf == nil {
		f.buf = make([]byte, 64)
	}
	data, err := f.read()
	if err != nil {
		return 0, false
	}
	return parseSysInt(data)
}

// readSysUint is readSysInt for counters and other values that cannot be
// negative: a negative one is refused.
func readSysUint(f *procFile) (uint64, bool) {
	v, ok := readSysInt(f)
	return uint64(v), ok && v >= 0
}

// isNotSupported reports EOPNOTSUPP ("Operation not supported"), what PSI
// files return when the kernel was booted with psi=0.
func isNotSupported(err error) bool {
	return err != nil && strings.Contains(err.Error(), "not supported")
}
