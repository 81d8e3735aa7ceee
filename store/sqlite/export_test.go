package sqlite

import (
	"context"
	"database/sql"

	"github.com/rescind/rescind"
	"github.com/rescind/rescind/store/internal/sqlstore"
)

// FailRows is the backend's storetest.RowsFault: it arms the fault that s's queries pass
// their rows through (sqlstore.RowsFault).
func FailRows(s rescind.Store, n int, err error) (disarm func() bool) {
	st := s.(*Store)
	st.fault.Arm(n, err)
	return st.fault.Disarm
}

// InTx is the backend's storetest.InTx: fn runs in a transaction as the store's own methods run
// theirs (inTx: the write lock from the start).
func InTx(s rescind.Store, fn func(tx sqlstore.Querier) error) error {
	st := s.(*Store)
	return inTx(context.Background(), st.db, func(tx *sql.Tx) error { return fn(st.q(tx)) })
}
