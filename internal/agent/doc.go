// Package agent owns a sysmonstm agent. NewHost assembles one machine's
// agent from a Config (host.go): the default collector set, the top
// processes, the push socket, the host description and TLS. Under it, the
// stream (New, any Source; loadgen runs it with a synthetic one): every tick
// it turns the collected samples into a Batch, keeps each batch the hub has
// not acknowledged in a bounded buffer, and streams them to the hub over
// gRPC, replaying the buffer after a hub restart or a network cut. Given
// several hubs (a list, or a name with several addresses), it starts on one
// chosen by the machine id's hash and fails over to a random healthy one,
// replaying there what no hub acknowledged (hubs.go).
//
// # Buffer bound
//
// The buffer holds unacknowledged batches up to Options.BufferBytes of
// encoded (wire) size, default 8 MiB; when full it drops the oldest batch and
// counts it in Stats.Dropped. A batch costs about 9.4 bytes per sample plus
// about 12 bytes of header (BenchmarkBatchEncode: 469 B for 50 series,
// 9,893 B for 1,000), so a 60-series host at 1 s makes ≈ 560 B batches and
// the default buffer holds ≈ 15,000 of them: about 4 hours, well above the
// hour the protocol requires (≈ 1.6 hours at 150 series, 14 minutes at
// 1,000). Resident memory of a full buffer is 1.3–1.5 × BufferBytes: in
// memory a sample takes 12 bytes (uint32 id, float64 value) and a batch
// about 110 bytes of message header, so ≈ 12 MiB for the default.
//
// # Wire cost
//
// Series identities (name and labels) travel once per stream in SeriesDefs;
// a Batch carries packed series ids and float64 values, so a steady-state
// host with 50 series at 1 s sends 483 bytes per second including gRPC and
// HTTP/2 framing (TestSteadyStateWireCost), and receives a 20-byte ack.
// Samples with NaN or ±Inf values and series the hub would reject (invalid
// names or labels) are skipped at the agent, never sent.
package agent
