package postgres

import (
	"context"

	"github.com/jackc/pgx/v5"

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
// theirs.
func InTx(s rescind.Store, fn func(tx sqlstore.Querier) error) error {
	st := s.(*Store)
	return pgx.BeginFunc(context.Background(), st.pool, func(tx pgx.Tx) error { return fn(st.q(tx)) })
}
