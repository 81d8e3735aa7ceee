package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"
)

// fakeRows is a hand-written Rows over ints: it fails its iteration with iterErr after
// delivering them, its Close returns closeErr, and Scan fails with scanErr at row failAt.
type fakeRows struct {
	vals              []int
	i                 int
	iterErr, closeErr error
	scanErr           error
	failAt            int
	closed            int
}

func (r *fakeRows) Next() bool {
	if r.i >= len(r.vals) {
		return false
	}
	r.i++
	return true
}

func (r *fakeRows) Scan(dest ...any) error {
	if r.scanErr != nil && r.i-1 == r.failAt {
		return r.scanErr
	}
	*dest[0].(*int) = r.vals[r.i-1]
	return nil
}

func (r *fakeRows) Err() error {
	if r.i >= len(r.vals) {
		return r.iterErr
	}
	return nil
}

func (r *fakeRows) Close() error { r.closed++; return r.closeErr }

// fakeQuerier answers every Query with rows, wrapped by fault.
type fakeQuerier struct {
	rows  *fakeRows
	err   error
	fault *RowsFault
}

func (q fakeQuerier) Exec(context.Context, string, ...any) (int64, error) { return 0, nil }
func (q fakeQuerier) QueryRow(context.Context, string, ...any) Row        { return q.rows }
func (q fakeQuerier) Query(context.Context, string, ...any) (Rows, error) {
	if q.err != nil {
		return nil, q.err
	}
	if q.fault != nil {
		return q.fault.Wrap(q.rows), nil
	}
	return q.rows, nil
}

func scanInt(r Row) (v int, err error) { return v, r.Scan(&v) }

// TestAll: All returns every row, or, if anything about reading them fails, that error and
// no rows; the rows are closed either way.
func TestAll(t *testing.T) {
	boom := errors.New("boom")
	for _, tc := range []struct {
		name     string
		rows     fakeRows
		queryErr error
		want     []int
		wantErr  error
	}{
		{"all rows", fakeRows{vals: []int{1, 2, 3}}, nil, []int{1, 2, 3}, nil},
		{"no rows", fakeRows{}, nil, []int{}, nil},
		{"query fails", fakeRows{}, boom, nil, boom},
		{"iteration fails after rows", fakeRows{vals: []int{1, 2}, iterErr: boom}, nil, nil, boom},
		{"a row fails to scan", fakeRows{vals: []int{1, 2, 3}, scanErr: boom, failAt: 1}, nil, nil, boom},
		{"closing fails", fakeRows{vals: []int{1}, closeErr: boom}, nil, nil, boom},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rows := tc.rows
			got, err := All(context.Background(), fakeQuerier{rows: &rows, err: tc.queryErr}, scanInt, "q")
			if !errors.Is(err, tc.wantErr) || !slices.Equal(got, tc.want) || (tc.want != nil && got == nil) {
				t.Fatalf("All = %v, %v; want %v, %v", got, err, tc.want, tc.wantErr)
			}
			if tc.queryErr == nil && rows.closed == 0 {
				t.Fatal("rows not closed")
			}
		})
	}
}

// TestRowsFault: the fault lets the first n queries through untouched, makes the n-th deliver
// at most one row and then fail, touches none after it, and reports whether it was reached.
func TestRowsFault(t *testing.T) {
	ctx := context.Background()
	boom := errors.New("boom")
	var f RowsFault
	query := func(vals ...int) ([]int, error) {
		return All(ctx, fakeQuerier{rows: &fakeRows{vals: vals}, fault: &f}, scanInt, "q")
	}
	if got, err := query(1, 2); err != nil || len(got) != 2 {
		t.Fatalf("disarmed: %v, %v", got, err)
	}
	f.Arm(2, boom)
	for i, tc := range []struct {
		vals    []int
		wantErr error
	}{
		{[]int{1, 2}, nil},  // 0: through
		{[]int{}, nil},      // 1: through
		{[]int{1, 2}, boom}, // 2: one row, then the failure
		{[]int{1, 2}, nil},  // 3: through
	} {
		got, err := query(tc.vals...)
		if !errors.Is(err, tc.wantErr) || (err == nil && len(got) != len(tc.vals)) {
			t.Fatalf("query %d: %v, %v; want all rows or error %v", i, got, err, tc.wantErr)
		}
	}
	if !f.Disarm() {
		t.Fatal("Disarm says the fault was not reached")
	}
	f.Arm(0, boom)
	if _, err := query(); !errors.Is(err, boom) {
		t.Fatalf("a failing query with no rows: %v; want the failure instead of the end", err)
	}
	f.Disarm()
	f.Arm(5, boom)
	query(1)
	if f.Disarm() {
		t.Fatal("Disarm says a fault was reached that was not")
	}
	if got, err := query(1, 2); err != nil || len(got) != 2 {
		t.Fatalf("after Disarm: %v, %v", got, err)
	}
	// The failing rows deliver their first row: a caller that ignores Err acts on it alone.
	f.Arm(0, boom)
	r := f.Wrap(&fakeRows{vals: []int{7, 8}})
	var v int
	if !r.Next() || r.Scan(&v) != nil || v != 7 || r.Next() || !errors.Is(r.Err(), boom) {
		t.Fatalf("failing rows: first %d, then Err %v", v, r.Err())
	}
}

// TestEncodings: lists and optional times round-trip, and the zero time is stored as 0.
func TestEncodings(t *testing.T) {
	for _, l := range [][]string{nil, {}, {"a"}, {"https://a.example/x?y=1", `q"uote`, "ü"}} {
		got, err := ParseList(JSONList(l))
		if err != nil || !slices.Equal(got, l) || got == nil {
			t.Errorf("ParseList(JSONList(%q)) = %q, %v", l, got, err)
		}
	}
	if JSONList(nil) != "[]" {
		t.Errorf("JSONList(nil) = %s, want []", JSONList(nil))
	}
	if _, err := ParseList("not json"); err == nil {
		t.Error("ParseList accepted a malformed list")
	}
	at := time.Date(2030, 1, 2, 3, 4, 5, 123456789, time.FixedZone("x", 3600))
	if got := FromNanos(Nanos(at)); !got.Equal(at) || got.Location() != time.UTC {
		t.Errorf("FromNanos(Nanos(%v)) = %v", at, got)
	}
	if OptionalNanos(time.Time{}) != 0 || !OptionalTime(0).IsZero() || !OptionalTime(OptionalNanos(at)).Equal(at) {
		t.Error("optional times do not round-trip")
	}
	if got := fmt.Sprint(AuditAction("grant")); got != "revoke_grant" {
		t.Errorf("AuditAction = %s", got)
	}
}
