//go:build !linux

package store

const mappedSupported = false

func pageOutMapped(func(path []byte) bool) error { return nil }
