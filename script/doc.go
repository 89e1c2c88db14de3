// Package script runs JavaScript over the object engine.
package script
