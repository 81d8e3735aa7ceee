package revocation

import (
	"os"
	"testing"

	"github.com/rescind/rescind/internal/pgtest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	pgtest.Stop()
	os.Exit(code)
}
