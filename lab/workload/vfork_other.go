//go:build !amd64

package main

import "errors"

// vforkSleep is only implemented on amd64 (see vfork_amd64.go).
func vforkSleep(childName string) error {
	return errors.New("the vfork sleeper is only implemented on amd64")
}
