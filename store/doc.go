// Package store groups Rescind's storage backends (sqlite, and the conformance suite storetest
// that every backend passes). The interface they implement is rescind.Store.
package store
