package sqlite_test

import (
	"context"
	"fmt"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/rescind/rescind"
	"github.com/rescind/rescind/store/sqlite"
)

// BenchmarkRevokeBatch measures Revoke of a group commit of 32 records with audit entries, as
// the revocation endpoint makes them, and reports the CPU time per record (the commit's fsync
// is I/O, in the wall time only).
func BenchmarkRevokeBatch(b *testing.B) {
	s, err := sqlite.Open(context.Background(), filepath.Join(b.TempDir(), "db"))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	base := time.Now().Add(time.Hour)
	n := 0
	cpu0 := cpuTime()
	for b.Loop() {
		revs := make([]rescind.Revocation, 32)
		for i := range revs {
			n++
			revs[i] = rescind.Revocation{Kind: rescind.RevokeToken, Key: fmt.Sprintf("AAECAwQFBgcICQoLDA0%03d", n%1000) + fmt.Sprint(n),
				ClientID: "mz7xu2d5mdscqfwjs6q5nq6xpe", RevokedAt: base, ExpiresAt: base.Add(time.Hour), Subject: "mz7xu2d5mdscqfwjs6q5nq6xpe",
				StatusList: "n3uwfgnyuzfnqk3l5yy3hcs5ny", StatusIdx: int64(n % 32768), Audience: []string{"https://auth.example.com"},
				Actor: "client:mz7xu2d5mdscqfwjs6q5nq6xpe", Reason: "revocation endpoint"}
		}
		if err := s.Revoke(context.Background(), revs); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(n), "cpu-ns/record")
}

// cpuTime returns the process's user and system CPU time so far, in nanoseconds.
func cpuTime() int64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return ru.Utime.Nano() + ru.Stime.Nano()
}
