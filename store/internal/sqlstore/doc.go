// Package sqlstore is the SQL that Rescind's two storage backends share: the plain reads and
// writes of every table, row scanning, the encoding of lists and times, the mapping of
// database errors to rescind.ErrNotFound and rescind.ErrAlreadyExists, the steps inside the
// transactions whose locking differs, and the migrations runner. store/sqlite (database/sql on
// modernc.org/sqlite) and store/postgres (pgx) each adapt their driver to Querier and DB and
// embed a *Store, whose methods implement the shared part of rescind.Store.
//
// # One statement for both databases
//
// Statements are written once, in the SQL both databases accept: numbered placeholders ($1,
// $2, ... ; modernc.org/sqlite binds $N to the N-th argument as PostgreSQL does), times as
// int64 Unix nanoseconds (Nanos, FromNanos, and 0 for "never": OptionalNanos, OptionalTime),
// lists as JSON arrays written and read as text (JSONList, ParseList; jsonb columns on
// PostgreSQL, TEXT on SQLite), booleans as Go bools, CASE instead of max/min or
// GREATEST/LEAST, and ON CONFLICT for upserts (both accept it). "No row" is sql.ErrNoRows on
// both drivers (pgx.ErrNoRows wraps it); a duplicate key is recognised by the Dialect.
//
// Every query that reads several rows goes through All, which fails if the query, a row, the
// iteration or closing the rows fails: a caller never acts on part of a result, which inside a
// transaction would commit part of a revocation and report success. The conformance suite
// checks it by making an iteration fail on purpose (RowsFault).
//
// # What stays in each backend
//
//   - Opening the database, the connection settings, Ping, Close, and backup (SQLite).
//   - Writing revocation records (Revoke): batched with NOTIFY under an advisory lock on
//     PostgreSQL, prepared statements in one immediate transaction on SQLite. The other writes
//     of records (deleting a client or user, revoking grants, retiring a key) call the same
//     writer, in the backend's own transaction.
//   - Every method whose transaction's isolation matters: RevokeGrants, DeleteUser,
//     DeleteClient, SaveGrant, RotateRefreshToken, RedeemCode, RetireKey, CreateSession,
//     EndSessions and SetPassword. The backend opens
//     the transaction and takes its locks (PostgreSQL: FOR UPDATE rows and advisory locks;
//     SQLite: the write lock every transaction takes when it begins, _txlock=immediate), then
//     runs the shared steps (GrantRevocations, SessionEnding, UsableRefreshToken, ...), each
//     of which takes the lock clause to append to its reads ("" on SQLite, " FOR UPDATE" on
//     PostgreSQL where a row must be held until commit).
//   - Notifications to other instances (PostgreSQL's pg_notify): shared methods call
//     Dialect.Notify in their transaction; it is nil on SQLite.
//   - The migration files themselves, one directory per backend: a shipped migration is never
//     edited, and the DDL differs (bigserial and jsonb against INTEGER and TEXT). Migrate runs
//     them the same way on both; PostgreSQL holds an advisory lock around it.
//
// # Adding a table
//
//  1. Write the migration, with the next number, in both store/sqlite/migrations and
//     store/postgres/migrations: bigint/INTEGER for times (Unix nanoseconds), jsonb/TEXT for
//     lists, boolean/INTEGER for flags, text/TEXT for strings, bytea/BLOB for bytes.
//  2. Add the domain type and the Store methods to rescind.go, each with its error contract,
//     and their conformance tests to store/storetest.
//  3. Implement the methods here, once, in a new file: a column list, a scan function, and
//     the methods on *Store, which run on s.db (s.db.InTx for several statements, calling
//     s.notify if other instances must learn of the change), read lists with All, map
//     isNoRows to rescind.ErrNotFound and s.d.IsUniqueViolation to rescind.ErrAlreadyExists,
//     and start their errors with s.errorf. Both backends then have them.
//  4. Only if a method's transaction needs locking that differs between the databases, write
//     the steps here as functions that take the transaction (a Querier) and the lock clause,
//     and the method itself in each backend, as the methods above are.
//
// The rows-failure conformance cases then cover the new reads without more work, as long as
// they go through All.
package sqlstore
