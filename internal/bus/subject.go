package bus

import (
	"encoding/base32"
	"strconv"

	"github.com/sysmonstm/sysmonstm/internal/ingest"
)

// Streams and subjects. A machine id is untrusted (dots, `*`, `>`, spaces
// are all valid in one), so it never appears in a subject as it is: each
// subject token is its base32hex encoding (0-9, A-V, no padding), which
// cannot contain a separator or a wildcard.
const (
	// SamplesStream holds every batch, per machine and agent instance,
	// for MaxAge: the storage consumer's work and each machine's newest
	// values (its last message per subject).
	SamplesStream  = "SYSMONSTM_SAMPLES"
	samplesSubject = "sysmonstm.samples" // .<machine>.<instance hex>

	// StateStream holds the newest hello, disconnect and process list of
	// each machine (one message per subject).
	StateStream  = "SYSMONSTM_STATE"
	stateSubject = "sysmonstm.state" // .<kind>.<machine>

	// storageConsumer is the durable pull consumer every hub's storage
	// worker shares: each batch goes to one of them.
	storageConsumer = "storage"
)

// State subject kinds.
const (
	kindHello      = "hello"
	kindDisconnect = "bye"
	kindProcesses  = "procs"
)

var token = base32.HexEncoding.WithPadding(base32.NoPadding)

// machineToken is a machine id as one subject token.
func machineToken(machine string) string { return token.EncodeToString([]byte(machine)) }

// batchSubject is the subject of a machine's agent instance's batches.
func batchSubject(machine string, instance uint64) string {
	return samplesSubject + "." + machineToken(machine) + "." + strconv.FormatUint(instance, 16)
}

// batchSubjectOf is the subject of a batch: its agent instance's, or for
// HTTP ingest and remote write sysmonstm.samples.<machine>.http and
// .remote_write ("_" for remote-written series of no machine). Neither
// token is hex nor base32hex, so none is an agent instance's or a
// machine's subject.
func batchSubjectOf(x *ingest.BusBatch) string {
	if x.Source == "" {
		return batchSubject(x.Machine, x.Instance)
	}
	m := "_"
	if x.Machine != "" {
		m = machineToken(x.Machine)
	}
	return samplesSubject + "." + m + "." + x.Source
}

// stateSubjectOf is the subject of a machine's state message of one kind.
func stateSubjectOf(kind, machine string) string {
	return stateSubject + "." + kind + "." + machineToken(machine)
}

// msgID is the JetStream de-duplication id of a batch: a batch an agent
// replays to another hub within the stream's duplicate window is stored
// once.
func msgID(machine string, instance, seq uint64) string {
	return machineToken(machine) + "/" + strconv.FormatUint(instance, 16) + "/" + strconv.FormatUint(seq, 10)
}
