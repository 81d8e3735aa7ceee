package sqlstore

import (
	"sync/atomic"
)

// RowsFault breaks the iteration of rows on purpose, for the conformance suite's cases that
// show a failure in the middle of a result leaves nothing half-done. A backend's Querier passes
// the rows of every Query through Wrap. The zero value is disarmed, and then costs one atomic
// load per query.
type RowsFault struct {
	armed atomic.Pointer[fault]
}

type fault struct {
	skip    atomic.Int64 // queries still to let through
	err     error
	reached atomic.Bool
}

// Arm makes the n-th query (counting from 0) that Wrap sees from now on deliver at most one
// row and then fail with err, as a connection lost in the middle of a result would: Next
// returns false and Err returns err.
func (f *RowsFault) Arm(n int, err error) {
	a := &fault{err: err}
	a.skip.Store(int64(n))
	f.armed.Store(a)
}

// Disarm ends the fault and reports whether its query came.
func (f *RowsFault) Disarm() (reached bool) {
	a := f.armed.Swap(nil)
	return a != nil && a.reached.Load()
}

// Wrap returns r, or, for the query the fault is armed for, rows that fail after one row.
func (f *RowsFault) Wrap(r Rows) Rows {
	a := f.armed.Load()
	if a == nil || a.skip.Add(-1) != -1 {
		return r
	}
	a.reached.Store(true)
	return &failingRows{Rows: r, err: a.err}
}

// failingRows delivers at most one row of Rows, then fails with err.
type failingRows struct {
	Rows
	err               error
	delivered, failed bool
}

func (r *failingRows) Next() bool {
	if r.delivered || !r.Rows.Next() {
		r.failed = true
		return false
	}
	r.delivered = true
	return true
}

func (r *failingRows) Err() error {
	if r.failed {
		return r.err
	}
	return r.Rows.Err()
}
