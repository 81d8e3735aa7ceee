package statuslist

import "testing"

func TestAllocatorUniqueAndRollsOver(t *testing.T) {
	var a Allocator
	seen := map[string]map[int64]bool{}
	lists := map[string]bool{}
	for range Size/4 + 10 {
		id, idx, err := a.Next()
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
	if ValidID("../etc/passwd") || ValidID("") {
		t.Fatal("ValidID accepts junk")
	}
}
