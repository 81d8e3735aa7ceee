// Package store groups Rescind's storage backends, which implement rescind.Store:
//
//   - store/sqlite, the embedded default: one SQLite file (modernc.org/sqlite, no cgo);
//   - store/postgres, for several instances sharing one PostgreSQL database, with
//     notifications between them (rescind.Watcher);
//   - store/internal/sqlstore, the SQL both share: every table's plain reads and writes,
//     row scanning, encodings, error mapping and the migrations runner, and the steps of the
//     transactions whose locking differs (its package doc says how to add a table);
//   - store/storetest, the conformance suite every backend passes unchanged.
package store
