package sqlite

import "github.com/rescind/rescind"

// FailRows is the backend's storetest.RowsFault: it arms the fault that s's queries pass
// their rows through (sqlstore.RowsFault).
func FailRows(s rescind.Store, n int, err error) (disarm func() bool) {
	st := s.(*Store)
	st.fault.Arm(n, err)
	return st.fault.Disarm
}
