// Package tui owns `sysmonstm top`, the terminal dashboard: the live fleet
// state it shows (fed by a hub's WebSocket or by the collectors in-process),
// the bubbletea model that navigates it, and the views that draw it.
package tui
