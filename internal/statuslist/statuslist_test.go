package statuslist

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/rescind/rescind"
)

// recorder is a hand-written fake Recorder.
type recorder struct {
	lists []rescind.StatusList
	err   error
}

func (r *recorder) CreateStatusList(_ context.Context, l rescind.StatusList) error {
	if r.err != nil {
		return r.err
	}
	r.lists = append(r.lists, l)
	return nil
}

func TestAllocatorUniqueAndRollsOver(t *testing.T) {
	rec := &recorder{}
	a := Allocator{Recorder: rec}
	seen := map[string]map[int64]bool{}
	lists := map[string]bool{}
	for range Size/4 + 10 {
		id, idx, err := a.Next(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if !ValidID(id) || idx < 0 || idx >= Size {
			t.Fatalf("entry %s/%d out of range", id, idx)
		}
		if seen[id] == nil {
			seen[id] = map[int64]bool{}
		}
		if seen[id][idx] {
			t.Fatalf("entry %s/%d handed out twice", id, idx)
		}
		seen[id][idx] = true
		lists[id] = true
	}
	if len(lists) != 2 {
		t.Fatalf("%d lists used; want a rollover to a second list at a quarter full", len(lists))
	}
	if len(rec.lists) != 2 || !lists[rec.lists[0].ID] || !lists[rec.lists[1].ID] {
		t.Fatalf("recorded %+v; want each of the two lists used, once", rec.lists)
	}
	if ValidID("../etc/passwd") || ValidID("") {
		t.Fatal("ValidID accepts junk")
	}
}

// TestAllocatorRecordsBeforeUse: a list is recorded (with a lifetime past every token that can
// refer to it) before its first entry is handed out; a list is not used past MaxAge; and when
// recording fails nothing is handed out.
func TestAllocatorRecordsBeforeUse(t *testing.T) {
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	rec := &recorder{}
	a := Allocator{Recorder: rec, MaxAge: time.Hour, MaxTokenTTL: 24 * time.Hour, Now: func() time.Time { return now }}
	id1, _, err := a.Next(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(rec.lists) != 1 || rec.lists[0].ID != id1 || !rec.lists[0].CreatedAt.Equal(now) ||
		!rec.lists[0].ExpiresAt.Equal(now.Add(time.Hour+24*time.Hour+time.Hour)) {
		t.Fatalf("recorded %+v", rec.lists)
	}
	now = now.Add(59 * time.Minute)
	if id, _, _ := a.Next(context.Background()); id != id1 {
		t.Fatal("a new list before MaxAge")
	}
	now = now.Add(time.Minute)
	id2, _, err := a.Next(context.Background())
	if err != nil || id2 == id1 || len(rec.lists) != 2 {
		t.Fatalf("at MaxAge: list %s (first %s), %d recorded, %v; want a new recorded list", id2, id1, len(rec.lists), err)
	}
	now = now.Add(time.Hour)
	rec.err = errors.New("database down")
	if id, _, err := a.Next(context.Background()); err == nil || id != "" {
		t.Fatalf("recording failed but Next handed out %q (%v)", id, err)
	}
	rec.err = nil
	if id, _, err := a.Next(context.Background()); err != nil || id == id2 || id != rec.lists[2].ID {
		t.Fatalf("after recovery: %q, %v", id, err)
	}
}
