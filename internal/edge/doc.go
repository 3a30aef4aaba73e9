// Package edge is the public relay: a hub's Forwarder pushes a filtered copy
// of its live stream over an outbound WebSocket to a `sysmonstm edge`
// Server, which keeps the latest values plus a short window per series in
// memory and serves a read-only dashboard to any number of browsers.
package edge
