// Package netguard bounds what a network client may hold of the hub's
// listeners before it has proved who it is: open connections per client
// address, and the time a request body may take to arrive.
package netguard
