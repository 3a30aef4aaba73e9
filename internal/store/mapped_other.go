//go:build !linux

package store

const mappedSupported = false

func pageOutMapped(func(path []byte) mappedAdvice) error { return nil }
